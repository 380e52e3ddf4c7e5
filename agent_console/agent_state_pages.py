"""The agent's state switch (ready / not ready with a reason), and what the console's pages
show of agents' states: the agent's own badge, who is on duty in which state, the wallboard's
agents by state and occupancy, the wrap-up's deadline on the call screen."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session as DbSession

from agent_console import service as staff
from agent_console.service import Seat, StaffError
from agent_console.web import audit_event, refuse_my_numbers, staff_form
from booking.context import TOKYO
from ivr import service as calls

router = APIRouter(
    prefix="/console", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)

# Why the queue page refused something (?refused=...): an answer (answer_call), a state.
REFUSALS = {
    "not_ready": "離席中のため応答できません。「受付可」にしてから応答してください。",
    "busy": "対応中の電話の後処理を終えてから、次の電話に応答してください。",
    "offline": "受付停止中のため応答できません。「受付可」にしてから応答してください。",
    "reason": "離席の理由（休憩・研修・会議）を選んでください。",
    "no_phone": "応答する電話（デスク電話・内線の番号）を設定してから応答してください。"
    "お客様は順番のまま、お待ちいただいています。",
}


def wrap_limit(request: Request) -> timedelta:
    """MADOGUCHI_WRAP_UP_SECONDS: how long an agent has for the wrap-up."""
    seconds: int = getattr(request.app.state.settings, "wrap_up_seconds", staff.WRAP_UP_SECONDS)
    return timedelta(seconds=seconds)


def duration(seconds: float | None) -> str:
    """Seconds as staff read them: 1時間02分 / 3分05秒."""
    if seconds is None:
        return "－"
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    if hours:
        return f"{hours}時間{rest // 60:02d}分"
    return f"{rest // 60}分{rest % 60:02d}秒"


@router.post("/me/state")
async def my_state(request: Request) -> Response:
    """The agent chooses ready, or not ready with a reason; audited."""

    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        state, reason = form.get("state", ""), form.get("reason") or None
        try:
            staff.choose_state(db, staff_id=seat.staff.id, state=state, reason=reason)
        except StaffError:
            db.rollback()
            return RedirectResponse("/console/?refused=reason", status_code=303)
        audit_event(db, seat, request, "agent.state", "staff", seat.staff.id, f"{state} {reason}")
        db.commit()
        return RedirectResponse("/console/", status_code=303)

    return await staff_form(request, "agent", "supervisor", act=act)


def refusal_code(agent: staff.AgentNow | None) -> str:
    """Which of REFUSALS an agent refused a call is shown (the message stays out of the URL)."""
    if agent is None or agent.state == "offline":
        return "offline"
    return "busy" if agent.busy else "not_ready"


def refuse_unless_ready(db: DbSession, request: Request, seat: Seat) -> Response | None:
    """Calls and callbacks go only to ready agents: checked with the agent's state row locked,
    in the claim's transaction (two tabs of one agent cannot both take one); None when ready,
    else the way back to the queue saying why (the caller keeps waiting)."""
    limit = wrap_limit(request)
    try:
        staff.make_sure_ready(db, staff_id=seat.staff.id, limit=limit)
    except staff.NotReady:
        agent = staff.state_now(db, staff_id=seat.staff.id, limit=limit)
        db.rollback()
        code = refusal_code(agent)
        return RedirectResponse(f"/console/?refused={code}", status_code=303)
    return None


def queue_states(db: DbSession, request: Request, seat: Seat) -> dict[str, Any]:
    """For the queue (home and its live fragment): this agent's state, and everyone's on
    duty. Wrap-ups past their limit are closed first."""
    limit = wrap_limit(request)
    calls.close_lapsed_wrap_ups(db, limit=limit, staff_id=seat.staff.id)
    staff.settle_lapsed(db)
    db.commit()
    now = db.info["booking"].now()
    agents = staff.states_now(db, limit=limit)
    me = next((a for a in agents if a.staff_id == seat.staff.id), None)
    if me is None and seat.staff.can("agent", "supervisor"):
        me = staff.state_now(db, staff_id=seat.staff.id, limit=limit)
    # Names of their own: these meet other blocks' in the queue's template.
    return {
        "my_state": me,
        "agents_by_state": agents,
        "time_in_state": lambda a: duration(a.seconds_in_state(now)),
        "not_ready_reasons": staff.REASON_NAMES,
    }


def wallboard_states(db: DbSession, request: Request) -> dict[str, Any]:
    """The wallboard's block: agents by state now (counts, and each with time in state), and
    today's time per state per agent with occupancy."""
    limit = wrap_limit(request)
    calls.close_lapsed_wrap_ups(db, limit=limit)
    staff.settle_lapsed(db)
    db.commit()
    now = db.info["booking"].now()
    agents = staff.states_now(db, limit=limit)
    start = datetime.combine(now.astimezone(TOKYO).date(), time(0), TOKYO)
    times = staff.time_in_states(db, start=start, end=start + timedelta(days=1), limit=limit)
    counts = {state: sum(1 for a in agents if a.state == state) for state in staff.STATE_NAMES}
    # Names of their own: these meet other blocks' in the wallboard's template.
    return {
        "agents_by_state": agents,
        "agents_counted": counts,
        "agent_state_names": staff.STATE_NAMES,
        "agent_times": times,
        "occupancy_today": staff.occupancy(times),
        "time_in_state": lambda a: duration(a.seconds_in_state(now)),
        "state_duration": duration,
        "not_ready_reasons": staff.REASON_NAMES,
    }


def wrap_countdown(db: DbSession, request: Request, call_sid: str) -> dict[str, Any]:
    """For the call screen once the talk has ended: when the wrap-up will be closed for the
    agent (Tokyo time) and the seconds left (None while still talking, or once done); whether
    the talk goes on."""
    call = calls.agent_call(db, call_sid=call_sid)
    talking = call is not None and call.talk_ended_at is None and call.wrapped_at is None
    if call is None or call.talk_ended_at is None or call.wrapped_at is not None:
        return {"wrap_deadline": None, "wrap_left": None, "talking": talking}
    deadline = call.talk_ended_at + wrap_limit(request)
    left = int((deadline - db.info["booking"].now()).total_seconds())
    return {
        "wrap_deadline": deadline.astimezone(TOKYO).strftime("%H:%M:%S"),
        "wrap_left": max(0, left),
        "talking": False,
    }
