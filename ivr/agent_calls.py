"""The agents' calls as their time: when each agent took a call, when the talk ended and when
the wrap-up did; and the wrap-ups whose time limit passed, closed for the agent. The console
derives an agent's "on a call" and "wrap-up" states from these (the phone line knows nothing
of the console's states)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session as DbSession

from booking.context import context
from ivr.models import Call

# What a wrap-up closed by the time limit is recorded as (Call.disposition).
TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class AgentCall:
    """One call an agent took: on a call from ``answered_at`` to ``talk_ended_at``, then in
    wrap-up until ``wrapped_at``."""

    staff_id: int
    call_sid: str
    answered_at: datetime
    talk_ended_at: datetime | None
    wrapped_at: datetime | None
    disposition: str | None


# What an agent's call is read as: who took it, and its times.
_TIMES = (
    Call.agent_staff_id,
    Call.call_sid,
    Call.answered_at,
    Call.talk_ended_at,
    Call.wrapped_at,
    Call.disposition,
)


def _taken(rows: Iterable[Any]) -> list[AgentCall]:
    """Rows of _TIMES as agents' calls (a call no agent has taken is none of them)."""
    return [
        AgentCall(int(staff), sid, answered, talk_ended, wrapped, disposition)
        for staff, sid, answered, talk_ended, wrapped, disposition in rows
        if staff is not None and answered is not None
    ]


def agent_calls(
    db: DbSession, *, since: datetime, until: datetime, staff_ids: Collection[int] | None = None
) -> list[AgentCall]:
    """Calls agents (all, or those given) took that overlap ``since``..``until``: answered
    before ``until`` and not wrapped up before ``since`` (open ones included), oldest first."""
    query = select(*_TIMES).where(
        Call.agent_staff_id.is_not(None),
        Call.answered_at.is_not(None),
        Call.answered_at < until,
        or_(Call.wrapped_at.is_(None), Call.wrapped_at > since),
    )
    if staff_ids is not None:
        query = query.where(Call.agent_staff_id.in_(list(staff_ids)))
    return _taken(db.execute(query.order_by(Call.answered_at, Call.id)))


def open_agent_calls(db: DbSession, *, staff_ids: Collection[int]) -> list[AgentCall]:
    """The calls these agents have taken and not yet wrapped up, oldest first (on the index of
    agents' open calls: every console polls this)."""
    return _taken(
        db.execute(
            select(*_TIMES)
            .where(Call.agent_staff_id.in_(list(staff_ids)), Call.wrapped_at.is_(None))
            .order_by(Call.answered_at, Call.id)
        )
    )


def last_wrap_ups(
    db: DbSession, *, staff_ids: Collection[int], since: datetime
) -> dict[int, datetime]:
    """When each of these agents last finished a wrap-up (since ``since``)."""
    return {
        int(staff): wrapped
        for staff, wrapped in db.execute(
            select(Call.agent_staff_id, func.max(Call.wrapped_at))
            .where(Call.agent_staff_id.in_(list(staff_ids)), Call.wrapped_at > since)
            .group_by(Call.agent_staff_id)
        )
        if staff is not None and wrapped is not None
    }


def agent_call(db: DbSession, *, call_sid: str) -> AgentCall | None:
    """One taken call's times (None if no agent has it)."""
    found = _taken(db.execute(select(*_TIMES).where(Call.call_sid == call_sid)))
    return found[0] if found else None


def close_lapsed_wrap_ups(
    db: DbSession, *, limit: timedelta, staff_id: int | None = None
) -> list[str]:
    """Wrap-ups whose time limit passed are closed for the agent: wrapped up at the limit
    (so the handling time is what the limit allowed), disposition "timed_out". Each row's
    update is conditional, so an agent's own wrap-up at the same moment wins or loses whole."""
    cut = context(db).now() - limit
    query = select(Call.call_sid, Call.talk_ended_at).where(
        Call.agent_staff_id.is_not(None),
        Call.wrapped_at.is_(None),
        Call.talk_ended_at.is_not(None),
        Call.talk_ended_at <= cut,
    )
    if staff_id is not None:
        query = query.where(Call.agent_staff_id == staff_id)
    closed = []
    for call_sid, talk_ended in db.execute(query).all():
        if talk_ended is None:
            continue
        done = db.execute(
            update(Call)
            .where(Call.call_sid == call_sid, Call.wrapped_at.is_(None))
            .values(wrapped_at=talk_ended + limit, disposition=TIMED_OUT)
        )
        if getattr(done, "rowcount", 0):
            closed.append(str(call_sid))
    return closed
