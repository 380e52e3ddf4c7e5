"""Agents' states: ready (受付可), not ready with a reason (離席: break 休憩, training 研修, meeting
会議), on a call (通話中) and wrap-up (後処理) with a time limit; calls are offered only to ready
agents; time in each state per agent, and occupancy.

The agent chooses ready or not ready (signing in makes an agent ready, a supervisor only once
they choose it; signing out, or the session lapsing, makes them offline). On a call and wrap-up
follow from the agent's calls, read through ivr's service: on a call from the claim until the
talk ends, wrap-up from there until the agent wraps up or the limit passes (the call is then
wrapped up for them), after which the agent is in the state they chose (ready again, unless
they chose not ready meanwhile).

Every chosen state is logged as a span (``AgentStateSpan``); time per state is the spans'
time less the time on calls and in wrap-up within them, which comes from the calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from agent_console.models import (
    NOT_READY_REASONS,
    AgentState,
    AgentStateSpan,
    StaffSession,
    StaffUser,
)
from agent_console.staff_accounts import StaffError
from booking.context import context
from ivr import service as calls

WRAP_UP_SECONDS = 120  # the default of MADOGUCHI_WRAP_UP_SECONDS
IDLE = timedelta(minutes=30)  # staff_sessions.IDLE_MINUTES: a session idle longer has lapsed
# Roles whose consoles take calls (they have states).
CALL_ROLES = ("agent", "supervisor")

STATE_NAMES = {
    "ready": "受付可",
    "not_ready": "離席",
    "on_call": "通話中",
    "wrap_up": "後処理",
    "offline": "受付停止",  # signed out, or a supervisor not taking calls
}
REASON_NAMES = {"break": "休憩", "training": "研修", "meeting": "会議"}


class NotReady(StaffError):
    """The agent may not take a call now (409): not ready, on a call, in wrap-up, signed out."""


@dataclass(frozen=True)
class AgentNow:
    """An agent's state now, and since when."""

    staff_id: int
    display_name: str
    role: str
    has_phone: bool
    state: str  # ready | not_ready | on_call | wrap_up | offline
    reason: str | None
    since: datetime
    chosen: str  # the state they chose (ready | not_ready | offline): theirs after the call
    wrap_deadline: datetime | None = None
    call_sid: str | None = None

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def busy(self) -> bool:
        return self.state in ("on_call", "wrap_up")

    @property
    def label(self) -> str:
        name = STATE_NAMES[self.state]
        if self.state == "not_ready" and self.reason:
            return f"{name}（{REASON_NAMES.get(self.reason, self.reason)}）"
        return name

    def seconds_in_state(self, now: datetime) -> int:
        return max(0, int((now - self.since).total_seconds()))


# --- choosing a state -----------------------------------------------------------------------


def _lock(db: DbSession, staff_id: int) -> AgentState | None:
    # The agent's state row, locked to the end of the transaction: choosing a state and taking
    # a call both hold it, so two tabs of one agent act one after the other.
    # populate_existing: the row as it is once locked, not as this session first read it.
    return db.execute(
        select(AgentState)
        .where(AgentState.staff_id == staff_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _switch(
    db: DbSession, row: AgentState | None, staff_id: int, state: str, reason: str | None
) -> AgentState:
    """Close the open span and open the next (none when offline)."""
    now = context(db).now()
    if row is not None and row.state == state and row.reason == reason:
        return row
    for span in db.execute(
        select(AgentStateSpan).where(
            AgentStateSpan.staff_id == staff_id, AgentStateSpan.ended_at.is_(None)
        )
    ).scalars():
        span.ended_at = max(now, span.started_at)
    if state != "offline":
        db.add(AgentStateSpan(staff_id=staff_id, state=state, reason=reason, started_at=now))
    if row is None:
        row = AgentState(staff_id=staff_id, state=state, reason=reason, since=now)
        db.add(row)
    else:
        row.state, row.reason, row.since = state, reason, now
    db.flush()
    return row


def choose_state(db: DbSession, *, staff_id: int, state: str, reason: str | None = None) -> None:
    """The agent chooses ready, or not ready with a reason (break, training, meeting). During
    a call or its wrap-up the choice is what they go to after it."""
    if state == "ready":
        reason = None
    elif state != "not_ready" or reason not in NOT_READY_REASONS:
        raise StaffError("離席の理由（休憩・研修・会議）を選んでください。")
    _switch(db, _lock(db, staff_id), staff_id, state, reason)


def signed_in(db: DbSession, *, staff_id: int, role: str, session_id: int) -> None:
    """An agent signed in: ready, unless another of their consoles is already signed in (then
    they keep the state they chose there). A supervisor takes calls only once they choose
    ready: watching the wallboard is not waiting for calls."""
    row = _lock(db, staff_id)
    if (
        row is not None
        and row.state != "offline"
        and not _live_sessions(db, [staff_id], besides=session_id)
    ):
        _go_offline(
            db, row, besides=session_id
        )  # their last console lapsed unnoticed: that time is not counted
    if role == "agent" and (row is None or row.state == "offline"):
        _switch(db, row, staff_id, "ready", None)


def signed_out(db: DbSession, *, staff_id: int) -> None:
    """An agent signed out: offline, unless another of their consoles is still signed in."""
    row = _lock(db, staff_id)
    if row is None or row.state == "offline" or _live_sessions(db, [staff_id]):
        return
    _switch(db, row, staff_id, "offline", None)


def _live_sessions(
    db: DbSession, staff_ids: Iterable[int], *, besides: int | None = None
) -> dict[int, datetime]:
    """Agents with a live, usable console session (the second factor given; other than the
    session ``besides``), and when it was last seen."""
    since = context(db).now() - IDLE
    rows = db.execute(
        select(StaffSession.staff_id, func.max(StaffSession.last_seen_at))
        .where(
            StaffSession.staff_id.in_(list(staff_ids)),
            StaffSession.ended_at.is_(None),
            StaffSession.pending.is_(None),
            StaffSession.last_seen_at >= since,
            StaffSession.id != (besides or 0),
        )
        .group_by(StaffSession.staff_id)
    ).all()
    return {int(staff): seen for staff, seen in rows}


def settle_lapsed(db: DbSession) -> int:
    """Agents whose every session lapsed (idle, closed without signing out) are offline from
    when their console was last seen: their ready time does not run on overnight."""
    rows = list(
        db.execute(select(AgentState).where(AgentState.state.in_(("ready", "not_ready")))).scalars()
    )
    if not rows:
        return 0
    live = _live_sessions(db, [r.staff_id for r in rows])
    settled = 0
    for row in rows:
        if row.staff_id in live:
            continue
        locked = _lock(db, row.staff_id)
        # Looked at again under the lock: they may have signed in again meanwhile.
        if locked is None or locked.state == "offline" or _live_sessions(db, [row.staff_id]):
            continue
        _go_offline(db, locked)
        settled += 1
    db.flush()
    return settled


def _go_offline(db: DbSession, locked: AgentState, *, besides: int | None = None) -> None:
    """Offline from when the agent's console (other than the session ``besides``) was last
    seen, not from when this was noticed."""
    last_seen = db.execute(
        select(func.max(StaffSession.last_seen_at)).where(
            StaffSession.staff_id == locked.staff_id,
            StaffSession.pending.is_(None),
            StaffSession.id != (besides or 0),
        )
    ).scalar_one_or_none()
    end = min(max(last_seen or locked.since, locked.since), context(db).now())
    for span in db.execute(
        select(AgentStateSpan).where(
            AgentStateSpan.staff_id == locked.staff_id, AgentStateSpan.ended_at.is_(None)
        )
    ).scalars():
        span.ended_at = max(span.started_at, end)
    locked.state, locked.reason, locked.since = "offline", None, end
    db.flush()


# --- the state now ----------------------------------------------------------------------------


def _now_from(
    row: AgentState | None,
    user: StaffUser,
    live: bool,
    open_call: calls.AgentCall | None,
    last_wrapped: datetime | None,
    limit: timedelta,
    now: datetime,
) -> AgentNow:
    chosen = row.state if row is not None and live else "offline"
    reason = row.reason if row is not None and chosen == "not_ready" else None
    since = row.since if row is not None else now
    if last_wrapped is not None:  # in the chosen state again since the last wrap-up
        since = max(since, last_wrapped)
    base = (user.id, user.display_name, user.role, user.desk_phone is not None)
    if open_call is not None:
        if open_call.talk_ended_at is None:
            return AgentNow(
                *base, "on_call", None, open_call.answered_at, chosen, call_sid=open_call.call_sid
            )
        deadline = open_call.talk_ended_at + limit
        if now < deadline:
            return AgentNow(
                *base,
                "wrap_up",
                None,
                open_call.talk_ended_at,
                chosen,
                deadline,
                open_call.call_sid,
            )
        since = max(since, deadline)  # the limit passed: free since then
    return AgentNow(*base, chosen, reason, since, chosen)


def _busy_end(call: calls.AgentCall, limit: timedelta, now: datetime) -> datetime:
    """When the agent was free of this call: wrapped up, or the wrap-up's limit passed."""
    if call.talk_ended_at is None:
        return call.wrapped_at or now
    lapse = call.talk_ended_at + limit
    if call.wrapped_at is not None:
        return max(call.talk_ended_at, min(call.wrapped_at, lapse))
    return min(lapse, now)


def states_now(
    db: DbSession, *, limit: timedelta, staff_ids: Iterable[int] | None = None
) -> list[AgentNow]:
    """Every agent with a console signed in now and taking calls (or those asked for, in any
    state), with their state and since when; ready ones first, then by name."""
    now = context(db).now()
    if staff_ids is None:
        signed = _live_sessions(
            db,
            db.execute(
                select(StaffUser.id).where(
                    StaffUser.active.is_(True), StaffUser.role.in_(CALL_ROLES)
                )
            ).scalars(),
        )
        ids = list(signed)
    else:
        ids = list(staff_ids)
        signed = _live_sessions(db, ids)
    if not ids:
        return []
    users = db.execute(select(StaffUser).where(StaffUser.id.in_(ids))).scalars()
    rows = {
        r.staff_id: r
        for r in db.execute(select(AgentState).where(AgentState.staff_id.in_(ids))).scalars()
    }
    open_calls = {c.staff_id: c for c in calls.open_agent_calls(db, staff_ids=ids)}  # latest
    wrapped = calls.last_wrap_ups(db, staff_ids=ids, since=now - timedelta(days=1))
    people = [
        _now_from(
            rows.get(u.id), u, u.id in signed, open_calls.get(u.id), wrapped.get(u.id), limit, now
        )
        for u in users
    ]
    if staff_ids is None:  # supervisors who have not chosen to take calls are not counted
        people = [p for p in people if p.state != "offline"]
    order = {"ready": 0, "wrap_up": 1, "on_call": 2, "not_ready": 3, "offline": 4}
    return sorted(people, key=lambda p: (order[p.state], p.display_name, p.staff_id))


def state_now(db: DbSession, *, staff_id: int, limit: timedelta) -> AgentNow | None:
    """One agent's state now (None for an unknown account)."""
    found = states_now(db, limit=limit, staff_ids=[staff_id])
    return found[0] if found else None


def make_sure_ready(db: DbSession, *, staff_id: int, limit: timedelta) -> None:
    """Before an agent takes a call, in the same transaction: their state row is locked (a
    second tab waits here and then sees the first tab's call), and they must be ready."""
    calls.close_lapsed_wrap_ups(db, limit=limit, staff_id=staff_id)
    row = _lock(db, staff_id)
    if row is None:
        raise NotReady("受付可になっていないため、電話に応答できません。")
    agent = state_now(db, staff_id=staff_id, limit=limit)
    if agent is None or agent.state == "offline":
        raise NotReady("「受付可」にしてから応答してください。")
    if agent.state == "on_call":
        raise NotReady("通話中のため、次の電話には応答できません。")
    if agent.state == "wrap_up":
        raise NotReady("後処理中です。後処理を終えると次の電話に応答できます。")
    if agent.state == "not_ready":
        raise NotReady(f"{agent.label}のため応答できません。「受付可」にしてから応答してください。")


# --- time in each state -----------------------------------------------------------------------


@dataclass
class AgentTime:
    """One agent's seconds in each state over a period."""

    staff_id: int
    display_name: str
    ready: float = 0.0
    not_ready: dict[str, float] = field(default_factory=dict)  # by reason
    on_call: float = 0.0
    wrap_up: float = 0.0
    calls: int = 0

    @property
    def not_ready_total(self) -> float:
        return sum(self.not_ready.values())

    @property
    def occupancy(self) -> float | None:
        """(on a call + wrap-up) / (ready + on a call + wrap-up)."""
        busy = self.on_call + self.wrap_up
        available = self.ready + busy
        return busy / available if available else None


def _overlap(a: datetime, b: datetime, c: datetime, d: datetime) -> float:
    return max(0.0, (min(b, d) - max(a, c)).total_seconds())


def time_in_states(
    db: DbSession, *, start: datetime, end: datetime, limit: timedelta
) -> list[AgentTime]:
    """Seconds per state per agent from ``start`` to ``end`` (up to now): the chosen spans,
    less the time on calls and in wrap-up within them; on a call and wrap-up from the calls."""
    now = context(db).now()
    until = min(end, now)
    if until <= start:
        return []
    busy: dict[int, list[tuple[datetime, datetime]]] = {}
    times: dict[int, AgentTime] = {}

    def of(staff_id: int) -> AgentTime:
        return times.setdefault(staff_id, AgentTime(staff_id, ""))

    for call in calls.agent_calls(db, since=start, until=until):
        talk_end = call.talk_ended_at or min(call.wrapped_at or until, until)
        free = _busy_end(call, limit, until)
        agent = of(call.staff_id)
        agent.on_call += _overlap(call.answered_at, talk_end, start, until)
        agent.wrap_up += _overlap(talk_end, max(talk_end, free), start, until)
        if start <= call.answered_at < until:
            agent.calls += 1
        busy.setdefault(call.staff_id, []).append((call.answered_at, max(talk_end, free)))
    spans = db.execute(
        select(AgentStateSpan).where(
            AgentStateSpan.started_at < until,
            (AgentStateSpan.ended_at.is_(None)) | (AgentStateSpan.ended_at > start),
        )
    ).scalars()
    for span in spans:
        a, b = max(span.started_at, start), min(span.ended_at or until, until)
        if b <= a:
            continue
        seconds = (b - a).total_seconds() - sum(
            _overlap(a, b, c, d) for c, d in busy.get(span.staff_id, [])
        )
        agent = of(span.staff_id)
        if span.state == "ready":
            agent.ready += max(0.0, seconds)
        else:
            key = span.reason or "other"
            agent.not_ready[key] = agent.not_ready.get(key, 0.0) + max(0.0, seconds)
    if times:
        for staff_id, name in db.execute(
            select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(list(times)))
        ):
            times[staff_id].display_name = name
    return sorted(times.values(), key=lambda t: (t.display_name, t.staff_id))


def occupancy(times: Iterable[AgentTime]) -> float | None:
    """Everyone together: (on a call + wrap-up) / (ready + on a call + wrap-up)."""
    busy = available = 0.0
    for t in times:
        busy += t.on_call + t.wrap_up
        available += t.ready + t.on_call + t.wrap_up
    return busy / available if available else None
