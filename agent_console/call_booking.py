"""A caller's bookings changed on their behalf: a booking cancelled, a free time held for them
and booked for their household, or a booking moved onto it (channel: agent)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session as DbSession

from agent_console.caller_words import caller_languages
from agent_console.calls import call_screen
from agent_console.service import Seat
from agent_console.web import (
    audit_event,
    call_for,
    call_is_theirs,
    csrf_ok,
    form_fields,
    refusal_words,
    refuse_my_numbers,
    render,
    resident_from_form,
    signed_in,
    staff_form,
)
from booking import service as booking
from booking.errors import BookingError
from booking.schemas import RowId
from booking.web import row_id, unit_of_work, whole_number

router = APIRouter(
    prefix="/console", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)


@router.post("/calls/{call_sid}/bookings/{booking_id}/cancel")
async def cancel_for_caller(request: Request, call_sid: str, booking_id: RowId) -> Response:
    """Cancel a booking the caller asked to cancel (they confirmed it on the phone)."""
    form = await form_fields(request)

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with unit_of_work(request) as db:
            seat = signed_in(request, db, "agent", "supervisor")
            call_for(db, seat, call_sid)
            if not csrf_ok(seat, form) or form.get("confirm") != "yes":
                db.rollback()  # SQLite: this request's lock goes before the page reads again
                return call_screen(
                    request, call_sid, error="取り消す前に、確認の欄にチェックを入れてください。"
                )
            try:
                cancelled = booking.cancel_booking(db, booking_id=booking_id)
            except BookingError as refused:
                db.rollback()
                return call_screen(request, call_sid, error=refused.message("ja"))
            audit_event(
                db, seat, request, "booking.cancel", "booking", booking_id, f"for call {call_sid}"
            )
            db.commit()
        return RedirectResponse(f"/console/calls/{call_sid}?cancelled={cancelled.code}", 303)

    return await run_in_threadpool(work)


@router.get("/calls/{call_sid}/book", response_class=HTMLResponse)
def book_search(
    request: Request,
    call_sid: str,
    service: str = "pickup",
    venue: str = "",
    party: Annotated[int, Query(ge=0, le=100)] = 1,
    day: str = "",
    move: RowId | None = None,
) -> Response:
    """Free times for the caller: a service, a venue or any, the party, a day. With ``move``,
    the time chosen becomes that booking's new time."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "agent", "supervisor")
        call_for(db, seat, call_sid)
        ctx = db.info["booking"]
        first = booking.first_bookable_day(ctx, None)
        try:
            chosen = datetime.fromisoformat(day).date() if day else first
        except ValueError:
            chosen = first
        error = None
        slots: list[booking.SlotView] = []
        try:
            slots = booking.availability(
                db,
                service_id=service,
                venue_id=venue or None,
                start=chosen,
                end=chosen,
                party=party,
                limit=200,
                channel="agent",
            )
        except BookingError as refused:
            error = refused.message("ja")
        venues = {v.id: v for v in booking.list_venues(db)}
        services = booking.list_services(db)
    return render(
        request,
        "book.html",
        seat,
        call_sid=call_sid,
        service=service,
        venue=venue,
        party=party,
        day=chosen,
        slots=slots,
        venues=venues,
        services=services,
        error=error,
        max_party=ctx.rules.max_party_size,
        move=move,
    )


@router.post("/calls/{call_sid}/book/hold")
async def book_hold(request: Request, call_sid: str) -> Response:
    """Keep the chosen time for the caller while the agent takes their details."""

    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        try:
            hold = booking.create_hold(
                db,
                slot_id=row_id(form.get("slot_id")),
                seats=whole_number(form.get("party", "1"), 100),
                channel="agent",
            )
        except (BookingError, ValueError) as refused:
            db.rollback()
            message = (
                refused.message("ja") if isinstance(refused, BookingError) else "入力が不正です。"
            )
            return call_screen(request, call_sid, error=message)
        if form.get("move", "").isdigit():
            # A move: the new seats are held, now the booking moves onto them (its old seats
            # are given back only once the new ones are taken, in the engine).
            booking_id = int(form["move"])
            try:
                moved = booking.reschedule_booking(db, booking_id=booking_id, hold_id=hold.id)
            except BookingError as refused:
                db.rollback()
                return call_screen(request, call_sid, error=refused.message("ja"))
            audit_event(
                db, seat, request, "booking.move", "booking", booking_id, f"for call {call_sid}"
            )
            db.commit()
            return RedirectResponse(f"/console/calls/{call_sid}?moved={moved.code}", 303)
        db.commit()
        return RedirectResponse(f"/console/calls/{call_sid}/book/{hold.id}", status_code=303)

    return await staff_form(request, "agent", "supervisor", act=act, check=call_is_theirs(call_sid))


@router.get("/calls/{call_sid}/book/{hold_id}", response_class=HTMLResponse)
def book_details(
    request: Request,
    call_sid: str,
    hold_id: str,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "agent", "supervisor")
        call = call_for(db, seat, call_sid)
        try:
            held = booking.get_hold(db, hold_id=hold_id)
        except BookingError as refused:
            db.rollback()
            return call_screen(request, call_sid, error=refused.message("ja"))
        chosen = booking.service_or_404(db, held.service_id)
        venue = booking.venue_or_404(db, held.venue_id)
    return render(
        request,
        "book_details.html",
        seat,
        call_sid=call_sid,
        held=held,
        service=chosen,
        venue=venue,
        caller=call.caller or "",
        caller_language=call.language,
        languages=caller_languages(request),
        error=error,
        values=values or {},
    )


@router.post("/calls/{call_sid}/book/{hold_id}")
async def book_confirm(request: Request, call_sid: str, hold_id: str) -> Response:
    """Book the held time for the caller's household (channel: agent)."""

    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        try:
            held = booking.get_hold(db, hold_id=hold_id)
            needs_notices = booking.service_or_404(db, held.service_id).requires_notice_number
            made = booking.book(
                db,
                hold_id=hold_id,
                party=held.hold.seats,
                resident=resident_from_form(form, held.hold.seats, needs_notices),
                channel="agent",
                idempotency_key=f"agent:{call_sid}:{hold_id}",
            )
        except (BookingError, ValueError) as refused:
            db.rollback()
            message = refusal_words(refused)
            return book_details(request, call_sid, hold_id, error=message, values=form)
        audit_event(db, seat, request, "booking.create", "booking", made.id, f"for call {call_sid}")
        # MADOGUCHI_READY_CARDS=warn: booked, and the agent told whose card is not listed.
        missing = booking.booking_not_ready(db, booking_id=made.id)
        db.commit()
        said = {"booked": made.code}
        if missing:
            said["not_ready"] = ",".join(str(i + 1) for i in missing)
        return RedirectResponse(f"/console/calls/{call_sid}?{urlencode(said)}", status_code=303)

    return await staff_form(request, "agent", "supervisor", act=act, check=call_is_theirs(call_sid))
