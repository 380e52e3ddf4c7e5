"""Managing a booking: found by its code plus the phone number or birth date, then viewed,
cancelled, or moved (the old time is kept until the new one is secured)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from booking import service
from booking.context import TOKYO
from booking.errors import BookingError
from booking.pages.flow import taken_page
from booking.pages.forms import form_page
from booking.pages.limits import over_limit
from booking.pages.render import message_language, page
from booking.web import (
    MANAGE_COOKIE,
    MANAGE_MAX_AGE,
    csrf_ok,
    managed_booking_id,
    row_id,
    signer,
    unit_of_work,
)

router = APIRouter(include_in_schema=False)


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


def _show(request: Request, booking_id: int, **extra: Any) -> Response:
    with unit_of_work(request) as db:
        booking = service.get_booking(db, booking_id=booking_id)
        chosen = service.service_or_404(db, booking.service_id)
        venue = service.venue_or_404(db, booking.venue_id)
        # Checked in: their place in the counter's queue, on the same page a ticket links to.
        queue = (
            service.booking_queue_token(db, booking_id=booking_id)
            if booking.status == "checked_in"
            else None
        )
    return form_page(
        request,
        "managed.html",
        booking=booking,
        service=chosen,
        venue=venue,
        queue_token=queue,
        **extra,
    )


@router.get("/manage/booking")
def managed(request: Request) -> Response:
    """The booking found: its details, and the buttons to move or cancel it."""
    booking_id = managed_booking_id(request)
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
    booking_id = managed_booking_id(request)
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
    booking_id = managed_booking_id(request)
    if booking_id is None or not csrf_ok(request, str(raw.get("csrf", ""))):
        return _refused(request)

    def run() -> None:
        with unit_of_work(request) as db:
            # The resident's own: counted against their number's monthly limit.
            service.cancel_by_resident(db, booking_id=booking_id)
            db.commit()

    try:
        await run_in_threadpool(run)
    except BookingError as error:
        problem = error.message(message_language(request))
        return await run_in_threadpool(_show, request, booking_id, problem=problem)
    return await run_in_threadpool(_show, request, booking_id, cancelled=True)


# --- Moving: the new time is kept for the party, shown beside the current one, and the booking
# moves only when the resident says yes. -----------------------------------------------------

# Refusals that mean "that time is not to be had": the next free times are offered instead.
NOT_TO_BE_HAD = {
    "slot_full",
    "slot_closed",
    "outside_booking_window",
    "hold_expired",
    "hold_not_found",
}


def _keep_for_move(request: Request, booking_id: int, slot_id: int) -> str:
    """Hold the new time for the booking's whole party while the resident confirms."""
    with unit_of_work(request) as db:
        booking = service.get_booking(db, booking_id=booking_id)
        if booking.status != "booked":
            raise BookingError("booking_not_active", status=booking.status)
        if slot_id == booking.slot_id:
            raise BookingError("same_slot", field="slot_id")
        made = service.create_hold(db, slot_id=slot_id, seats=booking.party_size, channel="web")
        if service.get_hold(db, hold_id=made.id).service_id != booking.service_id:
            raise BookingError("service_mismatch", field="slot_id")  # rolled back: no commit
        db.commit()
        return made.id


def _day(form: dict[str, str]) -> date | None:
    try:
        return date.fromisoformat(form.get("day", ""))
    except ValueError:
        return None


def _taken_for_move(
    request: Request, booking_id: int, reason: str, place: str | None, day: date | None
) -> Response:
    """The new time went to someone else, or its hold lapsed: the booking is as it was, and
    the next free times are offered, each one press from being asked again."""
    with unit_of_work(request) as db:
        booking = service.get_booking(db, booking_id=booking_id)
    return taken_page(
        request,
        reason,
        booking.service_id,
        place or booking.venue_id,
        day or booking.starts_at.astimezone(TOKYO).date(),
        booking.party_size,
        move=True,
    )


def _move_refused(
    request: Request, booking_id: int, error: BookingError, form: dict[str, str]
) -> Response:
    """A move that could not be made: the next free times where the time is gone (around the
    day and place the resident was looking at), else the booking with the reason."""
    if error.code in NOT_TO_BE_HAD:
        place = form.get("place") or None
        return _taken_for_move(request, booking_id, error.code, place, _day(form))
    return _show(request, booking_id, problem=error.message(message_language(request)))


@router.post("/manage/move")
async def move(request: Request) -> Response:
    """Keep the time pressed on the times page (in move mode) and ask before moving to it;
    nothing changes if it is gone."""
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items()}
    booking_id = managed_booking_id(request)
    if booking_id is None or not csrf_ok(request, form.get("csrf")):
        return _refused(request)
    try:
        slot_id = row_id(form.get("slot_id"))
    except ValueError:
        return _refused(request)
    limited = await run_in_threadpool(over_limit, request, "book")  # a hold, as on /hold
    if limited is not None:
        return page(request, "limited.html", status_code=429, message=limited)
    try:
        hold_id = await run_in_threadpool(_keep_for_move, request, booking_id, slot_id)
    except BookingError as error:
        return await run_in_threadpool(_move_refused, request, booking_id, error, form)
    return RedirectResponse(f"/manage/move/{hold_id}", status_code=303)


def _ask_move(request: Request, booking_id: int, hold_id: str) -> Response:
    with unit_of_work(request) as db:
        booking = service.get_booking(db, booking_id=booking_id)
        try:
            held = service.get_hold(db, hold_id=hold_id)
        except BookingError:
            held = None  # used by this move already, given back, or swept after lapsing
        if booking.status != "booked" or held is None:
            return RedirectResponse("/manage/booking", status_code=303)
        now = db.info["booking"].now()
        chosen = service.service_or_404(db, booking.service_id)
        venue = service.venue_or_404(db, booking.venue_id)
        new_venue = service.venue_or_404(db, held.venue_id)
    day = held.starts_at.astimezone(TOKYO).date()
    if not held.live:
        return _taken_for_move(request, booking_id, "hold_expired", held.venue_id, day)
    return form_page(
        request,
        "move.html",
        booking=booking,
        service=chosen,
        venue=venue,
        held=held,
        new_venue=new_venue,
        day=day,
        seconds_left=max(0, int((held.hold.expires_at - now).total_seconds())),
    )


@router.get("/manage/move/{hold_id}")
def confirm_move(request: Request, hold_id: str) -> Response:
    """Ask once: the current time and the new one side by side, the new one kept meanwhile."""
    booking_id = managed_booking_id(request)
    if booking_id is None:
        return RedirectResponse("/manage", status_code=303)
    return _ask_move(request, booking_id, hold_id)


def _move_to(request: Request, booking_id: int, hold_id: str, slot_id: int | None) -> None:
    """Move onto the kept seats. When the hold is gone (swept after lapsing, or given back
    from another tab), the same time is tried as anyone would take it, as the page said."""
    with unit_of_work(request) as db:
        try:
            service.reschedule_booking(db, booking_id=booking_id, hold_id=hold_id)
        except BookingError as error:
            if error.code != "hold_not_found" or slot_id is None:
                raise
            if service.get_booking(db, booking_id=booking_id).slot_id == slot_id:
                return  # a second press: the first one moved it
            service.reschedule_booking(db, booking_id=booking_id, slot_id=slot_id)
        db.commit()


@router.post("/manage/move/{hold_id}")
async def move_confirmed(request: Request, hold_id: str) -> Response:
    """Yes: the booking moves to the kept time, and its old seats go back on sale."""
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items()}
    booking_id = managed_booking_id(request)
    if booking_id is None or not csrf_ok(request, form.get("csrf")):
        return _refused(request)
    try:
        slot_id: int | None = row_id(form.get("slot_id")) if form.get("slot_id") else None
    except ValueError:
        return _refused(request)
    try:
        await run_in_threadpool(_move_to, request, booking_id, hold_id, slot_id)
    except BookingError as error:
        return await run_in_threadpool(_move_refused, request, booking_id, error, form)
    return RedirectResponse("/manage/booking?moved=1", status_code=303)


@router.post("/manage/move/{hold_id}/keep")
async def move_declined(request: Request, hold_id: str) -> Response:
    """No: the booking stays as it is, and the kept seats go back on sale at once."""
    raw = await request.form()
    if managed_booking_id(request) is None or not csrf_ok(request, str(raw.get("csrf", ""))):
        return _refused(request)

    def give_back() -> None:
        with unit_of_work(request) as db:
            try:
                service.release_hold(db, hold_id=hold_id)
            except BookingError:
                return  # lapsed and swept already, or given back from another tab
            db.commit()

    await run_in_threadpool(give_back)
    return RedirectResponse("/manage/booking", status_code=303)
