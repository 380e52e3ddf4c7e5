"""The lottery (抽選): reproducible from its seed with households whole, one application per
notice number under any concurrency, and seats kept for a lottery refused to every first-come
claim; only the draw books them."""

from __future__ import annotations

import json
import random
import secrets
import string
from dataclasses import replace
from datetime import date, time, timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from booking import lottery, schedule, waitlist
from booking import service as booking
from booking.context import TOKYO
from booking.errors import BookingError
from booking.lottery import Entry
from booking.models import Booking, BookingMember, LotteryApplication, Slot, WaitlistEntry
from booking.service import MemberInput, ResidentInput
from config.db import make_engine, make_sessionmaker
from reminders import service as reminders
from tests.booking.test_race import race
from tests.conftest import START, FakeClock, SlotMaker, make_context
from tests.reminders.conftest import RULES

# --- helpers ---------------------------------------------------------------------------------


def notice() -> str:
    """A notice number no other test uses."""
    head = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(3))
    return f"{head}-{secrets.randbelow(10**6):06d}"


def household(size: int, notices: list[str] | None = None) -> ResidentInput:
    numbers = notices or [notice() for _ in range(size)]
    return ResidentInput(
        name_kana="チュウセン ハナコ",
        phone=f"090{10**7 + secrets.randbelow(9 * 10**7)}",
        birth_date=date(1970, 4, 1),
        members=[MemberInput(n) for n in numbers],
    )


def new_lottery(db: Session, clock: FakeClock, slot_ids: list[int]) -> lottery.LotteryView:
    sessions = list(
        db.execute(select(Slot.session_id).where(Slot.id.in_(slot_ids)).distinct()).scalars()
    )
    now = clock()
    return lottery.create_lottery(
        db,
        session_ids=sessions,
        applications_from=now - timedelta(minutes=1),
        applications_until=now + timedelta(days=1),
        draw_at=now + timedelta(days=2),
    )


def to_draw_time(clock: FakeClock, view: lottery.LotteryView) -> None:
    clock.set(view.draw_at + timedelta(seconds=1))


def close(factory: sessionmaker[Session], clock: FakeClock, made: lottery.LotteryView) -> None:
    """Draw a committed lottery, so that no later test (a caller on the phone line, a page)
    finds it taking applications."""
    clock.set(made.draw_at + timedelta(seconds=1))
    with factory() as db:
        lottery.run_draw(db, lottery_id=made.id)
        db.commit()
    leave_losers(factory, made.id)


def leave_losers(factory: sessionmaker[Session], lottery_id: int) -> None:
    """Take a committed draw's losers off the waitlist: their whole-day entries would stand
    before the entries of later tests on the same days."""
    with factory() as db:
        tokens = db.execute(
            select(WaitlistEntry.token).where(
                WaitlistEntry.lottery_id == lottery_id,
                WaitlistEntry.status.in_(("waiting", "offered")),
            )
        ).scalars()
        for token in list(tokens):
            booking.leave_waitlist(db, token=token)
        db.commit()


# --- the draw, pure --------------------------------------------------------------------------


def random_applications(rng: random.Random, slots: list[int], count: int) -> list[Entry]:
    return [
        Entry(i, rng.randint(1, 4), tuple(rng.sample(slots, rng.randint(1, 3))))
        for i in range(1, count + 1)
    ]


def check_fair(entries: list[Entry], seats: dict[int, int], drawn: lottery.Drawn) -> None:
    """Households whole, seats never exceeded, each at most one time, and preferences in
    order: replaying the shuffled order, each one's earlier choices were full at its turn."""
    by_id = {e.application: e for e in entries}
    left = dict(seats)
    for application in drawn.order:
        entry = by_id[application]
        won = drawn.results[application]
        for choice in entry.preferences:
            if choice == won:
                break
            assert left[choice] < entry.party  # a preferred time skipped only when too full
        if won is None:
            assert all(left[c] < entry.party for c in entry.preferences)
        else:
            assert won in entry.preferences
            left[won] -= entry.party  # the whole household, in one slot
            assert left[won] >= 0


def test_the_draw_is_reproducible_from_its_seed_and_keeps_households_whole() -> None:
    rng = random.Random(7)
    slots = [101, 102, 103, 104]
    seats = {101: 6, 102: 4, 103: 10, 104: 2}
    entries = random_applications(rng, slots, 40)
    seed = secrets.token_hex(16)
    first = lottery.draw(entries, seats, seed)
    check_fair(entries, seats, first)
    # The same input in any order, and the same seed: the same draw.
    shuffled = list(entries)
    rng.shuffle(shuffled)
    assert lottery.draw(shuffled, seats, seed) == first
    assert lottery.input_digest(shuffled, seats) == lottery.input_digest(entries, seats)
    # Another seed: another order (the seed is what decides).
    other = lottery.draw(entries, seats, secrets.token_hex(16))
    assert other.order != first.order
    check_fair(entries, seats, other)
    won = [a for a, s in first.results.items() if s is not None]
    assert 0 < len(won) < len(entries)  # more asked than there were seats


def test_a_household_too_big_for_what_is_left_takes_its_next_choice() -> None:
    entries = [Entry(1, 3, (10, 20)), Entry(2, 2, (10,))]
    # Whatever the order: 1 alone fills 10 with 3 of 4 seats, then 2 (two people) cannot fit;
    # or 2 takes 10 first and 1 (three people) goes to its second choice 20.
    for seed in (secrets.token_hex(16) for _ in range(20)):
        drawn = lottery.draw(entries, {10: 4, 20: 3}, seed)
        if drawn.order == [1, 2]:
            assert drawn.results == {1: 10, 2: None}
        else:
            assert drawn.results == {2: 10, 1: 20}


# --- a lottery through the engine -------------------------------------------------------------


def test_a_drawn_lottery_books_its_winners_and_its_record_reproduces_it(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    slots = [make_slot(4), make_slot(3)]
    made = new_lottery(db, clock, slots)
    rng = random.Random(11)
    applied = {}
    residents = {}
    for _ in range(9):
        size = rng.randint(1, 3)
        resident = household(size)
        prefs = rng.sample(slots, rng.randint(1, 2))
        view = lottery.apply(
            db,
            lottery_id=made.id,
            party=size,
            resident=resident,
            preferences=prefs,
            channel=rng.choice(["web", "ivr", "agent"]),
        )
        applied[view.id] = view
        residents[view.id] = resident
    to_draw_time(clock, made)
    outcome = lottery.run_draw(db, lottery_id=made.id)
    assert outcome is not None
    assert set(outcome.won) | set(outcome.lost) == set(applied)
    assert outcome.won and outcome.lost
    record = lottery.public_record(db, lottery_id=made.id)
    assert record is not None
    assert lottery.verify(record)
    # Every winner booked through the engine: the household whole, in the slot it was drawn.
    results = dict(record["results"])
    for application, booking_id in outcome.won.items():
        got = booking.get_booking(db, booking_id=booking_id)
        assert got.slot_id == results[application]
        assert got.party_size == applied[application].party_size == len(got.members)
        assert got.channel == applied[application].channel
        wanted = [m.notice_number for m in residents[application].members]
        assert [m.notice_number for m in got.members] == wanted
        assert got.phone == "+81" + residents[application].phone[1:]
    for slot_id in slots:
        booked = db.execute(select(Slot.booked, Slot.capacity).where(Slot.id == slot_id)).one()
        assert booked.booked <= booked.capacity
    outcomes = {a.id: a.outcome for a in lottery.applications_of(db, lottery_id=made.id)}
    assert outcomes == {a: "won" if a in outcome.won else "lost" for a in applied}
    # The record names applications by number only: nothing personal to publish.
    published = json.dumps(record, ensure_ascii=False)
    for resident in residents.values():
        assert resident.phone[1:] not in published
        assert all(str(m.notice_number) not in published for m in resident.members)
    # A tampered record fails the check: the check can fail.
    tampered = dict(record, seed=secrets.token_hex(16))
    assert not lottery.verify(tampered)


def test_a_lottery_draws_once(db: Session, make_slot: SlotMaker, clock: FakeClock) -> None:
    made = new_lottery(db, clock, [make_slot(2)])
    lottery.apply(
        db,
        lottery_id=made.id,
        party=1,
        resident=household(1),
        preferences=[made.slots[0].id],
        channel="web",
    )
    assert lottery.run_draw(db, lottery_id=made.id) is None  # not yet its time
    to_draw_time(clock, made)
    assert lottery.run_draw(db, lottery_id=made.id) is not None
    assert lottery.run_draw(db, lottery_id=made.id) is None
    count = db.execute(
        select(func.count()).select_from(Booking).where(Booking.slot_id == made.slots[0].id)
    ).scalar_one()
    assert count == 1


def test_applications_are_checked(db: Session, make_slot: SlotMaker, clock: FakeClock) -> None:
    made = new_lottery(db, clock, [make_slot(2)])
    other = make_slot(2)
    slot = made.slots[0].id

    def refused(code: str, **kwargs: object) -> None:
        args: dict[str, object] = {
            "lottery_id": made.id,
            "party": 1,
            "resident": household(1),
            "preferences": [slot],
            "channel": "web",
        }
        args.update(kwargs)
        with pytest.raises(BookingError) as caught:
            lottery.apply(db, **args)  # type: ignore[arg-type]
        assert caught.value.code == code

    refused("lottery_preferences", preferences=[other])  # not one of this lottery's times
    refused("lottery_preferences", preferences=[slot, slot])
    refused("lottery_preferences", preferences=[])
    refused("lottery_notice_numbers", party=2)  # one member given for two people
    clock.set(made.applications_until)
    refused("lottery_not_accepting")


# --- one application per notice number ----------------------------------------------------


def test_one_application_per_notice_number(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    made = new_lottery(db, clock, [make_slot(4)])
    shared = notice()
    slot = made.slots[0].id
    lottery.apply(
        db,
        lottery_id=made.id,
        party=2,
        resident=household(2, [notice(), shared]),
        preferences=[slot],
        channel="web",
    )
    with pytest.raises(BookingError) as caught:  # the same person in another household
        lottery.apply(
            db,
            lottery_id=made.id,
            party=1,
            resident=household(1, [shared.lower().replace("-", "")]),
            preferences=[slot],
            channel="agent",
        )
    assert caught.value.code == "lottery_already_applied"
    assert caught.value.params["notice"] == shared
    assert lottery.has_applied(db, lottery_id=made.id, notice_number=shared)


def _racing_applications(factory: sessionmaker[Session], clock: FakeClock) -> tuple[int, int]:
    """Twenty households, each with one person of its own and the same shared one, apply at
    once from the three channels: (applications made, refusals as already applied)."""
    with factory() as db:
        made = new_lottery(db, clock, [SlotMaker(db)(4)])
        db.commit()
    shared = notice()
    channels = ["web", "ivr", "agent"]

    def work(db: Session, i: int) -> object:
        return lottery.apply(
            db,
            lottery_id=made.id,
            party=2,
            resident=household(2, [notice(), shared]),
            preferences=[made.slots[0].id],
            channel=channels[i % 3],
        )

    outcomes = race(factory, 20, work)
    close(factory, clock, made)
    refusals = [o.error for o in outcomes if o.error is not None]
    assert all(
        isinstance(e, BookingError) and e.code == "lottery_already_applied" for e in refusals
    ), refusals
    return sum(o.error is None for o in outcomes), len(refusals)


def test_racing_applications_with_one_notice_number_make_one(
    committed: sessionmaker[Session], clock: FakeClock
) -> None:
    assert _racing_applications(committed, clock) == (1, 19)


@pytest.mark.parametrize("fresh_database", ["postgresql"], indirect=True)
def test_without_the_unique_constraint_the_race_lets_several_in(
    fresh_database: str, clock: FakeClock
) -> None:
    """The race is real: with the constraint dropped, the harness above sees several
    applications with one notice number get in (so its green means the constraint held)."""
    engine = make_engine(fresh_database)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("ALTER TABLE lottery_entrant DROP CONSTRAINT one_application_per_notice")
            )
        factory = make_sessionmaker(engine, make_context(clock))
        made, _ = _racing_applications(factory, clock)
        assert made > 1
    finally:
        engine.dispose()


# --- seats kept for a lottery are never sold first-come -----------------------------------------


def test_a_lottery_slot_is_refused_to_every_first_come_claim(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    held_slot = make_slot(4)
    early = booking.create_hold(db, slot_id=held_slot, seats=1, channel="web")
    booked_before = booking.book(
        db, slot_id=make_slot(4), party=1, resident=household(1), channel="web"
    )
    made = new_lottery(db, clock, [held_slot, booked_before.slot_id])
    slot = held_slot

    def refused(act: object) -> None:
        with pytest.raises(BookingError) as caught:
            act()  # type: ignore[operator]
        assert caught.value.code == "slot_in_lottery"

    for channel in ("web", "ivr", "agent"):
        refused(
            lambda channel=channel: booking.book(
                db, slot_id=slot, party=1, resident=household(1), channel=channel
            )
        )
        refused(
            lambda channel=channel: booking.create_hold(db, slot_id=slot, seats=1, channel=channel)
        )
    # A hold made before the lottery cannot be booked after it either.
    with pytest.raises(BookingError) as caught:
        booking.book(db, hold_id=early.id, party=1, resident=household(1), channel="web")
    assert caught.value.code == "slot_in_lottery"
    # Nor can a booking move onto it, by the resident or by the ward.
    other = booking.book(db, slot_id=make_slot(4), party=1, resident=household(1), channel="ivr")
    refused(lambda: booking.reschedule_booking(db, booking_id=other.id, slot_id=slot))
    # It is not offered: not in the free times, not to a walk-in on the day.
    day = made.slots[0].starts_at.date()
    free = booking.availability(
        db, service_id="application_help", venue_id="main", start=day, end=day, limit=1000
    )
    assert slot not in {s.id for s in free}
    clock.set(made.slots[0].starts_at - timedelta(minutes=5))
    before = db.execute(select(Slot.booked).where(Slot.id == slot)).scalar_one()
    try:
        booking.walk_in(db, venue_id="main", service_id="application_help", party=1)
    except BookingError:
        pass  # no other slot with room: refused, as it should be
    assert db.execute(select(Slot.booked).where(Slot.id == slot)).scalar_one() == before
    # A booking made before the lottery stays.
    assert booking.get_booking(db, booking_id=booked_before.id).status == "booked"


def test_after_the_draw_the_seats_left_can_be_released_to_first_come(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    made = new_lottery(db, clock, [make_slot(3)])
    slot = made.slots[0].id
    with pytest.raises(BookingError):
        lottery.release_seats(db, lottery_id=made.id)  # promised to the draw until it is done
    lottery.apply(
        db, lottery_id=made.id, party=2, resident=household(2), preferences=[slot], channel="web"
    )
    to_draw_time(clock, made)
    assert lottery.run_draw(db, lottery_id=made.id) is not None
    assert lottery.release_seats(db, lottery_id=made.id) == 1
    clock.set(made.applications_from)  # back before the sessions' booking cut-off
    again = booking.book(db, slot_id=slot, party=1, resident=household(1), channel="web")
    assert again.slot_id == slot
    members = db.execute(
        select(func.count())
        .select_from(BookingMember)
        .join(Booking, Booking.id == BookingMember.booking_id)
        .where(Booking.slot_id == slot)
    ).scalar_one()
    assert members == 3  # the winning household's two, and the one booked first-come


def test_applications_are_erased_after_the_draw_under_the_retention_rule(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    made = new_lottery(db, clock, [make_slot(1)])
    shared = notice()
    for numbers in ([shared], [notice()]):
        lottery.apply(
            db,
            lottery_id=made.id,
            party=1,
            resident=household(1, numbers),
            preferences=[made.slots[0].id],
            channel="web",
        )
    later = made.draw_at + timedelta(days=400)
    lottery.erase_personal_data(db, before=later)
    assert lottery.has_applied(db, lottery_id=made.id, notice_number=shared)  # not drawn yet
    to_draw_time(clock, made)
    outcome = lottery.run_draw(db, lottery_id=made.id)
    assert outcome is not None
    assert lottery.erase_personal_data(db, before=later) >= 2
    rows = db.execute(
        select(LotteryApplication.phone_enc, LotteryApplication.outcome).where(
            LotteryApplication.lottery_id == made.id
        )
    ).all()
    assert [phone for phone, _ in rows] == [None, None]
    assert sorted(outcome for _, outcome in rows) == ["lost", "won"]  # the outcome stays
    assert not lottery.has_applied(db, lottery_id=made.id, notice_number=shared)
    # The winner's booking keeps its own copy, under the booking's own retention.
    [booking_id] = outcome.won.values()
    assert booking.get_booking(db, booking_id=booking_id).phone is not None


def test_winners_are_told_by_sms_or_a_call_to_a_landline(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    made = new_lottery(db, clock, [make_slot(4)])
    landline = replace(household(1), phone=f"035{secrets.randbelow(10**7):07d}")
    for resident in (household(1), landline):
        lottery.apply(
            db,
            lottery_id=made.id,
            party=1,
            resident=resident,
            preferences=[made.slots[0].id],
            channel="web",
        )
    to_draw_time(clock, made)
    outcome = lottery.run_draw(db, lottery_id=made.id)
    assert outcome is not None and len(outcome.won) == 2
    reminders.plan_from_outbox(db, RULES, limit=100_000)
    told = {}
    for booking_id in outcome.won.values():
        line = booking.get_booking(db, booking_id=booking_id).phone_line_type
        kinds = reminders.messages_for(db, booking_id=booking_id)
        told[line] = [(m.kind, m.channel) for m in kinds if m.kind in ("confirmation", "drawn")]
    assert told == {"mobile": [("drawn", "sms")], "fixed_line": [("drawn", "voice")]}


# --- the losers: on the waitlist in the draw's order ----------------------------------------


def close_the_rest_of_their_days(db: Session, slot_ids: list[int]) -> None:
    """Close the other times of these slots' days (this test's transaction only): no seat of
    those days is free, so the losers' whole-day entries wait (free seats would be offered to
    them at once)."""
    for starts_at in db.execute(select(Slot.starts_at).where(Slot.id.in_(slot_ids))).scalars():
        start, end = waitlist.day_bounds(waitlist.local_day(starts_at))
        db.execute(
            update(Slot)
            .where(Slot.starts_at >= start, Slot.starts_at < end, Slot.id.not_in(slot_ids))
            .values(is_open=False)
        )


def unsorted_losers_seed(db: Session, lottery_id: int) -> str:
    """A seed whose draw leaves the losers out of their applications' order: a waitlist
    filled by application number instead of the draw's order fails the test."""
    view = lottery.get_lottery(db, lottery_id=lottery_id)
    seats = {s.id: s.capacity - s.booked for s in view.slots}
    entries = [
        Entry(a.id, a.party_size, tuple(a.preferences))
        for a in lottery.applications_of(db, lottery_id=lottery_id)
    ]
    for n in range(1, 1000):
        seed = f"{n:032x}"
        drawn = lottery.draw(entries, seats, seed)
        losers = [a for a in drawn.order if drawn.results[a] is None]
        if losers != sorted(losers):
            return seed
    raise AssertionError("no seed found")


def test_the_losers_wait_in_the_draws_order_and_a_seat_freed_goes_to_the_first(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    first_choice, second_choice = make_slot(2), make_slot(1)
    close_the_rest_of_their_days(db, [first_choice, second_choice])
    made = new_lottery(db, clock, [first_choice, second_choice])
    phones = {}
    for i in range(7):
        resident = household(1)
        applied = lottery.apply(
            db,
            lottery_id=made.id,
            party=1,
            resident=resident,
            preferences=[first_choice, second_choice] if i % 2 else [second_choice],
            channel=["web", "ivr", "agent"][i % 3],
        )
        phones[applied.id] = "+81" + resident.phone[1:]
    to_draw_time(clock, made)
    outcome = lottery.run_draw(db, lottery_id=made.id, seed=unsorted_losers_seed(db, made.id))
    assert outcome is not None and len(outcome.won) == 3 and len(outcome.lost) == 4
    record = lottery.public_record(db, lottery_id=made.id)
    assert record is not None
    assert outcome.lost == [a for a in record["order"] if a in set(outcome.lost)]
    # Each loser on the waitlist of their first preferred time's day, the whole day, in the
    # order the draw put them; none told twice (one entry each).
    entries = [
        booking.waitlist_entry(db, entry_id=e)
        for e in db.execute(
            select(WaitlistEntry.id)
            .where(WaitlistEntry.lottery_id == made.id)
            .order_by(WaitlistEntry.id)
        ).scalars()
    ]
    assert [e.phone for e in entries] == [phones[a] for a in outcome.lost]
    applications = {a.id: a for a in lottery.applications_of(db, lottery_id=made.id)}
    for entry, application_id in zip(entries, outcome.lost, strict=True):
        application = applications[application_id]
        wanted = db.execute(
            select(Slot.starts_at).where(Slot.id == application.preferences[0])
        ).scalar_one()
        assert entry.day == wanted.astimezone(TOKYO).date() and entry.slot_id is None
        assert (entry.status, entry.channel, entry.party_size) == (
            "waiting",
            application.channel,
            1,
        )
    for day in {e.day for e in entries}:  # one after the other in each day's queue
        aheads = [e.ahead or 0 for e in entries if e.day == day]
        assert aheads == [aheads[0] + i for i in range(len(aheads))]
    # A winner cancels: the seat stays kept for the lottery until the manager gives its
    # seats back, and then goes to the first loser waiting for that day, not to the public.
    winner = next(iter(outcome.won.values()))
    cancelled_slot = booking.get_booking(db, booking_id=winner).slot_id
    booking.cancel_booking(db, booking_id=winner)
    assert all(booking.waitlist_entry(db, entry_id=e.id).status == "waiting" for e in entries)
    assert lottery.release_seats(db, lottery_id=made.id) == 2
    day = db.execute(select(Slot.starts_at).where(Slot.id == cancelled_slot)).scalar_one()
    first_for_day = next(e for e in entries if e.day == day.astimezone(TOKYO).date())
    statuses = {e.id: booking.waitlist_entry(db, entry_id=e.id).status for e in entries}
    assert statuses[first_for_day.id] == "offered"
    assert sorted(statuses.values()) == ["offered", "waiting", "waiting", "waiting"]
    with pytest.raises(BookingError):
        booking.book(db, slot_id=cancelled_slot, party=1, resident=household(1), channel="web")


def test_a_seat_free_on_the_losers_day_is_offered_at_once_to_the_first_drawn(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    kept = make_slot(1)
    close_the_rest_of_their_days(db, [kept])
    starts = db.execute(select(Slot.starts_at).where(Slot.id == kept)).scalar_one()
    evening = schedule.open_extra_session(  # one seat that day, not in the lottery
        db,
        venue_id="main",
        service_id="application_help",
        day=waitlist.local_day(starts),
        opens=time(23, 0),
        closes=time(23, 30),
        slot_minutes=30,
        seats=1,
        kind="extra",
    )
    free = db.execute(select(Slot.id).where(Slot.session_id == evening.id)).scalar_one()
    made = new_lottery(db, clock, [kept])
    for _ in range(4):
        lottery.apply(
            db,
            lottery_id=made.id,
            party=1,
            resident=household(1),
            preferences=[kept],
            channel="web",
        )
    to_draw_time(clock, made)
    outcome = lottery.run_draw(db, lottery_id=made.id, seed=unsorted_losers_seed(db, made.id))
    assert outcome is not None and len(outcome.lost) == 3
    entries = [
        booking.waitlist_entry(db, entry_id=e)
        for e in db.execute(
            select(WaitlistEntry.id)
            .where(WaitlistEntry.lottery_id == made.id)
            .order_by(WaitlistEntry.id)
        ).scalars()
    ]
    assert [(e.status, e.offered_slot_id) for e in entries] == [
        ("offered", free),
        ("waiting", None),
        ("waiting", None),
    ]


def test_a_loser_drawn_before_the_booking_window_reaches_the_day_still_waits_for_it(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    clock.set(START - timedelta(days=30))  # the draw comes before the day is bookable
    made = new_lottery(db, clock, [make_slot(1)])
    for _ in range(2):
        lottery.apply(
            db,
            lottery_id=made.id,
            party=1,
            resident=household(1),
            preferences=[made.slots[0].id],
            channel="web",
        )
    to_draw_time(clock, made)
    outcome = lottery.run_draw(db, lottery_id=made.id)
    assert outcome is not None and len(outcome.lost) == 1
    [entry] = db.execute(select(WaitlistEntry).where(WaitlistEntry.lottery_id == made.id)).scalars()
    assert (entry.status, entry.slot_id) == ("waiting", None)
    assert entry.day == made.slots[0].starts_at.astimezone(TOKYO).date()
