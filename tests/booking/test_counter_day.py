"""The counter's day: check-in by code (today, this venue only), no-shows marked after the
lateness allowed with their seats going to walk-ins, walk-ins numbered. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from booking import service
from booking.context import TOKYO
from booking.errors import BookingError
from booking.service import ResidentInput
from tests.conftest import FakeClock, SlotMaker

LATE = timedelta(minutes=15)


def book(db: Session, slot_id: int, party: int = 1) -> service.BookingView:
    resident = ResidentInput("マドグチ ハナコ", "090-1212-3434", date(1975, 5, 5))
    return service.book(db, slot_id=slot_id, party=party, resident=resident, channel="web")


def booked(db: Session, slot_id: int) -> int:
    return int(
        db.execute(text("SELECT booked FROM slot WHERE id = :s"), {"s": slot_id}).scalar_one()
    )


def test_check_in_is_for_todays_bookings_at_this_counter(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    made = book(db, make_slot(2))
    with pytest.raises(BookingError) as early:
        service.check_in(db, code=made.code, venue_id="main")  # not today yet
    assert early.value.code == "not_today_here"
    clock.set(made.starts_at.astimezone(TOKYO) + timedelta(minutes=1))
    with pytest.raises(BookingError):
        service.check_in(db, code=made.code, venue_id="yotsuya")  # another counter
    with pytest.raises(BookingError):
        service.check_in(db, code="00000000", venue_id="main")
    # A QR scanner types the code as the confirmation's QR code holds it.
    assert service.check_in(db, code=f" {made.code}\n", venue_id="main").status == "checked_in"
    assert service.set_status(db, booking_id=made.id, status="completed").status == "completed"


def test_no_shows_give_their_seats_to_walk_ins_who_get_numbers(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    slot = make_slot(3)
    away, here = book(db, slot), book(db, slot)
    clock.set(away.starts_at.astimezone(TOKYO) + timedelta(minutes=5))
    service.check_in(db, code=here.code, venue_id="main")
    first = service.walk_in(db, venue_id="main", service_id="application_help", party=1)
    assert first.slot_id == slot  # the unsold seat of the slot being served
    assert booked(db, slot) == 3  # full
    # Not late enough yet (other tests' committed bookings may be due: only ours matter here).
    assert away.id not in service.mark_no_shows(db, late_after=LATE)
    clock.set(away.starts_at.astimezone(TOKYO) + timedelta(minutes=16))
    marked = service.mark_no_shows(db, late_after=LATE)
    assert away.id in marked and here.id not in marked
    assert service.get_booking(db, booking_id=away.id).status == "no_show"
    assert booked(db, slot) == 2  # the no-show's seat is free again
    second = service.walk_in(db, venue_id="main", service_id="application_help", party=1)
    assert second.slot_id == slot  # and a walk-in takes it
    assert second.number == first.number + 1
    assert booked(db, slot) == 3
    day = clock.now.astimezone(TOKYO).date()
    numbers = [w.number for w in service.walk_ins_of_day(db, venue_id="main", day=day)]
    assert numbers[-2:] == [first.number, second.number]
    assert away.id not in service.mark_no_shows(db, late_after=LATE)  # marked once


def test_the_days_figures_count_no_shows_walk_ins_and_waits(db: Session, clock: FakeClock) -> None:
    """A pop-up venue's day played minute by minute; the figures are checked against the
    counts and waits worked out by hand from the script."""
    from datetime import datetime, time

    from booking import schedule

    venue = f"figures_{clock.now.microsecond}_{id(db)}"[:40]
    schedule.add_popup_venue(db, venue_id=venue, name_ja="集計会場", name_en="", address_ja="")
    day = date(2027, 1, 20)
    session = schedule.open_extra_session(
        db,
        venue_id=venue,
        service_id="application_help",
        day=day,
        opens=time(10, 0),
        closes=time(11, 0),
        slot_minutes=30,
        seats=4,
        kind="popup",
    )
    first, second = (
        int(s)
        for s in db.execute(
            text("SELECT id FROM slot WHERE session_id = :s ORDER BY starts_at"), {"s": session.id}
        ).scalars()
    )
    early, late, missed, gone = (
        book(db, first, 2),
        book(db, first),
        book(db, first),
        book(db, second),
    )
    service.cancel_booking(db, booking_id=gone.id)  # cancelled: not counted at all

    def at(hh: int, mm: int) -> None:
        clock.set(datetime.combine(day, time(hh, mm), TOKYO))

    at(9, 50)
    service.check_in(db, code=early.code, venue_id=venue)  # early: waits from 10:00
    at(10, 12)
    service.check_in(db, code=late.code, venue_id=venue)
    at(10, 16)
    assert missed.id in service.mark_no_shows(db, late_after=LATE)
    ticket = service.walk_in(db, venue_id=venue, service_id="application_help", party=3)
    at(10, 5 + 20)
    service.call_to_counter(db, booking_id=early.id)  # 25 min after 10:00
    at(10, 30)
    service.call_to_counter(db, booking_id=late.id)  # 18 min after 10:12
    service.call_to_counter(db, booking_id=late.id)  # a second call keeps the first time
    at(10, 40)
    service.call_walk_in(db, venue_id=venue, number=ticket.number)  # 24 min after 10:16
    service.set_status(db, booking_id=early.id, status="completed")
    with pytest.raises(BookingError):
        service.call_to_counter(db, booking_id=missed.id)  # a no-show cannot be called
    with pytest.raises(BookingError):
        service.call_walk_in(db, venue_id=venue, number=ticket.number + 1)

    [figures] = service.counter_figures(db, first=day, last=day, venue_id=venue)
    assert (figures.venue_id, figures.day) == (venue, day)
    assert (figures.bookings, figures.people_booked) == (3, 4)
    assert (figures.arrived, figures.completed, figures.no_shows) == (2, 1, 1)
    assert (figures.walk_ins, figures.walk_in_people) == (1, 3)
    assert sorted(figures.waits) == [18.0, 24.0, 25.0]
    assert figures.average_wait == pytest.approx((18 + 24 + 25) / 3)
    assert figures.wait_90th == 25.0 and figures.longest_wait == 25.0
    assert figures.no_show_rate == pytest.approx(1 / 3)
    assert (
        service.counter_figures(
            db, first=day + timedelta(days=1), last=day + timedelta(days=9), venue_id=venue
        )
        == []
    )


def test_a_no_show_arriving_late_takes_the_seats_back(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    slot = make_slot(2)
    late, other = book(db, slot), book(db, slot)
    third = book(db, make_slot(1))
    clock.set(late.starts_at.astimezone(TOKYO) + timedelta(minutes=1))
    service.check_in(db, code=other.code, venue_id="main")
    clock.set(late.starts_at.astimezone(TOKYO) + timedelta(minutes=16))
    assert late.id in service.mark_no_shows(db, late_after=LATE)
    assert booked(db, slot) == 1
    arrived = service.check_in(db, code=late.code, venue_id="main")  # 16 minutes late
    assert arrived.status == "checked_in"
    assert booked(db, slot) == 2  # the seat is theirs again
    # When a walk-in took the seat meanwhile, the late resident is counted over the capacity.
    clock.set(third.starts_at.astimezone(TOKYO) + timedelta(minutes=16))
    service.mark_no_shows(db, late_after=LATE)
    db.execute(text("UPDATE slot SET booked = capacity WHERE id = :s"), {"s": third.slot_id})
    service.check_in(db, code=third.code, venue_id="main")
    row = db.execute(
        text("SELECT capacity, booked, kept_over FROM slot WHERE id = :s"), {"s": third.slot_id}
    ).one()
    assert (row.booked, row.kept_over) == (row.capacity + 1, 1)


def test_a_no_show_marked_by_hand_gives_its_seats_back_once(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    """The counter marking a no-show itself releases the seats like the automatic marking,
    so the resident arriving after all takes them back exactly once."""
    slot = make_slot(2)
    made = book(db, slot, 2)
    clock.set(made.starts_at.astimezone(TOKYO) + timedelta(minutes=20))
    service.set_status(db, booking_id=made.id, status="no_show")
    assert booked(db, slot) == 0
    service.check_in(db, code=made.code, venue_id="main")
    assert booked(db, slot) == 2
