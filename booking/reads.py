"""The engine's reads: a booking as the channels see it (by code and second factor, by code or
phone for staff, by id), a venue's bookings over days, and a slot as a booking needs to know it
(``slot_info``; ``slot_for_sale`` adds the booking window). Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session as DbSession

from booking import codes
from booking.availability import check_window
from booking.context import TOKYO, context
from booking.errors import BookingError
from booking.models import Booking, BookingMember, Service, Slot, Venue
from booking.personal import parse_phone
from booking.views import BookingView, MemberView


@dataclass(frozen=True)
class SlotInfo:
    """A slot with its venue's cut-off and its service's notice-number rule."""

    id: int
    venue_id: str
    service_id: str
    starts_at: datetime
    ends_at: datetime
    is_open: bool
    cutoff_time: time | None
    requires_notice_number: bool


# Built once: everything a booking needs to know about its slot, in one round trip.
_SLOT_INFO = (
    select(
        Slot.id,
        Slot.venue_id,
        Slot.service_id,
        Slot.starts_at,
        Slot.ends_at,
        Slot.is_open,
        Venue.cutoff_time,
        Service.requires_notice_number,
    )
    .join(Venue, Venue.id == Slot.venue_id)
    .join(Service, Service.id == Slot.service_id)
    .where(Slot.id == bindparam("slot_id"))
)


def slot_info(db: DbSession, slot_id: int) -> SlotInfo:
    """The slot as a booking needs to know it, whether or not it is for sale."""
    row = db.execute(_SLOT_INFO, {"slot_id": slot_id}).first()
    if row is None:
        raise BookingError("slot_not_found", field="slot_id")
    return SlotInfo(*row)


def slot_for_sale(db: DbSession, slot_id: int) -> SlotInfo:
    """The slot if it may be sold now: it exists, is open, and lies in the booking window."""
    slot = slot_info(db, slot_id)
    if not slot.is_open:
        raise BookingError("slot_closed", field="slot_id")
    check_window(context(db), slot.starts_at, slot.cutoff_time)
    return slot


def booking_view(db: DbSession, booking_id: int) -> BookingView:
    """A booking as every channel sees it, its personal fields decrypted."""
    vault = context(db).vault
    row = db.execute(
        select(Booking, Slot.starts_at, Slot.ends_at)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(Booking.id == booking_id)
        .execution_options(populate_existing=True)
    ).one()
    booking, starts_at, ends_at = row
    members = db.execute(
        select(BookingMember)
        .where(BookingMember.booking_id == booking_id)
        .order_by(BookingMember.position)
        .execution_options(populate_existing=True)
    ).scalars()

    def clear(token: str | None) -> str | None:
        return vault.decrypt(token) if token else None

    birth = clear(booking.birth_date_enc)
    return BookingView(
        id=booking.id,
        code=booking.code,
        status=booking.status,
        channel=booking.channel,
        slot_id=booking.slot_id,
        venue_id=booking.venue_id,
        service_id=booking.service_id,
        starts_at=starts_at,
        ends_at=ends_at,
        party_size=booking.party_size,
        language=booking.language,
        name_kana=clear(booking.name_kana_enc),
        phone=clear(booking.phone_enc),
        phone_line_type=booking.phone_line_type,
        birth_date=date.fromisoformat(birth) if birth else None,
        version=booking.version,
        created_at=booking.created_at,
        members=[
            MemberView(m.position, clear(m.notice_number_enc), m.braille, m.e_certificate)
            for m in members
        ],
        checked_in_at=booking.checked_in_at,
        called_at=booking.called_at,
        proxy=booking.proxy,
    )


def find_booking(
    db: DbSession, *, code: str, phone: str | None = None, birth_date: date | None = None
) -> BookingView:
    """A booking by its code and the phone number or birth date given when booking."""
    code = code.strip()
    if not codes.is_well_formed(code):
        raise BookingError("invalid_code", field="code")
    if phone is None and birth_date is None:
        raise BookingError("second_factor_required", field="phone")
    vault = context(db).vault
    found = db.execute(
        select(Booking.id, Booking.phone_hmac, Booking.birth_date_enc).where(Booking.code == code)
    ).first()
    # The same work whether or not the code exists, so timing does not tell which codes do.
    phone_hmac = found.phone_hmac if found else None
    birth_token = found.birth_date_enc if found and found.birth_date_enc else None
    matched = False
    if phone is not None:
        try:
            e164: str | None = parse_phone(phone).e164
        except BookingError:
            e164 = None
        matched = vault.same(e164 or "", phone_hmac or "0" * 64) and e164 is not None
    if not matched and birth_date is not None:
        # With no booking, a stand-in of no one's (not a date: nothing personal to look like).
        stored = vault.decrypt(birth_token or vault.encrypt("-"))
        matched = birth_token is not None and stored == birth_date.isoformat()
    if found is None or not matched:
        raise BookingError("booking_not_found", field="code")
    return booking_view(db, found.id)


def bookings_for_phone(db: DbSession, *, phone: str, limit: int = 20) -> list[BookingView]:
    """A resident's bookings by their phone number, newest visit first: what an agent sees
    when the caller's number pops up. Staff only (no second factor); the console audits it."""
    e164 = parse_phone(phone).e164
    ids = db.execute(
        select(Booking.id)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(Booking.phone_hmac == context(db).vault.digest(e164))
        .order_by(Slot.starts_at.desc())
        .limit(limit)
    ).scalars()
    return [booking_view(db, booking_id) for booking_id in ids]


def booking_by_code(db: DbSession, *, code: str) -> BookingView:
    """A booking by its code alone: for staff, who see it with the resident on the line."""
    found = db.execute(select(Booking.id).where(Booking.code == code.strip())).scalar_one_or_none()
    if found is None:
        raise BookingError("booking_not_found", field="code")
    return booking_view(db, found)


def get_booking(db: DbSession, *, booking_id: int) -> BookingView:
    """A booking by id, for staff screens (which log the access themselves)."""
    return booking_view(db, booking_id)


@dataclass(frozen=True)
class ContactView:
    """What the notices need of a booking: its visit, and its number as stored (sealed, with
    its keyed hash), decrypted by whoever sends; planning a campaign's reminders reads
    thousands at a time."""

    id: int
    code: str
    status: str
    version: int
    venue_id: str
    service_id: str
    starts_at: datetime
    party_size: int
    language: str
    phone_line_type: str | None
    phone_enc: str | None
    phone_hmac: str | None


def booking_contacts(db: DbSession, *, booking_ids: list[int]) -> dict[int, ContactView]:
    """Many bookings' contacts in one query, by booking id (missing ids are left out)."""
    if not booking_ids:
        return {}
    rows = db.execute(
        select(
            Booking.id,
            Booking.code,
            Booking.status,
            Booking.version,
            Booking.venue_id,
            Booking.service_id,
            Slot.starts_at,
            Booking.party_size,
            Booking.language,
            Booking.phone_line_type,
            Booking.phone_enc,
            Booking.phone_hmac,
        )
        .join(Slot, Slot.id == Booking.slot_id)
        .where(Booking.id.in_(booking_ids))
    )
    return {row.id: ContactView(**row._asdict()) for row in rows}


def bookings_of_day(db: DbSession, *, venue_id: str, day: date) -> list[BookingView]:
    """A venue's bookings on a day (not cancelled), by time: the counter's list and its feed."""
    return bookings_between(db, venue_id=venue_id, first=day, last=day)


def bookings_between(db: DbSession, *, venue_id: str, first: date, last: date) -> list[BookingView]:
    """A venue's bookings (not cancelled) from ``first`` to ``last`` inclusive, by time."""
    start = datetime.combine(first, time(0), TOKYO)
    end = datetime.combine(last + timedelta(days=1), time(0), TOKYO)
    ids = db.execute(
        select(Booking.id)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            Slot.venue_id == venue_id,
            Slot.starts_at >= start,
            Slot.starts_at < end,
            Booking.status != "cancelled",
        )
        .order_by(Slot.starts_at, Booking.id)
    ).scalars()
    return [booking_view(db, booking_id) for booking_id in ids]
