"""Walk-in tickets (整理券): the ticket's link to the resident's status page (an unguessable
token, nothing personal in it), the mobile number a resident may leave for the alerts (sealed as
a booking's, erased once the day is over), and the same status page for a booked resident who
checked in (a keyed token of the booking, no column needed).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from booking.context import context
from booking.errors import BookingError
from booking.models import Booking, Venue, WalkIn
from booking.personal import LANGUAGES, parse_phone

# Alerts go by SMS only: a number must be a mobile's.
SMS_LINES = ("mobile", "fixed_line_or_mobile")
DEFAULT_ALERT_AHEAD = 3
# A booked resident's status token: "b", the booking's id, "-", 24 hex digits (27 characters or
# more: never a ticket's token, which has 24).
BOOKING_TOKEN = re.compile(r"b(\d{1,12})-([0-9a-f]{24})")


@dataclass(frozen=True)
class TicketView:
    """A walk-in's ticket as the ticket page, the status page and the alerts see it."""

    walk_in_id: int
    token: str
    venue_id: str
    service_id: str
    day: date
    number: int
    party_size: int
    created_at: datetime
    called_at: datetime | None
    completed_at: datetime | None
    called_desk: str | None
    language: str
    phone: str | None  # E.164, a mobile's; None when none was left (or erased)


_TICKET = select(WalkIn)


def _view(db: DbSession, row: WalkIn) -> TicketView:
    vault = context(db).vault
    return TicketView(
        walk_in_id=row.id,
        token=str(row.token),
        venue_id=row.venue_id,
        service_id=row.service_id,
        day=row.day,
        number=row.number,
        party_size=row.party_size,
        created_at=row.created_at,
        called_at=row.called_at,
        completed_at=row.completed_at,
        called_desk=row.called_desk,
        language=row.language,
        phone=vault.decrypt(row.phone_enc) if row.phone_enc else None,
    )


def ticket(db: DbSession, *, token: str) -> TicketView:
    """The ticket behind a status page's link."""
    row = (
        db.execute(_TICKET.where(WalkIn.token == token)).scalar_one_or_none()
        if 16 <= len(token) <= 32
        else None
    )
    if row is None:
        raise BookingError("ticket_not_found")
    return _view(db, row)


def ticket_of_walk_in(db: DbSession, *, walk_in_id: int) -> TicketView:
    row = db.get(WalkIn, walk_in_id)
    if row is None or row.token is None:
        raise BookingError("ticket_not_found")
    return _view(db, row)


def ticket_of_number(db: DbSession, *, venue_id: str, number: int) -> TicketView:
    """Today's ticket of queue number ``number`` at the venue (the counter's ticket page)."""
    today = context(db).today()
    row = db.execute(
        _TICKET.where(WalkIn.venue_id == venue_id, WalkIn.day == today, WalkIn.number == number)
    ).scalar_one_or_none()
    if row is None or row.token is None:
        raise BookingError("walk_in_not_found", field="number")
    return _view(db, row)


def leave_ticket_phone(
    db: DbSession, *, token: str, phone: str, language: str | None = None
) -> TicketView:
    """A mobile number for the ticket's alerts (a few ahead, called), typed at the counter or
    given on the status page; while the ticket is still today's and not served."""
    found = ticket(db, token=token)
    ctx = context(db)
    if found.day != ctx.today() or found.completed_at is not None:
        raise BookingError("ticket_over")
    number = parse_phone(phone)
    if number.line_type not in SMS_LINES:
        raise BookingError("sms_needs_mobile", field="phone")
    values: dict[str, str] = {
        "phone_enc": ctx.vault.encrypt(number.e164),
        "phone_hmac": ctx.vault.digest(number.e164),
    }
    if language in LANGUAGES:
        values["language"] = str(language)
    db.execute(update(WalkIn).where(WalkIn.id == found.walk_in_id).values(**values))
    return ticket(db, token=token)


def set_ticket_language(db: DbSession, *, token: str, language: str) -> None:
    """The language the resident reads (the status page's, the alerts')."""
    if language in LANGUAGES:
        db.execute(update(WalkIn).where(WalkIn.token == token).values(language=language))


def tickets_with_phones(db: DbSession, *, venue_id: str, day: date) -> list[TicketView]:
    """The day's tickets at a venue whose resident left a number (the alerts' contacts)."""
    rows = db.execute(
        _TICKET.where(
            WalkIn.venue_id == venue_id, WalkIn.day == day, WalkIn.phone_enc.is_not(None)
        ).order_by(WalkIn.number)
    ).scalars()
    return [_view(db, row) for row in rows]


def alert_ahead(db: DbSession, *, venue_id: str) -> int:
    """How many ahead the venue's "your turn is near" SMS goes at (the ward's venue data)."""
    found = db.execute(select(Venue.alert_ahead).where(Venue.id == venue_id)).scalar_one_or_none()
    return DEFAULT_ALERT_AHEAD if found is None else int(found)


def erase_ticket_phones(db: DbSession, *, before: date) -> int:
    """The numbers left on tickets of days before ``before``: erased (the day is over, the
    alerts are sent). Returns how many."""
    result = db.execute(
        update(WalkIn)
        .where(WalkIn.day < before, WalkIn.phone_enc.is_not(None))
        .values(phone_enc=None, phone_hmac=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- a booked resident's status page ------------------------------------------------------


def is_booking_token(token: str) -> bool:
    """Whether a status page's token is a booking's (else it is a ticket's)."""
    return BOOKING_TOKEN.fullmatch(token) is not None


def booking_queue_token(db: DbSession, *, booking_id: int) -> str:
    """The status page's token of a booking: its id and a keyed digest of it (unguessable,
    nothing personal; no column to keep)."""
    return f"b{booking_id}-{_booking_mac(db, booking_id)}"


def _booking_mac(db: DbSession, booking_id: int) -> str:
    return context(db).vault.digest(f"queue-status:{booking_id}")[:24]


@dataclass(frozen=True)
class BookedInQueue:
    """A booked resident's place as their status page shows it."""

    booking_id: int
    venue_id: str
    service_id: str
    status: str
    called_at: datetime | None
    called_desk: str | None
    language: str


def booking_in_queue(db: DbSession, *, token: str) -> BookedInQueue:
    """The booking behind a booked resident's status-page token."""
    found = BOOKING_TOKEN.fullmatch(token)
    if found is None:
        raise BookingError("ticket_not_found")
    booking_id = int(found.group(1))
    if not hmac.compare_digest(found.group(2), _booking_mac(db, booking_id)):
        raise BookingError("ticket_not_found")
    row = db.execute(
        select(
            Booking.id,
            Booking.venue_id,
            Booking.service_id,
            Booking.status,
            Booking.called_at,
            Booking.called_desk,
            Booking.language,
        ).where(Booking.id == booking_id)
    ).one_or_none()
    if row is None:
        raise BookingError("ticket_not_found")
    return BookedInQueue(*row)
