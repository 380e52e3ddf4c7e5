"""Races between real connections, on SQLite and PostgreSQL: no slot is ever booked past capacity.

Each racer has its own connection and transaction and commits, as concurrent requests do; a
barrier releases them together. The last test shows the harness catches a naive
count-then-insert booking, so a green race test means something.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from booking import codes, service
from booking.errors import BookingError
from booking.models import Booking, Slot
from booking.service import ResidentInput
from tests.conftest import FakeClock, SlotMaker

CLIENTS = 60


def resident(i: int) -> ResidentInput:
    return ResidentInput(
        name_kana="キョウソウ ハナコ", phone=f"090{10_000_000 + i:08d}", birth_date=date(1960, 1, 1)
    )


@dataclass
class Outcome:
    value: object = None
    error: BaseException | None = None


def race(
    factory: sessionmaker[Session], clients: int, work: Callable[[Session, int], object]
) -> list[Outcome]:
    """Run ``work`` in ``clients`` threads released together; each commits or rolls back."""
    barrier = threading.Barrier(clients)
    outcomes = [Outcome() for _ in range(clients)]

    def run(i: int) -> None:
        with factory() as db:
            barrier.wait()
            try:
                outcomes[i].value = work(db, i)
                db.commit()
            except BaseException as exc:  # recorded and asserted on by the test
                db.rollback()
                outcomes[i].error = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racer hung (deadlock?)"
    return outcomes


def new_slots(factory: sessionmaker[Session], *capacities: int) -> list[int]:
    with factory() as db:
        ids = [SlotMaker(db)(c) for c in capacities]
        db.commit()
    return ids


def ledger(factory: sessionmaker[Session], slot_id: int) -> tuple[int, int, int, int]:
    """(capacity, booked counter, held counter, seats of booked bookings) for one slot."""
    with factory() as db:
        cap, booked, held = db.execute(
            select(Slot.capacity, Slot.booked, Slot.held).where(Slot.id == slot_id)
        ).one()
        seats = db.execute(
            select(func.coalesce(func.sum(Booking.party_size), 0)).where(
                Booking.slot_id == slot_id, Booking.status == "booked"
            )
        ).scalar_one()
    return int(cap), int(booked), int(held), int(seats)


def only_booking_errors(outcomes: list[Outcome], *allowed: str) -> None:
    for o in outcomes:
        if o.error is not None:
            assert isinstance(o.error, BookingError), repr(o.error)
            assert o.error.code in allowed, o.error.code


def test_mixed_parties_book_exactly_the_seats_there_were(
    committed: sessionmaker[Session],
) -> None:
    (slot,) = new_slots(committed, 10)
    parties = [random.Random(i).choice((1, 1, 2, 3)) for i in range(CLIENTS)]

    def work(db: Session, i: int) -> object:
        return service.book(db, slot_id=slot, party=parties[i], resident=resident(i), channel="web")

    outcomes = race(committed, CLIENTS, work)
    only_booking_errors(outcomes, "slot_full")
    won = sum(parties[i] for i, o in enumerate(outcomes) if o.error is None)
    cap, booked, held, seats = ledger(committed, slot)
    assert booked == won == seats
    assert booked <= cap
    assert held == 0
    # Nobody was turned away who would have fitted: every refusal was for more than was left.
    left = cap - booked
    assert all(parties[i] > left for i, o in enumerate(outcomes) if o.error is not None)
    assert sum(1 for o in outcomes if o.error is None) >= 4


def test_holds_and_bookings_race_for_the_same_seats(committed: sessionmaker[Session]) -> None:
    (slot,) = new_slots(committed, 7)

    def work(db: Session, i: int) -> object:
        if i % 2:
            hold = service.create_hold(db, slot_id=slot, seats=1 + i % 3, channel="ivr")
            return service.book(
                db, hold_id=hold.id, party=1 + i % 3, resident=resident(i), channel="ivr"
            )
        return service.book(db, slot_id=slot, party=1 + i % 2, resident=resident(i), channel="web")

    outcomes = race(committed, 40, work)
    only_booking_errors(outcomes, "slot_full")
    cap, booked, held, seats = ledger(committed, slot)
    assert booked == seats <= cap
    assert held == 0
    assert booked >= cap - 1  # parties of 1 were among the racers until the end


def test_racing_moves_and_cancels_keep_the_count(committed: sessionmaker[Session]) -> None:
    a, b, c = new_slots(committed, 12, 6, 4)
    codes_on: dict[int, list[tuple[str, int]]] = {a: [], b: [], c: []}
    with committed() as db:
        for i, (slot, party) in enumerate([(a, 2)] * 6 + [(b, 1)] * 6 + [(c, 2)] * 2):
            made = service.book(db, slot_id=slot, party=party, resident=resident(i), channel="web")
            codes_on[slot].append((made.code, i))
        db.commit()
    plan: list[tuple[str, int, str, int | None]] = []
    for slot, others in ((a, (b, c)), (b, (a, c)), (c, (a, b))):
        for k, (code, i) in enumerate(codes_on[slot]):
            if k % 3 == 0:
                plan.append(("cancel", i, code, None))
            else:
                plan.append(("move", i, code, others[k % 2]))

    def work(db: Session, n: int) -> object:
        action, i, code, target = plan[n]
        phone = resident(i).phone
        if action == "cancel":
            return service.cancel(db, code=code, phone=phone)
        return service.reschedule(db, code=code, phone=phone, slot_id=target)

    outcomes = race(committed, len(plan), work)
    only_booking_errors(outcomes, "slot_full")
    for slot in (a, b, c):
        cap, booked, held, seats = ledger(committed, slot)
        assert booked == seats, f"slot {slot}: counter {booked} != bookings {seats}"
        assert booked <= cap
        assert held == 0
    with committed() as db:
        statuses = db.execute(
            select(Booking.status, func.count())
            .where(Booking.slot_id.in_((a, b, c)))
            .group_by(Booking.status)
        ).all()
    assert dict(statuses).get("cancelled") == sum(1 for p in plan if p[0] == "cancel")


def test_one_retry_key_books_once(committed: sessionmaker[Session]) -> None:
    (slot,) = new_slots(committed, 30)
    key = f"double-click-{slot}"

    def work(db: Session, _i: int) -> object:
        return service.book(
            db, slot_id=slot, party=2, resident=resident(0), channel="web", idempotency_key=key
        )

    outcomes = race(committed, 20, work)
    assert [o.error for o in outcomes if o.error is not None] == []
    made = {o.value.code for o in outcomes if isinstance(o.value, service.BookingView)}
    assert len(made) == 1
    assert ledger(committed, slot)[1:] == (2, 0, 2)


# --- The harness can fail ---------------------------------------------------------------


def naive_book(
    db: Session, slot_id: int, party: int, between: Callable[[], object] = lambda: None
) -> None:
    """Count-then-insert, the way double bookings happen: check the seats, then write."""
    cap, venue, svc = db.execute(
        text("SELECT capacity, venue_id, service_id FROM slot WHERE id = :id"), {"id": slot_id}
    ).one()
    taken = db.execute(
        text(
            "SELECT COALESCE(SUM(party_size), 0) FROM booking "
            "WHERE slot_id = :id AND status = 'booked'"
        ),
        {"id": slot_id},
    ).scalar_one()
    time.sleep(0.005)  # the gap every real request has between its read and its write
    between()
    if taken + party > cap:
        raise BookingError("slot_full")
    now = datetime.now(UTC)
    db.execute(
        text(
            "INSERT INTO booking (code, slot_id, venue_id, service_id, party_size, channel, "
            "status, language, version, created_at, updated_at) VALUES (:code, :slot, :venue, "
            ":svc, :party, 'web', 'booked', 'ja', 1, :now, :now)"
        ),
        {
            "code": codes.new_code(),
            "slot": slot_id,
            "venue": venue,
            "svc": svc,
            "party": party,
            "now": now if db.get_bind().dialect.name == "postgresql" else now.replace(tzinfo=None),
        },
    )


def test_the_race_harness_catches_count_then_insert(
    engine: Engine, committed: sessionmaker[Session]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises whole transactions (BEGIN IMMEDIATE): no race to lose")
    (slot,) = new_slots(committed, 10)
    # Every racer has counted before any writes: the race is lost for certain, however loaded
    # the machine (a 5 ms gap alone was not always enough when other work crowded the cores).
    counted = threading.Barrier(30, timeout=60)

    def work(db: Session, _i: int) -> object:
        naive_book(db, slot, 1, between=counted.wait)
        return None

    race(committed, 30, work)
    cap, _booked, _held, seats = ledger(committed, slot)
    assert seats > cap, "the harness no longer provokes the race it exists to catch"


def test_a_double_click_on_a_hold_books_once(committed: sessionmaker[Session]) -> None:
    (slot,) = new_slots(committed, 3)
    with committed() as db:
        hold = service.create_hold(db, slot_id=slot, seats=2, channel="web")
        db.commit()

    def work(db: Session, _i: int) -> object:
        return service.book(
            db,
            hold_id=hold.id,
            party=2,
            resident=resident(0),
            channel="web",
            idempotency_key=f"web-hold:{hold.id}",
        )

    outcomes = race(committed, 6, work)
    assert [o.error for o in outcomes if o.error is not None] == []
    assert len({o.value.code for o in outcomes if isinstance(o.value, service.BookingView)}) == 1
    assert ledger(committed, slot)[1:] == (2, 0, 2)


def test_twins_with_one_key_on_the_last_seat_get_the_same_booking(
    committed: sessionmaker[Session],
) -> None:
    (slot,) = new_slots(committed, 2)
    key = f"twins-{slot}"

    def work(db: Session, _i: int) -> object:
        return service.book(
            db, slot_id=slot, party=2, resident=resident(7), channel="web", idempotency_key=key
        )

    outcomes = race(committed, 10, work)
    assert [o.error for o in outcomes if o.error is not None] == []
    assert len({o.value.code for o in outcomes if isinstance(o.value, service.BookingView)}) == 1
    assert ledger(committed, slot)[1:] == (2, 0, 2)


def test_racing_cancels_of_one_booking_all_answer_cancelled(
    committed: sessionmaker[Session],
) -> None:
    (slot,) = new_slots(committed, 3)
    with committed() as db:
        made = service.book(db, slot_id=slot, party=2, resident=resident(3), channel="web")
        db.commit()

    def work(db: Session, _i: int) -> object:
        return service.cancel(db, code=made.code, phone=resident(3).phone)

    outcomes = race(committed, 8, work)
    assert [o.error for o in outcomes if o.error is not None] == []
    assert {o.value.status for o in outcomes if isinstance(o.value, service.BookingView)} == {
        "cancelled"
    }
    assert ledger(committed, slot)[1:] == (0, 0, 0)


def test_sweeps_race_bookings_and_moves_without_deadlock(
    committed: sessionmaker[Session], clock: FakeClock
) -> None:
    a, b = new_slots(committed, 3, 3)
    with committed() as db:
        for slot in (a, b):  # fill both with holds that then lapse
            service.create_hold(db, slot_id=slot, seats=2, channel="web")
        moving = [
            service.book(db, slot_id=s, party=1, resident=resident(40 + i), channel="web")
            for i, s in enumerate((a, b))
        ]
        db.commit()
    clock.advance(minutes=11)

    def work(db: Session, i: int) -> object:
        if i % 3 == 0:
            return service.reclaim_expired_holds(db)
        if i % 3 == 1:
            code = moving[i % 2]
            target = b if code.slot_id == a else a
            return service.reschedule(db, code=code.code, phone=code.phone, slot_id=target)
        return service.book(db, slot_id=(a, b)[i % 2], party=1, resident=resident(i), channel="web")

    outcomes = race(committed, 18, work)
    only_booking_errors(outcomes, "slot_full", "same_slot")
    for slot in (a, b):
        cap, booked, held, seats = ledger(committed, slot)
        assert booked == seats <= cap
        assert held == 0


def test_a_sweep_waits_for_a_booking_instead_of_deadlocking(
    engine: Engine, committed: sessionmaker[Session], clock: FakeClock
) -> None:
    """The lock order is slots before holds everywhere. A booking that holds its slot and then
    reclaims that slot's lapsed holds must not deadlock against a sweep that started meanwhile."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises whole transactions: no lock order to get wrong")
    (slot,) = new_slots(committed, 2)
    with committed() as db:
        service.create_hold(db, slot_id=slot, seats=2, channel="web")
        db.commit()
    clock.advance(minutes=11)
    swept: list[object] = []
    with committed() as booking:
        # A booking has its slot's row lock (as the seat UPDATE takes it)...
        booking.execute(text("UPDATE slot SET booked = booked WHERE id = :id"), {"id": slot})

        def sweep() -> None:
            with committed() as db:
                try:
                    swept.append(service.reclaim_expired_holds(db))
                    db.commit()
                except Exception as exc:  # asserted below
                    swept.append(exc)

        sweeper = threading.Thread(target=sweep)
        sweeper.start()
        time.sleep(0.5)  # the sweep is now waiting on the slot, or (wrongly) holds its holds
        # ...and then reclaims that slot's lapsed holds itself.
        reclaimed = service.reclaim_expired_holds(booking, slot_id=slot)
        booking.commit()
    sweeper.join(timeout=30)
    assert not sweeper.is_alive()
    assert not any(isinstance(s, BaseException) for s in swept), swept
    assert reclaimed == 2
    assert ledger(committed, slot)[1:] == (0, 0, 0)
