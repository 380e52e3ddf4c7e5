"""Fairness limits of the engine, on every channel: one active pickup booking per notice
number (a card is picked up once), and a monthly limit on a phone number's own cancellations.

One pickup per notice number. A booking with notice numbers first takes a transaction-level
advisory lock per number (PostgreSQL), in a statement of its own and before any slot row: a
racer with the same number waits there until the first commits, and its booking statement,
begun after that (READ COMMITTED: a new snapshot per statement), then sees the first booking
and refuses. The rule itself is a NOT EXISTS over the bookings (in the one-statement
booking of booking/making.py, ``check_notices`` elsewhere), so it needs no table of its own to keep
right on cancel, no-show or erasure. On SQLite the check runs after the seat claim, which
holds SQLite's one write lock (BEGIN IMMEDIATE), so writers are serialised there too.
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import Date, bindparam, delete, text
from sqlalchemy.orm import Session as DbSession

from booking.base import UTCDateTime
from booking.context import TOKYO, context
from booking.errors import BookingError
from booking.models import CancelTally

# The lock namespace (first key) of notice numbers, so no other advisory lock meets them. The
# locks go in the order of their keys, so two bookings sharing numbers cannot deadlock.
_LOCK_NOTICES = text(
    """
SELECT pg_advisory_xact_lock(7301, k) FROM (
    SELECT DISTINCT hashtext(h) AS k FROM unnest(CAST(:digests AS text[])) AS u(h) ORDER BY k
) AS keys
"""
)


def today_start(db: DbSession) -> datetime:
    """Local midnight today: bookings from then on still stand."""
    return datetime.combine(context(db).today(), time(0), TOKYO)


def lock_notices(db: DbSession, digests: list[str | None]) -> None:
    """Serialise bookings that name the same notice numbers (PostgreSQL); before slot rows."""
    wanted = sorted({d for d in digests if d})
    if wanted and db.get_bind().dialect.name == "postgresql":
        db.execute(_LOCK_NOTICES, {"digests": wanted})


# The notice numbers of a request that stand in an active pickup booking: booked or at the
# counter, for today or later (one left "booked" in the past was never picked up, whether or
# not it was marked a no-show). Shaped so that every
# plan starts from the notice numbers' index: the booking is read in a scalar subquery per
# member row (PostgreSQL does not flatten it into a join). Written as a plain join, the generic
# plan PostgreSQL settles on for a statement run again and again read every booking (1.5 ms
# more a booking at 1,500 bookings, and growing).
NOTICE_IN_USE = text(
    """
SELECT bm.notice_number_hmac FROM booking_member bm
WHERE bm.notice_number_hmac IN :digests
  AND COALESCE((SELECT true FROM booking b
      JOIN slot bs ON bs.id = b.slot_id
      JOIN service bsv ON bsv.id = b.service_id
      WHERE b.id = bm.booking_id AND b.status IN ('booked', 'checked_in')
        AND bs.starts_at >= :today_start AND bsv.requires_notice_number), false)
LIMIT 1
"""
).bindparams(bindparam("digests", expanding=True), bindparam("today_start", type_=UTCDateTime()))


def check_notices(db: DbSession, digests: list[str | None]) -> None:
    """Refuse a pickup for a notice number that already has an active pickup booking."""
    wanted = {d: i for i, d in enumerate(digests) if d}
    if not wanted:
        return
    taken = db.execute(
        NOTICE_IN_USE, {"digests": list(wanted), "today_start": today_start(db)}
    ).scalar_one_or_none()
    if taken is not None:
        field = f"members[{wanted[taken]}].notice_number"
        raise BookingError("notice_already_booked", field=field)


# --- Cancellations a month --------------------------------------------------------------------

# Counted up only while under the limit: the month's row is locked by the upsert, so racing
# cancellations by one number take turns and the count never passes the limit.
_COUNT_CANCEL = text(
    """
INSERT INTO cancel_tally (phone_hmac, month, cancels) VALUES (:phone_hmac, :month, 1)
ON CONFLICT (phone_hmac, month) DO UPDATE SET cancels = cancel_tally.cancels + 1
WHERE cancel_tally.cancels < :most
RETURNING cancels
"""
).bindparams(bindparam("month", type_=Date()))


def _month(db: DbSession) -> date:
    return context(db).today().replace(day=1)


def count_cancel(db: DbSession, *, phone_hmac: str | None) -> None:
    """One more cancellation by this phone number this month, or ``too_many_cancels``."""
    most = context(db).rules.max_cancels_per_month
    if most <= 0 or phone_hmac is None:  # no limit set; or the booking's data was erased
        return
    month = _month(db)
    # This number's earlier months only (the key covers it); everyone's go in housekeeping.
    db.execute(
        delete(CancelTally).where(CancelTally.phone_hmac == phone_hmac, CancelTally.month < month)
    )
    counted = db.execute(
        _COUNT_CANCEL, {"phone_hmac": phone_hmac, "month": month, "most": most}
    ).first()
    if counted is None:
        raise BookingError("too_many_cancels", field="code", max=most)


def forget_old_cancels(db: DbSession) -> int:
    """Housekeeping: every number's counts of months before this one."""
    result = db.execute(delete(CancelTally).where(CancelTally.month < _month(db)))
    return int(result.rowcount)  # type: ignore[attr-defined]
