"""Retention: a booking's personal data erased once its visit (or its cancellation) is past
the retention period; what statistics need stays. config/retention.py runs it with each
package's own erasure.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from booking.context import context
from booking.line_links import unlink_line_users
from booking.models import Booking, BookingMember, Slot


def erase_personal_data(db: DbSession, *, before: datetime, everything: bool = False) -> int:
    """Erase the personal data of bookings whose visit was before ``before``, or that were
    cancelled before it (or, ``everything``, of every booking: the contract's end). The name,
    phone number, birth date and notice numbers go, with their lookup hashes; what statistics
    need stays (when, where, what, how many, by which channel, the outcome). Returns how many
    bookings were erased."""
    now = context(db).now()
    due = select(Booking.id).where(Booking.erased_at.is_(None))
    if not everything:
        visited = select(Slot.id).where(Slot.starts_at < before)
        due = due.where(
            Booking.slot_id.in_(visited)
            | ((Booking.status == "cancelled") & (Booking.updated_at < before))
        )
    ids = list(db.execute(due).scalars())
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        unlink_line_users(db, chunk)  # the LINE user id is the resident's too
        db.execute(
            update(BookingMember)
            .where(BookingMember.booking_id.in_(chunk))
            .values(notice_number_enc=None, notice_number_hmac=None)
        )
        db.execute(
            update(Booking)
            .where(Booking.id.in_(chunk))
            .values(
                name_kana_enc=None,
                phone_enc=None,
                phone_hmac=None,
                birth_date_enc=None,
                erased_at=now,
            )
        )
    return len(ids)
