"""Channel quotas: seats a slot keeps for the phone line and for walk-ins until a set time.

The web may not take the last (phone + walk-in) seats, the phone line (IVR, agents) not the
last walk-in seats, a walk-in any; after the release time every channel may take them all.
The same limits hold in the seat UPDATE, the one-statement PostgreSQL booking, holds, moves
and the availability reads, on SQLite and PostgreSQL, and under racing connections."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from booking import service
from booking.context import TOKYO
from booking.errors import BookingError
from booking.models import Booking, Slot
from booking.service import ResidentInput
from tests.booking.test_race import ledger, new_slots, only_booking_errors, race, resident
from tests.conftest import FakeClock, SlotMaker

PHONE = "090-5555-0101"


def book(db: Session, slot_id: int, channel: str, party: int = 1) -> service.BookingView:
    who = ResidentInput("ワク ハナコ", PHONE, date(1955, 3, 3))
    return service.book(db, slot_id=slot_id, party=party, resident=who, channel=channel)


def refused(db: Session, slot_id: int, channel: str, party: int = 1) -> str:
    with pytest.raises(BookingError) as caught, db.begin_nested():
        book(db, slot_id, channel, party)
    return caught.value.code


def starts(db: Session, slot_id: int) -> datetime:
    return db.execute(select(Slot.starts_at).where(Slot.id == slot_id)).scalar_one()


def free(db: Session, slot_id: int, channel: str) -> int:
    """What the availability read offers ``channel`` in this slot (0 when not listed)."""
    day = starts(db, slot_id).astimezone(TOKYO).date()
    found = service.availability(
        db, service_id="application_help", venue_id="main", start=day, end=day, channel=channel
    )
    return next((s.remaining for s in found if s.id == slot_id), 0)


def test_each_channel_takes_only_the_seats_left_to_it(db: Session, make_slot: SlotMaker) -> None:
    slot = make_slot(6)
    service.set_quota(db, slot_ids=[slot], phone=2, walk_in=1, release_hours_before=48)
    assert (free(db, slot, "web"), free(db, slot, "ivr"), free(db, slot, "agent")) == (3, 5, 5)
    book(db, slot, "web", 3)
    assert refused(db, slot, "web") == "slot_full"  # the 3 left are kept
    assert free(db, slot, "web") == 0
    book(db, slot, "ivr", 1)
    book(db, slot, "agent", 1)
    assert refused(db, slot, "agent") == "slot_full"  # the last seat is the walk-ins'
    with pytest.raises(BookingError), db.begin_nested():
        service.create_hold(db, slot_id=slot, seats=1, channel="ivr")
    view = service.slots_of_day(db, venue_id="main", day=starts(db, slot).astimezone(TOKYO).date())
    row = next(s for s in view if s.id == slot)
    now = db.info["booking"].now()
    assert (row.free_for("web", now), row.free_for("ivr", now), row.free_for("walk_in", now)) == (
        0,
        0,
        1,
    )
    assert (row.booked, row.kept_for_phone, row.kept_for_walk_in) == (5, 2, 1)


def test_the_phone_line_may_also_take_unkept_seats(db: Session, make_slot: SlotMaker) -> None:
    """Nested limits: the phone line is not confined to its kept seats."""
    slot = make_slot(4)
    service.set_quota(db, slot_ids=[slot], phone=1, walk_in=0, release_hours_before=24)
    book(db, slot, "ivr", 3)
    assert refused(db, slot, "web") == "slot_full"  # only the kept seat is left
    book(db, slot, "agent", 1)
    assert refused(db, slot, "ivr") == "slot_full"


def test_at_the_release_time_every_channel_may_take_them(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    slot = make_slot(3)
    service.set_quota(db, slot_ids=[slot], phone=2, walk_in=1, release_hours_before=48)
    begins = starts(db, slot)
    assert refused(db, slot, "web") == "slot_full"
    clock.set(begins - timedelta(hours=48, minutes=1))
    assert refused(db, slot, "web") == "slot_full"  # a minute early
    clock.set(begins - timedelta(hours=48))
    assert free(db, slot, "web") == 3
    book(db, slot, "web", 3)
    assert refused(db, slot, "ivr") == "slot_full"


def test_released_at_opening_on_the_day(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    slot = make_slot(2)
    service.set_quota(db, slot_ids=[slot], phone=0, walk_in=2, release_hours_before=None)
    begins = starts(db, slot)
    kept_until = db.execute(select(Slot.kept_until).where(Slot.id == slot)).scalar_one()
    assert kept_until == begins  # an extra session of one slot opens when its slot starts
    clock.set(begins - timedelta(days=1))
    assert free(db, slot, "web") == free(db, slot, "ivr") == 0
    marks = service.month_marks(
        db, service_id="application_help", venue_id="main", month=begins.date(), channel="web"
    )
    web_free = next(m.free for m in marks if m.day == begins.astimezone(TOKYO).date())
    marks = service.month_marks(
        db, service_id="application_help", venue_id="main", month=begins.date(), channel="walk_in"
    )
    walk_in_free = next(m.free for m in marks if m.day == begins.astimezone(TOKYO).date())
    assert walk_in_free - web_free == 2  # the month calendar counts the same seats


def test_a_walk_in_takes_the_seats_kept_for_walk_ins(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    slot = make_slot(2)
    while starts(db, slot).astimezone(TOKYO).hour == 0:
        # Five minutes before a midnight slot is the day before: not a walk-in's "today".
        slot = make_slot(2)
    service.set_quota(db, slot_ids=[slot], phone=0, walk_in=1, release_hours_before=0)
    book(db, slot, "ivr", 1)
    assert refused(db, slot, "agent") == "slot_full"
    begins = starts(db, slot)
    # Only this slot serves walk-ins that day (rolled back with the test).
    db.execute(
        update(Slot)
        .where(Slot.venue_id == "main", Slot.id != slot)
        .where(
            Slot.starts_at > begins - timedelta(days=1), Slot.starts_at < begins + timedelta(days=1)
        )
        .values(is_open=False)
    )
    clock.set(begins - timedelta(minutes=5))  # on the day, before the slot starts
    taken = service.walk_in(db, venue_id="main", service_id="application_help", party=1)
    assert taken.slot_id == slot
    assert db.execute(select(Slot.booked).where(Slot.id == slot)).scalar_one() == 2


def test_a_quota_beyond_the_capacity_is_refused_and_none_clears_it(
    db: Session, make_slot: SlotMaker
) -> None:
    small, big = make_slot(2), make_slot(8)
    with pytest.raises(BookingError) as caught:
        service.set_quota(db, slot_ids=[big, small], phone=2, walk_in=1, release_hours_before=48)
    assert caught.value.code == "quota_exceeds_capacity"
    assert caught.value.status == 422
    assert "3席" in caught.value.message("ja")
    with pytest.raises(BookingError):
        service.set_quota(db, slot_ids=[big], phone=-1, walk_in=0, release_hours_before=48)
    service.set_quota(db, slot_ids=[big], phone=3, walk_in=0, release_hours_before=48)
    assert free(db, big, "web") == 5
    service.set_quota(db, slot_ids=[big], phone=0, walk_in=0, release_hours_before=48)
    assert free(db, big, "web") == 8
    cleared = db.execute(
        select(Slot.kept_for_phone, Slot.kept_for_walk_in, Slot.kept_until).where(Slot.id == big)
    ).one()
    assert tuple(cleared) == (0, 0, None)


def test_a_move_takes_seats_as_its_channel_may(db: Session, make_slot: SlotMaker) -> None:
    here, there = make_slot(3), make_slot(1)
    service.set_quota(db, slot_ids=[there], phone=1, walk_in=0, release_hours_before=48)
    web = book(db, here, "web")
    with pytest.raises(BookingError) as caught:
        service.reschedule_booking(db, booking_id=web.id, slot_id=there)
    assert caught.value.code == "slot_full"
    phone = book(db, here, "ivr")
    moved = service.relocate(db, booking_id=phone.id, slot_id=there)  # its own channel: phone
    assert moved.slot_id == there
    hold_here = service.create_hold(db, slot_id=here, seats=1, channel="web")
    assert hold_here.slot_id == here


def test_a_hold_rebooked_for_another_party_keeps_its_channel(
    db: Session, make_slot: SlotMaker
) -> None:
    slot = make_slot(3)
    service.set_quota(db, slot_ids=[slot], phone=2, walk_in=0, release_hours_before=48)
    hold = service.create_hold(db, slot_id=slot, seats=1, channel="ivr")
    who = ResidentInput("ワク タロウ", PHONE, date(1950, 1, 1))
    made = service.book(db, hold_id=hold.id, party=2, resident=who, channel="ivr")
    assert made.party_size == 2  # the phone line's share allowed 2 more
    assert db.execute(select(Booking.slot_id).where(Booking.id == made.id)).scalar_one() == slot


def test_racing_channels_never_take_kept_seats(committed: sessionmaker[Session]) -> None:
    """Web and phone bookings at once on one slot: the web never gets past its share, the
    phone line fills the rest, the slot never past its capacity."""
    (slot,) = new_slots(committed, 10)
    with committed() as db:
        service.set_quota(db, slot_ids=[slot], phone=4, walk_in=0, release_hours_before=48)
        db.commit()
    channels = ["web" if i % 3 else "ivr" for i in range(36)]

    def work(db: Session, i: int) -> object:
        return service.book(db, slot_id=slot, party=1, resident=resident(i), channel=channels[i])

    outcomes = race(committed, len(channels), work)
    only_booking_errors(outcomes, "slot_full")
    won = [channels[i] for i, o in enumerate(outcomes) if o.error is None]
    cap, booked, held, seats = ledger(committed, slot)
    assert booked == seats == len(won) == cap == 10  # 12 phone racers: every seat went
    assert won.count("web") <= 6
    assert won.count("ivr") >= 4
    assert held == 0
