"""What the engine leaves for whoever owns the transaction: the outbox (``booking_event``) rows
others react to, and the tally of what left no row behind. The engine calls no one; the owner
of the transaction (config's wiring) reads both once it has committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session as DbSession

from booking.context import context
from booking.models import BookingEvent

# Set on a session whose transaction wrote outbox rows: whoever owns the session (config's
# wiring) may wake the consumers after commit. The booking service itself calls no one.
OUTBOX_WRITTEN = "booking_outbox_written"


def record_event(db: DbSession, booking_id: int, kind: str, version: int) -> None:
    """An outbox row: the booking changed (``kind``) and is now at ``version``."""
    db.info[OUTBOX_WRITTEN] = True
    db.execute(
        insert(BookingEvent).values(
            booking_id=booking_id, kind=kind, booking_version=version, created_at=context(db).now()
        )
    )


@dataclass(frozen=True)
class EventView:
    """One outbox row: a booking was made, moved or cancelled, at this version."""

    id: int
    booking_id: int
    kind: str
    booking_version: int
    created_at: datetime


def pending_events(db: DbSession, *, limit: int = 200) -> list[EventView]:
    """Outbox rows not yet dispatched, oldest first, locked for this transaction; on
    PostgreSQL another dispatcher skips them rather than waiting (SKIP LOCKED)."""
    query = (
        select(BookingEvent)
        .where(BookingEvent.dispatched_at.is_(None))
        .order_by(BookingEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [
        EventView(e.id, e.booking_id, e.kind, e.booking_version, e.created_at)
        for e in db.execute(query).scalars()
    ]


def mark_dispatched(db: DbSession, *, event_ids: list[int]) -> None:
    """The consumer handled these (in the same transaction as what it made of them)."""
    if event_ids:
        db.execute(
            update(BookingEvent)
            .where(BookingEvent.id.in_(event_ids))
            .values(dispatched_at=context(db).now())
        )


# What the engine did in the open transaction that leaves no row behind to count later (a
# hold's row goes when it is booked, released or lapses): {(what, channel): n}. Whoever owns
# the transaction takes it after the commit (config/metrics.py); an uncommitted one is dropped.
_TALLY = "booking.tally"


def tally(db: DbSession, what: str, channel: str, n: int = 1) -> None:
    """Count ``what`` the engine did for ``channel`` in the open transaction."""
    counts: dict[tuple[str, str], int] = db.info.setdefault(_TALLY, {})
    counts[what, channel] = counts.get((what, channel), 0) + n


def take_tally(db: DbSession) -> dict[tuple[str, str], int]:
    """What the engine did since the last take (``hold_taken``, ``hold_lapsed`` by channel);
    the owner of the transaction takes it once committed, or drops it."""
    found: dict[tuple[str, str], int] = db.info.pop(_TALLY, None) or {}
    return found
