"""Capacity and closures, the counter managers' changes: a slot's seats, its channel quotas,
closing and reopening times, the bookings a cut or a closure would strand and the nearest free
time to move them to; and the day's slots and sessions as the managers see them. Seats raised
or reopened go to the waitlist first (booking/seats.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session as DbSession

from booking import seats
from booking.availability import availability, first_bookable_day, last_bookable_day, quota_params
from booking.changes import move
from booking.context import TOKYO, context
from booking.errors import BookingError
from booking.models import Booking, Session, Slot
from booking.reads import booking_view
from booking.views import BookingView, SlotView


@dataclass(frozen=True)
class SlotDay:
    """One slot as a manager sees it on the day view."""

    id: int
    service_id: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    booked: int
    held: int
    kept_over: int
    is_open: bool
    kept_for_phone: int
    kept_for_walk_in: int
    kept_until: datetime | None
    lottery_id: int | None = None  # kept for a lottery: no channel takes a seat first-come

    def free_for(self, channel: str, now: datetime) -> int:
        """Seats ``channel`` may still take now (holds counted as taken)."""
        if self.lottery_id is not None:
            return 0
        kept = 0
        if self.kept_until is not None and self.kept_until > now:
            params = quota_params(channel)
            kept = (
                self.kept_for_phone * params["not_phone"]
                + self.kept_for_walk_in * params["not_walk_in"]
            )
        return max(self.capacity - self.booked - self.held - kept, 0)


def slots_of_day(db: DbSession, *, venue_id: str, day: date) -> list[SlotDay]:
    """Every slot of a venue's day (open or closed), by time then service."""
    start = datetime.combine(day, time(0), TOKYO)
    rows = db.execute(
        select(
            Slot.id,
            Slot.service_id,
            Slot.starts_at,
            Slot.ends_at,
            Slot.capacity,
            Slot.booked,
            Slot.held,
            Slot.kept_over,
            Slot.is_open,
            Slot.kept_for_phone,
            Slot.kept_for_walk_in,
            Slot.kept_until,
            Slot.lottery_id,
        )
        .where(
            Slot.venue_id == venue_id,
            Slot.starts_at >= start,
            Slot.starts_at < start + timedelta(days=1),
        )
        .order_by(Slot.starts_at, Slot.service_id)
    )
    return [SlotDay(**row._mapping) for row in rows]


def stranded(db: DbSession, *, slot_ids: list[int], capacity: int | None) -> list[BookingView]:
    """The bookings a change would leave without a seat: every active booking in the slots
    when they close (``capacity`` None); otherwise, per slot, the fewest bookings whose going
    lets the rest fit the new capacity, and of those choices the one that keeps the earliest
    booked (a party of 2 and then 1 cut to 1 seat strands the 2, not both)."""
    rows = db.execute(
        select(Booking.id, Booking.slot_id, Booking.party_size)
        .where(Booking.slot_id.in_(slot_ids), Booking.status == "booked")
        .order_by(Booking.slot_id, Booking.created_at, Booking.id)
    ).all()
    by_slot: dict[int, list[tuple[int, int]]] = {}
    for booking_id, slot_id, party in rows:
        by_slot.setdefault(slot_id, []).append((booking_id, party))
    out: list[int] = []
    for in_order in by_slot.values():
        if capacity is None:
            out += [booking_id for booking_id, _ in in_order]
        else:
            kept = set(keep_within(in_order, capacity))
            out += [booking_id for booking_id, _ in in_order if booking_id not in kept]
    return [booking_view(db, booking_id) for booking_id in out]


def keep_within(in_order: list[tuple[int, int]], capacity: int) -> list[int]:
    """Of (booking, party) in booking order, the bookings to keep in ``capacity`` seats: as
    many as can fit (the smallest parties show how many), and among the ways to keep that many,
    the earliest booked. Each booking is kept when the rest can still reach that many."""

    def fits(parties: list[int], count: int, seats: int) -> bool:
        return count <= 0 or (len(parties) >= count and sum(sorted(parties)[:count]) <= seats)

    parties = [party for _, party in in_order]
    most = 0
    while fits(parties, most + 1, capacity):
        most += 1
    kept: list[int] = []
    seats = capacity
    for i, (booking_id, party) in enumerate(in_order):
        if len(kept) == most:
            break
        if party <= seats and fits(parties[i + 1 :], most - len(kept) - 1, seats - party):
            kept.append(booking_id)
            seats -= party
    return kept


def set_capacity(
    db: DbSession, *, slot_ids: list[int], capacity: int, keep_stranded: bool = False
) -> list[BookingView]:
    """Give slots a new capacity. A cut below what is booked is refused unless the manager
    keeps those bookings on purpose (the seats over capacity are recorded as kept, and nothing
    more is sold until bookings fall below the capacity). Returns the bookings kept over."""
    if capacity < 0:
        raise BookingError("invalid_party_size", field="capacity")
    if not slot_ids:
        return []
    seats.lock_slots(db, slot_ids)  # no booking slips in between the check and the change
    over = stranded(db, slot_ids=slot_ids, capacity=capacity)
    if over and not keep_stranded:
        raise BookingError("capacity_strands", field="capacity", count=len(over))
    excess = Slot.booked + Slot.held - capacity
    db.execute(
        update(Slot)
        .where(Slot.id.in_(slot_ids))
        .values(capacity=capacity, kept_over=case((excess > 0, excess), else_=0))
    )
    seats.offer_freed(db, slot_ids)  # a raise: the new seats go to the waitlist first
    return over


def close_slots(
    db: DbSession, *, slot_ids: list[int], reason: str, keep_stranded: bool = False
) -> list[BookingView]:
    """Close slots (part of a day, or all of it) to every channel. Bookings on them are
    refused unless kept on purpose (the counter will see them anyway). A session whose slots
    are all closed is closed too, with the reason."""
    if not slot_ids:
        return []
    seats.lock_slots(db, slot_ids)
    over = stranded(db, slot_ids=slot_ids, capacity=None)
    if over and not keep_stranded:
        raise BookingError("capacity_strands", field="slots", count=len(over))
    db.execute(update(Slot).where(Slot.id.in_(slot_ids)).values(is_open=False))
    sessions = select(Slot.session_id).where(Slot.id.in_(slot_ids)).distinct()
    still_open = select(Slot.session_id).where(Slot.is_open.is_(True)).distinct()
    db.execute(
        update(Session)
        .where(Session.id.in_(sessions), Session.id.not_in(still_open))
        .values(status="closed", closed_reason=reason)
    )
    return over


def set_quota(
    db: DbSession,
    *,
    slot_ids: list[int],
    phone: int,
    walk_in: int,
    release_hours_before: int | None,
) -> None:
    """Keep seats of each slot back for the phone line and for walk-ins (channel quotas)
    until ``release_hours_before`` hours before it starts or, when None, until its session
    opens on the day; then every channel may take them. No seats kept clears the quota.
    Bookings already made stay: a quota only limits what is claimed from now on."""
    if phone < 0 or walk_in < 0 or (release_hours_before is not None and release_hours_before < 0):
        raise BookingError("invalid_party_size", field="kept")
    if not slot_ids:
        return
    seats.lock_slots(db, slot_ids)
    rows = db.execute(
        select(Slot.id, Slot.capacity, Slot.starts_at, Session.day, Session.opens)
        .join(Session, Session.id == Slot.session_id)
        .where(Slot.id.in_(slot_ids))
    ).all()
    for row in rows:
        if phone + walk_in > row.capacity:
            raise BookingError(
                "quota_exceeds_capacity", field="kept", kept=phone + walk_in, capacity=row.capacity
            )
    for row in rows:
        until: datetime | None = None
        if phone or walk_in:
            until = (
                datetime.combine(row.day, row.opens, TOKYO)
                if release_hours_before is None
                else row.starts_at - timedelta(hours=release_hours_before)
            )
        db.execute(
            update(Slot)
            .where(Slot.id == row.id)
            .values(
                kept_for_phone=phone if until else 0,
                kept_for_walk_in=walk_in if until else 0,
                kept_until=until,
            )
        )


def reopen_slots(db: DbSession, *, slot_ids: list[int]) -> None:
    """Open closed slots again (and their sessions)."""
    if not slot_ids:
        return
    db.execute(update(Slot).where(Slot.id.in_(slot_ids)).values(is_open=True))
    sessions = select(Slot.session_id).where(Slot.id.in_(slot_ids)).distinct()
    db.execute(
        update(Session).where(Session.id.in_(sessions)).values(status="open", closed_reason=None)
    )
    seats.offer_freed(db, slot_ids)


RELOCATE_SEARCH_DAYS = 14


def nearest_free_slot(db: DbSession, *, booking_id: int, avoid: list[int]) -> SlotView | None:
    """The free time nearest to a booking's own, for its service and party: at the same venue
    first, then anywhere; never one of ``avoid`` (the slots being cut or closed)."""
    found = booking_view(db, booking_id)
    ctx = context(db)
    day = found.starts_at.astimezone(TOKYO).date()
    first = max(first_bookable_day(ctx, None), day - timedelta(days=RELOCATE_SEARCH_DAYS))
    last = min(last_bookable_day(ctx), day + timedelta(days=RELOCATE_SEARCH_DAYS))
    if last < first:
        return None
    for venue in (found.venue_id, None):
        free = [
            s
            for s in availability(
                db,
                service_id=found.service_id,
                venue_id=venue,
                start=first,
                end=last,
                party=found.party_size,
                limit=1000,
                channel=found.channel,
            )
            if s.id not in avoid and s.id != found.slot_id
        ]
        if free:
            return min(free, key=lambda s: abs((s.starts_at - found.starts_at).total_seconds()))
    return None


def relocate(db: DbSession, *, booking_id: int, slot_id: int) -> BookingView:
    """The ward moves a booking (capacity cut, day closed): like a move, with the notice
    saying it was the ward's doing (event ``relocated``). It may take the seats the booking's
    own channel could have taken (a phone booking those kept for the phone line)."""
    channel = db.execute(select(Booking.channel).where(Booking.id == booking_id)).scalar_one()
    return move(db, booking_id, slot_id, None, channel, event="relocated")


@dataclass(frozen=True)
class SessionDay:
    """A session as the counter's calendar shows it: when, what, how many seats in all."""

    id: int
    service_id: str
    starts_at: datetime
    ends_at: datetime
    kind: str
    is_open: bool
    closed_reason: str | None
    seats: int


def sessions_between(db: DbSession, *, venue_id: str, start: date, end: date) -> list[SessionDay]:
    """A venue's sessions from ``start`` to ``end`` (inclusive), open or closed."""
    rows = db.execute(
        select(
            Session.id,
            Session.service_id,
            Session.day,
            Session.opens,
            Session.closes,
            Session.kind,
            Session.status,
            Session.closed_reason,
            func.coalesce(func.sum(Slot.capacity), 0),
        )
        .outerjoin(Slot, Slot.session_id == Session.id)
        .where(Session.venue_id == venue_id, Session.day >= start, Session.day <= end)
        .group_by(Session.id)
        .order_by(Session.day, Session.opens, Session.service_id)
    )
    return [
        SessionDay(
            sid,
            service,
            datetime.combine(day, opens, TOKYO),
            datetime.combine(day, closes, TOKYO),
            kind,
            status == "open",
            reason,
            int(seats),
        )
        for sid, service, day, opens, closes, kind, status, reason, seats in rows
    ]
