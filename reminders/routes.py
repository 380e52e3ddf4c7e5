"""Twilio's delivery status callbacks for residents' SMS (calls report through /ivr/status)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

from ivr.routes import forbidden, signed_form
from reminders import service

router = APIRouter(prefix="/reminders", include_in_schema=False)


@router.post("/status")
async def message_status(request: Request, m: int) -> Response:
    """An SMS was queued, sent, delivered or failed (signed by Twilio; ``m`` is our message)."""
    form = await signed_form(request)
    if form is None:
        return forbidden()
    sid = form.get("MessageSid", "")
    status = form.get("MessageStatus", "")

    def work() -> bool:
        with request.app.state.sessions() as db:
            known = service.apply_status(
                db, message_id=m, sid=sid, status=status, rules=request.app.state.reminder_rules
            )
            db.commit()
            return known

    if not await run_in_threadpool(work):
        return PlainTextResponse("no such message", status_code=404)
    return Response(status_code=204)
