"""Counter managers' changes through the one engine: a capacity cut or a closure shows whom it
strands; they are kept on purpose or moved to the nearest free time (one notice each); the
seat invariant holds throughout. SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import date, time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.orm import Session

from booking import service
from booking.errors import BookingError
from booking.service import ResidentInput
from reminders import service as reminders
from tests.conftest import SlotMaker
from tests.reminders.conftest import RULES

MOBILE = "090-3333-4444"
LANDLINE = "03-5273-4222"


def book(db: Session, slot_id: int, party: int = 1, phone: str = MOBILE) -> service.BookingView:
    resident = ResidentInput("カンリ ハナコ", phone, date(1970, 1, 1))
    return service.book(db, slot_id=slot_id, party=party, resident=resident, channel="web")


def seats(db: Session, slot_id: int) -> tuple[int, int, int, int]:
    row = db.execute(
        text("SELECT capacity, booked, held, kept_over FROM slot WHERE id = :s"), {"s": slot_id}
    ).one()
    return (row.capacity, row.booked, row.held, row.kept_over)


def test_a_cut_strands_the_fewest_bookings_and_is_refused(
    db: Session, make_slot: SlotMaker
) -> None:
    slot = make_slot(6)
    first, second, _ = book(db, slot, 2), book(db, slot, 2), book(db, slot, 1)
    over = service.stranded(db, slot_ids=[slot], capacity=3)
    # 2 + 1 fit in 3 seats: one booking goes, not two; of the two ways, the earliest stays.
    assert [b.id for b in over] == [second.id]
    with pytest.raises(BookingError) as refused:
        service.set_capacity(db, slot_ids=[slot], capacity=3)
    assert refused.value.code == "capacity_strands"
    assert refused.value.status == 409
    assert "1件" in refused.value.message("ja")
    assert seats(db, slot) == (6, 5, 0, 0)  # nothing changed
    assert first.id not in {b.id for b in over}


def test_a_cut_to_one_seat_strands_the_party_of_two_not_both(
    db: Session, make_slot: SlotMaker
) -> None:
    slot = make_slot(3)
    pair, single = book(db, slot, 2), book(db, slot, 1)
    over = service.stranded(db, slot_ids=[slot], capacity=1)
    assert [b.id for b in over] == [pair.id]  # the single keeps the seat; it is not left empty
    kept = service.set_capacity(db, slot_ids=[slot], capacity=1, keep_stranded=True)
    assert [b.id for b in kept] == [pair.id]
    assert single.id not in {b.id for b in kept}


@given(
    parties=st.lists(st.integers(min_value=1, max_value=6), max_size=8),
    capacity=st.integers(min_value=0, max_value=14),
)
def test_the_bookings_kept_are_as_many_as_fit_and_the_earliest_of_those(
    parties: list[int], capacity: int
) -> None:
    in_order = list(enumerate(parties))
    kept = service.keep_within(in_order, capacity)
    assert sum(parties[i] for i in kept) <= capacity
    fitting = [
        chosen
        for n in range(len(parties) + 1)
        for chosen in itertools.combinations(range(len(parties)), n)
        if sum(parties[i] for i in chosen) <= capacity
    ]
    most = max(len(c) for c in fitting)
    assert len(kept) == most  # the fewest stranded
    assert tuple(kept) == min(c for c in fitting if len(c) == most)  # then the earliest kept


def test_kept_on_purpose_the_slot_is_over_capacity_and_sells_nothing(
    db: Session, make_slot: SlotMaker
) -> None:
    slot = make_slot(4)
    made = [book(db, slot, 1) for _ in range(4)]
    kept = service.set_capacity(db, slot_ids=[slot], capacity=2, keep_stranded=True)
    assert [b.id for b in kept] == [made[2].id, made[3].id]
    assert seats(db, slot) == (2, 4, 0, 2)
    with pytest.raises(BookingError) as full:
        book(db, slot, 1)
    assert full.value.code == "slot_full"
    service.cancel_booking(db, booking_id=made[0].id)  # 3 booked, capacity 2: still none sold
    with pytest.raises(BookingError):
        book(db, slot, 1)
    # The CHECK allows only the seats kept: a direct write past them is refused.
    with pytest.raises(Exception), db.begin_nested():  # noqa: B017,PT011 (the database's CHECK)
        db.execute(text("UPDATE slot SET booked = booked + 3 WHERE id = :s"), {"s": slot})


def test_raising_capacity_sells_again_and_forgets_the_seats_kept(
    db: Session, make_slot: SlotMaker
) -> None:
    slot = make_slot(3)
    for _ in range(3):
        book(db, slot, 1)
    service.set_capacity(db, slot_ids=[slot], capacity=1, keep_stranded=True)
    service.set_capacity(db, slot_ids=[slot], capacity=5)
    assert seats(db, slot) == (5, 3, 0, 0)
    book(db, slot, 2)
    assert seats(db, slot) == (5, 5, 0, 0)


def test_moving_the_stranded_keeps_the_invariant_and_queues_one_notice_each(
    db: Session, make_slot: SlotMaker
) -> None:
    slot = make_slot(6)
    keep = book(db, slot, 2)
    mobile = book(db, slot, 2)
    landline = book(db, slot, 2, phone=LANDLINE)
    reminders.plan_from_outbox(db, RULES, limit=100_000)
    over = service.stranded(db, slot_ids=[slot], capacity=2)
    assert {b.id for b in over} == {mobile.id, landline.id}
    for stranded in over:
        target = service.nearest_free_slot(db, booking_id=stranded.id, avoid=[slot])
        assert target is not None
        assert target.venue_id == stranded.venue_id  # the same venue first
        moved = service.relocate(db, booking_id=stranded.id, slot_id=target.id)
        assert moved.slot_id == target.id
    assert service.set_capacity(db, slot_ids=[slot], capacity=2) == []
    assert seats(db, slot) == (2, 2, 0, 0)
    bad = db.execute(
        text("SELECT count(*) FROM slot WHERE booked + held > capacity + kept_over")
    ).scalar_one()
    assert bad == 0
    reminders.plan_from_outbox(db, RULES, limit=100_000)
    notices = {
        b.id: [(m.kind, m.channel) for m in reminders.messages_for(db, booking_id=b.id)]
        for b in (keep, mobile, landline)
    }
    assert notices[keep.id].count(("relocated", "sms")) == 0
    assert notices[mobile.id].count(("relocated", "sms")) == 1
    assert notices[landline.id].count(("relocated", "voice")) == 1


def test_closing_slots_with_bookings_is_refused_unless_kept(
    db: Session, make_slot: SlotMaker
) -> None:
    slot = make_slot(2)
    made = book(db, slot, 1)
    assert [b.id for b in service.stranded(db, slot_ids=[slot], capacity=None)] == [made.id]
    with pytest.raises(BookingError):
        service.close_slots(db, slot_ids=[slot], reason="停電")
    service.close_slots(db, slot_ids=[slot], reason="停電", keep_stranded=True)
    state = db.execute(
        text(
            "SELECT slot.is_open, session.status, session.closed_reason FROM slot "
            "JOIN session ON session.id = slot.session_id WHERE slot.id = :s"
        ),
        {"s": slot},
    ).one()
    assert (bool(state.is_open), state.status, state.closed_reason) == (False, "closed", "停電")
    with pytest.raises(BookingError) as closed:
        book(db, slot, 1)
    assert closed.value.code == "slot_closed"
    service.reopen_slots(db, slot_ids=[slot])
    book(db, slot, 1)


def test_a_popup_venue_opens_for_a_range_of_days(db: Session) -> None:
    from booking import schedule

    schedule.add_popup_venue(
        db, venue_id="mall_popup", name_ja="駅前モール出張会場", name_en="Mall", address_ja="駅前"
    )
    with pytest.raises(BookingError):  # the id is taken now
        schedule.add_popup_venue(db, venue_id="mall_popup", name_ja="x", name_en="x", address_ja="")
    opened = schedule.open_sessions_for_range(
        db,
        venue_id="mall_popup",
        service_id="pin_reset",
        first=date(2027, 1, 18),
        last=date(2027, 1, 20),
        opens=time(10),
        closes=time(12),
        slot_minutes=30,
        seats=3,
        kind="popup",
    )
    assert opened.opened == [date(2027, 1, 18), date(2027, 1, 19), date(2027, 1, 20)]
    free = service.availability(
        db,
        service_id="pin_reset",
        venue_id="mall_popup",
        start=date(2027, 1, 18),
        end=date(2027, 1, 20),
    )
    assert len(free) == 12 and {s.remaining for s in free} == {3}  # 4 slots a day, 3 days
    again = schedule.open_sessions_for_range(
        db,
        venue_id="mall_popup",
        service_id="pin_reset",
        first=date(2027, 1, 20),
        last=date(2027, 1, 21),
        opens=time(11),
        closes=time(13),
        slot_minutes=30,
        seats=3,
    )
    assert again.opened == [date(2027, 1, 21)]
    assert [d for d, _ in again.refused] == [date(2027, 1, 20)]  # overlaps the session there


def test_a_moved_resident_no_message_can_reach_lands_on_the_callback_list(
    db: Session, make_slot: SlotMaker
) -> None:
    from ivr import service as calls

    slot = make_slot(1)
    made = book(db, slot, 1, phone="0570-012-345")  # a navigation-dial number: no SMS, no call
    reminders.plan_from_outbox(db, RULES, limit=100_000)
    target = service.nearest_free_slot(db, booking_id=made.id, avoid=[slot])
    assert target is not None
    service.relocate(db, booking_id=made.id, slot_id=target.id)
    reminders.plan_from_outbox(db, RULES, limit=100_000)
    assert [m.kind for m in reminders.messages_for(db, booking_id=made.id)] == []
    waiting = [c for c in calls.open_callbacks(db) if c.phone == "+81570012345"]
    assert [c.reason for c in waiting] == ["relocated"]
