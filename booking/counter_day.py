"""The counter's day: residents checking in (at the counter, or uploaded later from a counter
that was offline), the no-shows whose seats go back to the counter, walk-ins given the seats
free now and a queue number, and residents called to the counter.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from booking import seats
from booking.availability import check_party
from booking.changes import set_status
from booking.context import TOKYO, context
from booking.errors import BookingError
from booking.models import Booking, Slot, WalkIn
from booking.outbox import record_event
from booking.reads import booking_view
from booking.seats import rowcount
from booking.views import BookingView


def check_in(db: DbSession, *, code: str, venue_id: str) -> BookingView:
    """A resident at the counter, by the code typed or read from the confirmation's QR code:
    it must be today's booking at this venue (a late arrival marked no-show is let in too)."""
    digits = "".join(ch for ch in code if ch.isdigit())
    found = db.execute(select(Booking.id).where(Booking.code == digits)).scalar_one_or_none()
    if found is None:
        raise BookingError("booking_not_found", field="code")
    view = booking_view(db, found)
    today = context(db).today()
    if view.venue_id != venue_id or view.starts_at.astimezone(TOKYO).date() != today:
        raise BookingError("not_today_here", field="code")
    return set_status(db, booking_id=found, status="checked_in")


def check_in_offline(db: DbSession, *, booking_id: int, venue_id: str, day: date) -> bool:
    """A check-in a counter recorded while offline, uploaded later: applied once (True), or
    already so (False). The booking must be on that day at that venue. Its time has passed, so
    no seats move (a no-show's seat may have gone to a walk-in meanwhile)."""
    view = booking_view(db, booking_id)
    if view.venue_id != venue_id or view.starts_at.astimezone(TOKYO).date() != day:
        raise BookingError("not_today_here", field="code")
    if view.status in ("checked_in", "completed"):
        return False
    if view.status not in ("booked", "no_show"):
        raise BookingError("invalid_status_change", current=view.status, target="checked_in")
    # Its checked_in_at stays empty: the time the counter ticked the roster is not known, so
    # it is left out of the wait figures rather than guessed.
    result = db.execute(
        update(Booking)
        .where(Booking.id == booking_id, Booking.status == view.status)
        .values(status="checked_in", version=Booking.version + 1, updated_at=context(db).now())
        .returning(Booking.version)
    ).first()
    if result is None:
        return False  # changed meanwhile: the other change stands
    record_event(db, booking_id, "status", int(result.version))
    return True


def mark_no_shows(db: DbSession, *, late_after: timedelta) -> list[int]:
    """Bookings whose time began more than ``late_after`` ago with nobody checked in become
    no-shows, and their seats go back to the counter for walk-ins."""
    ctx = context(db)
    cutoff = ctx.now() - late_after
    today_start = datetime.combine(ctx.today(), time(0), TOKYO)
    late = db.execute(
        select(Booking.id, Booking.slot_id, Booking.party_size)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            Booking.status == "booked",
            Slot.starts_at < cutoff,
            Slot.starts_at >= today_start - timedelta(days=7),  # a missed run catches up
        )
        .order_by(Booking.id)
    ).all()
    marked = []
    for booking_id, slot_id, party in late:
        result = db.execute(
            update(Booking)
            .where(Booking.id == booking_id, Booking.status == "booked")
            .values(status="no_show", version=Booking.version + 1, updated_at=ctx.now())
            .returning(Booking.version)
        ).first()
        if result is None:  # checked in at the last moment
            continue
        seats.release_booked(db, slot_id, party)
        record_event(db, booking_id, "status", int(result.version))
        marked.append(booking_id)
    return marked


@dataclass(frozen=True)
class WalkInView:
    number: int
    slot_id: int
    starts_at: datetime
    party_size: int
    called_at: datetime | None = None
    completed_at: datetime | None = None
    service_id: str = ""
    token: str | None = None  # its ticket's link to the resident's status page
    called_desk: str | None = None


def walk_in(db: DbSession, *, venue_id: str, service_id: str, party: int) -> WalkInView:
    """A resident without a booking: seats in the slot being served now or next today (a
    no-show's, or unsold ones), and the day's next queue number."""
    ctx = context(db)
    check_party(ctx, party)
    now = ctx.now()
    day_end = datetime.combine(ctx.today() + timedelta(days=1), time(0), TOKYO)
    candidates = db.execute(
        select(Slot.id, Slot.starts_at)
        .where(
            Slot.venue_id == venue_id,
            Slot.service_id == service_id,
            Slot.is_open.is_(True),
            Slot.lottery_id.is_(None),
            Slot.ends_at > now,
            Slot.starts_at < day_end,
            Slot.booked + Slot.held + party <= Slot.capacity,
        )
        .order_by(Slot.starts_at)
        .limit(5)
    ).all()
    for slot_id, starts_at in candidates:
        if not seats.try_claim_booked(db, slot_id, party, "walk_in"):
            continue  # taken meanwhile: the next one
        number, token = _next_number(db, venue_id, service_id, slot_id, party, now)
        return WalkInView(number, slot_id, starts_at, party, service_id=service_id, token=token)
    raise BookingError("slot_full", field="service")


def _next_number(
    db: DbSession, venue_id: str, service_id: str, slot_id: int, party: int, now: datetime
) -> tuple[int, str]:
    """The walk-in's row with the venue's next queue number today, and its ticket's token."""
    ctx = context(db)
    for _ in range(5):  # a number drawn at the same moment elsewhere: the next number
        number = 1 + int(
            db.execute(
                select(func.coalesce(func.max(WalkIn.number), 0)).where(
                    WalkIn.venue_id == venue_id, WalkIn.day == ctx.today()
                )
            ).scalar_one()
        )
        token = secrets.token_urlsafe(18)  # 24 characters, nothing personal
        try:
            with db.begin_nested():
                db.add(
                    WalkIn(
                        token=token,
                        venue_id=venue_id,
                        service_id=service_id,
                        day=ctx.today(),
                        number=number,
                        party_size=party,
                        slot_id=slot_id,
                        created_at=now,
                    )
                )
        except IntegrityError:
            continue
        return number, token
    raise RuntimeError("could not draw a queue number in 5 tries")


def walk_ins_of_day(db: DbSession, *, venue_id: str, day: date) -> list[WalkInView]:
    rows = db.execute(
        select(
            WalkIn.number,
            WalkIn.slot_id,
            Slot.starts_at,
            WalkIn.party_size,
            WalkIn.called_at,
            WalkIn.completed_at,
            WalkIn.service_id,
            WalkIn.token,
            WalkIn.called_desk,
        )
        .join(Slot, Slot.id == WalkIn.slot_id)
        .where(WalkIn.venue_id == venue_id, WalkIn.day == day)
        .order_by(WalkIn.number)
    )
    return [WalkInView(*row) for row in rows]


def call_to_counter(db: DbSession, *, booking_id: int, desk: str | None = None) -> BookingView:
    """The counter calls a checked-in resident (to ``desk``, when said): their wait ends now.
    Calling again (nobody came) keeps the first call's time; a desk said again replaces it."""
    now = context(db).now()
    values: dict[str, Any] = {"called_at": func.coalesce(Booking.called_at, now), "updated_at": now}
    if desk:
        values["called_desk"] = desk[:20]
    result = db.execute(
        update(Booking)
        .where(Booking.id == booking_id, Booking.status == "checked_in")
        .values(**values)
    )
    if rowcount(result) != 1:
        current = db.execute(
            select(Booking.status).where(Booking.id == booking_id)
        ).scalar_one_or_none()
        if current is None:
            raise BookingError("booking_not_found")
        raise BookingError("invalid_status_change", current=current, target="called")
    return booking_view(db, booking_id)


def call_walk_in(
    db: DbSession, *, venue_id: str, number: int, desk: str | None = None
) -> WalkInView:
    """The counter calls today's queue number ``number`` (to ``desk``, when said): that
    walk-in's wait ends now. Calling again keeps the first time; a desk said again replaces it."""
    now = context(db).now()
    if desk:
        today = context(db).today()
        db.execute(
            update(WalkIn)
            .where(
                WalkIn.venue_id == venue_id,
                WalkIn.day == today,
                WalkIn.number == number,
                WalkIn.completed_at.is_(None),
            )
            .values(called_desk=desk[:20])
        )
    return _mark_walk_in(db, venue_id, number, WalkIn.called_at.is_(None), {"called_at": now})


def complete_walk_in(db: DbSession, *, venue_id: str, number: int) -> WalkInView:
    """The counter finished with today's queue number ``number`` (完了), as for a booking. One
    not called yet is called now too: the resident was served, so their wait ended."""
    now = context(db).now()
    done = {"completed_at": now, "called_at": func.coalesce(WalkIn.called_at, now)}
    return _mark_walk_in(db, venue_id, number, WalkIn.completed_at.is_(None), done)


def _mark_walk_in(
    db: DbSession, venue_id: str, number: int, unmarked: Any, values: dict[str, Any]
) -> WalkInView:
    """Mark today's queue number once (marking again keeps the first time); the walk-in."""
    today = context(db).today()
    db.execute(
        update(WalkIn)
        .where(WalkIn.venue_id == venue_id, WalkIn.day == today, WalkIn.number == number, unmarked)
        .values(**values)
    )
    for view in walk_ins_of_day(db, venue_id=venue_id, day=today):
        if view.number == number:
            return view
    raise BookingError("walk_in_not_found", field="number")
