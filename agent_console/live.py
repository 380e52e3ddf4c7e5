"""Calls in progress, put through by a Twilio conference: the supervisors' live page (listen,
whisper to the agent, join, leave, from their desk phone), and on the agent's call screen the
caller's hold and a raised hand for help. Each action audited; Twilio is asked first, and only
what it carried out is recorded."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session as DbSession

from agent_console import service as staff
from agent_console.service import Seat
from agent_console.web import (
    audit_event,
    call_for,
    call_is_theirs,
    refuse_my_numbers,
    render,
    signed_in,
    staff_form,
    templates,
)
from booking.web import unit_of_work
from ivr import service as calls
from ivr.telephony import Joining, ParticipantChange, PhoneApi, TwilioFailure

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/console", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)

MODES = {"listen": "聞く", "whisper": "ささやく", "join": "参加"}
MONITOR_ACTIONS = {"listen": "call.listen", "whisper": "call.whisper", "join": "call.join"}
DONE = {
    "listen": "デスク電話で通話を聞いています（お客様とオペレーターには聞こえません）。",
    "whisper": "オペレーターにだけ聞こえるように話せます（お客様には聞こえません）。",
    "join": "通話に参加しました（お客様にもオペレーターにも聞こえます）。",
    "left": "通話から退出しました。",
}
FAILED = (
    "Twilioが応じなかったため、操作（{what}）はできませんでした。何も変わっていません。"
    "もう一度お試しください。"
)
NOT_LIVE = "この通話はもう終わったか、会議通話でつながっていません。"
NO_PHONE = "デスク電話が未設定です（受付キュー画面で設定できます）。"
NO_TWILIO = "Twilioのアカウントが未設定のため、音声はつながりません。"


def _api(request: Request) -> PhoneApi:
    api: PhoneApi = request.app.state.phone_api
    return api


def _base(request: Request) -> str:
    base: str = request.app.state.settings.public_base_url.rstrip("/")
    return base


@dataclass(frozen=True)
class LiveRow:
    call: calls.LiveCall
    agent: str
    mine: str | None  # how this supervisor is in it, if they are


@router.get("/live", response_class=HTMLResponse)
def live_page(request: Request, done: str = "", error: str = "") -> Response:
    """Calls with agents now, raised hands first: listen, whisper, join or leave."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "supervisor")
        return _live(request, db, seat, done=DONE.get(done), error=error or None)


def _live(
    request: Request,
    db: DbSession,
    seat: Seat,
    *,
    done: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    names = {s.id: s.display_name for s in staff.list_staff(db)}
    rows = [
        LiveRow(c, names.get(c.agent_staff_id, "?"), c.monitors.get(seat.staff.id))
        for c in calls.live_calls(db)
    ]
    now = db.info["booking"].now()
    return render(
        request,
        "live.html",
        seat,
        status_code=status_code,
        rows=rows,
        modes=MODES,
        done=done,
        error=error,
        talked=lambda at: _minutes(int((now - at).total_seconds())),
        has_phone=seat.staff.desk_phone is not None,
        now=now,
    )


def _minutes(seconds: int) -> str:
    return f"{seconds // 60}分{seconds % 60:02d}秒"


@router.post("/live/{call_sid}/{mode}")
async def monitor(request: Request, call_sid: str, mode: str) -> Response:
    """A supervisor listens (muted), whispers (coaching the agent) or joins: their desk phone
    is called into the conference, or, already in it, their leg is changed (never a second
    call). Twilio first: a failure changes and records nothing."""

    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        if mode == "leave":
            return _leave(request, db, seat, call_sid)
        if mode not in MODES:
            return _live(request, db, seat, error="その操作はありません。", status_code=404)
        live = next((c for c in calls.live_calls(db) if c.call_sid == call_sid), None)
        if live is None or live.conference is None or live.agent_leg_sid is None:
            return _live(request, db, seat, error=NOT_LIVE, status_code=409)
        api, desk = _api(request), seat.staff.desk_phone
        if desk is None or not api.live:
            return _live(request, db, seat, error=NO_PHONE if desk is None else NO_TWILIO)
        mine = calls.monitor_of(db, call_sid=call_sid, staff_id=seat.staff.id)
        try:
            if mine is None:
                joining = Joining(
                    label=f"supervisor-{seat.staff.id}",
                    start_on_enter=False,
                    muted=mode == "listen",
                    coach=live.agent_leg_sid if mode == "whisper" else None,
                )
                leg = api.add_participant(conference=live.conference, to=desk, join=joining)
                leg_sid = leg.sid
            else:
                api.update_participant(
                    conference=live.conference,
                    participant=mine.leg_sid,
                    change=_change(mode, live.agent_leg_sid),
                )
                leg_sid = mine.leg_sid
        except TwilioFailure as failure:
            log.warning("supervisor %s on call %s failed: %s", mode, call_sid, failure.detail)
            db.rollback()
            return _live(request, db, seat, error=FAILED.format(what=MODES[mode]))
        calls.keep_monitor(
            db, call_sid=call_sid, staff_id=seat.staff.id, leg_sid=leg_sid, mode=mode
        )
        was = f"from {mine.mode}" if mine is not None else "called in"
        audit_event(db, seat, request, MONITOR_ACTIONS[mode], "call", call_sid, was)
        db.commit()
        return RedirectResponse(f"/console/live?done={mode}", status_code=303)

    return await staff_form(request, "supervisor", act=act)


def _change(mode: str, agent_leg: str) -> ParticipantChange:
    if mode == "listen":
        return ParticipantChange(muted=True, coaching=False)
    if mode == "whisper":
        return ParticipantChange(muted=False, coaching=True, coach=agent_leg)
    return ParticipantChange(muted=False, coaching=False)


def _leave(request: Request, db: DbSession, seat: Seat, call_sid: str) -> Response:
    mine = calls.monitor_of(db, call_sid=call_sid, staff_id=seat.staff.id)
    conference = calls.conference_of(db, call_sid=call_sid)
    if mine is None or conference is None:
        return _live(request, db, seat, error="この通話には入っていません。", status_code=409)
    try:
        _api(request).remove_participant(conference=conference, participant=mine.leg_sid)
    except TwilioFailure as failure:
        log.warning("supervisor leaving call %s failed: %s", call_sid, failure.detail)
        db.rollback()
        return _live(request, db, seat, error=FAILED.format(what="退出"))
    calls.drop_monitor(db, call_sid=call_sid, staff_id=seat.staff.id)
    audit_event(db, seat, request, "call.monitor_leave", "call", call_sid, f"was {mine.mode}")
    db.commit()
    return RedirectResponse("/console/live?done=left", status_code=303)


# --- the agent's call screen: hold and a raised hand ----------------------------------------------


@router.post("/calls/{call_sid}/hold")
async def hold(request: Request, call_sid: str) -> Response:
    """保留 / 保留解除: the caller's leg in the conference held (with the ward's words while
    they wait) or back in the talk."""

    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        held = form.get("hold") == "1"
        call = call_for(db, seat, call_sid)
        conference = calls.conference_of(db, call_sid=call_sid)
        if conference is None or call.agent_staff_id is None:
            return _to_call(call_sid, error="hold_unavailable")
        music = f"{_base(request)}/ivr/hold?lang={call.language}"
        change = ParticipantChange(hold=held, hold_url=music if held else None)
        try:
            _api(request).update_participant(
                conference=conference, participant=call_sid, change=change
            )
        except TwilioFailure as failure:
            log.warning("hold of call %s failed: %s", call_sid, failure.detail)
            db.rollback()
            return _to_call(call_sid, error="hold_failed")
        if not calls.set_hold(db, call_sid=call_sid, staff_id=call.agent_staff_id, held=held):
            db.rollback()
            return _to_call(call_sid, error="hold_unavailable")
        audit_event(db, seat, request, "call.hold" if held else "call.unhold", "call", call_sid)
        db.commit()
        return _to_call(call_sid)

    return await staff_form(request, "agent", "supervisor", act=act, check=call_is_theirs(call_sid))


@router.post("/calls/{call_sid}/hand")
async def hand(request: Request, call_sid: str) -> Response:
    """手を挙げる / 手を下ろす: the agent asks a supervisor for help (the live page shows it
    first); only the agent lowers it (or the talk ends)."""

    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        raised = form.get("raise") == "1"
        if not calls.set_hand(db, call_sid=call_sid, staff_id=seat.staff.id, raised=raised):
            db.rollback()
            return _to_call(call_sid, error="hand_unavailable")
        action = "call.hand_raise" if raised else "call.hand_lower"
        audit_event(db, seat, request, action, "call", call_sid)
        db.commit()
        return _to_call(call_sid)

    return await staff_form(request, "agent", "supervisor", act=act, check=call_is_theirs(call_sid))


TALK_ERRORS = {
    "hold_failed": "Twilioが応じなかったため、保留を切り替えられませんでした。"
    "もう一度お試しください。",
    "hold_unavailable": "この通話は保留できません"
    "（会議通話でつながっていないか、終わっています）。",
    "hand_unavailable": "通話中のご自身の電話でだけ、手を挙げられます。",
}


def _to_call(call_sid: str, error: str = "") -> Response:
    where = f"/console/calls/{call_sid}" + (f"?talk_error={error}" if error else "")
    return RedirectResponse(where, status_code=303)


templates.env.globals["talk_errors"] = TALK_ERRORS
