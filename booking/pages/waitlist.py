"""The waitlist's pages: "tell me when seats free up" on a full day, and the page an offer's SMS
links to. A GET only shows; only a form's POST (with its CSRF token) joins, books or leaves, so
a link preview or a virus scanner opening the link changes nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from booking import service
from booking.errors import BookingError
from booking.pages.flow import (
    ASKS_WISHES,
    ERA_NAMES,
    FIELD_TARGETS,
    FORM_ERAS,
    _done,
    _field_rank,
    _problems,
    _refused,
    _resident,
)
from booking.pages.forms import form_page
from booking.pages.limits import over_limit
from booking.pages.render import contact_languages, message_language, not_found, page
from booking.personal import LANGUAGE_NAMES, FieldProblems, display_phone
from booking.views import HeldTime, HoldView
from booking.web import csrf_ok, row_id, unit_of_work, whole_number

router = APIRouter(include_in_schema=False)


@router.post("/waitlist")
async def join(request: Request) -> Response:
    """Put the visitor on a full day's (or time's) waitlist; their page shows their place."""
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items()}
    if not csrf_ok(request, form.get("csrf")):
        return _refused(request)
    try:
        day = date.fromisoformat(form.get("day", ""))
        party = whole_number(form.get("party", "1"), 100)
        slot_id = row_id(form["slot_id"]) if form.get("slot_id") else None
    except ValueError:
        return _refused(request)
    limited = await run_in_threadpool(over_limit, request, "book")
    if limited is not None:
        return page(request, "limited.html", status_code=429, message=limited)

    def add() -> service.WaitlistView:
        with unit_of_work(request) as db:
            entry = service.join_waitlist(
                db,
                venue_id=form.get("place", ""),
                service_id=form.get("service", ""),
                day=day,
                slot_id=slot_id,
                party=party,
                phone=form.get("phone", ""),
                language=form.get("language", "ja"),
                channel="web",
            )
            db.commit()
            return entry

    try:
        entry = await run_in_threadpool(add)
    except BookingError as error:
        return page(
            request,
            "waitlist.html",
            status_code=error.status,
            entry=None,
            problem=error.message(message_language(request)),
        )
    return RedirectResponse(f"/w/{entry.token}", status_code=303)


def _entry(request: Request, token: str) -> tuple[service.WaitlistView, Any, Any, Any]:
    """The entry, its service and venue, and the time offered (a HeldTime for the form)."""
    with unit_of_work(request) as db:
        entry = service.waitlist_entry(db, token=token)
        chosen = service.service_or_404(db, entry.service_id)
        venue = service.venue_or_404(db, entry.venue_id)
        now = db.info["booking"].now()
    held = None
    if (
        entry.offer_live(now)
        and entry.offered_slot_id is not None
        and entry.offered_starts_at is not None
        and entry.offered_ends_at is not None
        and entry.offer_expires_at is not None
    ):
        hold = HoldView("", entry.offered_slot_id, entry.party_size, entry.offer_expires_at)
        held = HeldTime(
            hold,
            entry.venue_id,
            entry.service_id,
            entry.offered_starts_at,
            entry.offered_ends_at,
            True,
        )
    return entry, chosen, venue, held


def _offer_form(
    request: Request,
    token: str,
    found: tuple[service.WaitlistView, Any, Any, Any],
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    """The booking form for the seats offered (the hold form, posting to this offer)."""
    entry, chosen, venue, held = found
    now = request.app.state.sessions.kw["info"]["booking"].now()
    summary = [
        (
            None if field == "form" else FIELD_TARGETS.get(field, field),
            _field_rank(field)[1] + 1 if field.startswith("notice_") else None,
            errors[field],
        )
        for field in sorted(errors, key=_field_rank)
    ]
    return form_page(
        request,
        "details.html",
        status_code=status_code,
        held=held,
        service=chosen,
        venue=venue,
        values={"phone": display_phone(entry.phone), "language": entry.language, **values},
        errors=errors,
        summary=summary,
        seconds_left=max(0, int((held.hold.expires_at - now).total_seconds())),
        place=entry.venue_id,
        wishes=chosen.id in ASKS_WISHES,
        eras=[(era.key, ERA_NAMES[era.key]) for era in FORM_ERAS],
        languages=contact_languages(request),
        language_names=LANGUAGE_NAMES,
        form_action=f"/w/{token}",
    )


def _status_page(request: Request, entry: service.WaitlistView, status_code: int = 200) -> Response:
    return form_page(request, "waitlist.html", status_code=status_code, entry=entry, problem=None)


@router.get("/w/{token}")
def offer(request: Request, token: str) -> Response:
    """The resident's waitlist page: the form for the seats offered while the offer stands;
    otherwise their place on the list, or what became of it."""
    try:
        found = _entry(request, token)
    except BookingError as error:
        return not_found(request, error)
    if found[3] is None:
        return _status_page(request, found[0])
    return _offer_form(request, token, found, {}, {})


@router.post("/w/{token}")
async def take(request: Request, token: str) -> Response:
    """Book the seats offered, with what any booking asks."""
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items()}
    if not csrf_ok(request, form.get("csrf")):
        return _refused(request)
    try:
        found = await run_in_threadpool(_entry, request, token)
    except BookingError as error:
        return not_found(request, error)
    entry, chosen = found[0], found[1]
    if found[3] is None and entry.status != "booked":
        return _status_page(request, entry, 409)
    resident, errors = _resident(request, form, entry.party_size, chosen)
    if errors and entry.status != "booked":  # (a second press: the booking made, below)
        return _offer_form(request, token, found, form, errors, 422)

    def book() -> service.BookingView:
        with unit_of_work(request) as db:
            made = service.take_waitlist_offer(
                db,
                token=token,
                resident=resident,
                channel="web",
                idempotency_key=f"web-waitlist:{token}",  # a second press books nothing more
            )
            db.commit()
            return made

    try:
        booking = await run_in_threadpool(book)
    except FieldProblems as wrong:
        errors = _problems(request, form, wrong.problems)
        return _offer_form(request, token, found, form, errors, wrong.status)
    except BookingError as error:
        if error.code == "waitlist_offer_gone":
            again = await run_in_threadpool(_entry, request, token)
            return _status_page(request, again[0], 409)
        errors = _problems(request, form, {error.field or "form": error})
        return _offer_form(request, token, found, form, errors, error.status)
    return _done(request, booking)


@router.post("/w/{token}/leave")
async def leave(request: Request, token: str) -> Response:
    """Off the list; seats offered go to the next waiting."""
    raw = await request.form()
    if not csrf_ok(request, str(raw.get("csrf", ""))):
        return _refused(request)

    def go() -> service.WaitlistView:
        with unit_of_work(request) as db:
            left = service.leave_waitlist(db, token=token)
            db.commit()
            return left

    try:
        entry = await run_in_threadpool(go)
    except BookingError as error:
        return not_found(request, error)
    return _status_page(request, entry)
