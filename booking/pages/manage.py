"""Managing a booking: found by its code plus the phone number or birth date, then viewed,
cancelled, or moved (the old time is kept until the new one is secured)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature

from booking import service
from booking.context import TOKYO
from booking.errors import BookingError
from booking.pages.forms import csrf_ok, form_page, signer
from booking.pages.limits import over_limit
from booking.pages.render import message_language, page
from booking.web import row_id, unit_of_work

router = APIRouter(include_in_schema=False)
MANAGE_COOKIE = "manage"
MANAGE_MAX_AGE = 30 * 60


def _refused(request: Request) -> Response:
    return page(request, "expired_form.html", status_code=403)


def _birth_date(form: dict[str, str]) -> date | None:
    parts = [form.get(k, "").strip() for k in ("birth_year", "birth_month", "birth_day")]
    if not any(parts):
        return None
    return date(int(parts[0]), int(parts[1]), int(parts[2]))


@router.get("/manage")
def lookup_form(request: Request) -> Response:
    """Find a booking: its code, and the phone number or birth date given when booking."""
    return form_page(request, "manage.html", values={}, errors={})


@router.post("/manage")
async def lookup(request: Request) -> Response:
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items()}
    if not csrf_ok(request, form.get("csrf")):
        return _refused(request)
    language = message_language(request)
    limited = await run_in_threadpool(over_limit, request, "lookup")
    if limited is not None:
        return form_page(
            request, "manage.html", status_code=429, values=form, errors={"form": limited}
        )
    try:
        birth = _birth_date(form)
    except ValueError:
        error = BookingError("invalid_birth_date").message(language)
        return form_page(
            request, "manage.html", status_code=422, values=form, errors={"birth_date": error}
        )

    def find() -> service.BookingView:
        with unit_of_work(request) as db:
            return service.find_booking(
                db,
                code=form.get("code", "").replace(" ", "").replace("-", ""),
                phone=form.get("phone") or None,
                birth_date=birth,
            )

    try:
        booking = await run_in_threadpool(find)
    except BookingError as error:
        field = "code" if error.code in ("invalid_code", "booking_not_found") else "form"
        errors = {field: error.message(language)}
        return form_page(
            request, "manage.html", status_code=error.status, values=form, errors=errors
        )
    response = RedirectResponse("/manage/booking", status_code=303)
    token = signer(request, "manage").dumps(booking.id)
    response.set_cookie(MANAGE_COOKIE, token, httponly=True, samesite="lax", max_age=MANAGE_MAX_AGE)
    return response


def managed_booking_id(request: Request) -> int | None:
    """The booking this browser proved it may manage (code and second factor), if any: for
    the pages of other packages that act on it (stopping its messages)."""
    return _managed(request)


def _managed(request: Request) -> int | None:
    token = request.cookies.get(MANAGE_COOKIE)
    if not token:
        return None
    try:
        return int(signer(request, "manage").loads(token, max_age=MANAGE_MAX_AGE))
    except (BadSignature, ValueError):
        return None


def _show(request: Request, booking_id: int, **extra: Any) -> Response:
    with unit_of_work(request) as db:
        booking = service.get_booking(db, booking_id=booking_id)
        chosen = service.service_or_404(db, booking.service_id)
        venue = service.venue_or_404(db, booking.venue_id)
    return form_page(request, "managed.html", booking=booking, service=chosen, venue=venue, **extra)


@router.get("/manage/booking")
def managed(request: Request) -> Response:
    """The booking found: its details, and the buttons to move or cancel it."""
    booking_id = _managed(request)
    if booking_id is None:
        return RedirectResponse("/manage", status_code=303)
    return _show(
        request,
        booking_id,
        moved=request.query_params.get("moved") == "1",
        stopped=request.query_params.get("stopped") == "1",
    )


@router.get("/manage/cancel")
def confirm_cancel(request: Request) -> Response:
    """Ask before cancelling: a cancelled time goes back on sale and cannot be given back."""
    booking_id = _managed(request)
    if booking_id is None:
        return RedirectResponse("/manage", status_code=303)
    with unit_of_work(request) as db:
        booking = service.get_booking(db, booking_id=booking_id)
        if booking.status != "booked":
            return RedirectResponse("/manage/booking", status_code=303)
        chosen = service.service_or_404(db, booking.service_id)
        venue = service.venue_or_404(db, booking.venue_id)
    return form_page(request, "cancel.html", booking=booking, service=chosen, venue=venue)


@router.get("/manage/move")
def back_to_booking(request: Request) -> Response:
    """This answers POSTs; a GET (the language switch on its page) shows the booking."""
    lang = request.query_params.get("lang")
    return RedirectResponse("/manage/booking" + (f"?lang={lang}" if lang else ""), 303)


@router.post("/manage/cancel")
async def cancel(request: Request) -> Response:
    raw = await request.form()
    booking_id = _managed(request)
    if booking_id is None or not csrf_ok(request, str(raw.get("csrf", ""))):
        return _refused(request)

    def run() -> None:
        with unit_of_work(request) as db:
            service.cancel_booking(db, booking_id=booking_id)
            db.commit()

    try:
        await run_in_threadpool(run)
    except BookingError as error:
        return _show(request, booking_id, problem=error.message(message_language(request)))
    return _show(request, booking_id, cancelled=True)


@router.post("/manage/move")
async def move(request: Request) -> Response:
    """Move to the time pressed on the calendar's times page; nothing changes if it is gone."""
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items()}
    booking_id = _managed(request)
    if booking_id is None or not csrf_ok(request, form.get("csrf")):
        return _refused(request)
    try:
        slot_id = row_id(form.get("slot_id"))
    except ValueError:
        return _refused(request)

    def run() -> service.BookingView:
        with unit_of_work(request) as db:
            moved = service.reschedule_booking(db, booking_id=booking_id, slot_id=slot_id)
            db.commit()
            return moved

    try:
        await run_in_threadpool(run)
    except BookingError as error:
        if error.code in ("slot_full", "slot_closed", "outside_booking_window"):
            from booking.pages.flow import taken_page

            def current() -> service.BookingView:
                with unit_of_work(request) as db:
                    return service.get_booking(db, booking_id=booking_id)

            booking = await run_in_threadpool(current)
            day = date.fromisoformat(form.get("day", "")) if form.get("day") else None
            return taken_page(
                request,
                error.code,
                booking.service_id,
                form.get("place", booking.venue_id),
                day or booking.starts_at.astimezone(TOKYO).date(),
                booking.party_size,
                move=True,
            )
        return _show(request, booking_id, problem=error.message(message_language(request)))
    return RedirectResponse("/manage/booking?moved=1", status_code=303)
