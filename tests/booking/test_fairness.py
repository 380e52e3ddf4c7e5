"""The engine's fairness limits, on SQLite and PostgreSQL: one active pickup booking per notice
number (also under a race of real transactions), and a monthly limit on a phone number's own
cancellations that an agent's cancellation does not count against."""

from __future__ import annotations

import secrets
import threading
from datetime import date, datetime

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from booking import fairness, service
from booking.context import TOKYO
from booking.errors import BookingError
from booking.models import Booking, BookingMember
from booking.service import MemberInput, ResidentInput
from config.db import make_sessionmaker
from tests.booking.test_race import new_slots, only_booking_errors, race
from tests.conftest import FakeClock, SlotMaker, make_context


def notice() -> str:
    """A notice number no other test uses."""
    return f"R{secrets.randbelow(100):02d}-{secrets.randbelow(1_000_000):06d}"


def pickup(phone: str, *numbers: str) -> ResidentInput:
    return ResidentInput(
        name_kana="ウケトリ ジロウ",
        phone=phone,
        birth_date=date(1975, 3, 3),
        members=[MemberInput(n) for n in numbers],
    )


def code_of(work: object) -> str:
    assert callable(work)
    with pytest.raises(BookingError) as caught:
        work()
    return caught.value.code


def test_a_notice_number_books_one_pickup_at_a_time(
    db: Session, clock: FakeClock, make_slot: SlotMaker
) -> None:
    first, second = make_slot(4, service="pickup"), make_slot(4, service="pickup")
    mine, other = notice(), notice()
    made = service.book(
        db, slot_id=first, party=2, resident=pickup("090-3200-0001", mine, other), channel="web"
    )
    # Another household member's number, another phone, another channel, a hold: all refused.
    again = pickup("090-3200-0002", mine.lower())
    assert (
        code_of(lambda: service.book(db, slot_id=second, party=1, resident=again, channel="ivr"))
        == "notice_already_booked"
    )
    error = BookingError("notice_already_booked")
    assert error.status == 409 and "1回" in error.message("ja")
    hold = service.create_hold(db, slot_id=second, seats=1, channel="web")
    assert (
        code_of(lambda: service.book(db, hold_id=hold.id, party=1, resident=again, channel="web"))
        == "notice_already_booked"
    )
    # Once the first booking is cancelled the number is free again.
    service.cancel_booking(db, booking_id=made.id)
    service.book(db, slot_id=second, party=1, resident=again, channel="agent")


def test_other_services_and_past_or_done_pickups_do_not_count(
    db: Session, clock: FakeClock, make_slot: SlotMaker
) -> None:
    number = notice()
    help_slot = make_slot(2)  # application help: a notice number may be given, not counted
    service.book(
        db, slot_id=help_slot, party=1, resident=pickup("090-3200-0003", number), channel="web"
    )
    pickup_slot = make_slot(2, service="pickup")
    made = service.book(
        db, slot_id=pickup_slot, party=1, resident=pickup("090-3200-0004", number), channel="web"
    )
    service.set_status(db, booking_id=made.id, status="checked_in")
    service.set_status(db, booking_id=made.id, status="completed")
    service.book(
        db,
        slot_id=make_slot(2, service="pickup"),
        party=1,
        resident=pickup("090-3200-0005", number),
        channel="web",
    )


def test_one_pickup_per_notice_number_under_a_race(committed: sessionmaker[Session]) -> None:
    factory = committed
    slots = pickup_slots(factory, *([3] * 4))
    number = notice()

    def work(db: Session, i: int) -> object:
        resident = pickup(f"090{32_100_000 + i:08d}", number)
        return service.book(
            db, slot_id=slots[i % 4], party=1, resident=resident, channel=("web", "ivr")[i % 2]
        )

    outcomes = race(factory, 12, work)
    only_booking_errors(outcomes, "notice_already_booked")
    assert sum(1 for o in outcomes if o.error is None) == 1
    assert booked_with(factory, number) == 1


def test_the_race_test_catches_a_check_without_the_lock(
    engine: Engine, committed: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the advisory lock the same statement lets racers through: the test can fail."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises whole transactions (BEGIN IMMEDIATE): no race to lose")
    monkeypatch.setattr(fairness, "lock_notices", lambda _db, _digests: None)
    factory = committed
    slots = pickup_slots(factory, *([1] * 6))
    number = notice()
    # Every racer has booked before any commits: the race is lost for certain, however loaded
    # the machine (each has a slot of its own, so no slot's row lock orders them).
    booked = threading.Barrier(6, timeout=60)

    def work(db: Session, i: int) -> object:
        resident = pickup(f"090{32_200_000 + i:08d}", number)
        made = service.book(db, slot_id=slots[i], party=1, resident=resident, channel="web")
        booked.wait()
        return made

    race(factory, 6, work)
    assert booked_with(factory, number) == 6
    with factory() as db:  # leave no duplicate for later tests to meet
        for booking_id in db.execute(
            select(BookingMember.booking_id).where(
                BookingMember.notice_number_hmac == db.info["booking"].vault.digest(number)
            )
        ).scalars():
            service.cancel_booking(db, booking_id=booking_id)
        db.commit()


def pickup_slots(factory: sessionmaker[Session], *capacities: int) -> list[int]:
    with factory() as db:
        ids = [SlotMaker(db)(c, service="pickup") for c in capacities]
        db.commit()
    return ids


def booked_with(factory: sessionmaker[Session], number: str) -> int:
    with factory() as db:
        digest = db.info["booking"].vault.digest(number)
        return int(
            db.execute(
                select(func.count())
                .select_from(BookingMember)
                .join(Booking, Booking.id == BookingMember.booking_id)
                .where(BookingMember.notice_number_hmac == digest, Booking.status == "booked")
            ).scalar_one()
        )


# --- Cancellations a month --------------------------------------------------------------------


def test_a_phone_number_cancels_only_so_many_times_a_month(
    db: Session, clock: FakeClock, make_slot: SlotMaker
) -> None:
    db.info["booking"] = make_context(clock, max_cancels_per_month=2)
    phone = f"090{40_000_000 + secrets.randbelow(50_000_000):08d}"
    resident = ResidentInput(
        name_kana="トリケシ サブロウ", phone=phone, birth_date=date(1980, 1, 1)
    )
    made = [
        service.book(db, slot_id=make_slot(2), party=1, resident=resident, channel="web")
        for _ in range(5)
    ]
    service.cancel(db, code=made[0].code, phone=phone)
    service.cancel_by_resident(db, booking_id=made[1].id)
    service.cancel(db, code=made[0].code, phone=phone)  # again: no change, not counted
    error = BookingError("too_many_cancels", max=2)
    assert error.status == 429 and "2回" in error.message("ja")
    assert code_of(lambda: service.cancel(db, code=made[2].code, phone=phone)) == "too_many_cancels"
    assert service.get_booking(db, booking_id=made[2].id).status == "booked"
    # An agent cancelling for the caller is not limited.
    assert service.cancel_booking(db, booking_id=made[2].id).status == "cancelled"
    clock.set(datetime(2027, 1, 1, 0, 5, tzinfo=TOKYO))  # a new month
    assert service.cancel(db, code=made[3].code, phone=phone).status == "cancelled"


def test_racing_cancellations_stop_at_the_limit(engine: Engine, clock: FakeClock) -> None:
    factory = make_sessionmaker(engine, make_context(clock, max_cancels_per_month=3))
    slots = new_slots(factory, *([1] * 8))
    phone = f"090{40_000_000 + secrets.randbelow(50_000_000):08d}"
    resident = ResidentInput(name_kana="トリケシ シロウ", phone=phone, birth_date=date(1980, 1, 1))
    with factory() as db:
        made = [
            service.book(db, slot_id=s, party=1, resident=resident, channel="web") for s in slots
        ]
        db.commit()

    def work(db: Session, i: int) -> object:
        return service.cancel(db, code=made[i].code, phone=phone)

    outcomes = race(factory, len(made), work)
    only_booking_errors(outcomes, "too_many_cancels")
    assert sum(1 for o in outcomes if o.error is None) == 3
