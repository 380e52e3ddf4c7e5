"""Bookings linked to a LINE user: a booking made or found in the LINE chat keeps the resident's
LINE user id (sealed, with a keyed hash for lookups), so its notices go by LINE push and the chat
lists it without asking for the code again. The link goes with the booking's personal data
(booking.retention)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session as DbSession

from booking.context import context
from booking.models import Booking, LineLink, Slot
from booking.reads import booking_view
from booking.views import BookingView

# The most bookings the chat lists for one LINE user (a household books a few at most).
LINKED_SHOWN = 10


def link_line_user(db: DbSession, *, booking_id: int, line_user: str) -> None:
    """Link a booking to the LINE user who made or found it in the chat (the last one wins)."""
    vault = context(db).vault
    values = {
        "booking_id": booking_id,
        "user_enc": vault.encrypt(line_user),
        "user_hmac": vault.digest(line_user),
        "linked_at": context(db).now(),
    }
    if db.get_bind().dialect.name == "postgresql":
        statement = pg_insert(LineLink).values(**values)
        db.execute(
            statement.on_conflict_do_update(
                index_elements=[LineLink.booking_id],
                set_={k: statement.excluded[k] for k in ("user_enc", "user_hmac", "linked_at")},
            )
        )
        return
    db.execute(delete(LineLink).where(LineLink.booking_id == booking_id))
    db.add(LineLink(**values))
    db.flush()


def line_user_of(db: DbSession, *, booking_id: int) -> str | None:
    """The LINE user a booking is linked to, decrypted (None: not linked, or erased)."""
    sealed = db.execute(
        select(LineLink.user_enc).where(LineLink.booking_id == booking_id)
    ).scalar_one_or_none()
    return context(db).vault.decrypt(sealed) if sealed else None


def line_links_of(db: DbSession, *, booking_ids: list[int]) -> dict[int, tuple[str, str]]:
    """Many bookings' LINE users as stored (sealed, with the keyed hash), by booking id: what
    planning their notices copies onto the messages, never decrypted and sealed again."""
    if not booking_ids:
        return {}
    rows = db.execute(
        select(LineLink.booking_id, LineLink.user_enc, LineLink.user_hmac).where(
            LineLink.booking_id.in_(booking_ids)
        )
    )
    return {booking_id: (enc, digest) for booking_id, enc, digest in rows}


def bookings_for_line_user(db: DbSession, *, line_user: str) -> list[BookingView]:
    """The bookings still to come linked to a LINE user, earliest first."""
    now = context(db).now()
    ids = db.execute(
        select(Booking.id)
        .join(LineLink, LineLink.booking_id == Booking.id)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            LineLink.user_hmac == context(db).vault.digest(line_user),
            Booking.status == "booked",
            Slot.starts_at > now,
        )
        .order_by(Slot.starts_at)
        .limit(LINKED_SHOWN)
    ).scalars()
    return [booking_view(db, booking_id) for booking_id in ids]


def unlink_line_users(db: DbSession, booking_ids: list[int]) -> None:
    """Forget the LINE users of these bookings (their personal data is being erased)."""
    db.execute(delete(LineLink).where(LineLink.booking_id.in_(booking_ids)))
