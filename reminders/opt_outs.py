"""Residents who want no more messages: for one booking, or for every booking of a number (from
their page, an agent, Twilio's STOP handling or a reminder call's keypad). Messages not sent
yet are dropped, and later ones are never sent."""

from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from booking import service as booking
from booking.context import context
from reminders.models import Message, OptOut


def opted_out_of(
    db: DbSession, *, booking_ids: list[int], to_hmacs: list[str]
) -> tuple[set[int], set[str]]:
    """Which of these bookings, and which of these numbers (keyed hashes), are opted out: one
    query for a whole batch of messages."""
    if not booking_ids and not to_hmacs:
        return set(), set()
    rows = db.execute(
        select(OptOut.booking_id, OptOut.to_hmac).where(
            or_(OptOut.booking_id.in_(booking_ids), OptOut.to_hmac.in_(to_hmacs))
        )
    )
    bookings, numbers = set(), set()
    for booking_id, to_hmac in rows:
        if booking_id is not None:
            bookings.add(int(booking_id))
        if to_hmac is not None:
            numbers.add(str(to_hmac))
    return bookings, numbers


def number_opted_out(db: DbSession, to_hmac: str) -> bool:
    return db.execute(select(OptOut.id).where(OptOut.to_hmac == to_hmac)).first() is not None


def opt_out_number(db: DbSession, to_hmac: str, source: str) -> None:
    try:
        with db.begin_nested():
            db.add(OptOut(to_hmac=to_hmac, source=source, created_at=context(db).now()))
    except IntegrityError:
        pass  # already opted out


def opt_out(
    db: DbSession, *, booking_id: int, whole_number: bool = False, source: str = "resident"
) -> int:
    """No more messages for this booking (or for every booking of its number); messages not
    sent yet are dropped. Returns how many were dropped."""
    view = booking.get_booking(db, booking_id=booking_id)
    ctx = context(db)
    if whole_number and view.phone is not None:  # (no number left: this booking alone)
        to_hmac = ctx.vault.digest(view.phone)
        opt_out_number(db, to_hmac, source)
        target = Message.to_hmac == to_hmac
    else:
        try:
            with db.begin_nested():
                db.add(OptOut(booking_id=booking_id, source=source, created_at=ctx.now()))
        except IntegrityError:
            pass
        target = Message.booking_id == booking_id
    result = db.execute(
        update(Message)
        .where(target, Message.status == "scheduled")
        .values(status="dropped", last_error="opted out", updated_at=ctx.now())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def opted_out(db: DbSession, *, booking_id: int) -> bool:
    """Whether messages for this booking are off (for it, or for its number)."""
    view = booking.get_booking(db, booking_id=booking_id)
    digest = context(db).vault.digest(view.phone) if view.phone else ""
    found = db.execute(
        select(OptOut.id).where(or_(OptOut.booking_id == booking_id, OptOut.to_hmac == digest))
    ).first()
    return found is not None
