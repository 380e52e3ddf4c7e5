"""Calls handed to a person: the agents' live queue, an agent taking a call, putting it
through to their phone or back in the queue, and the wrap-up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from booking.context import context
from booking.personal import mask_phone
from ivr.calls import lock_call, note_event, note_step, set_outcome
from ivr.models import Call


@dataclass(frozen=True)
class CallView:
    id: int
    call_sid: str
    caller_kind: str
    language: str
    outcome: str
    path: str
    booking_id: int | None
    queue: str | None
    queue_result: str | None
    wait_seconds: int | None
    duration_seconds: int | None
    started_at: datetime
    ended_at: datetime | None
    agent_staff_id: int | None = None
    answered_at: datetime | None = None
    wrapped_at: datetime | None = None
    caller: str | None = None  # E.164, for staff screens only (which audit reading it)


def get_call(db: DbSession, *, call_sid: str) -> CallView | None:
    call = db.execute(select(Call).where(Call.call_sid == call_sid)).scalar_one_or_none()
    if call is None:
        return None
    return CallView(
        call.id,
        call.call_sid,
        call.caller_kind,
        call.language,
        call.outcome,
        call.path,
        call.booking_id,
        call.queue,
        call.queue_result,
        call.wait_seconds,
        call.duration_seconds,
        call.started_at,
        call.ended_at,
        call.agent_staff_id,
        call.answered_at,
        call.wrapped_at,
        context(db).vault.decrypt(call.caller_enc) if call.caller_enc else None,
    )


def claim_call(db: DbSession, *, call_sid: str, staff_id: int) -> bool:
    """An agent takes a waiting call: one conditional update, so two agents pressing at once
    cannot both have it."""
    result = db.execute(
        update(Call)
        .where(
            Call.call_sid == call_sid,
            Call.queue.is_not(None),
            Call.queue_result.is_(None),
            Call.agent_staff_id.is_(None),
            Call.ended_at.is_(None),
        )
        .values(agent_staff_id=staff_id, answered_at=context(db).now())
    )
    if not getattr(result, "rowcount", 0):
        return False
    call = db.execute(select(Call).where(Call.call_sid == call_sid)).scalar_one()
    set_outcome(call, "handed_to_agent")
    note_step(call, "answered")
    note_event(db, call, "connected")
    return True


def agents_on_calls(db: DbSession) -> set[int]:
    """Staff with a call taken and not yet wrapped up."""
    rows = db.execute(
        select(Call.agent_staff_id).where(
            Call.agent_staff_id.is_not(None), Call.wrapped_at.is_(None)
        )
    ).scalars()
    return {int(r) for r in rows if r is not None}


def release_call(db: DbSession, *, call_sid: str) -> Call | None:
    """The agent's phone did not take the call: back in the queue for the next agent."""
    call = lock_call(db, call_sid)
    if call is None or call.ended_at is not None:
        return None
    call.agent_staff_id, call.answered_at = None, None
    note_step(call, "agent_missed")
    return call


def wrap_up(db: DbSession, *, call_sid: str, staff_id: int, disposition: str) -> bool:
    """The agent finished the after-call work: the wrap-up time ends here."""
    result = db.execute(
        update(Call)
        .where(
            Call.call_sid == call_sid,
            Call.agent_staff_id == staff_id,
            Call.wrapped_at.is_(None),
        )
        .values(wrapped_at=context(db).now(), disposition=disposition[:20])
    )
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class WaitingCall:
    """A caller in the agents' queue, as the console's live queue shows them."""

    call_sid: str
    language: str
    queue: str
    enqueued_at: datetime
    path: str
    caller_kind: str
    masked_caller: str | None


# A call "waiting" longer than this lost its status callback (Twilio would have ended it): it
# is not shown as waiting for ever.
WAITING_HORIZON = timedelta(hours=2)


def waiting_calls(db: DbSession) -> list[WaitingCall]:
    """Calls in the agents' queue now (entered, not yet answered, left or hung up), the
    longest-waiting first."""
    vault = context(db).vault
    since = context(db).now() - WAITING_HORIZON
    rows = db.execute(
        select(Call)
        .where(
            Call.queue.is_not(None),
            Call.queue_result.is_(None),
            Call.ended_at.is_(None),
            Call.agent_staff_id.is_(None),
            Call.enqueued_at >= since,
        )
        .order_by(Call.enqueued_at, Call.id)
    ).scalars()
    return [
        WaitingCall(
            c.call_sid,
            c.language,
            str(c.queue),
            c.enqueued_at or c.started_at,
            c.path,
            c.caller_kind,
            mask_phone(vault.decrypt(c.caller_enc)) if c.caller_enc else None,
        )
        for c in rows
    ]


def my_open_call(db: DbSession, *, staff_id: int) -> str | None:
    """The call this agent has taken and not yet wrapped up (its CallSid), if any."""
    return db.execute(
        select(Call.call_sid)
        .where(Call.agent_staff_id == staff_id, Call.wrapped_at.is_(None))
        .order_by(Call.answered_at.desc())
        .limit(1)
    ).scalar_one_or_none()
