"""The IVR's callback requests: one taken on by an agent, the number shown to them (audited),
the call back through their desk phone, its outcome."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session as DbSession

from agent_console.agent_state_pages import refuse_unless_ready
from agent_console.service import Seat
from agent_console.web import (
    NotAllowed,
    audit_event,
    catalogue,
    refuse_my_numbers,
    render,
    signed_in,
    staff_form,
    via_desk_phone,
)
from booking import service as booking
from booking.schemas import RowId
from booking.web import unit_of_work
from ivr import service as calls
from ivr.telephony import PhoneApi

router = APIRouter(
    prefix="/console", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)


CALLBACK_OUTCOMES = {
    "reached": "話せた",
    "no_answer": "出なかった（後でもう一度）",
    "wrong_number": "番号違い",
    "not_needed": "不要になった",
}


@router.post("/callbacks/{callback_id}/claim")
async def claim_callback(request: Request, callback_id: RowId) -> Response:
    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        refused = refuse_unless_ready(db, request, seat)
        if refused is not None:
            return refused
        claimed = calls.claim_callback(db, callback_id=callback_id, staff_id=seat.staff.id)
        if claimed is None:
            db.rollback()
            return RedirectResponse("/console/?taken=1", status_code=303)
        db.commit()
        return RedirectResponse(f"/console/callbacks/{callback_id}", status_code=303)

    return await staff_form(request, "agent", "supervisor", act=act)


@router.get("/callbacks/{callback_id}", response_class=HTMLResponse)
def callback_screen(request: Request, callback_id: RowId) -> Response:
    """The callback taken on: the number to call (shown in full to this agent only, audited)
    and their bookings; then the outcome."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "agent", "supervisor")
        claimed = calls.claim_callback(db, callback_id=callback_id, staff_id=seat.staff.id)
        if claimed is None:
            raise NotAllowed
        bookings = booking.bookings_for_phone(db, phone=claimed.phone)
        audit_event(
            db,
            seat,
            request,
            "callback.view",
            "callback",
            callback_id,
            "bookings " + ",".join(str(b.id) for b in bookings),
        )
        db.commit()
        venues, services = catalogue(db)
    return render(
        request,
        "callback.html",
        seat,
        callback=claimed,
        bookings=bookings,
        venues=venues,
        services=services,
        outcomes=CALLBACK_OUTCOMES,
        dial=DIAL.get(request.query_params.get("dial", "")),
    )


@router.post("/callbacks/{callback_id}/dial")
async def dial_callback(request: Request, callback_id: RowId) -> Response:
    """Call the resident back: Twilio rings the agent's desk phone, then dials the resident
    from the ward's number once the agent picks up."""

    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        if calls.callback_number(db, callback_id=callback_id, staff_id=seat.staff.id) is None:
            raise NotAllowed
        audit_event(db, seat, request, "callback.dial", "callback", callback_id)
        db.commit()
        # Committed, so no transaction waits on Twilio's REST call; on the worker thread, so
        # neither does the event loop.
        dialled = _dial_back(request, callback_id, seat)
        return RedirectResponse(f"/console/callbacks/{callback_id}?dial={dialled}", 303)

    return await staff_form(request, "agent", "supervisor", act=act)


def _dial_back(request: Request, callback_id: int, seat: Seat) -> str:
    """Ring the agent's desk phone; once picked up, the bridge dials the resident."""

    def ring(api: PhoneApi, desk: str, base: str) -> None:
        query = urlencode({"callback": callback_id, "staff": seat.staff.id})
        api.place_call(
            to=desk, url=f"{base}/ivr/bridge?{query}", status_callback=f"{base}/ivr/status"
        )

    return via_desk_phone(request, seat, f"dialling callback {callback_id}", ring)


DIAL = {
    "connected": "あなたのデスク電話を呼び出しています。出ると、お客様に発信します。",
    "no_phone": "デスク電話が未設定です。受付キュー画面で設定するか、手元の電話でおかけください。",
    "no_twilio": "Twilioのアカウントが未設定のため発信できません。手元の電話でおかけください。",
    "failed": "発信に失敗しました（Twilioに接続できません）。少し待ってもう一度お試しください。",
}


@router.post("/callbacks/{callback_id}/finish")
async def finish_callback(request: Request, callback_id: RowId) -> Response:
    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        outcome = form.get("outcome", "")
        if not calls.finish_callback(
            db, callback_id=callback_id, staff_id=seat.staff.id, outcome=outcome
        ):
            raise NotAllowed
        audit_event(db, seat, request, "callback.finish", "callback", callback_id, outcome)
        db.commit()
        return RedirectResponse("/console/", status_code=303)

    return await staff_form(request, "agent", "supervisor", act=act)
