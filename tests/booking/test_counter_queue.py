"""The day's queue at a venue: who waits in the counter's order, the numbers being called, the
pace from today's calls (the planned pace before there are enough) and the waits it makes.
A pop-up venue of the test's own, played minute by minute. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from booking import schedule, service
from booking.context import TOKYO
from booking.service import ResidentInput
from tests.conftest import FakeClock

DAY = date(2027, 1, 22)


def at(clock: FakeClock, hh: int, mm: int) -> None:
    clock.set(datetime.combine(DAY, time(hh, mm), TOKYO))


def popup_day(db: Session, clock: FakeClock, *, seats: int = 6) -> tuple[str, list[int]]:
    """A pop-up venue open 10:00-12:00 in 30-minute slots of ``seats`` seats: 5 minutes a
    resident as planned with 6 seats."""
    venue = f"queue_{clock.now.microsecond}_{id(db)}"[:40]
    schedule.add_popup_venue(db, venue_id=venue, name_ja="行列会場", name_en="", address_ja="")
    session = schedule.open_extra_session(
        db,
        venue_id=venue,
        service_id="application_help",
        day=DAY,
        opens=time(10, 0),
        closes=time(12, 0),
        slot_minutes=30,
        seats=seats,
        kind="popup",
    )
    slots = [
        int(s)
        for s in db.execute(
            text("SELECT id FROM slot WHERE session_id = :s ORDER BY starts_at"), {"s": session.id}
        ).scalars()
    ]
    return venue, slots


def book(db: Session, slot_id: int) -> service.BookingView:
    resident = ResidentInput("マドグチ タロウ", "090-3434-5656", date(1980, 3, 3))
    return service.book(db, slot_id=slot_id, party=1, resident=resident, channel="web")


def walk_in(db: Session, venue: str) -> service.WalkInView:
    return service.walk_in(db, venue_id=venue, service_id="application_help", party=1)


def test_an_empty_morning_has_the_planned_pace_and_every_seat(
    db: Session, clock: FakeClock
) -> None:
    venue, _ = popup_day(db, clock)
    at(clock, 9, 0)
    queue = service.venue_queue(db, venue_id=venue)
    assert (queue.venue_id, queue.day) == (venue, DAY)
    assert queue.waiting == [] and queue.now_calling == []
    assert queue.minutes_per_resident == pytest.approx(5.0)  # 30 minutes over 6 seats
    assert not queue.pace_from_calls
    assert queue.estimated_wait_minutes == 0
    assert queue.remaining_walk_in_seats == 4 * 6


def test_the_queue_in_the_counters_order_and_the_numbers_called(
    db: Session, clock: FakeClock
) -> None:
    venue, slots = popup_day(db, clock)
    early, late = book(db, slots[1]), book(db, slots[0])
    at(clock, 10, 0)
    first = walk_in(db, venue)  # waits from 10:00
    at(clock, 10, 1)
    service.check_in(db, code=late.code, venue_id=venue)  # booked 10:00, here 10:01: from 10:01
    at(clock, 10, 2)
    service.check_in(db, code=early.code, venue_id=venue)  # booked 10:30: waits from 10:30
    second = walk_in(db, venue)  # from 10:02
    third = walk_in(db, venue)
    queue = service.venue_queue(db, venue_id=venue)
    order = [(e.kind, e.number or e.booking_id) for e in queue.waiting]
    assert order == [
        ("walk_in", first.number),
        ("booking", late.id),
        ("walk_in", second.number),
        ("walk_in", third.number),
        ("booking", early.id),
    ]
    assert queue.estimated_wait_minutes == 5 * 5
    assert queue.remaining_walk_in_seats == 4 * 6 - 5
    [entry] = [e for e in queue.waiting if e.number == third.number]
    assert queue.ahead_of_walk_in(entry.walk_in_id or 0) == 3
    assert queue.ahead_of_booking(early.id) == 4
    assert queue.wait_for(3) == 15

    at(clock, 10, 5)
    service.call_walk_in(db, venue_id=venue, number=first.number)
    at(clock, 10, 6)
    service.call_to_counter(db, booking_id=late.id)
    service.call_walk_in(db, venue_id=venue, number=second.number)
    queue = service.venue_queue(db, venue_id=venue)
    assert [e.number or e.booking_id for e in queue.waiting] == [third.number, early.id]
    assert queue.now_calling == [second.number, first.number]  # the latest first
    assert queue.ahead_of_walk_in(entry.walk_in_id or 0) == 0
    assert queue.ahead_of_booking(late.id) is None  # called: out of the queue
    service.complete_walk_in(db, venue_id=venue, number=first.number)
    assert service.venue_queue(db, venue_id=venue).now_calling == [second.number]


def test_the_pace_follows_the_days_calls_and_slows_when_the_counter_stalls(
    db: Session, clock: FakeClock
) -> None:
    venue, _ = popup_day(db, clock, seats=10)
    at(clock, 10, 0)
    tickets = [walk_in(db, venue) for _ in range(8)]
    for minute, ticket in zip((2, 4), tickets, strict=False):
        at(clock, 10, minute)
        service.call_walk_in(db, venue_id=venue, number=ticket.number)
    queue = service.venue_queue(db, venue_id=venue)
    assert not queue.pace_from_calls  # two calls: the plan (30 minutes over 10 seats)
    assert queue.minutes_per_resident == pytest.approx(3.0)
    at(clock, 10, 8)
    service.call_walk_in(db, venue_id=venue, number=tickets[2].number)
    queue = service.venue_queue(db, venue_id=venue)
    assert queue.pace_from_calls
    assert queue.minutes_per_resident == pytest.approx(3.0)  # intervals of 2 and 4 minutes
    assert queue.estimated_wait_minutes == 5 * 3
    at(clock, 10, 20)  # nobody called for 12 minutes
    queue = service.venue_queue(db, venue_id=venue)
    assert queue.minutes_per_resident == pytest.approx((2 + 4 + 12) / 3)
    # Calls older than an hour no longer set the pace.
    clock.set(datetime.combine(DAY, time(10, 8), TOKYO) + timedelta(hours=1, minutes=1))
    assert not service.venue_queue(db, venue_id=venue).pace_from_calls


def test_another_venues_queue_and_another_day_are_apart(db: Session, clock: FakeClock) -> None:
    venue, _ = popup_day(db, clock)
    other, _ = popup_day(db, FakeClock(clock.now + timedelta(microseconds=1)))
    at(clock, 10, 0)
    walk_in(db, venue)
    assert service.venue_queue(db, venue_id=other).waiting == []
    clock.set(clock.now + timedelta(days=1))
    assert service.venue_queue(db, venue_id=venue).waiting == []
