"""The counter's figures over a period, per venue and day: bookings kept and missed (no-shows),
walk-ins, and how long residents waited to be called; and the day so far for the operators'
metrics. Read only; the counter's list, the monthly report and the metrics reach these through
booking.service, which re-exports them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session as DbSession

from booking.context import TOKYO
from booking.models import Booking, BookingEvent, Hold, Slot, WalkIn


@dataclass
class CounterDay:
    """One venue's day at the counter.

    A wait runs from arrival to the counter's call: for a booking from check-in, or from its
    booked time if the resident came early (waiting for one's own time is not the counter's
    delay); for a walk-in from drawing the queue number. Only residents who were called (呼出)
    count; check-ins uploaded from an offline roster have no time and are left out.
    """

    venue_id: str
    day: date
    bookings: int = 0  # not cancelled
    people_booked: int = 0
    arrived: int = 0  # checked in, or completed
    completed: int = 0
    no_shows: int = 0
    walk_ins: int = 0
    walk_in_people: int = 0
    walk_ins_completed: int = 0
    waits: list[float] = field(default_factory=list)  # minutes, one per resident called

    @property
    def no_show_rate(self) -> float | None:
        """No-shows among the bookings whose outcome is known (arrived or missed)."""
        settled = self.arrived + self.no_shows
        return self.no_shows / settled if settled else None

    @property
    def average_wait(self) -> float | None:
        return sum(self.waits) / len(self.waits) if self.waits else None

    @property
    def wait_90th(self) -> float | None:
        """The wait nine in ten residents called did not exceed (nearest rank)."""
        if not self.waits:
            return None
        ordered = sorted(self.waits)
        return ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]

    @property
    def longest_wait(self) -> float | None:
        return max(self.waits) if self.waits else None


def _minutes(since: datetime, until: datetime) -> float:
    return max((until - since).total_seconds() / 60, 0.0)


def counter_figures(
    db: DbSession, *, first: date, last: date, venue_id: str | None = None
) -> list[CounterDay]:
    """Every venue's counter days from ``first`` to ``last`` inclusive (or one venue's), by
    venue then day; a day with neither bookings nor walk-ins is not listed."""
    start = datetime.combine(first, time(0), TOKYO)
    end = datetime.combine(last + timedelta(days=1), time(0), TOKYO)
    days: dict[tuple[str, date], CounterDay] = {}

    def day_of(venue: str, when: date) -> CounterDay:
        return days.setdefault((venue, when), CounterDay(venue, when))

    bookings = (
        select(
            Slot.venue_id,
            Slot.starts_at,
            Booking.status,
            Booking.party_size,
            Booking.checked_in_at,
            Booking.called_at,
        )
        .join(Slot, Slot.id == Booking.slot_id)
        .where(Slot.starts_at >= start, Slot.starts_at < end, Booking.status != "cancelled")
    )
    walk_ins = select(
        WalkIn.venue_id,
        WalkIn.day,
        WalkIn.party_size,
        WalkIn.created_at,
        WalkIn.called_at,
        WalkIn.completed_at,
    ).where(WalkIn.day >= first, WalkIn.day <= last)
    if venue_id is not None:
        bookings = bookings.where(Slot.venue_id == venue_id)
        walk_ins = walk_ins.where(WalkIn.venue_id == venue_id)
    for venue, starts_at, status, party, checked_in_at, called_at in db.execute(bookings):
        counted = day_of(venue, starts_at.astimezone(TOKYO).date())
        counted.bookings += 1
        counted.people_booked += party
        counted.arrived += status in ("checked_in", "completed")
        counted.completed += status == "completed"
        counted.no_shows += status == "no_show"
        if checked_in_at is not None and called_at is not None:
            counted.waits.append(_minutes(max(checked_in_at, starts_at), called_at))
    for venue, day, party, created_at, called_at, completed_at in db.execute(walk_ins):
        counted = day_of(venue, day)
        counted.walk_ins += 1
        counted.walk_in_people += party
        counted.walk_ins_completed += completed_at is not None
        if called_at is not None:
            counted.waits.append(_minutes(created_at, called_at))
    return [days[key] for key in sorted(days)]


@dataclass
class CapacityDay:
    """One venue's day: the seats open for booking and the seats taken (bookings and walk-ins)."""

    venue_id: str
    day: date
    capacity: int
    taken: int

    @property
    def use(self) -> float | None:
        return self.taken / self.capacity if self.capacity else None


@dataclass
class BookingPeriod:
    """What residents booked in a period (by when the booking was made), what they cancelled,
    and how the seats of the period's days were used."""

    made: int = 0
    people: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    by_service: dict[str, int] = field(default_factory=dict)
    by_venue: dict[str, int] = field(default_factory=dict)
    by_day: dict[date, int] = field(default_factory=dict)
    cancelled: int = 0
    capacity: list[CapacityDay] = field(default_factory=list)


def booking_period(db: DbSession, *, first: date, last: date) -> BookingPeriod:
    """Bookings made from ``first`` to ``last`` (Tokyo days, inclusive), cancellations in it,
    and capacity use per venue and day of the slots in it."""
    start = datetime.combine(first, time(0), TOKYO)
    end = datetime.combine(last + timedelta(days=1), time(0), TOKYO)
    found = BookingPeriod()
    made = db.execute(
        select(
            Booking.channel,
            Booking.service_id,
            Booking.venue_id,
            Booking.party_size,
            Booking.created_at,
        ).where(Booking.created_at >= start, Booking.created_at < end)
    )
    for channel, service, venue, party, created_at in made:
        found.made += 1
        found.people += party
        found.by_channel[channel] = found.by_channel.get(channel, 0) + 1
        found.by_service[service] = found.by_service.get(service, 0) + 1
        found.by_venue[venue] = found.by_venue.get(venue, 0) + 1
        day = created_at.astimezone(TOKYO).date()
        found.by_day[day] = found.by_day.get(day, 0) + 1
    found.by_day = dict(sorted(found.by_day.items()))
    found.cancelled = int(
        db.execute(
            select(func.count(func.distinct(BookingEvent.booking_id))).where(
                BookingEvent.kind == "cancelled",
                BookingEvent.created_at >= start,
                BookingEvent.created_at < end,
            )
        ).scalar_one()
    )
    days: dict[tuple[str, date], CapacityDay] = {}
    slots = db.execute(
        select(Slot.venue_id, Slot.starts_at, Slot.capacity, Slot.booked).where(
            Slot.starts_at >= start, Slot.starts_at < end, Slot.is_open.is_(True)
        )
    )
    for venue, starts_at, capacity, booked in slots:
        day = starts_at.astimezone(TOKYO).date()
        counted = days.setdefault((venue, day), CapacityDay(venue, day, 0, 0))
        counted.capacity += capacity
        counted.taken += booked
    found.capacity = [days[key] for key in sorted(days)]
    return found


@dataclass
class Today:
    """The day so far, for the operators' dashboards: bookings made and cancelled today (by the
    channel the booking was made through), seats still free in today's open slots not yet begun
    (per venue), and the offers held right now."""

    booked: dict[str, int] = field(default_factory=dict)
    cancelled: dict[str, int] = field(default_factory=dict)
    seats_free: dict[str, int] = field(default_factory=dict)
    holds_live: int = 0


def today_figures(db: DbSession, *, now: datetime) -> Today:
    """Today's figures (Tokyo day of ``now``) in four grouped counts, each one short statement."""
    start = datetime.combine(now.astimezone(TOKYO).date(), time(0), TOKYO)
    end = start + timedelta(days=1)
    found = Today()
    made = select(Booking.channel, func.count()).where(
        Booking.created_at >= start, Booking.created_at < end
    )
    found.booked = {c: int(n) for c, n in db.execute(made.group_by(Booking.channel))}
    cancelled = (
        select(Booking.channel, func.count(func.distinct(BookingEvent.booking_id)))
        .join(Booking, Booking.id == BookingEvent.booking_id)
        .where(
            BookingEvent.kind == "cancelled",
            BookingEvent.created_at >= start,
            BookingEvent.created_at < end,
        )
        .group_by(Booking.channel)
    )
    found.cancelled = {c: int(n) for c, n in db.execute(cancelled)}
    left = Slot.capacity - Slot.booked - Slot.held  # below 0 only above a cut capacity
    free = func.sum(case((left > 0, left), else_=0))
    seats = (
        select(Slot.venue_id, free)
        .where(Slot.starts_at >= now, Slot.starts_at < end, Slot.is_open.is_(True))
        .group_by(Slot.venue_id)
    )
    found.seats_free = {v: int(n or 0) for v, n in db.execute(seats)}
    live = select(func.count()).where(Hold.kind == "offer", Hold.expires_at > now)
    found.holds_live = int(db.execute(live.select_from(Hold)).scalar_one())
    return found
