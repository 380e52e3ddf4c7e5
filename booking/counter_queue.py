"""The day's queue at one venue, as the counter, the residents' status pages and the public
crowding pages see it: who is waiting in the order the counter serves them, the numbers being
called, the day's pace and the waits it makes. Read only, two indexed queries.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import Integer, and_, literal, null, or_, select, union_all
from sqlalchemy.orm import Session as DbSession

from booking.context import TOKYO, context
from booking.models import Booking, Slot, WalkIn

# The pace is read from the calls of this last stretch of the day...
PACE_WINDOW = timedelta(hours=1)
# ...once there are this many (two intervals); before, the ward's planned pace stands.
PACE_MIN_CALLS = 3
# When today has no slots at the venue to plan from (an unusual day): a counter's usual minutes.
USUAL_MINUTES = 15.0
# How many of the numbers being called a board shows.
NOW_CALLING_SHOWN = 5


@dataclass(frozen=True)
class QueueEntry:
    """One resident (or household) waiting: a walk-in's queue number, or a booking checked in.

    ``since`` is when their wait began: a walk-in's ticket, a booking's check-in or its booked
    time if they came early (the order the counter serves them, as the wait figures count).
    """

    kind: str  # walk_in | booking
    walk_in_id: int | None
    number: int | None  # the walk-in's queue number; None for a booking
    booking_id: int | None
    service_id: str
    party_size: int
    since: datetime


@dataclass(frozen=True)
class VenueQueue:
    venue_id: str
    day: date
    at: datetime  # when it was read
    waiting: list[QueueEntry]  # in the order the counter serves them
    now_calling: list[int]  # walk-in numbers called, not completed, the latest first
    minutes_per_resident: float
    pace_from_calls: bool  # False: the planned pace (too few calls today yet)
    estimated_wait_minutes: int  # for a resident arriving now
    remaining_walk_in_seats: int  # seats free in today's slots not yet over

    def wait_for(self, ahead: int) -> int:
        """The estimated minutes until called with ``ahead`` residents before you."""
        return estimated_wait(ahead, self.minutes_per_resident)

    def ahead_of_walk_in(self, walk_in_id: int) -> int | None:
        """How many are served before this walk-in; None once called (or not in the queue)."""
        return self._position(lambda e: e.walk_in_id == walk_in_id)

    def ahead_of_booking(self, booking_id: int) -> int | None:
        """How many are served before this checked-in booking; None once called."""
        return self._position(lambda e: e.booking_id == booking_id)

    def _position(self, match: Callable[[QueueEntry], bool]) -> int | None:
        for ahead, entry in enumerate(self.waiting):
            if match(entry):
                return ahead
        return None


def estimated_wait(ahead: int, minutes_per_resident: float) -> int:
    """Whole minutes for ``ahead`` residents at the pace, rounded up."""
    return math.ceil(max(ahead, 0) * minutes_per_resident - 1e-9)


def venue_queue(db: DbSession, *, venue_id: str) -> VenueQueue:
    """Today's queue at ``venue_id`` now."""
    ctx = context(db)
    now, today = ctx.now(), ctx.today()
    day_start = datetime.combine(today, time(0), TOKYO)
    day_end = day_start + timedelta(days=1)
    walk_ins = select(
        literal("walk_in").label("kind"),
        WalkIn.id.label("walk_in_id"),
        WalkIn.number.label("number"),
        null().cast(Integer).label("booking_id"),
        WalkIn.service_id,
        WalkIn.party_size,
        WalkIn.created_at.label("since"),
        WalkIn.created_at.label("starts_at"),
        WalkIn.called_at,
        WalkIn.completed_at.is_not(None).label("done"),
    ).where(WalkIn.venue_id == venue_id, WalkIn.day == today)
    bookings = (
        select(
            literal("booking").label("kind"),
            null().cast(Integer).label("walk_in_id"),
            null().cast(Integer).label("number"),
            Booking.id.label("booking_id"),
            Booking.service_id,
            Booking.party_size,
            Booking.checked_in_at.label("since"),
            Slot.starts_at,
            Booking.called_at,
            (Booking.status == "completed").label("done"),
        )
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            Slot.venue_id == venue_id,
            Slot.starts_at >= day_start,
            Slot.starts_at < day_end,
            or_(
                Booking.status == "checked_in",
                and_(Booking.status == "completed", Booking.called_at.is_not(None)),
            ),
        )
    )
    rows: Sequence[Any] = db.execute(union_all(walk_ins, bookings)).all()
    planned, free = _planned_pace_and_free_seats(db, venue_id, day_start, day_end, now)

    waiting = sorted(
        (
            QueueEntry(
                r.kind,
                r.walk_in_id,
                r.number,
                r.booking_id,
                r.service_id,
                r.party_size,
                # An offline check-in has no time: the booked time stands.
                max(r.since, r.starts_at) if r.since is not None else r.starts_at,
            )
            for r in rows
            if r.called_at is None and not r.done
        ),
        key=lambda e: (e.since, e.number or 0, e.booking_id or 0),
    )
    called = sorted(
        (
            (r.called_at, r.number)
            for r in rows
            if r.kind == "walk_in" and r.called_at is not None and not r.done
        ),
        reverse=True,
    )
    calls = [r.called_at for r in rows if r.called_at is not None]
    pace = _pace_from_calls(calls, now)
    minutes = pace if pace is not None else planned
    return VenueQueue(
        venue_id=venue_id,
        day=today,
        at=now,
        waiting=waiting,
        now_calling=[int(number) for _, number in called[:NOW_CALLING_SHOWN]],
        minutes_per_resident=minutes,
        pace_from_calls=pace is not None,
        estimated_wait_minutes=estimated_wait(len(waiting), minutes),
        remaining_walk_in_seats=free,
    )


def _planned_pace_and_free_seats(
    db: DbSession, venue_id: str, day_start: datetime, day_end: datetime, now: datetime
) -> tuple[float, int]:
    """The ward's planned minutes per resident today (slot minutes over seats), and the seats
    a walk-in could still take (free in open first-come slots not over yet)."""
    slots = db.execute(
        select(
            Slot.starts_at,
            Slot.ends_at,
            Slot.capacity,
            Slot.booked + Slot.held,
            Slot.is_open,
            Slot.lottery_id,
        ).where(Slot.venue_id == venue_id, Slot.starts_at >= day_start, Slot.starts_at < day_end)
    ).all()
    minutes = sum((ends - starts).total_seconds() / 60 for starts, ends, *_ in slots)
    seats = sum(capacity for _, _, capacity, *_ in slots)
    free = sum(
        max(capacity - taken, 0)
        for _, ends, capacity, taken, is_open, lottery in slots
        if ends > now and is_open and lottery is None
    )
    return (minutes / seats if minutes and seats else USUAL_MINUTES), free


def _pace_from_calls(calls: list[datetime], now: datetime) -> float | None:
    """Minutes per resident from the calls of the last hour: the mean interval between them,
    counting the time since the last call when it is longer (a counter that stalls slows the
    estimate at once). None with too few calls."""
    recent = sorted(c for c in calls if now - PACE_WINDOW <= c <= now)
    if len(recent) < PACE_MIN_CALLS:
        return None
    intervals = [(b - a).total_seconds() / 60 for a, b in pairwise(recent)]
    mean = sum(intervals) / len(intervals)
    since_last = (now - recent[-1]).total_seconds() / 60
    if since_last > mean:
        intervals.append(since_last)
        mean = sum(intervals) / len(intervals)
    return max(mean, 0.5)
