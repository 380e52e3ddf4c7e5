"""The waitlist: freed seats go to those waiting, first come first, as holds the engine makes,
never more offers than seats freed; an unanswered offer passes to the next."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from booking import schedule, service, waitlist
from booking.context import TOKYO
from booking.errors import BookingError
from booking.models import Hold, Slot, WaitlistEntry
from booking.service import ResidentInput
from tests.booking.test_race import Outcome, ledger, race, resident
from tests.conftest import FakeClock, SlotMaker, make_context

OFFER_MINUTES = 30
_phones = itertools.count(30_000_000)


def a_phone() -> str:
    return f"090{next(_phones):08d}"


def slot_day(db: Session, slot_id: int) -> date:
    starts = db.execute(select(Slot.starts_at).where(Slot.id == slot_id)).scalar_one()
    return waitlist.local_day(starts)


def wait_for(
    db: Session, slot_id: int, *, party: int = 1, phone: str | None = None
) -> service.WaitlistView:
    return service.join_waitlist(
        db,
        venue_id="main",
        service_id="application_help",
        day=slot_day(db, slot_id),
        slot_id=slot_id,
        party=party,
        phone=phone or a_phone(),
        language="ja",
        channel="web",
    )


def fill(db: Session, slot_id: int, *parties: int) -> list[service.BookingView]:
    return [
        service.book(db, slot_id=slot_id, party=p, resident=resident(i), channel="web")
        for i, p in enumerate(parties)
    ]


def status(db: Session, entry: service.WaitlistView) -> str:
    return service.waitlist_entry(db, entry_id=entry.id).status


def seats(db: Session, slot_id: int) -> tuple[int, int, int]:
    cap, booked, held = db.execute(
        select(Slot.capacity, Slot.booked, Slot.held)
        .where(Slot.id == slot_id)
        .execution_options(populate_existing=True)
    ).one()
    return int(cap), int(booked), int(held)


def taker() -> ResidentInput:
    return ResidentInput(name_kana="マチ ハナコ", phone=a_phone(), birth_date=date(1970, 5, 1))


def test_a_cancelled_seat_goes_to_the_first_waiting_before_the_public(db: Session) -> None:
    slot = SlotMaker(db)(1)
    (made,) = fill(db, slot, 1)
    first, second = wait_for(db, slot), wait_for(db, slot)
    assert (first.status, first.ahead, second.ahead) == ("waiting", 0, 1)

    service.cancel_booking(db, booking_id=made.id)

    assert (status(db, first), status(db, second)) == ("offered", "waiting")
    assert seats(db, slot) == (1, 0, 1)  # the offer holds the seat
    kinds = db.execute(select(Hold.kind).where(Hold.slot_id == slot)).scalars().all()
    assert kinds == ["waitlist"]
    with pytest.raises(BookingError) as refused:
        service.book(db, slot_id=slot, party=1, resident=resident(9), channel="web")
    assert refused.value.code == "slot_full"


def test_an_unanswered_offer_passes_to_the_next(db: Session, clock: FakeClock) -> None:
    slot = SlotMaker(db)(1)
    (made,) = fill(db, slot, 1)
    first, second, third = wait_for(db, slot), wait_for(db, slot), wait_for(db, slot)
    service.cancel_booking(db, booking_id=made.id)
    offer = service.waitlist_entry(db, entry_id=first.id)
    assert offer.offer_expires_at == clock() + timedelta(minutes=OFFER_MINUTES)

    clock.advance(minutes=OFFER_MINUTES - 1)
    service.reclaim_expired_holds(db)
    assert status(db, first) == "offered"
    clock.advance(minutes=1)
    service.reclaim_expired_holds(db)

    assert [status(db, e) for e in (first, second, third)] == ["lapsed", "offered", "waiting"]
    assert seats(db, slot) == (1, 0, 1)
    with pytest.raises(BookingError) as gone:
        service.take_waitlist_offer(db, token=first.token, resident=taker(), channel="web")
    assert gone.value.code == "waitlist_offer_gone"


def test_taking_an_offer_books_the_seats_it_keeps(db: Session) -> None:
    slot = SlotMaker(db)(2)
    fill(db, slot, 1)
    (made,) = fill(db, slot, 1)
    entry = wait_for(db, slot, party=1)
    service.cancel_booking(db, booking_id=made.id)

    booked = service.take_waitlist_offer(db, token=entry.token, resident=taker(), channel="web")

    assert (booked.slot_id, booked.party_size, booked.status) == (slot, 1, "booked")
    assert seats(db, slot) == (2, 2, 0)
    after = service.waitlist_entry(db, entry_id=entry.id)
    assert (after.status, after.booking_id) == ("booked", booked.id)
    again = service.take_waitlist_offer(db, token=entry.token, resident=taker(), channel="web")
    assert again.id == booked.id  # a double click: the same booking, not a second


def test_a_refused_form_leaves_the_offer_standing(db: Session) -> None:
    slot = SlotMaker(db)(1)
    (made,) = fill(db, slot, 1)
    entry = wait_for(db, slot)
    service.cancel_booking(db, booking_id=made.id)
    bad = ResidentInput(name_kana="マチ ハナコ", phone="12", birth_date=date(1970, 5, 1))

    with pytest.raises(BookingError):
        service.take_waitlist_offer(db, token=entry.token, resident=bad, channel="web")

    assert status(db, entry) == "offered"
    assert db.execute(select(Hold.kind).where(Hold.slot_id == slot)).scalar_one() == "waitlist"
    taken = service.take_waitlist_offer(db, token=entry.token, resident=taker(), channel="web")
    assert taken.status == "booked"


def test_a_party_too_large_for_the_seats_freed_keeps_its_place(db: Session) -> None:
    slot = SlotMaker(db)(2)
    one, two = fill(db, slot, 1, 1)
    family = wait_for(db, slot, party=2)
    single = wait_for(db, slot, party=1)

    service.cancel_booking(db, booking_id=one.id)
    assert (status(db, family), status(db, single)) == ("waiting", "offered")
    service.leave_waitlist(db, token=single.token)  # gives the seat back: still too few
    assert status(db, family) == "waiting"
    service.cancel_booking(db, booking_id=two.id)
    assert status(db, family) == "offered"
    assert seats(db, slot) == (2, 0, 2)


def test_a_capacity_raise_offers_only_the_seats_it_adds(db: Session) -> None:
    slot = SlotMaker(db)(1)
    fill(db, slot, 1)
    waiting = [wait_for(db, slot) for _ in range(4)]

    service.set_capacity(db, slot_ids=[slot], capacity=3)

    assert [status(db, e) for e in waiting] == ["offered", "offered", "waiting", "waiting"]
    assert seats(db, slot) == (3, 1, 2)


def test_a_release_delay_keeps_the_seat_until_it_ends_then_offers_it(
    engine: Engine, clock: FakeClock
) -> None:
    with engine.connect() as conn:
        outer = conn.begin()
        db = Session(
            bind=conn,
            join_transaction_mode="create_savepoint",
            info={"booking": make_context(clock, release_delay_minutes=20)},
        )
        slot = SlotMaker(db)(1)
        (made,) = fill(db, slot, 1)
        entry = wait_for(db, slot)
        service.cancel_booking(db, booking_id=made.id)
        assert status(db, entry) == "waiting"
        clock.advance(minutes=20)
        service.reclaim_expired_holds(db)
        assert status(db, entry) == "offered"
        db.close()
        outer.rollback()


def test_joining_is_refused_while_seats_are_free(db: Session) -> None:
    slot = SlotMaker(db)(2)
    fill(db, slot, 1)
    with pytest.raises(BookingError) as free:
        wait_for(db, slot)
    assert free.value.code == "waitlist_seats_free"


def test_asking_again_keeps_the_place(db: Session) -> None:
    slot = SlotMaker(db)(1)
    fill(db, slot, 1)
    phone = a_phone()
    first = wait_for(db, slot, phone=phone)
    wait_for(db, slot)
    again = wait_for(db, slot, phone=phone)
    assert (again.id, again.ahead) == (first.id, 0)


def test_a_day_entry_takes_a_seat_at_any_time_of_that_day(db: Session) -> None:
    day = date(2027, 1, 16)  # a Saturday: only the sessions this test opens
    made = []
    for hour in (9, 11):
        session = schedule.open_extra_session(
            db,
            venue_id="yotsuya",
            service_id="pin_reset",
            day=day,
            opens=time(hour),
            closes=time(hour, 30),
            slot_minutes=30,
            seats=1,
            kind="holiday",
        )
        slot_id = db.execute(select(Slot.id).where(Slot.session_id == session.id)).scalar_one()
        made.append(service.book(db, slot_id=slot_id, party=1, resident=resident(0), channel="ivr"))
    entry = service.join_waitlist(
        db,
        venue_id="yotsuya",
        service_id="pin_reset",
        day=day,
        party=1,
        phone=a_phone(),
        language="en",
        channel="ivr",
    )
    service.cancel_booking(db, booking_id=made[1].id)
    offered = service.waitlist_entry(db, entry_id=entry.id)
    assert (offered.status, offered.offered_slot_id) == ("offered", made[1].slot_id)
    service.cancel_booking(db, booking_id=made[0].id)  # one offer per entry, never two
    holds = db.execute(select(Hold.kind).where(Hold.slot_id == made[0].slot_id)).all()
    assert holds == []


def test_retention_erases_the_numbers_of_past_entries(db: Session, clock: FakeClock) -> None:
    slot = SlotMaker(db)(1)
    fill(db, slot, 1)
    entry = wait_for(db, slot)
    day = slot_day(db, slot)
    service.erase_waitlist_personal_data(db, before=clock())
    assert service.waitlist_entry(db, entry_id=entry.id).phone is not None
    # Two days after the entry's day, wherever the slot maker put it in the booking window.
    later = datetime.combine(day, time(), TOKYO) + timedelta(days=2)
    assert service.waitlist_entry(db, entry_id=entry.id).day == day
    service.erase_waitlist_personal_data(db, before=later)
    row = db.get(WaitlistEntry, entry.id, populate_existing=True)
    assert row is not None
    assert (row.phone_enc, row.phone_hmac, row.status) == (None, None, "closed")


# --- Races on PostgreSQL ---------------------------------------------------------------------


@pytest.fixture
def pg_sessions(engine: Engine, committed: sessionmaker[Session]) -> sessionmaker[Session]:
    """Committing sessions on PostgreSQL (the races are about its row locks)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("races run on PostgreSQL")
    return committed


def test_racing_cancellations_offer_exactly_the_seats_freed_in_order(
    pg_sessions: sessionmaker[Session],
) -> None:
    with pg_sessions() as db:
        slot = SlotMaker(db)(6)
        made = fill(db, slot, 1, 1, 1, 1, 1, 1)
        entries = [wait_for(db, slot) for _ in range(10)]
        db.commit()

    def work(db: Session, i: int) -> object:
        if i < 6:  # six cancellations at once...
            return service.cancel_booking(db, booking_id=made[i].id)
        # ...and the public trying for the same seats at the same moment
        return service.book(db, slot_id=slot, party=1, resident=resident(100 + i), channel="web")

    outcomes: list[Outcome] = race(pg_sessions, 12, work)
    assert all(o.error is None for o in outcomes[:6]), [o.error for o in outcomes[:6]]
    assert all(
        isinstance(o.error, BookingError) and o.error.code == "slot_full" for o in outcomes[6:]
    )
    with pg_sessions() as db:
        states = [service.waitlist_entry(db, entry_id=e.id).status for e in entries]
    assert states == ["offered"] * 6 + ["waiting"] * 4  # the first six, no more
    assert ledger(pg_sessions, slot) == (6, 0, 6, 0)


def test_racing_takers_and_lapses_never_offer_more_than_freed(
    pg_sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    with pg_sessions() as db:
        slot = SlotMaker(db)(3)
        made = fill(db, slot, 1, 1, 1)
        entries = [wait_for(db, slot) for _ in range(8)]
        for booking in made:
            service.cancel_booking(db, booking_id=booking.id)
        db.commit()
    clock.advance(minutes=OFFER_MINUTES)  # the three offers lapse unanswered...

    def work(db: Session, i: int) -> object:
        if i % 2:  # ...while sweepers pass them on and the lapsed try to take them anyway
            return service.reclaim_expired_holds(db, slot_id=slot)
        return service.take_waitlist_offer(
            db, token=entries[i % 3].token, resident=taker(), channel="web"
        )

    outcomes = race(pg_sessions, 10, work)
    for o in outcomes:
        assert o.error is None or (
            isinstance(o.error, BookingError) and o.error.code == "waitlist_offer_gone"
        ), o.error
    with pg_sessions() as db:
        states = [service.waitlist_entry(db, entry_id=e.id).status for e in entries]
    assert states == ["lapsed"] * 3 + ["offered"] * 3 + ["waiting"] * 2
    assert ledger(pg_sessions, slot) == (3, 0, 3, 0)


def test_racing_joins_on_free_seats_offer_no_more_than_are_free(
    pg_sessions: sessionmaker[Session],
) -> None:
    """A lottery's losers put on a list with seats left over: the offers are made as they
    join, racing, and never outnumber the seats."""
    with pg_sessions() as db:
        slot = SlotMaker(db)(3)
        day = slot_day(db, slot)
        db.commit()

    def work(db: Session, i: int) -> object:
        return service.join_waitlist(
            db,
            venue_id="main",
            service_id="application_help",
            day=day,
            slot_id=slot,
            party=1,
            phone=a_phone(),
            language="ja",
            channel="web",
            only_when_full=False,
        )

    outcomes = race(pg_sessions, 10, work)
    assert [o.error for o in outcomes if o.error is not None] == []
    with pg_sessions() as db:
        states = [
            service.waitlist_entry(db, entry_id=o.value.id).status
            for o in outcomes
            if isinstance(o.value, service.WaitlistView)
        ]
    assert sorted(states) == ["offered"] * 3 + ["waiting"] * 7
    assert ledger(pg_sessions, slot) == (3, 0, 3, 0)


def test_one_entry_for_a_day_gets_one_offer_when_two_of_its_times_free_at_once(
    pg_sessions: sessionmaker[Session],
) -> None:
    day = date(2027, 1, 23)  # a Saturday: only the sessions this test opens
    with pg_sessions() as db:
        made = []
        for hour in (9, 10):
            session = schedule.open_extra_session(
                db,
                venue_id="kashiwagi",
                service_id="pin_reset",
                day=day,
                opens=time(hour),
                closes=time(hour, 30),
                slot_minutes=30,
                seats=1,
            )
            slot_id = db.execute(select(Slot.id).where(Slot.session_id == session.id)).scalar_one()
            made.append(fill(db, slot_id, 1)[0])
        first, second = (
            service.join_waitlist(
                db,
                venue_id="kashiwagi",
                service_id="pin_reset",
                day=day,
                party=1,
                phone=a_phone(),
                language="ja",
                channel="ivr",
            )
            for _ in range(2)
        )
        db.commit()

    outcomes = race(pg_sessions, 2, lambda db, i: service.cancel_booking(db, booking_id=made[i].id))
    assert [o.error for o in outcomes] == [None, None]
    with pg_sessions() as db:
        offers = [service.waitlist_entry(db, entry_id=e.id) for e in (first, second)]
        holds = db.execute(
            select(Hold.slot_id).where(Hold.slot_id.in_([b.slot_id for b in made]))
        ).scalars()
        assert sorted(holds) == sorted(b.slot_id for b in made)
    assert [o.status for o in offers] == ["offered", "offered"]
    assert {o.offered_slot_id for o in offers} == {b.slot_id for b in made}
