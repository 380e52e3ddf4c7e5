"""A booking's link to a LINE user: sealed, found by its keyed hash, erased with the booking's
personal data by the retention rule."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from booking import service as booking
from booking.availability import quota_params
from booking.context import context
from booking.models import LineLink
from booking.service import ResidentInput
from ivr import service as calls
from ivr.line_chat import lock_user
from ivr.models import LineUser
from tests.conftest import SlotMaker
from tests.ivr.conftest import new_mobile


def _booked(db: Session, make_slot: SlotMaker) -> int:
    made = booking.book(
        db,
        slot_id=make_slot(2),
        party=1,
        resident=ResidentInput(None, new_mobile(), date(1980, 4, 1)),
        channel="line",
    )
    return made.id


def test_the_line_user_is_kept_sealed_and_found_by_its_hash(
    db: Session, make_slot: SlotMaker
) -> None:
    booking_id = _booked(db, make_slot)
    booking.link_line_user(db, booking_id=booking_id, line_user="U" + "a" * 32)
    row = db.execute(select(LineLink).where(LineLink.booking_id == booking_id)).scalar_one()
    assert "U" + "a" * 32 not in row.user_enc
    assert row.user_hmac == context(db).vault.digest("U" + "a" * 32)
    assert booking.line_user_of(db, booking_id=booking_id) == "U" + "a" * 32
    # Found again by another LINE user: the link moves to them.
    booking.link_line_user(db, booking_id=booking_id, line_user="U" + "b" * 32)
    assert booking.line_user_of(db, booking_id=booking_id) == "U" + "b" * 32


def test_the_link_is_erased_with_the_bookings_personal_data(
    db: Session, make_slot: SlotMaker
) -> None:
    booking_id = _booked(db, make_slot)
    booking.link_line_user(db, booking_id=booking_id, line_user="U" + "c" * 32)
    later = context(db).now() + timedelta(days=3650)
    booking.erase_personal_data(db, before=later)
    assert booking.line_user_of(db, booking_id=booking_id) is None


def test_the_line_channel_leaves_the_seats_kept_for_the_phone() -> None:
    assert quota_params("line") == quota_params("web")


def test_residents_who_unfollowed_are_forgotten_after_the_retention_period(
    db: Session,
) -> None:
    gone, still = "U" + "d" * 32, "U" + "e" * 32
    for user in (gone, still):
        lock_user(db, user)
    db.execute(
        update(LineUser).where(LineUser.user_hmac == digest(db, gone)).values(following=False)
    )
    later = context(db).now() + timedelta(days=1)
    assert calls.erase_line_users(db, before=later) >= 1  # (other tests leave some too)
    left = set(db.execute(select(LineUser.user_hmac)).scalars())
    assert digest(db, gone) not in left and digest(db, still) in left


def digest(db: Session, user: str) -> str:
    return context(db).vault.digest(user)
