"""The waitlist's entries: who waits for which full day (or time), in what order, and what
they were offered. No seats change here: the engine (booking/seats.py, booking/offers.py) makes
and takes the offers' holds and calls these for the entries' side, in the same transaction.

An entry's order is its id (first come, first offered). Its phone number is personal data,
sealed as a booking's is, and erased by retention like a booking's.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import ColumnElement, case, func, or_, select, update
from sqlalchemy.orm import Session as DbSession

from booking.context import TOKYO, context
from booking.errors import BookingError
from booking.models import Slot, WaitlistEntry
from booking.personal import LANGUAGES, parse_phone

# An entry still in the queue: waiting for an offer, or holding one.
ACTIVE = ("waiting", "offered")


@dataclass(frozen=True)
class WaitlistView:
    """An entry as its resident, an agent or the messages see it."""

    id: int
    token: str
    venue_id: str
    service_id: str
    day: date
    slot_id: int | None
    party_size: int
    channel: str
    language: str
    phone: str | None
    phone_line_type: str | None
    status: str
    # Waiting entries ahead of this one for the same day (0: next); None when not waiting.
    ahead: int | None
    offered_slot_id: int | None
    offered_starts_at: datetime | None
    offered_ends_at: datetime | None
    offer_expires_at: datetime | None
    booking_id: int | None
    created_at: datetime
    # The lottery whose draw put this resident here (not drawn), if one did.
    lottery_id: int | None = None

    def offer_live(self, now: datetime) -> bool:
        """Whether the seats offered are still kept for this resident."""
        return (
            self.status == "offered"
            and self.offer_expires_at is not None
            and self.offer_expires_at > now
        )


def _view(db: DbSession, entry: WaitlistEntry) -> WaitlistView:
    vault = context(db).vault
    ahead = None
    if entry.status == "waiting":
        before = (
            select(func.count())
            .select_from(WaitlistEntry)
            .where(*_same_queue(entry.venue_id, entry.service_id, entry.day))
            .where(WaitlistEntry.status == "waiting", WaitlistEntry.id < entry.id)
        )
        if entry.slot_id is not None:  # for one time: those waiting for it, or for any time
            before = before.where(
                or_(WaitlistEntry.slot_id.is_(None), WaitlistEntry.slot_id == entry.slot_id)
            )
        ahead = db.execute(before).scalar_one()
    starts_at = ends_at = None
    if entry.offered_slot_id is not None:
        starts_at, ends_at = db.execute(
            select(Slot.starts_at, Slot.ends_at).where(Slot.id == entry.offered_slot_id)
        ).one()
    return WaitlistView(
        id=entry.id,
        token=entry.token,
        venue_id=entry.venue_id,
        service_id=entry.service_id,
        day=entry.day,
        slot_id=entry.slot_id,
        party_size=entry.party_size,
        channel=entry.channel,
        language=entry.language,
        phone=vault.decrypt(entry.phone_enc) if entry.phone_enc else None,
        phone_line_type=entry.phone_line_type,
        status=entry.status,
        ahead=None if ahead is None else int(ahead),
        offered_slot_id=entry.offered_slot_id,
        offered_starts_at=starts_at,
        offered_ends_at=ends_at,
        offer_expires_at=entry.offer_expires_at,
        booking_id=entry.booking_id,
        created_at=entry.created_at,
        lottery_id=entry.lottery_id,
    )


def _same_queue(venue_id: str, service_id: str, day: date) -> tuple[ColumnElement[bool], ...]:
    return (
        WaitlistEntry.venue_id == venue_id,
        WaitlistEntry.service_id == service_id,
        WaitlistEntry.day == day,
    )


def local_day(starts_at: datetime) -> date:
    return starts_at.astimezone(TOKYO).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), TOKYO)
    return start, start + timedelta(days=1)


def add_entry(
    db: DbSession,
    *,
    venue_id: str,
    service_id: str,
    day: date,
    slot_id: int | None,
    party: int,
    phone: str,
    language: str,
    channel: str,
) -> WaitlistView:
    """A new entry at the end of the list; the same resident asking again for the same day and
    time keeps their place (the entry they have)."""
    ctx = context(db)
    if language not in LANGUAGES:
        raise BookingError("invalid_language", field="language")
    number = parse_phone(phone)
    digest = ctx.vault.digest(number.e164)
    same = select(WaitlistEntry).where(
        *_same_queue(venue_id, service_id, day),
        WaitlistEntry.phone_hmac == digest,
        WaitlistEntry.status.in_(ACTIVE),
        WaitlistEntry.slot_id.is_(None) if slot_id is None else WaitlistEntry.slot_id == slot_id,
    )
    found = db.execute(same).scalars().first()
    if found is not None:
        return _view(db, found)
    now = ctx.now()
    entry = WaitlistEntry(
        token=secrets.token_hex(16),
        venue_id=venue_id,
        service_id=service_id,
        day=day,
        slot_id=slot_id,
        party_size=party,
        channel=channel,
        language=language,
        phone_enc=ctx.vault.encrypt(number.e164),
        phone_hmac=digest,
        phone_line_type=number.line_type,
        status="waiting",
        created_at=now,
        updated_at=now,
    )
    db.add(entry)
    db.flush()
    return _view(db, entry)


@dataclass(frozen=True)
class Candidate:
    id: int
    party_size: int
    channel: str


def candidates(
    db: DbSession, *, venue_id: str, service_id: str, slot_id: int, starts_at: datetime, limit: int
) -> list[Candidate]:
    """Waiting entries a freed seat of this slot may go to, first come first."""
    rows = db.execute(
        select(WaitlistEntry.id, WaitlistEntry.party_size, WaitlistEntry.channel)
        .where(
            *_same_queue(venue_id, service_id, local_day(starts_at)),
            WaitlistEntry.status == "waiting",
            or_(WaitlistEntry.slot_id.is_(None), WaitlistEntry.slot_id == slot_id),
        )
        .order_by(WaitlistEntry.id)
        .limit(limit)
    )
    return [Candidate(*row) for row in rows]


def mark_offered(
    db: DbSession, *, entry_id: int, hold_id: str, slot_id: int, expires_at: datetime
) -> bool:
    """The entry takes the offer, if it is still waiting (another offer may have reached it in
    a concurrent transaction: the row lock makes that one wait, and then miss)."""
    now = context(db).now()
    result = db.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.id == entry_id, WaitlistEntry.status == "waiting")
        .values(
            status="offered",
            hold_id=hold_id,
            offered_slot_id=slot_id,
            offered_at=now,
            offer_expires_at=expires_at,
            updated_at=now,
        )
    )
    return bool(getattr(result, "rowcount", 0))


def mark_lapsed(db: DbSession, *, hold_ids: list[str]) -> None:
    """Offers whose holds lapsed unanswered: those entries are done (the seats go on)."""
    if hold_ids:
        db.execute(
            update(WaitlistEntry)
            .where(WaitlistEntry.hold_id.in_(hold_ids), WaitlistEntry.status == "offered")
            .values(status="lapsed", hold_id=None, updated_at=context(db).now())
        )


def mark_booked(db: DbSession, *, entry_id: int, booking_id: int) -> None:
    db.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.id == entry_id)
        .values(status="booked", hold_id=None, booking_id=booking_id, updated_at=context(db).now())
    )


def mark_left(db: DbSession, *, entry_id: int) -> None:
    db.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.id == entry_id, WaitlistEntry.status.in_(ACTIVE))
        .values(status="left", hold_id=None, updated_at=context(db).now())
    )


def entry_for_update(db: DbSession, *, token: str) -> WaitlistEntry:
    """The entry of a resident's link, locked: its offer is being taken or given up."""
    if len(token) != 32 or not all(c in "0123456789abcdef" for c in token):
        raise BookingError("waitlist_not_found", field="token")
    entry = db.execute(
        select(WaitlistEntry).where(WaitlistEntry.token == token).with_for_update()
    ).scalar_one_or_none()
    if entry is None:
        raise BookingError("waitlist_not_found", field="token")
    return entry


def get_entry(
    db: DbSession, *, token: str | None = None, entry_id: int | None = None
) -> WaitlistView:
    """An entry by its link's token or (staff, messages) by id."""
    query = select(WaitlistEntry)
    if token is not None:
        if len(token) != 32:
            raise BookingError("waitlist_not_found", field="token")
        query = query.where(WaitlistEntry.token == token)
    else:
        query = query.where(WaitlistEntry.id == entry_id)
    entry = db.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()
    if entry is None:
        raise BookingError("waitlist_not_found", field="token")
    return _view(db, entry)


def entries_of_day(db: DbSession, *, venue_id: str, day: date) -> list[WaitlistView]:
    """A venue's waitlist for a day, every service, in order (with those done, for the
    record): the console's list."""
    rows = db.execute(
        select(WaitlistEntry)
        .where(WaitlistEntry.venue_id == venue_id, WaitlistEntry.day == day)
        .order_by(WaitlistEntry.service_id, WaitlistEntry.id)
    ).scalars()
    return [_view(db, entry) for entry in rows]


def entries_for_phone(db: DbSession, *, phone: str) -> list[WaitlistView]:
    """A resident's entries still in a queue, by their number: what an agent sees."""
    digest = context(db).vault.digest(parse_phone(phone).e164)
    rows = db.execute(
        select(WaitlistEntry)
        .where(WaitlistEntry.phone_hmac == digest, WaitlistEntry.status.in_(ACTIVE))
        .order_by(WaitlistEntry.day, WaitlistEntry.id)
    ).scalars()
    return [_view(db, entry) for entry in rows]


def offers_to_notice(db: DbSession, *, limit: int = 200) -> list[int]:
    """Offers nobody has planned a message for yet (the offers' outbox), locked for this
    transaction; another planner skips them (SKIP LOCKED)."""
    query = (
        select(WaitlistEntry.id)
        .where(WaitlistEntry.status == "offered", WaitlistEntry.offer_noticed_at.is_(None))
        .order_by(WaitlistEntry.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(db.execute(query).scalars())


def mark_noticed(db: DbSession, *, entry_ids: list[int]) -> None:
    if entry_ids:
        db.execute(
            update(WaitlistEntry)
            .where(WaitlistEntry.id.in_(entry_ids))
            .values(offer_noticed_at=context(db).now())
        )


def extend_offer(db: DbSession, *, entry_id: int, until: datetime) -> str | None:
    """The offer's deadline moved on to ``until`` (never back): the resident hears of it only
    then (quiet hours). Returns the hold to move with it, or None when no longer offered."""
    entry = db.get(WaitlistEntry, entry_id, with_for_update=True)
    if entry is None or entry.status != "offered" or entry.offer_expires_at is None:
        return None
    if entry.offer_expires_at < until:
        entry.offer_expires_at = until
        entry.updated_at = context(db).now()
        db.flush()
    return entry.hold_id


def erase_personal_data(db: DbSession, *, before: datetime, everything: bool = False) -> int:
    """Erase the phone numbers of entries whose day was before ``before`` (or that ended, one
    way or another, before it; or every entry: the contract's end). What statistics need
    stays. Returns how many entries were erased."""
    due = update(WaitlistEntry).where(WaitlistEntry.erased_at.is_(None))
    if not everything:
        day_before = local_day(before)
        due = due.where(
            (WaitlistEntry.day < day_before)
            | (WaitlistEntry.status.not_in(ACTIVE) & (WaitlistEntry.updated_at < before))
        )
    result = db.execute(
        due.values(
            phone_enc=None,
            phone_hmac=None,
            erased_at=context(db).now(),
            # No number, no one to tell: an entry still queued (its day passed) is closed.
            status=case((WaitlistEntry.status.in_(ACTIVE), "closed"), else_=WaitlistEntry.status),
            hold_id=None,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- A lottery's losers: put on the list by the draw, and told so once ----------------------


def mark_lottery_loser(db: DbSession, *, entry_id: int, lottery_id: int) -> None:
    """The entry is a lottery's loser's, to be told (once) that they were not drawn and where
    they stand. An entry a resident already had (or another lottery's loser's) stays as it is:
    one "not drawn" message per entry."""
    db.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.id == entry_id, WaitlistEntry.lottery_id.is_(None))
        .values(lottery_id=lottery_id, updated_at=context(db).now())
        # Not matched against the session's objects: a draw has thousands loaded (its
        # applications), to be looked through for each loser otherwise.
        .execution_options(synchronize_session=False)
    )


def losses_to_notice(db: DbSession, *, limit: int = 200) -> list[int]:
    """Lottery losers' entries nobody has planned the "not drawn" message for yet, locked for
    this transaction; another planner skips them (SKIP LOCKED)."""
    query = (
        select(WaitlistEntry.id)
        .where(WaitlistEntry.lottery_id.is_not(None), WaitlistEntry.lottery_noticed_at.is_(None))
        .order_by(WaitlistEntry.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(db.execute(query).scalars())


def mark_losses_noticed(db: DbSession, *, entry_ids: list[int]) -> None:
    if entry_ids:
        db.execute(
            update(WaitlistEntry)
            .where(WaitlistEntry.id.in_(entry_ids))
            .values(lottery_noticed_at=context(db).now())
        )
