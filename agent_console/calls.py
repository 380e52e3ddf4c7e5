"""Taking a call: answering a waiting one (put through to the agent's desk phone), the screen
pop, the inquiry notes and the wrap-up."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session as DbSession

from agent_console import service as staff
from agent_console.agent_state_pages import refuse_unless_ready, wrap_countdown
from agent_console.service import Seat, StaffError
from agent_console.web import (
    audit_event,
    call_for,
    call_is_theirs,
    catalogue,
    csrf_ok,
    form_fields,
    refuse_my_numbers,
    render,
    signed_in,
    staff_form,
    via_desk_phone,
)
from booking import service as booking
from booking.personal import mask_phone
from booking.web import row_id_or_none, unit_of_work
from ivr import service as calls
from ivr.telephony import Joining, PhoneApi, TwilioFailure

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/console", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)


DISPOSITIONS = {
    "resolved": "解決",
    "booked": "予約を受けた",
    "changed": "予約を変更・取消した",
    "callback": "折り返しが必要",
    "escalated": "職員へ引き継ぎ",
    "unresolved": "未解決",
}


@router.post("/calls/{call_sid}/answer")
async def answer_call(request: Request, call_sid: str) -> Response:
    """Take a waiting call. The caller is put through to this agent's phone (Twilio dequeues
    them); the screen pops at once."""
    form = await form_fields(request)

    def claim() -> Response | tuple[Seat, str]:
        with unit_of_work(request) as db:
            seat = signed_in(request, db, "agent", "supervisor")
            if not csrf_ok(seat, form):
                return render(request, "expired.html", seat, status_code=403)
            refused = refuse_unless_ready(db, request, seat)
            if refused is not None:
                return refused
            if seat.staff.desk_phone is None and _phone_api(request).live:
                # Twilio would have no phone to put the caller through to: taken, the caller
                # would wait unseen by the other agents. They stay in line instead.
                db.rollback()
                return RedirectResponse("/console/?refused=no_phone", status_code=303)
            if not calls.claim_call(db, call_sid=call_sid, staff_id=seat.staff.id):
                db.rollback()
                return RedirectResponse("/console/?taken=1", status_code=303)
            audit_event(db, seat, request, "call.answer", "call", call_sid)
            call = calls.get_call(db, call_sid=call_sid)
            db.commit()
            return seat, call.language if call else "ja"

    claimed = await run_in_threadpool(claim)
    if isinstance(claimed, Response):
        return claimed
    seat, language = claimed
    audio = await run_in_threadpool(_put_through, request, call_sid, seat, language)
    if audio == "failed" and not await run_in_threadpool(_still_theirs, request, call_sid, seat):
        # The agent's phone could not be called: the caller went back in the queue.
        return RedirectResponse("/console/?requeued=1", status_code=303)
    return RedirectResponse(f"/console/calls/{call_sid}?audio={audio}", status_code=303)


def _still_theirs(request: Request, call_sid: str, seat: Seat) -> bool:
    with unit_of_work(request) as db:
        call = calls.get_call(db, call_sid=call_sid)
        return call is not None and call.agent_staff_id == seat.staff.id


def _phone_api(request: Request) -> PhoneApi:
    api: PhoneApi = request.app.state.phone_api
    return api


def _put_through(request: Request, call_sid: str, seat: Seat, language: str) -> str:
    """Take the caller out of the queue into the call's conference (Twilio redirects the live
    call to TwiML that joins it, with music), then call this agent's desk phone into it. If
    Twilio will not call the agent, the caller goes back in the queue (nothing half done)."""

    def release() -> None:
        with unit_of_work(request) as db:
            calls.release_call(db, call_sid=call_sid)
            db.commit()

    def redirect(api: PhoneApi, desk: str, base: str) -> None:
        with unit_of_work(request) as db:  # the number waits on the call, not in the URL
            calls.put_through_to(db, call_sid=call_sid, number=desk)
            conference = calls.open_conference(db, call_sid=call_sid)
            db.commit()
        if conference is None:
            raise TwilioFailure("rejected", f"call {call_sid} is no longer this agent's")
        api.redirect_call(sid=call_sid, url=f"{base}/ivr/connect?lang={language}")
        agent = Joining(
            label="agent",
            start_on_enter=True,
            end_on_exit=True,
            status_callback=f"{base}/ivr/connect/agent?call={call_sid}&lang={language}",
        )
        try:
            leg = api.add_participant(conference=conference, to=desk, join=agent)
        except TwilioFailure:
            # The caller waits in a conference no agent will join: back in the queue.
            back = f"{base}/ivr/connect/done?lang={language}&missed=1"
            try:
                api.redirect_call(sid=call_sid, url=back)
            except TwilioFailure as lost:
                log.warning("call %s not put back in the queue: %s", call_sid, lost.detail)
            release()
            raise
        with unit_of_work(request) as db:
            calls.note_agent_leg(db, call_sid=call_sid, leg_sid=leg.sid)
            db.commit()

    return via_desk_phone(request, seat, f"putting call {call_sid} through", redirect)


AUDIO = {
    "connected": "お客様の電話を、あなたのデスク電話に転送しています。",
    "no_phone": "デスク電話が未設定のため、音声はつながっていません"
    "（受付キュー画面で設定できます）。",
    "no_twilio": "Twilioのアカウントが未設定のため、音声はつながっていません（画面のみ）。",
    "failed": "音声の転送に失敗しました（Twilioに接続できません）。お客様はキューで待っています。",
}


@router.get("/calls/{call_sid}", response_class=HTMLResponse)
def call_screen(
    request: Request, call_sid: str, error: str | None = None, audio: str = ""
) -> Response:
    """The screen pop: who is calling, what they did in the IVR, their bookings (by caller
    ID), earlier inquiries; then the inquiry note and the wrap-up. Audited."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "agent", "supervisor")
        call = call_for(db, seat, call_sid)
        bookings = booking.bookings_for_phone(db, phone=call.caller) if call.caller else []
        history = staff.inquiries_for(db, phone=call.caller, call_id=call.id)
        audit_event(
            db,
            seat,
            request,
            "call.view",
            "call",
            call_sid,
            "bookings " + ",".join(str(b.id) for b in bookings),
        )
        db.commit()
        venues, services = catalogue(db)
        categories = staff.categories(db)
        talk = calls.talk_state(db, call_sid=call_sid)
        countdown = wrap_countdown(db, request, call_sid)
    return render(
        request,
        "call.html",
        seat,
        call=call,
        bookings=bookings,
        history=history,
        venues=venues,
        services=services,
        categories=categories,
        dispositions=DISPOSITIONS,
        mask=mask_phone,
        error=error,
        audio=AUDIO.get(audio),
        audio_ok=audio == "connected",
        talk=talk,
        **countdown,
    )


@router.post("/calls/{call_sid}/inquiries")
async def log_inquiry(request: Request, call_sid: str) -> Response:
    form = await form_fields(request)

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with unit_of_work(request) as db:
            seat = signed_in(request, db, "agent", "supervisor")
            call = call_for(db, seat, call_sid)
            if not csrf_ok(seat, form):
                return render(request, "expired.html", seat, status_code=403)
            booking_id = row_id_or_none(form.get("booking_id"))
            try:
                made = staff.log_inquiry(
                    db,
                    staff=seat.staff,
                    category=form.get("category", ""),
                    note=form.get("note", ""),
                    resolution=form.get("resolution", ""),
                    call_id=call.id,
                    booking_id=booking_id,
                    phone=call.caller,
                )
            except StaffError as refused:
                db.rollback()
                return call_screen(request, call_sid, error=str(refused))
            audit_event(
                db,
                seat,
                request,
                "inquiry.create",
                "call",
                call_sid,
                f"inquiry {made}; booking {booking_id or '-'}",
            )
            db.commit()
        return RedirectResponse(f"/console/calls/{call_sid}", status_code=303)

    return await run_in_threadpool(work)


@router.post("/calls/{call_sid}/wrap-up")
async def wrap_up(request: Request, call_sid: str) -> Response:
    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        disposition = form.get("disposition", "")
        if disposition not in DISPOSITIONS:
            db.rollback()
            return call_screen(request, call_sid, error="対応結果を選んでください。")
        calls.wrap_up(db, call_sid=call_sid, staff_id=seat.staff.id, disposition=disposition)
        audit_event(db, seat, request, "call.wrap_up", "call", call_sid, disposition)
        db.commit()
        return RedirectResponse("/console/", status_code=303)

    return await staff_form(request, "agent", "supervisor", act=act, check=call_is_theirs(call_sid))
