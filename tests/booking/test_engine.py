"""The engine's rules on SQLite and PostgreSQL: seats, holds, cancel, move, status, codes."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from booking import codes, service
from booking.context import TOKYO
from booking.errors import BookingError
from booking.models import Booking, BookingEvent, Slot
from booking.service import MemberInput, ResidentInput
from tests.conftest import FakeClock, SlotMaker, make_context

RESIDENT = ResidentInput(
    name_kana="ヤマダ タロウ", phone="090-1234-5678", birth_date=date(1950, 4, 1)
)


def seats(db: Session, slot_id: int) -> tuple[int, int, int]:
    """(capacity, booked, held) as the database has them."""
    row = db.execute(select(Slot.capacity, Slot.booked, Slot.held).where(Slot.id == slot_id)).one()
    return int(row[0]), int(row[1]), int(row[2])


def remaining(db: Session, slot_id: int) -> int:
    slot = db.get(Slot, slot_id)
    assert slot is not None
    found = service.availability(
        db,
        service_id=slot.service_id,
        venue_id=slot.venue_id,
        start=slot.starts_at.astimezone(TOKYO).date(),
        end=slot.starts_at.astimezone(TOKYO).date(),
        party=1,
        limit=500,
    )
    return next((s.remaining for s in found if s.id == slot_id), 0)


def book(db: Session, slot_id: int, party: int = 1, **kw: object) -> service.BookingView:
    return service.book(db, slot_id=slot_id, party=party, resident=RESIDENT, channel="web", **kw)  # type: ignore[arg-type]


def test_a_household_takes_one_seat_a_person(db: Session, make_slot: SlotMaker) -> None:
    slot = make_slot(5)
    booking = book(db, slot, party=3)
    assert booking.party_size == 3
    assert seats(db, slot) == (5, 3, 0)
    assert remaining(db, slot) == 2
    assert codes.is_well_formed(booking.code)


def test_no_booking_past_capacity(db: Session, make_slot: SlotMaker) -> None:
    slot = make_slot(4)
    book(db, slot, party=3)
    with pytest.raises(BookingError) as refused:
        book(db, slot, party=2)
    assert refused.value.code == "slot_full"
    assert refused.value.status == 409
    book(db, slot, party=1)
    assert seats(db, slot) == (4, 4, 0)
    assert remaining(db, slot) == 0


def test_the_check_constraint_stands_behind_the_update(db: Session, make_slot: SlotMaker) -> None:
    slot = make_slot(2)
    with pytest.raises(Exception, match=r"(?i)check|constraint"), db.begin_nested():
        db.execute(text("UPDATE slot SET booked = 3 WHERE id = :id"), {"id": slot})


def test_booked_rows_and_personal_data_are_encrypted(db: Session, make_slot: SlotMaker) -> None:
    slot = make_slot(3)
    booking = book(db, slot, party=1)
    row = db.execute(
        text(
            "SELECT name_kana_enc, phone_enc, birth_date_enc, phone_hmac FROM booking "
            "WHERE id = :id"
        ),
        {"id": booking.id},
    ).one()
    stored = " ".join(str(v) for v in row)
    assert "ヤマダ" not in stored and "+819012345678" not in stored and "1950" not in stored
    assert booking.name_kana == "ヤマダ タロウ"
    assert booking.phone == "+819012345678"
    assert booking.phone_line_type == "mobile"


def test_an_outbox_event_is_written_with_each_change(db: Session, make_slot: SlotMaker) -> None:
    a, b = make_slot(2), make_slot(2)
    booking = book(db, a)
    service.reschedule_booking(db, booking_id=booking.id, slot_id=b)
    service.cancel_booking(db, booking_id=booking.id)
    kinds = db.execute(
        select(BookingEvent.kind, BookingEvent.booking_version)
        .where(BookingEvent.booking_id == booking.id)
        .order_by(BookingEvent.id)
    ).all()
    assert [tuple(k) for k in kinds] == [("booked", 1), ("moved", 2), ("cancelled", 3)]


def test_pickup_needs_a_notice_number_for_each_member(db: Session, clock: FakeClock) -> None:
    pickup = service.availability(db, service_id="pickup", venue_id="main", party=2, limit=1)[0]
    with pytest.raises(BookingError) as missing:
        service.book(db, slot_id=pickup.id, party=2, resident=RESIDENT, channel="web")
    assert missing.value.code == "members_mismatch"
    household = ResidentInput(
        name_kana="やまだ はなこ",
        phone="03-5273-4111",
        birth_date=date(1980, 1, 2),
        members=[MemberInput("ab1-234567"), MemberInput("ＡＢ１２３４５６８", braille=True)],
    )
    booking = service.book(db, slot_id=pickup.id, party=2, resident=household, channel="ivr")
    assert [m.notice_number for m in booking.members] == ["AB1-234567", "AB1-234568"]
    assert booking.members[1].braille is True
    assert booking.name_kana == "ヤマダ ハナコ"
    assert booking.phone_line_type == "fixed_line"
    twice = ResidentInput(
        name_kana="ヤマダ",
        phone="03-5273-4111",
        birth_date=date(1980, 1, 2),
        members=[MemberInput("AB1-234567"), MemberInput("ab1234567")],
    )
    with pytest.raises(BookingError) as duplicate:
        service.book(db, slot_id=pickup.id, party=2, resident=twice, channel="web")
    assert duplicate.value.code == "duplicate_notice_number"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"name_kana": "1234 5678 9018"}, "my_number_refused"),
        ({"phone": "1234-5678-9018"}, "my_number_refused"),
        ({"phone": "0120"}, "invalid_phone"),
        ({"name_kana": "山田太郎"}, "invalid_name_kana"),
        ({"birth_date": date(2030, 1, 1)}, "invalid_birth_date"),
        ({"language": "fr"}, "invalid_language"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(
    db: Session, make_slot: SlotMaker, change: dict[str, object], code: str
) -> None:
    slot = make_slot(3)
    before = db.execute(select(func.count()).select_from(Booking)).scalar_one()
    fields = {**RESIDENT.__dict__, **change}
    with pytest.raises(BookingError) as refused:
        service.book(
            db,
            slot_id=slot,
            party=1,
            resident=ResidentInput(**fields),
            channel="web",
        )
    assert refused.value.code == code
    assert 400 <= refused.value.status < 500
    assert db.execute(select(func.count()).select_from(Booking)).scalar_one() == before
    assert seats(db, slot) == (3, 0, 0)


def test_party_size_limits(db: Session, make_slot: SlotMaker) -> None:
    slot = make_slot(10)
    for party in (0, 7):
        with pytest.raises(BookingError) as refused:
            book(db, slot, party=party)
        assert refused.value.code == "invalid_party_size"
    assert seats(db, slot) == (10, 0, 0)


# --- Holds --------------------------------------------------------------------------------


def test_a_hold_keeps_seats_and_booking_from_it_cannot_fail(
    db: Session, make_slot: SlotMaker
) -> None:
    slot = make_slot(3)
    hold = service.create_hold(db, slot_id=slot, seats=2, channel="ivr")
    assert seats(db, slot) == (3, 0, 2)
    assert remaining(db, slot) == 1
    book(db, slot, party=1)  # the last free seat goes to someone else
    with pytest.raises(BookingError):
        book(db, slot, party=1)
    booking = service.book(db, hold_id=hold.id, party=2, resident=RESIDENT, channel="ivr")
    assert booking.slot_id == slot
    assert seats(db, slot) == (3, 3, 0)
    with pytest.raises(BookingError) as used:
        service.book(db, hold_id=hold.id, party=2, resident=RESIDENT, channel="ivr")
    assert used.value.code == "hold_not_found"


def test_a_hold_lapses_by_itself(db: Session, make_slot: SlotMaker, clock: FakeClock) -> None:
    slot = make_slot(2)
    hold = service.create_hold(db, slot_id=slot, seats=2, channel="web")
    assert remaining(db, slot) == 0
    clock.advance(minutes=10, seconds=1)
    # Shown free at once, and bookable, although no sweep has run yet.
    assert remaining(db, slot) == 2
    book(db, slot, party=2)
    assert seats(db, slot) == (2, 2, 0)
    with pytest.raises(BookingError) as lapsed:
        service.book(db, hold_id=hold.id, party=2, resident=RESIDENT, channel="web")
    assert lapsed.value.code == "hold_not_found"


def test_a_lapsed_hold_still_books_when_seats_are_free(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    slot = make_slot(2)
    hold = service.create_hold(db, slot_id=slot, seats=1, channel="web")
    clock.advance(minutes=30)
    booking = service.book(db, hold_id=hold.id, party=1, resident=RESIDENT, channel="web")
    assert booking.status == "booked"
    assert seats(db, slot) == (2, 1, 0)


def test_a_lapsed_hold_on_a_full_slot_says_expired(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    slot = make_slot(1)
    hold = service.create_hold(db, slot_id=slot, seats=1, channel="web")
    clock.advance(minutes=11)
    book(db, slot, party=1)
    with pytest.raises(BookingError) as lapsed:
        service.book(db, hold_id=hold.id, party=1, resident=RESIDENT, channel="web")
    assert lapsed.value.code in ("hold_expired", "hold_not_found")
    assert seats(db, slot) == (1, 1, 0)


def test_release_and_sweep_give_seats_back(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    slot = make_slot(3)
    first = service.create_hold(db, slot_id=slot, seats=1, channel="web")
    service.create_hold(db, slot_id=slot, seats=2, channel="web")
    service.release_hold(db, hold_id=first.id)
    assert seats(db, slot) == (3, 0, 2)
    clock.advance(minutes=10)
    assert service.reclaim_expired_holds(db, slot_id=slot) == 2
    assert seats(db, slot) == (3, 0, 0)


# --- Cancel and reschedule ----------------------------------------------------------------


def test_cancel_returns_the_seats(db: Session, make_slot: SlotMaker) -> None:
    slot = make_slot(2)
    booking = book(db, slot, party=2)
    cancelled = service.cancel(db, code=booking.code, phone="09012345678")
    assert cancelled.status == "cancelled"
    assert seats(db, slot) == (2, 0, 0)
    again = service.cancel(db, code=booking.code, birth_date=date(1950, 4, 1))
    assert again.status == "cancelled"
    assert seats(db, slot) == (2, 0, 0)


def test_cancelled_seats_wait_out_the_release_delay(
    engine: object, db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    slot = make_slot(1)
    booking = book(db, slot)
    db.info["booking"] = make_context(clock, release_delay_minutes=30)
    service.cancel_booking(db, booking_id=booking.id)
    assert seats(db, slot) == (1, 0, 1)
    assert remaining(db, slot) == 0
    clock.advance(minutes=31)
    assert remaining(db, slot) == 1
    book(db, slot)


def test_reschedule_moves_the_seats(db: Session, make_slot: SlotMaker) -> None:
    old, new = make_slot(3), make_slot(3)
    booking = book(db, old, party=2)
    moved = service.reschedule(db, code=booking.code, phone="+81 90 1234 5678", slot_id=new)
    assert moved.slot_id == new and moved.code == booking.code and moved.version == 2
    assert seats(db, old) == (3, 0, 0)
    assert seats(db, new) == (3, 2, 0)


@pytest.mark.parametrize("older_first", [True, False])
def test_a_failed_reschedule_keeps_the_old_time(
    db: Session, make_slot: SlotMaker, older_first: bool
) -> None:
    a, b = make_slot(2), make_slot(1)
    old, full = (a, b) if older_first else (b, a)
    if not older_first:
        book(db, full, party=2)
    else:
        book(db, full, party=1)
    booking = book(db, old, party=1)
    with pytest.raises(BookingError) as refused, db.begin_nested():
        service.reschedule_booking(db, booking_id=booking.id, slot_id=full)
    assert refused.value.code == "slot_full"
    kept = service.get_booking(db, booking_id=booking.id)
    assert kept.slot_id == old and kept.status == "booked" and kept.version == 1
    assert seats(db, old)[1] == 1


def test_reschedule_from_a_hold(db: Session, make_slot: SlotMaker) -> None:
    old, new = make_slot(2), make_slot(2)
    booking = book(db, old, party=2)
    hold = service.create_hold(db, slot_id=new, seats=2, channel="agent")
    service.reschedule_booking(db, booking_id=booking.id, hold_id=hold.id)
    assert seats(db, new) == (2, 2, 0)
    assert seats(db, old) == (2, 0, 0)


def test_reschedule_refuses_another_service_and_the_same_slot(
    db: Session, make_slot: SlotMaker
) -> None:
    slot = make_slot(2)
    other = make_slot(2, service="pin_reset")
    booking = book(db, slot)
    for target, code in ((other, "service_mismatch"), (slot, "same_slot")):
        with pytest.raises(BookingError) as refused:
            service.reschedule_booking(db, booking_id=booking.id, slot_id=target)
        assert refused.value.code == code


def test_a_cancelled_booking_cannot_move(db: Session, make_slot: SlotMaker) -> None:
    a, b = make_slot(2), make_slot(2)
    booking = book(db, a)
    service.cancel_booking(db, booking_id=booking.id)
    with pytest.raises(BookingError) as refused:
        service.reschedule_booking(db, booking_id=booking.id, slot_id=b)
    assert refused.value.code == "booking_not_active"
    assert seats(db, b) == (2, 0, 0)


# --- Finding a booking --------------------------------------------------------------------


def test_found_by_code_and_phone_or_birth_date_only(db: Session, make_slot: SlotMaker) -> None:
    booking = book(db, make_slot(2))
    assert service.find_booking(db, code=booking.code, phone="090-1234-5678").id == booking.id
    assert service.find_booking(db, code=booking.code, birth_date=date(1950, 4, 1)).id == booking.id
    for factor in ({"phone": "090-1234-5679"}, {"birth_date": date(1950, 4, 2)}, {"phone": "x"}):
        with pytest.raises(BookingError) as wrong:
            service.find_booking(db, code=booking.code, **factor)
        assert wrong.value.code == "booking_not_found" and wrong.value.status == 404
    with pytest.raises(BookingError) as alone:
        service.find_booking(db, code=booking.code)
    assert alone.value.code == "second_factor_required"


def test_a_mistyped_code_is_caught(db: Session, make_slot: SlotMaker) -> None:
    booking = book(db, make_slot(2))
    slipped = booking.code[:3] + str((int(booking.code[3]) + 1) % 10) + booking.code[4:]
    with pytest.raises(BookingError) as typo:
        service.find_booking(db, code=slipped, phone="09012345678")
    assert typo.value.code == "invalid_code"


# --- Idempotency --------------------------------------------------------------------------


def test_the_same_key_and_request_give_the_same_booking(db: Session, make_slot: SlotMaker) -> None:
    slot = make_slot(3)
    first = book(db, slot, idempotency_key="retry-1")
    second = book(db, slot, idempotency_key="retry-1")
    assert second.id == first.id
    assert seats(db, slot) == (3, 1, 0)
    with pytest.raises(BookingError) as conflict:
        book(db, slot, party=2, idempotency_key="retry-1")
    assert conflict.value.code == "idempotency_conflict"
    assert seats(db, slot) == (3, 1, 0)


# --- The counter --------------------------------------------------------------------------


def test_counter_status_changes(db: Session, make_slot: SlotMaker) -> None:
    booking = book(db, make_slot(2))
    assert service.set_status(db, booking_id=booking.id, status="checked_in").status == "checked_in"
    assert service.set_status(db, booking_id=booking.id, status="completed").status == "completed"
    with pytest.raises(BookingError) as refused:
        service.set_status(db, booking_id=booking.id, status="no_show")
    assert refused.value.code == "invalid_status_change"
    with pytest.raises(BookingError):
        service.cancel_booking(db, booking_id=booking.id)


def test_the_answer_to_a_booking_is_what_was_stored(db: Session, clock: FakeClock) -> None:
    pickup = service.availability(db, service_id="pickup", venue_id="main", party=2, limit=1)[0]
    household = ResidentInput(
        name_kana="すずき いちろう",
        phone="080-9876-5432",
        birth_date=date(1944, 2, 29),
        language="en",
        members=[MemberInput("XY9-000001", e_certificate=False), MemberInput("XY9-000002")],
    )
    made = service.book(db, slot_id=pickup.id, party=2, resident=household, channel="agent")
    stored = service.find_booking(db, code=made.code, birth_date=date(1944, 2, 29))
    assert made == stored


def test_a_retried_booking_from_a_used_hold_answers_with_the_booking(
    db: Session, make_slot: SlotMaker
) -> None:
    slot = make_slot(2)
    hold = service.create_hold(db, slot_id=slot, seats=1, channel="web")
    first = service.book(
        db, hold_id=hold.id, party=1, resident=RESIDENT, channel="web", idempotency_key="h-1"
    )
    again = service.book(
        db, hold_id=hold.id, party=1, resident=RESIDENT, channel="web", idempotency_key="h-1"
    )
    assert again.id == first.id
    assert seats(db, slot) == (2, 1, 0)
    other = ResidentInput(name_kana="ベツジン", phone="08011112222", birth_date=date(1990, 1, 1))
    with pytest.raises(BookingError) as conflict:
        service.book(
            db, hold_id=hold.id, party=1, resident=other, channel="web", idempotency_key="h-1"
        )
    assert conflict.value.code == "idempotency_conflict"
    with pytest.raises(BookingError) as gone:
        service.book(db, hold_id=hold.id, party=1, resident=RESIDENT, channel="web")
    assert gone.value.code == "hold_not_found"


# --- Regressions found in review ------------------------------------------------------------


def test_a_refused_move_keeps_the_old_seats_even_if_the_caller_carries_on(
    db: Session, make_slot: SlotMaker
) -> None:
    old, full = make_slot(2), make_slot(1)  # old has the lower id: its seats would go first
    book(db, full, party=1)
    booking = book(db, old, party=1)
    with pytest.raises(BookingError):
        service.reschedule_booking(db, booking_id=booking.id, slot_id=full)
    # No savepoint here: an adapter that catches the refusal and commits must find it intact.
    kept = service.get_booking(db, booking_id=booking.id)
    assert (kept.slot_id, kept.version) == (old, 1)
    assert seats(db, old) == (2, 1, 0)


def test_a_hold_cannot_book_a_day_closed_since(db: Session) -> None:
    from booking import schedule

    regular = service.availability(db, service_id="pin_reset", venue_id="main", limit=1)[0]
    hold = service.create_hold(db, slot_id=regular.id, seats=1, channel="ivr")
    day = regular.starts_at.astimezone(TOKYO).date()
    schedule.close_day(db, day=day, reason="停電", venue_id="main")
    with pytest.raises(BookingError) as refused:
        service.book(db, hold_id=hold.id, party=1, resident=RESIDENT, channel="ivr")
    assert refused.value.code == "slot_closed"


def test_moving_away_honours_the_release_delay(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    old, new = make_slot(1), make_slot(1)
    booking = book(db, old)
    db.info["booking"] = make_context(clock, release_delay_minutes=60)
    service.reschedule_booking(db, booking_id=booking.id, slot_id=new)
    assert seats(db, old) == (1, 0, 1)  # not back on sale yet: no handing seats over by moving
    with pytest.raises(BookingError):
        book(db, old)
    clock.advance(minutes=61)
    book(db, old)


def test_one_phone_holds_only_so_many_bookings(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    db.info["booking"] = make_context(clock, max_active_per_phone=3)
    slot = make_slot(10)
    # A number no other test books with (their bookings are committed in the same database).
    hoarder = ResidentInput(name_kana="タクサン", phone="07098761234", birth_date=date(1970, 1, 1))
    for _ in range(3):
        service.book(db, slot_id=slot, party=1, resident=hoarder, channel="web")
    with pytest.raises(BookingError) as refused:
        service.book(db, slot_id=slot, party=1, resident=hoarder, channel="web")
    assert refused.value.code == "too_many_bookings"
    assert refused.value.status == 409
    other = ResidentInput(name_kana="ホカ", phone="08055556666", birth_date=date(1980, 1, 1))
    service.book(db, slot_id=slot, party=1, resident=other, channel="web")


def test_attempts_are_counted_per_client_and_forgotten_after_a_day(
    db: Session, clock: FakeClock
) -> None:
    from datetime import timedelta

    from booking.models import ClientAttempt

    def attempt(client: str) -> bool:
        return service.note_attempt(
            db, client=client, kind="lookup", limit=2, window=timedelta(minutes=15)
        )

    assert [attempt("client-a"), attempt("client-a"), attempt("client-a")] == [True, True, False]
    assert attempt("client-b")  # another client's count is its own
    clock.advance(minutes=16)
    assert attempt("client-a")  # the window passed
    clock.advance(days=1, minutes=1)
    service.forget_old_attempts(db)
    left = db.execute(
        select(ClientAttempt.client).where(ClientAttempt.client.in_(["client-a", "client-b"]))
    ).scalars()
    assert sorted(left) == []


def test_an_error_in_a_language_the_catalogue_lacks_is_said_in_english() -> None:
    """Every entry has the ward's languages; a language it lacks is said in English."""
    refused = BookingError("slot_full")
    assert refused.message("fr") == refused.message("en")
    assert refused.message("ko") != refused.message("en")  # Korean has its own
