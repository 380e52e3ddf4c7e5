"""Staged release (段階的公開) in the engine, on SQLite and PostgreSQL: a day not yet released
takes no hold and no booking (the seat statements update no row), a birth-year group books
first, a move cannot get around it, and the refusal says when the day opens."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from booking import service
from booking.context import TOKYO
from booking.errors import BookingError
from booking.models import Slot
from booking.service import ResidentInput
from tests.conftest import FakeClock, SlotMaker

OLDER = ResidentInput(name_kana="コウカイ ウメ", phone="090-3100-0001", birth_date=date(1950, 5, 5))
YOUNGER = ResidentInput(
    name_kana="コウカイ モモ", phone="090-3100-0002", birth_date=date(1990, 6, 6)
)


def day_of(db: Session, slot_id: int) -> date:
    slot = db.get(Slot, slot_id)
    assert slot is not None
    return slot.starts_at.astimezone(TOKYO).date()


def seats(db: Session, slot_id: int) -> tuple[int, int]:
    row = db.execute(select(Slot.booked, Slot.held).where(Slot.id == slot_id)).one()
    return int(row[0]), int(row[1])


def refused(code: str, work: object) -> BookingError:
    assert callable(work)
    with pytest.raises(BookingError) as caught:
        work()
    assert caught.value.code == code, caught.value.code
    return caught.value


def test_a_day_not_yet_released_takes_no_hold_and_no_booking(
    db: Session, clock: FakeClock, make_slot: SlotMaker
) -> None:
    slot = make_slot(3)
    opens = datetime(2026, 12, 18, 9, 0, tzinfo=TOKYO)
    day = day_of(db, slot)
    service.add_release(db, first_day=day, last_day=day, opens_at=opens)

    error = refused(
        "not_yet_open", lambda: service.create_hold(db, slot_id=slot, seats=1, channel="web")
    )
    assert error.status == 409
    assert error.message("ja") == (
        "この日の予約受付はまだ始まっていません。受付開始は12月18日(金) 9:00です。"
    )
    assert "Fri 18 Dec 9:00" in error.message("en")
    assert "12월 18일(금) 9:00" in error.message("ko")
    for channel in ("web", "ivr", "agent"):
        refused(
            "not_yet_open",
            lambda c=channel: service.book(db, slot_id=slot, party=1, resident=OLDER, channel=c),
        )
    assert seats(db, slot) == (0, 0)

    clock.set(opens)  # the minute it opens
    hold = service.create_hold(db, slot_id=slot, seats=1, channel="web")
    service.book(db, hold_id=hold.id, party=1, resident=OLDER, channel="web")
    service.book(db, slot_id=slot, party=1, resident=YOUNGER, channel="ivr")
    assert seats(db, slot) == (2, 0)


def test_a_birth_year_group_books_first_and_the_others_hear_when(
    db: Session, clock: FakeClock, make_slot: SlotMaker
) -> None:
    slot = make_slot(4)
    day = day_of(db, slot)
    early = clock.now - timedelta(hours=1)
    everyone = clock.now + timedelta(days=2)
    service.add_release(db, first_day=day, last_day=day, opens_at=early, born_to=1956)
    service.add_release(db, first_day=day, last_day=day, opens_at=everyone)

    service.book(db, slot_id=slot, party=1, resident=OLDER, channel="web")
    error = refused(
        "not_yet_open",
        lambda: service.book(db, slot_id=slot, party=1, resident=YOUNGER, channel="web"),
    )
    assert "12月17日(木) 10:00" in error.message("ja")
    # A hold knows nobody yet: the day is open to someone, so it is kept; the booking from it
    # is for the resident's own group, and the younger one's is refused.
    hold = service.create_hold(db, slot_id=slot, seats=1, channel="web")
    refused(
        "not_yet_open",
        lambda: service.book(db, hold_id=hold.id, party=1, resident=YOUNGER, channel="web"),
    )
    assert seats(db, slot)[0] == 1


def test_a_group_with_no_release_of_its_own_is_told_nothing_is_announced(
    db: Session, clock: FakeClock, make_slot: SlotMaker
) -> None:
    slot = make_slot(2)
    day = day_of(db, slot)
    service.add_release(
        db, first_day=day, last_day=day, opens_at=clock.now - timedelta(hours=1), born_to=1956
    )
    refused(
        "not_yet_announced",
        lambda: service.book(db, slot_id=slot, party=1, resident=YOUNGER, channel="agent"),
    )
    service.book(db, slot_id=slot, party=1, resident=OLDER, channel="agent")


def test_a_move_cannot_get_around_a_release(
    db: Session, clock: FakeClock, make_slot: SlotMaker
) -> None:
    here = there = make_slot(2)
    while day_of(db, there) == day_of(db, here):  # a slot of another day
        there = make_slot(2)
    made = service.book(db, slot_id=here, party=1, resident=YOUNGER, channel="web")
    later = day_of(db, there)
    service.add_release(
        db,
        first_day=later,
        last_day=later,
        opens_at=clock.now + timedelta(days=1),
        service_id="application_help",
    )
    refused(
        "not_yet_open",
        lambda: service.reschedule(db, code=made.code, phone=YOUNGER.phone, slot_id=there),
    )
    assert seats(db, there) == (0, 0)
    assert service.get_booking(db, booking_id=made.id).slot_id == here


def test_a_release_covers_only_its_venue_service_and_days(
    db: Session, clock: FakeClock, make_slot: SlotMaker
) -> None:
    slot = make_slot(3)
    day = day_of(db, slot)
    later = clock.now + timedelta(days=3)
    service.add_release(db, first_day=day, last_day=day, opens_at=later, service_id="pickup")
    service.add_release(db, first_day=day, last_day=day, opens_at=later, venue_id="yotsuya")
    service.add_release(
        db, first_day=day + timedelta(days=1), last_day=day + timedelta(days=9), opens_at=later
    )
    service.book(db, slot_id=slot, party=1, resident=OLDER, channel="web")
    view = service.add_release(db, first_day=day, last_day=day, opens_at=later)
    refused(
        "not_yet_open",
        lambda: service.book(db, slot_id=slot, party=1, resident=YOUNGER, channel="web"),
    )
    service.remove_release(db, release_id=view.id)
    service.book(db, slot_id=slot, party=1, resident=YOUNGER, channel="web")
    upcoming = service.list_releases(db, upcoming_only=True)
    assert len([r for r in upcoming if r.first_day <= day <= r.last_day]) >= 2


def test_a_release_must_run_forwards(db: Session, clock: FakeClock) -> None:
    refused(
        "release_days_reversed",
        lambda: service.add_release(
            db, first_day=date(2027, 1, 20), last_day=date(2027, 1, 19), opens_at=clock.now
        ),
    )
    refused(
        "release_years_reversed",
        lambda: service.add_release(
            db,
            first_day=date(2027, 1, 20),
            last_day=date(2027, 1, 20),
            opens_at=clock.now,
            born_from=1990,
            born_to=1950,
        ),
    )
