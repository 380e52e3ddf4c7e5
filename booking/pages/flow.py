"""The booking flow: hold a time, fill in the details while the seats are kept, see the code.

Forms carry a CSRF token (signed, tied to a per-browser cookie). A failed step never ends on an
error page: a time taken meanwhile, or a hold that lapsed, shows the next free times.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import segno
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from icalendar import Alarm, Calendar, Event
from itsdangerous import BadSignature

from booking import service
from booking.context import TOKYO
from booking.errors import BookingError
from booking.pages.forms import csrf_ok, form_page, signer
from booking.pages.limits import over_limit
from booking.pages.render import ANYWHERE, message_language, page
from booking.service import MemberInput, ResidentInput
from booking.web import row_id, unit_of_work, whole_number

router = APIRouter(include_in_schema=False)
DONE_COOKIE = "booked"
DONE_MAX_AGE = 24 * 3600
# Services whose form asks each person's braille and e-certificate wishes (the ward's spec lists
# them among the application items of 申請補助).
ASKS_WISHES = {"application_help"}


def _refused(request: Request) -> HTMLResponse:
    return page(request, "expired_form.html", status_code=403)


def next_times(
    request: Request, service_id: str, venue_id: str | None, day: date, party: int
) -> list[service.SlotView]:
    with unit_of_work(request) as db:
        try:
            return service.availability(
                db, service_id=service_id, venue_id=venue_id, start=day, party=party, limit=5
            )
        except BookingError:
            return []


def taken_page(
    request: Request,
    reason: str,
    service_id: str,
    place: str,
    day: date,
    party: int,
    *,
    move: bool = False,
) -> Response:
    """The time went to someone else, or the hold lapsed: say so, offer the next free times."""
    venue_id = None if place == ANYWHERE else place
    with unit_of_work(request) as db:
        services = {s.id: s for s in service.list_services(db)}
        venues = {v.id: v for v in service.list_venues(db)}
    return form_page(
        request,
        "taken.html",
        status_code=409,
        reason=reason,
        service=services.get(service_id),
        place=place,
        party=party,
        day=day,
        venues=venues,
        slots=next_times(request, service_id, venue_id, day, party),
        move=move,
    )


@router.get("/hold")
def back_to_start(request: Request) -> Response:
    """POST-only; a GET (the language switch on a 'time taken' page) starts again."""
    lang = request.query_params.get("lang")
    return RedirectResponse("/" + (f"?lang={lang}" if lang else ""), status_code=303)


@router.post("/hold")
async def hold(request: Request) -> Response:
    """Keep the chosen time while the resident fills in the form."""
    form = await request.form()
    if not csrf_ok(request, str(form.get("csrf", ""))):
        return _refused(request)
    try:
        slot_id = row_id(form.get("slot_id"))
        party = whole_number(form.get("party", "1"), 100)
        day = date.fromisoformat(str(form.get("day")))
    except ValueError:
        return _refused(request)
    service_id, place = str(form.get("service", "")), str(form.get("place", ANYWHERE))
    limited = await run_in_threadpool(over_limit, request, "book")
    if limited is not None:
        return page(request, "limited.html", status_code=429, message=limited)

    def keep() -> str:
        with unit_of_work(request) as db:
            made = service.create_hold(db, slot_id=slot_id, seats=party, channel="web")
            db.commit()
            return made.id

    try:
        hold_id = await run_in_threadpool(keep)
    except BookingError as error:
        return taken_page(request, error.code, service_id, place, day, party)
    return RedirectResponse(f"/hold/{hold_id}?place={place}", status_code=303)


def _held(request: Request, hold_id: str) -> tuple[service.HeldTime, Any, Any] | None:
    with unit_of_work(request) as db:
        try:
            held = service.get_hold(db, hold_id=hold_id)
        except BookingError:
            return None
        chosen = service.service_or_404(db, held.service_id)
        venue = service.venue_or_404(db, held.venue_id)
    return held, chosen, venue


def _details(
    request: Request,
    held: service.HeldTime,
    chosen: Any,
    venue: Any,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    now = request.app.state.sessions.kw["info"]["booking"].now()
    left = max(0, int((held.hold.expires_at - now).total_seconds()))
    return form_page(
        request,
        "details.html",
        status_code=status_code,
        held=held,
        service=chosen,
        venue=venue,
        values=values,
        errors=errors,
        seconds_left=left,
        place=request.query_params.get("place", ANYWHERE),
        wishes=chosen.id in ASKS_WISHES,
    )


@router.get("/hold/{hold_id}")
def details(request: Request, hold_id: str) -> Response:
    """The form, with the time kept and how long it is kept for."""
    found = _held(request, hold_id)
    if found is None or not found[0].live:
        return _lapsed(request, found)
    held, chosen, venue = found
    return _details(request, held, chosen, venue, {}, {})


def _lapsed(request: Request, found: tuple[service.HeldTime, Any, Any] | None) -> Response:
    if found is None:
        return page(request, "lapsed.html", status_code=410, slots=[], venues={}, service=None)
    held = found[0]
    day = held.starts_at.astimezone(TOKYO).date()
    return taken_page(request, "hold_expired", held.service_id, held.venue_id, day, held.hold.seats)


def _resident(form: dict[str, str], party: int, chosen: Any) -> ResidentInput:
    """The form's fields as the engine takes them; members only where the service asks."""
    birth = date(
        whole_number(form.get("birth_year") or 0, 9999),
        whole_number(form.get("birth_month") or 0, 12),
        whole_number(form.get("birth_day") or 0, 31),
    )
    members = [
        MemberInput(
            notice_number=form.get(f"notice_{i}") or None,
            braille=form.get(f"braille_{i}") == "on",
            e_certificate=form.get(f"ecert_{i}", "on") == "on",
        )
        for i in range(party)
    ]
    if not chosen.requires_notice_number and chosen.id not in ASKS_WISHES:
        members = []
    return ResidentInput(
        name_kana=form.get("name_kana", ""),
        phone=form.get("phone", ""),
        birth_date=birth,
        language=form.get("language", "ja"),
        members=members,
        proxy=form.get("proxy") == "on",
    )


def _book(
    request: Request, hold_id: str, party: int, resident: ResidentInput
) -> service.BookingView:
    with unit_of_work(request) as db:
        made = service.book(
            db,
            hold_id=hold_id,
            party=party,
            resident=resident,
            channel="web",
            idempotency_key=f"web-hold:{hold_id}",  # a second press books nothing more
        )
        db.commit()
        return made


def _done(request: Request, booking: service.BookingView) -> Response:
    response = RedirectResponse("/booking/done", status_code=303)
    token = signer(request, "done").dumps(booking.id)
    response.set_cookie(DONE_COOKIE, token, httponly=True, samesite="lax", max_age=DONE_MAX_AGE)
    return response


async def _book_again(request: Request, hold_id: str, form: dict[str, str]) -> Response:
    """The hold is gone: used by this same form a moment ago (a second press), or lapsed and
    swept. The booking's retry key tells which."""

    def service_chosen() -> Any:
        with unit_of_work(request) as db:
            return service.service_or_404(db, form.get("service", ""))

    try:
        chosen = await run_in_threadpool(service_chosen)
    except BookingError:
        return _lapsed(request, None)
    try:
        party = whole_number(form.get("party", ""), 100)
        resident = _resident(form, party, chosen)
        booking = await run_in_threadpool(_book, request, hold_id, party, resident)
    except (ValueError, TypeError, BookingError):
        return _lapsed(request, None)
    return _done(request, booking)


@router.post("/hold/{hold_id}")
async def confirm(request: Request, hold_id: str) -> Response:
    """Book from the hold. Mistakes come back next to their field with everything kept."""
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items()}
    if not csrf_ok(request, form.get("csrf")):
        return _refused(request)
    found = await run_in_threadpool(_held, request, hold_id)
    if found is None:
        return await _book_again(request, hold_id, form)
    held, chosen, venue = found
    party = held.hold.seats
    try:
        resident = _resident(form, party, chosen)
    except (ValueError, TypeError):
        wrong_date = BookingError("invalid_birth_date")
        errors = {"birth_date": wrong_date.message(message_language(request))}
        return _details(request, held, chosen, venue, form, errors, 422)
    try:
        booking = await run_in_threadpool(_book, request, hold_id, party, resident)
    except BookingError as error:
        if error.code in ("hold_not_found", "hold_expired", "slot_full", "slot_closed"):
            day = held.starts_at.astimezone(TOKYO).date()
            return taken_page(request, error.code, held.service_id, held.venue_id, day, party)
        field = (error.field or "form").split(".")[0].replace("members[", "notice_").rstrip("]")
        errors = {field: error.message(message_language(request))}
        return _details(request, held, chosen, venue, form, errors, error.status)
    return _done(request, booking)


def _just_booked(request: Request) -> tuple[service.BookingView, Any, Any] | None:
    """The booking this browser has just made (from its signed cookie), with its service and
    venue; None without a valid cookie."""
    token = request.cookies.get(DONE_COOKIE)
    if not token:
        return None
    try:
        booking_id = int(signer(request, "done").loads(token, max_age=DONE_MAX_AGE))
    except (BadSignature, ValueError):
        return None
    with unit_of_work(request) as db:
        booking = service.get_booking(db, booking_id=booking_id)
        return (
            booking,
            service.service_or_404(db, booking.service_id),
            service.venue_or_404(db, booking.venue_id),
        )


@router.get("/booking/done")
def done(request: Request) -> Response:
    """The booking code, large, with its QR code, the visit and what to bring."""
    found = _just_booked(request)
    if found is None:
        return RedirectResponse("/manage", status_code=303)
    booking, chosen, venue = found
    # A standard QR code (not Micro QR, which phone cameras and many counter scanners cannot
    # read), drawn with a viewBox so the page's CSS sizes it.
    qr = segno.make_qr(booking.code, error="m").svg_inline(omitsize=True, title=booking.code)
    return page(request, "done.html", booking=booking, service=chosen, venue=venue, qr=qr)


@router.get("/booking/done.ics")
def done_calendar(request: Request) -> Response:
    """The visit as an iCalendar file, to add to the phone's calendar."""
    found = _just_booked(request)
    if found is None:
        return RedirectResponse("/manage", status_code=303)
    booking, chosen, venue = found
    cal = Calendar()
    cal.add("prodid", "-//Madoguchi//My Number card counter//JA")
    cal.add("version", "2.0")
    event = Event()
    event.add("uid", f"booking-{booking.code}@madoguchi")
    event.add("dtstamp", booking.created_at)
    event.add("dtstart", booking.starts_at)
    event.add("dtend", booking.ends_at)
    event.add("summary", f"{chosen.name_ja} ({booking.code})")
    event.add("location", f"{venue.name_ja} {venue.address_ja}")
    event.add("description", f"予約番号 / Booking code: {booking.code}")
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", f"{chosen.name_ja} {venue.name_ja}")
    alarm.add("trigger", timedelta(days=-1))
    event.add_component(alarm)
    cal.add_component(event)
    return Response(
        cal.to_ical(),
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="madoguchi-booking.ics"'},
    )
