"""Walk-in tickets: an unguessable token per ticket, a mobile number left for the alerts (sealed,
E.164, mobiles only, erased once the day is over), the desk a call sends a resident to, and a
booked resident's status-page token. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from booking import service
from booking.context import TOKYO
from booking.errors import BookingError
from tests.booking.test_counter_queue import at, book, popup_day, walk_in
from tests.conftest import FakeClock


def test_a_ticket_has_its_own_token_and_is_found_by_it_only(db: Session, clock: FakeClock) -> None:
    venue, _ = popup_day(db, clock)
    at(clock, 10, 0)
    first, second = walk_in(db, venue), walk_in(db, venue)
    assert first.token and second.token and first.token != second.token
    assert len(first.token) >= 24
    found = service.ticket(db, token=first.token)
    assert (found.number, found.venue_id, found.phone) == (first.number, venue, None)
    assert service.ticket_of_number(db, venue_id=venue, number=second.number).token == second.token
    last = "A" if first.token[-1] != "A" else "B"  # one character off, never the token itself
    for wrong in ("", "x" * 24, first.token[:-1] + last):
        with pytest.raises(BookingError) as missing:
            service.ticket(db, token=wrong)
        assert missing.value.code == "ticket_not_found"


def test_a_mobile_left_on_a_ticket_is_sealed_and_erased_after_the_day(
    db: Session, clock: FakeClock
) -> None:
    venue, _ = popup_day(db, clock)
    at(clock, 10, 0)
    made = walk_in(db, venue)
    token = str(made.token)
    with pytest.raises(BookingError) as landline:
        service.leave_ticket_phone(db, token=token, phone="03-5273-4111")
    assert landline.value.code == "sms_needs_mobile"
    left = service.leave_ticket_phone(
        db, token=token, phone="０９０-１２３４-５６７８", language="en"
    )
    assert (left.phone, left.language) == ("+819012345678", "en")
    stored = db.execute(
        text("SELECT phone_enc, phone_hmac FROM walk_in WHERE token = :t"), {"t": token}
    ).one()
    assert "9012345678" not in stored.phone_enc and stored.phone_hmac
    assert [
        t.token for t in service.tickets_with_phones(db, venue_id=venue, day=made_day(clock))
    ] == [token]

    service.erase_ticket_phones(db, before=made_day(clock))  # the day is not over: kept
    assert service.ticket(db, token=token).phone == "+819012345678"
    assert service.erase_ticket_phones(db, before=made_day(clock) + timedelta(days=1)) >= 1
    assert service.ticket(db, token=token).phone is None
    clock.set(clock.now + timedelta(days=1))
    with pytest.raises(BookingError) as over:
        service.leave_ticket_phone(db, token=token, phone="090-1234-5678")
    assert over.value.code == "ticket_over"


def made_day(clock: FakeClock) -> date:
    return clock.now.astimezone(TOKYO).date()


def test_a_call_says_the_desk_and_a_booking_has_a_status_token(
    db: Session, clock: FakeClock
) -> None:
    venue, slots = popup_day(db, clock)
    made = book(db, slots[0])
    at(clock, 10, 0)
    ticket = walk_in(db, venue)
    service.check_in(db, code=made.code, venue_id=venue)
    service.call_walk_in(db, venue_id=venue, number=ticket.number, desk="3")
    assert service.ticket(db, token=str(ticket.token)).called_desk == "3"
    service.call_to_counter(db, booking_id=made.id, desk="5")
    token = service.booking_queue_token(db, booking_id=made.id)
    assert service.is_booking_token(token)
    # A ticket's token may begin with "b" too: it is still a ticket's.
    assert not service.is_booking_token("b12345-" + "0" * 17)
    assert not service.is_booking_token(str(ticket.token))
    found = service.booking_in_queue(db, token=token)
    assert (found.booking_id, found.called_desk, found.status) == (made.id, "5", "checked_in")
    for wrong in (
        token[:-1] + ("0" if token[-1] != "0" else "1"),
        f"b{made.id + 1}" + token[len(f"b{made.id}") :],
        "b-x",
    ):
        with pytest.raises(BookingError):
            service.booking_in_queue(db, token=wrong)
