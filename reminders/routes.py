"""Twilio's delivery status callbacks for residents' SMS (calls report through /ivr/status)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from booking.schemas import RowId
from booking.web import csrf_ok, managed_booking_id, unit_of_work
from ivr.telephony import forbidden, signed_form
from reminders import service

router = APIRouter(prefix="/reminders", include_in_schema=False)


@router.post("/status")
async def message_status(request: Request, m: RowId) -> Response:
    """An SMS was queued, sent, delivered or failed (signed by Twilio; ``m`` is our message)."""
    form = await signed_form(request, request.app.state.twilio_webhooks)
    if form is None:
        return forbidden()
    sid = form.get("MessageSid", "")
    status = form.get("MessageStatus", "")

    def work() -> bool:
        with unit_of_work(request) as db:
            known = service.apply_status(
                db, message_id=m, sid=sid, status=status, rules=request.app.state.reminder_rules
            )
            db.commit()
            return known

    if not await run_in_threadpool(work):
        return PlainTextResponse("no such message", status_code=404)
    return Response(status_code=204)


# The resident's own "stop messages", from the booking they manage on the web (its code and
# second factor proved; booking owns that proof, in booking.web, this package the messages).
stop_router = APIRouter(include_in_schema=False)


@stop_router.post("/manage/messages/stop")
async def stop_messages(request: Request) -> Response:
    """No more reminders or notices for this booking (or, ticked, for every booking of its
    phone number); what is not sent yet is dropped. Also reachable from the console."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    booking_id = managed_booking_id(request)
    if booking_id is None or not csrf_ok(request, form.get("csrf")):
        return RedirectResponse("/manage", status_code=303)

    def stop() -> None:
        with unit_of_work(request) as db:
            service.opt_out(
                db,
                booking_id=booking_id,
                whole_number=form.get("scope") == "number",
                source="resident",
            )
            db.commit()

    await run_in_threadpool(stop)
    return RedirectResponse("/manage/booking?stopped=1", status_code=303)
