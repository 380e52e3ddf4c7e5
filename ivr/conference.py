"""Calls put through to agents by a Twilio conference (one per call): the conference and the
agent's leg in it, the caller's hold, the agent's raised hand, and the supervisors listening,
whispering or joined. ``ivr.service`` is the front door other packages use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.sql.elements import ColumnElement

from booking.context import context
from ivr.calls import lock_call
from ivr.models import MONITOR_MODES, Call, CallMonitor

# A talk "in progress" longer than this lost its end (Twilio would have ended the call): not
# listed as live for ever.
LIVE_HORIZON = timedelta(hours=4)


def conference_name(call_sid: str) -> str:
    """The conference a call is put through in: one per call, named after it (a CallSid is
    not personal data; the caller's number never goes into a name or a URL)."""
    return f"madoguchi-{call_sid}"


def open_conference(db: DbSession, *, call_sid: str) -> str | None:
    """The answering agent is about to be called in: the call's conference, kept on it (a new
    agent leg is expected, so what belonged to the last one is forgotten)."""
    call = lock_call(db, call_sid)
    if call is None or call.agent_staff_id is None:
        return None
    # A caller back from the queue starts afresh: no hold, no hand, no one listening in.
    call.conference = conference_name(call_sid)
    call.agent_leg_sid, call.held_at, call.hand_raised_at = None, None, None
    db.execute(delete(CallMonitor).where(CallMonitor.call_id == call.id))
    return call.conference


def conference_of(db: DbSession, *, call_sid: str) -> str | None:
    return db.execute(select(Call.conference).where(Call.call_sid == call_sid)).scalar()


def note_agent_leg(db: DbSession, *, call_sid: str, leg_sid: str) -> None:
    """Twilio took the request to call the agent in: their leg's CallSid (the one a
    whispering supervisor coaches)."""
    db.execute(update(Call).where(Call.call_sid == call_sid).values(agent_leg_sid=leg_sid[:64]))


def agent_leg_missed(db: DbSession, *, call_sid: str, leg_sid: str) -> bool:
    """The agent's phone did not answer (busy, no answer, failed): whether that was the
    call's current agent leg, with the caller still waiting in the conference for it (so they
    go back in the queue). A leg not yet noted counts: Twilio can fail it before we hear
    back from the request that made it."""
    call = lock_call(db, call_sid)
    if call is None or call.ended_at is not None or call.agent_staff_id is None:
        return False
    if call.agent_leg_sid not in (None, leg_sid):
        return False
    return True


def set_hold(db: DbSession, *, call_sid: str, staff_id: int, held: bool) -> bool:
    """The agent holds the caller (or takes them off hold): kept for the screens."""
    result = db.execute(
        update(Call)
        .where(*_talking(call_sid, staff_id))
        .values(held_at=context(db).now() if held else None)
    )
    return bool(getattr(result, "rowcount", 0))


def set_hand(db: DbSession, *, call_sid: str, staff_id: int, raised: bool) -> bool:
    """The agent raises a hand for help (kept from the first time until lowered) or lowers it;
    only the agent does, and only during the talk."""
    now = context(db).now()
    result = db.execute(
        update(Call)
        .where(*_talking(call_sid, staff_id))
        .values(hand_raised_at=func.coalesce(Call.hand_raised_at, now) if raised else None)
    )
    return bool(getattr(result, "rowcount", 0))


def _talking(call_sid: str, staff_id: int) -> tuple[ColumnElement[bool], ...]:
    return (
        Call.call_sid == call_sid,
        Call.agent_staff_id == staff_id,
        Call.talk_ended_at.is_(None),
        Call.ended_at.is_(None),
    )


@dataclass(frozen=True)
class LiveCall:
    """A caller talking with an agent now, as the supervisors' live page shows it."""

    call_sid: str
    language: str
    agent_staff_id: int
    answered_at: datetime
    hand_raised_at: datetime | None
    held_at: datetime | None
    conference: str | None
    agent_leg_sid: str | None
    # How each supervisor in the conference is in it (staff id -> listen, whisper or join).
    monitors: dict[int, str]


def _live(db: DbSession) -> tuple[ColumnElement[bool], ...]:
    since = context(db).now() - LIVE_HORIZON
    return (
        Call.agent_staff_id.is_not(None),
        Call.answered_at >= since,
        Call.talk_ended_at.is_(None),
        Call.ended_at.is_(None),
    )


def live_calls(db: DbSession) -> list[LiveCall]:
    """Calls with an agent now: raised hands first (the longest raised first), then the
    longest talks."""
    rows = db.execute(
        select(Call)
        .where(*_live(db))
        .order_by(Call.hand_raised_at.is_(None), Call.hand_raised_at, Call.answered_at, Call.id)
    ).scalars()
    calls = list(rows)
    monitors: dict[int, dict[int, str]] = {}
    if calls:
        for m in db.execute(
            select(CallMonitor).where(CallMonitor.call_id.in_([c.id for c in calls]))
        ).scalars():
            monitors.setdefault(m.call_id, {})[m.staff_id] = m.mode
    return [
        LiveCall(
            c.call_sid,
            c.language,
            int(c.agent_staff_id or 0),
            c.answered_at or c.started_at,
            c.hand_raised_at,
            c.held_at,
            c.conference,
            c.agent_leg_sid,
            monitors.get(c.id, {}),
        )
        for c in calls
    ]


def raised_hands(db: DbSession) -> int:
    """How many agents on a call have a hand raised now."""
    return int(
        db.execute(
            select(func.count())
            .select_from(Call)
            .where(*_live(db), Call.hand_raised_at.is_not(None))
        ).scalar_one()
    )


@dataclass(frozen=True)
class Monitor:
    """A supervisor's leg in a call's conference, and how they are in it."""

    leg_sid: str
    mode: str


def monitor_of(db: DbSession, *, call_sid: str, staff_id: int) -> Monitor | None:
    row = db.execute(
        select(CallMonitor.leg_sid, CallMonitor.mode)
        .join(Call, Call.id == CallMonitor.call_id)
        .where(Call.call_sid == call_sid, CallMonitor.staff_id == staff_id)
    ).one_or_none()
    return Monitor(row.leg_sid, row.mode) if row is not None else None


def keep_monitor(db: DbSession, *, call_sid: str, staff_id: int, leg_sid: str, mode: str) -> None:
    """A supervisor is now in the call's conference this way (a new leg, or a change of mode
    of theirs): one row per supervisor and call, the unique index keeping it one."""
    if mode not in MONITOR_MODES:
        raise ValueError(mode)
    call = lock_call(db, call_sid)
    if call is None:
        return
    found = db.execute(
        select(CallMonitor).where(CallMonitor.call_id == call.id, CallMonitor.staff_id == staff_id)
    ).scalar_one_or_none()
    if found is None:
        db.add(
            CallMonitor(
                call_id=call.id,
                staff_id=staff_id,
                leg_sid=leg_sid[:64],
                mode=mode,
                started_at=context(db).now(),
            )
        )
    else:
        found.leg_sid, found.mode = leg_sid[:64], mode
    db.flush()


def drop_monitor(db: DbSession, *, call_sid: str, staff_id: int) -> bool:
    """The supervisor left the call's conference."""
    call_id = select(Call.id).where(Call.call_sid == call_sid).scalar_subquery()
    result = db.execute(
        delete(CallMonitor).where(CallMonitor.call_id == call_id, CallMonitor.staff_id == staff_id)
    )
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class TalkState:
    """What the agent's call screen shows of the talk: whether it is in a conference (hold
    works there), the caller held, a hand raised, and whether the talk is still going."""

    conference: str | None
    held: bool
    hand_raised: bool
    talking: bool


def talk_state(db: DbSession, *, call_sid: str) -> TalkState | None:
    call = db.execute(select(Call).where(Call.call_sid == call_sid)).scalar_one_or_none()
    if call is None:
        return None
    talking = call.answered_at is not None and call.talk_ended_at is None and call.ended_at is None
    return TalkState(
        call.conference,
        talking and call.held_at is not None,
        talking and call.hand_raised_at is not None,
        talking,
    )
