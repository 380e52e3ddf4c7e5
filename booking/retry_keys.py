"""Retry keys (idempotency): a client's key is kept only as a keyed hash; a retry of the same
request is answered with the booking the first one made, and another request under the same
key is refused.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from booking.context import BookingContext, context
from booking.errors import BookingError
from booking.models import Booking, IdempotencyKey
from booking.personal import seal
from booking.reads import booking_view, slot_info
from booking.views import BookingView, ResidentInput


def stored_key(ctx: BookingContext, idempotency_key: str | None) -> str | None:
    """The retry key as kept: a keyed hash, never as given. A client's key is no field a
    person types (a random UUID's digits can pass the My Number check), and yet nothing it
    holds is kept."""
    if idempotency_key is None:
        return None
    return ctx.vault.digest(f"idempotency:{idempotency_key}")


def replay(db: DbSession, key: str, fingerprint: str) -> BookingView | None:
    """The booking this key made for the same request (``fingerprint``); None if the key is
    new; refused when the key came with another request."""
    record = db.execute(
        select(IdempotencyKey.request_hmac, IdempotencyKey.booking_id).where(
            IdempotencyKey.key == key
        )
    ).first()
    if record is None:
        return None
    if record.request_hmac != fingerprint or record.booking_id is None:
        raise BookingError("idempotency_conflict", field="Idempotency-Key")
    return booking_view(db, record.booking_id)


def replay_without_hold(
    db: DbSession,
    key: str | None,
    party: int,
    resident: ResidentInput,
    extra: dict[str, Any],
) -> BookingView | None:
    """The booking a retry key already made, when the hold it was made from is gone."""
    if key is None:
        return None
    booking_id = db.execute(
        select(IdempotencyKey.booking_id).where(IdempotencyKey.key == key)
    ).scalar_one_or_none()
    if booking_id is None:
        return None
    slot_id = db.execute(select(Booking.slot_id).where(Booking.id == booking_id)).scalar_one()
    ctx = context(db)
    requires = slot_info(db, slot_id).requires_notice_number
    sealed = seal(ctx.vault, ctx.today(), requires, party, resident, extra)
    return replay(db, key, sealed.fingerprint)
