"""A booking's changes: cancelling (by the resident, counted against the monthly limit, or by
staff), moving it to another time (the new seats secured before the old ones go), and the
counter's status changes (checked in, completed, no-show). Seats move through booking/seats.py.

Lock order: the booking row first (``_lock_active``), then slot rows in ascending id order.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from booking import cards, fairness, seats
from booking.context import context
from booking.errors import BookingError
from booking.models import Booking, BookingMember
from booking.outbox import record_event
from booking.reads import booking_view, find_booking, slot_for_sale, slot_info
from booking.seats import rowcount
from booking.views import BookingView


def _lock_active(db: DbSession, booking_id: int) -> None:
    """Lock the booking row first (the lock order) and bump its version; it must be booked."""
    result = db.execute(
        update(Booking)
        .where(Booking.id == booking_id, Booking.status == "booked")
        .values(version=Booking.version + 1, updated_at=context(db).now())
    )
    if rowcount(result) != 1:
        status = db.execute(select(Booking.status).where(Booking.id == booking_id)).scalar_one()
        raise BookingError("booking_not_active", status=status)


def cancel(
    db: DbSession, *, code: str, phone: str | None = None, birth_date: date | None = None
) -> BookingView:
    """Cancel a booking; its seats go back on sale (after the release delay, if one is set).

    Cancelling a cancelled booking again answers with it unchanged.
    """
    view = find_booking(db, code=code, phone=phone, birth_date=birth_date)
    if view.status == "cancelled":
        return view
    try:
        return cancel_by_resident(db, booking_id=view.id)
    except BookingError as exc:
        again = booking_view(db, view.id)
        if exc.code == "booking_not_active" and again.status == "cancelled":
            return again  # cancelled by a twin request in between: the same answer
        raise


def cancel_by_resident(db: DbSession, *, booking_id: int) -> BookingView:
    """Cancel by id for the resident themself (the web, the API, the phone line, after their
    own proof): counted against the phone number's monthly limit, all or nothing."""
    with db.begin_nested():
        phone_hmac, status = db.execute(
            select(Booking.phone_hmac, Booking.status).where(Booking.id == booking_id)
        ).one()
        if status == "booked":
            fairness.count_cancel(db, phone_hmac=phone_hmac)
        return cancel_booking(db, booking_id=booking_id)


def cancel_booking(db: DbSession, *, booking_id: int) -> BookingView:
    """Cancel by id (staff, after their own checks; not counted against any limit)."""
    _lock_active(db, booking_id)
    booking = db.execute(
        select(Booking.slot_id, Booking.party_size, Booking.version).where(Booking.id == booking_id)
    ).one()
    db.execute(update(Booking).where(Booking.id == booking_id).values(status="cancelled"))
    seats.release_seats(db, booking.slot_id, booking.party_size)
    record_event(db, booking_id, "cancelled", booking.version)
    return booking_view(db, booking_id)


def reschedule(
    db: DbSession,
    *,
    code: str,
    phone: str | None = None,
    birth_date: date | None = None,
    slot_id: int | None = None,
    hold_id: str | None = None,
) -> BookingView:
    """Move a booking to another time of the same service; the old seats go only once the new
    ones are secured (one transaction: a failure leaves the booking where it was)."""
    view = find_booking(db, code=code, phone=phone, birth_date=birth_date)
    return reschedule_booking(db, booking_id=view.id, slot_id=slot_id, hold_id=hold_id)


def reschedule_booking(
    db: DbSession,
    *,
    booking_id: int,
    slot_id: int | None = None,
    hold_id: str | None = None,
    channel: str = "web",
) -> BookingView:
    """Move by id (staff, after their own checks). All or nothing, even for a caller that
    catches the refusal and commits: the move runs in a savepoint. A move to a slot (not a
    hold) takes seats as ``channel`` may (the web's share unless said otherwise)."""
    with db.begin_nested():
        return move(db, booking_id, slot_id, hold_id, channel)


def move(
    db: DbSession,
    booking_id: int,
    slot_id: int | None,
    hold_id: str | None,
    channel: str,
    event: str = "moved",
) -> BookingView:
    """Move a booking to a slot or a hold's seats of the same service; records ``event``."""
    if (slot_id is None) == (hold_id is None):
        raise BookingError("both_slot_and_hold", field="slot_id")
    target = slot_id if slot_id is not None else seats.hold_slot(db, str(hold_id))
    new_slot = slot_for_sale(db, target) if hold_id is None else slot_info(db, target)
    _lock_active(db, booking_id)
    booking = db.execute(
        select(
            Booking.slot_id,
            Booking.party_size,
            Booking.service_id,
            Booking.version,
            Booking.birth_date_enc,
            Booking.venue_id,
        ).where(Booking.id == booking_id)
    ).one()
    # The day moved to must be released to the resident's group too (erased: to anyone).
    born = booking.birth_date_enc and context(db).vault.decrypt(booking.birth_date_enc)
    birth_year = date.fromisoformat(born).year if born else None
    if new_slot.service_id != booking.service_id:
        raise BookingError("service_mismatch", field="slot_id")
    if new_slot.id == booking.slot_id:
        raise BookingError("same_slot", field="slot_id")
    if cards.refusing(db) and new_slot.venue_id != booking.venue_id:
        # The card waits where it arrived: a move to another venue needs it listed there.
        cards.check_slot(db, slot_id=new_slot.id, digests=_notice_digests(db, booking_id))
    party = booking.party_size
    # Both slot rows now, in ascending id order (the lock order).
    seats.lock_slots(db, [booking.slot_id, new_slot.id])
    if hold_id is not None:
        seats.take_hold(db, hold_id, party, birth_year)
    else:
        seats.claim_booked(db, new_slot.id, party, channel, birth_year)
    # Only now, with the new seats secured, do the old ones go.
    seats.release_seats(db, booking.slot_id, party)
    db.execute(
        update(Booking)
        .where(Booking.id == booking_id)
        .values(slot_id=new_slot.id, venue_id=new_slot.venue_id)
    )
    record_event(db, booking_id, event, booking.version)
    return booking_view(db, booking_id)


_TRANSITIONS = {
    ("booked", "checked_in"),
    ("booked", "no_show"),
    ("checked_in", "completed"),
    ("checked_in", "booked"),  # checked in by mistake
    ("no_show", "checked_in"),  # arrived late after all
}


def set_status(db: DbSession, *, booking_id: int, status: str) -> BookingView:
    """Counter status changes: checked in, completed, no-show. Seats stay counted: the time is
    the resident's until it has passed."""
    current = db.execute(
        select(Booking.status).where(Booking.id == booking_id)
    ).scalar_one_or_none()
    if current is None:
        raise BookingError("booking_not_found")
    if (current, status) not in _TRANSITIONS:
        raise BookingError("invalid_status_change", current=current, target=status)
    now = context(db).now()
    times: dict[str, datetime | None] = {}
    if status == "checked_in":  # arrived now (a no-show arriving late too): the wait starts
        times = {"checked_in_at": now, "called_at": None}
    elif status == "booked":  # checked in by mistake
        times = {"checked_in_at": None, "called_at": None}
    result = db.execute(
        update(Booking)
        .where(Booking.id == booking_id, Booking.status == current)
        .values(status=status, version=Booking.version + 1, updated_at=now, **times)
        .returning(Booking.version)
    ).first()
    if result is None:  # someone else changed it in between
        raise BookingError("invalid_status_change", current=current, target=status)
    if status == "no_show":  # as mark_no_shows does: the seats go back to the counter
        slot_id, party = _seats_of(db, booking_id)
        seats.release_booked(db, slot_id, party)
    elif current == "no_show":
        seats.retake_seats(db, *_seats_of(db, booking_id))
    record_event(db, booking_id, "status", int(result.version))
    return booking_view(db, booking_id)


def _seats_of(db: DbSession, booking_id: int) -> tuple[int, int]:
    slot_id, party = db.execute(
        select(Booking.slot_id, Booking.party_size).where(Booking.id == booking_id)
    ).one()
    return int(slot_id), int(party)


def _notice_digests(db: DbSession, booking_id: int) -> list[str | None]:
    return list(
        db.execute(
            select(BookingMember.notice_number_hmac)
            .where(BookingMember.booking_id == booking_id)
            .order_by(BookingMember.position)
        ).scalars()
    )


def complete_pickup(db: DbSession, *, booking_id: int) -> tuple[BookingView, int]:
    """The counter's 完了 for a booking: completed, and its cards (picked up now) leave the
    list of cards that have arrived; the booking and how many cards went, for the erasure
    record."""
    view = set_status(db, booking_id=booking_id, status="completed")
    return view, cards.erase_picked_up(db, booking_id=booking_id)
