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
