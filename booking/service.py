"""The slot engine's rules. The only code that changes seats or a booking's status.

Seats change in single conditional UPDATEs (``booked + held + n <= capacity``) with a CHECK behind
them; no Python lock and no count-then-insert, so every channel and every process can call this.
Lock order, where one transaction touches several rows: the booking row first, then slot rows in
ascending id order. That keeps racing moves and cancels free of deadlocks. A booking with notice
numbers takes their advisory locks (booking.fairness) before any row.
"""

from __future__ import annotations

import re
import secrets
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Integer,
    String,
    Time,
    bindparam,
    case,
    column,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from booking import codes, fairness, release, waitlist
from booking.availability import (
    KEPT_BACK,
    DayMark,
    availability,
    check_party,
    check_window,
    first_bookable_day,
    last_bookable_day,
    list_services,
    list_venues,
    local_midnight,
    month_marks,
    quota_params,
    service_or_404,
    venue_or_404,
    venue_services,
    ward_info,
)
from booking.base import UTCDateTime
from booking.context import TOKYO, context
from booking.errors import BookingError
from booking.figures import (
    BookingPeriod,
    CapacityDay,
    CounterDay,
    Today,
    booking_period,
    counter_figures,
    today_figures,
)
from booking.models import (
    Booking,
    BookingEvent,
    BookingMember,
    ClientAttempt,
    Hold,
    IdempotencyKey,
    Service,
    Session,
    Slot,
    Venue,
    WalkIn,
)
from booking.personal import Sealed, check_members, parse_phone, seal
from booking.release import (
    RELEASED,
    ReleaseView,
    add_release,
    list_releases,
    release_params,
    remove_release,
)
from booking.views import (
    BookingView,
    HeldTime,
    HoldView,
    MemberInput,
    MemberView,
    ResidentInput,
    SlotView,
)
from booking.waitlist import WaitlistView

CHANNELS = ("ivr", "web", "agent")

# --- Seats: the conditional updates -------------------------------------------------------

# The one rule every claim obeys: an open slot, and the seats fit beside the booked and held
# within what the slot's quota lets the asking channel have (KEPT_BACK: now, not_phone,
# not_walk_in), on a day released to the resident (RELEASED: birth_year, at_counter); never a
# slot kept for a lottery (only its draw books it, booking/lottery.py).
_SEATS_FIT = (
    Slot.id == bindparam("slot_id"),
    Slot.is_open.is_(True),
    Slot.lottery_id.is_(None),
    Slot.booked + Slot.held + bindparam("seats") <= Slot.capacity - KEPT_BACK,
    RELEASED,
)
_CLAIM_HOLD = update(Slot).where(*_SEATS_FIT).values(held=Slot.held + bindparam("seats"))
_CLAIM_BOOKED = update(Slot).where(*_SEATS_FIT).values(booked=Slot.booked + bindparam("seats"))
# A hold needs its day released to someone; the booking from it, to the resident's group.
_HELD_TO_BOOKED = (
    update(Slot)
    .where(
        Slot.id == bindparam("slot_id"),
        Slot.is_open.is_(True),
        Slot.lottery_id.is_(None),
        RELEASED,
    )
    .values(held=Slot.held - bindparam("seats"), booked=Slot.booked + bindparam("seats"))
)
_RELEASE_HELD = (
    update(Slot).where(Slot.id == bindparam("slot_id")).values(held=Slot.held - bindparam("seats"))
)
_RELEASE_BOOKED = (
    update(Slot)
    .where(Slot.id == bindparam("slot_id"))
    .values(booked=Slot.booked - bindparam("seats"))
)
_BOOKED_TO_HELD = (
    update(Slot)
    .where(Slot.id == bindparam("slot_id"))
    .values(booked=Slot.booked - bindparam("seats"), held=Slot.held + bindparam("seats"))
)


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


# What the engine did in the open transaction that leaves no row behind to count later (a
# hold's row goes when it is booked, released or lapses): {(what, channel): n}. Whoever owns
# the transaction takes it after the commit (config/metrics.py); an uncommitted one is dropped.
_TALLY = "booking.tally"


def _tally(db: DbSession, what: str, channel: str, n: int = 1) -> None:
    tally: dict[tuple[str, str], int] = db.info.setdefault(_TALLY, {})
    tally[what, channel] = tally.get((what, channel), 0) + n


def take_tally(db: DbSession) -> dict[tuple[str, str], int]:
    """What the engine did since the last take (``hold_taken``, ``hold_lapsed`` by channel);
    the owner of the transaction takes it once committed, or drops it."""
    found: dict[tuple[str, str], int] = db.info.pop(_TALLY, None) or {}
    return found


def _lock_slots(db: DbSession, slot_ids: Any) -> None:
    """Lock slot rows in ascending id order before touching their holds: slots before holds is
    the lock order everywhere (a booking locks its slot, then may reclaim that slot's holds)."""
    db.execute(select(Slot.id).where(Slot.id.in_(slot_ids)).order_by(Slot.id).with_for_update())


def reclaim_expired_holds(db: DbSession, *, slot_id: int | None = None) -> int:
    """Give the seats of lapsed holds back to sale; returns how many seats came back."""
    now = context(db).now()
    lapsed = select(Hold.slot_id).where(Hold.expires_at <= now)
    if slot_id is not None:
        lapsed = lapsed.where(Hold.slot_id == slot_id)
    _lock_slots(db, lapsed.scalar_subquery())
    query = (
        delete(Hold)
        .where(Hold.expires_at <= now)
        .returning(Hold.slot_id, Hold.seats, Hold.kind, Hold.channel, Hold.id)
    )
    if slot_id is not None:
        query = query.where(Hold.slot_id == slot_id)
    per_slot: dict[int, int] = {}
    unanswered: list[str] = []
    for sid, seats, kind, channel, hold_id in db.execute(query):
        per_slot[sid] = per_slot.get(sid, 0) + seats
        if kind == "offer":  # a release delay ending is no one's lapsed hold
            _tally(db, "hold_lapsed", channel)
        elif kind == "waitlist":
            unanswered.append(hold_id)
    for sid in sorted(per_slot):  # ascending slot id: the lock order
        db.execute(_RELEASE_HELD, {"slot_id": sid, "seats": per_slot[sid]})
    waitlist.mark_lapsed(db, hold_ids=unanswered)
    _offer_freed(db, per_slot)  # the next on the waitlist before the public
    return sum(per_slot.values())


@dataclass(frozen=True)
class _SlotInfo:
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


def _slot_info(db: DbSession, slot_id: int) -> _SlotInfo:
    row = db.execute(_SLOT_INFO, {"slot_id": slot_id}).first()
    if row is None:
        raise BookingError("slot_not_found", field="slot_id")
    return _SlotInfo(*row)


def _slot_for_sale(db: DbSession, slot_id: int) -> _SlotInfo:
    """The slot if it may be sold now: it exists, is open, and lies in the booking window."""
    slot = _slot_info(db, slot_id)
    if not slot.is_open:
        raise BookingError("slot_closed", field="slot_id")
    check_window(context(db), slot.starts_at, slot.cutoff_time)
    return slot


def _why_not_claimed(db: DbSession, slot_id: int, birth_year: int | None = None) -> BookingError:
    is_open, lottery = db.execute(
        select(Slot.is_open, Slot.lottery_id).where(Slot.id == slot_id)
    ).one()
    if lottery is not None:
        return BookingError("slot_in_lottery", field="slot_id")
    if is_open:
        release.check_released(db, slot_id=slot_id, birth_year=birth_year)
    return BookingError("slot_full" if is_open else "slot_closed", field="slot_id")


def _claim_params(
    db: DbSession, slot_id: int, seats: int, channel: str, birth_year: int | None = None
) -> dict[str, object]:
    return {
        "slot_id": slot_id,
        "seats": seats,
        "now": context(db).now(),
        **quota_params(channel),
        **release_params(birth_year, channel),
    }


def _claim(
    db: DbSession,
    statement: Any,
    slot_id: int,
    seats: int,
    channel: str,
    birth_year: int | None = None,
) -> None:
    """Run a conditional seat claim for a channel (for a resident born in ``birth_year``; None
    for a hold); on failure, reclaim lapsed holds once and try again."""
    for attempt in range(2):
        params = _claim_params(db, slot_id, seats, channel, birth_year)
        if _rowcount(db.execute(statement, params)) == 1:
            return
        if attempt == 0 and reclaim_expired_holds(db, slot_id=slot_id) == 0:
            break
    raise _why_not_claimed(db, slot_id, birth_year)


# --- Holds --------------------------------------------------------------------------------


def create_hold(db: DbSession, *, slot_id: int, seats: int, channel: str) -> HoldView:
    """Keep seats for someone deciding; they lapse after the configured minutes by themselves."""
    ctx = context(db)
    check_party(ctx, seats)
    _slot_for_sale(db, slot_id)
    _claim(db, _CLAIM_HOLD, slot_id, seats, channel)
    hold = Hold(
        id=secrets.token_hex(16),
        slot_id=slot_id,
        seats=seats,
        kind="offer",
        channel=channel,
        expires_at=ctx.now() + timedelta(minutes=ctx.rules.hold_minutes),
        created_at=ctx.now(),
    )
    db.add(hold)
    db.flush()
    _tally(db, "hold_taken", channel)
    return HoldView(hold.id, slot_id, seats, hold.expires_at)


# A hold's id as made (secrets.token_hex(16)): anything else names no hold, and never reaches
# the database (PostgreSQL refuses a NUL in a string with an error, not a miss).
_HOLD_ID = re.compile(r"[0-9a-f]{32}")


def _known_form(hold_id: str) -> str:
    if not _HOLD_ID.fullmatch(hold_id):
        raise BookingError("hold_not_found", field="hold_id")
    return hold_id


def get_hold(db: DbSession, *, hold_id: str) -> HeldTime:
    """A hold and the time it keeps; ``live`` is False once it has lapsed."""
    hold_id = _known_form(hold_id)
    row = db.execute(
        select(Hold, Slot.venue_id, Slot.service_id, Slot.starts_at, Slot.ends_at)
        .join(Slot, Slot.id == Hold.slot_id)
        .where(Hold.id == hold_id, Hold.kind == "offer")
    ).first()
    if row is None:
        raise BookingError("hold_not_found", field="hold_id")
    hold, venue_id, service_id, starts_at, ends_at = row
    view = HoldView(hold.id, hold.slot_id, hold.seats, hold.expires_at)
    live = hold.expires_at > context(db).now()
    return HeldTime(view, venue_id, service_id, starts_at, ends_at, live)


def release_hold(db: DbSession, *, hold_id: str) -> None:
    """Give a hold's seats back at once (the caller chose another time, or hung up)."""
    hold_id = _known_form(hold_id)
    _lock_slots(db, select(Hold.slot_id).where(Hold.id == hold_id).scalar_subquery())
    row = db.execute(
        delete(Hold)
        .where(Hold.id == hold_id, Hold.kind == "offer")
        .returning(Hold.slot_id, Hold.seats)
    ).first()
    if row is None:
        raise BookingError("hold_not_found", field="hold_id")
    db.execute(_RELEASE_HELD, {"slot_id": row.slot_id, "seats": row.seats})
    _offer_freed(db, [row.slot_id])


def _take_hold(db: DbSession, hold_id: str, seats: int, birth_year: int | None = None) -> int:
    """Turn a hold into booked seats; returns its slot. Cannot fail for lack of seats, but
    refuses a slot closed since the hold was made, or a day not yet released to the
    resident's group."""
    hold_id = _known_form(hold_id)
    _lock_slots(db, select(Hold.slot_id).where(Hold.id == hold_id).scalar_subquery())
    row = db.execute(
        delete(Hold)
        .where(Hold.id == hold_id, Hold.kind == "offer")
        .returning(Hold.slot_id, Hold.seats, Hold.expires_at, Hold.channel)
    ).first()
    if row is None:
        raise BookingError("hold_not_found", field="hold_id")
    if row.seats == seats and row.expires_at > context(db).now():
        params = {
            "slot_id": row.slot_id,
            "seats": seats,
            "now": context(db).now(),
            **release_params(birth_year, row.channel),
        }
        if _rowcount(db.execute(_HELD_TO_BOOKED, params)) != 1:
            # Closed, kept for a lottery, or not released to the resident's group since the
            # hold was made.
            raise BookingError(_why_not_claimed(db, row.slot_id, birth_year).code, field="hold_id")
        return int(row.slot_id)
    # A lapsed hold, or a different party size: give it back and book like anyone else.
    db.execute(_RELEASE_HELD, {"slot_id": row.slot_id, "seats": row.seats})
    try:
        _claim(db, _CLAIM_BOOKED, row.slot_id, seats, row.channel, birth_year)
    except BookingError as exc:
        if exc.code == "slot_full" and row.expires_at <= context(db).now():
            raise BookingError("hold_expired", field="hold_id") from exc
        raise
    return int(row.slot_id)


def _hold_slot(db: DbSession, hold_id: str) -> int:
    hold_id = _known_form(hold_id)
    slot_id = db.execute(
        select(Hold.slot_id).where(Hold.id == hold_id, Hold.kind == "offer")
    ).scalar_one_or_none()
    if slot_id is None:
        raise BookingError("hold_not_found", field="hold_id")
    return slot_id


# --- Booking ------------------------------------------------------------------------------


# PostgreSQL: check the slot, claim the seats and write the booking, its members, its outbox
# event and its retry key in one statement, so a booking is BEGIN, this, COMMIT, and the hot
# slot's row lock is held for no extra round trip. The WHERE repeats the rules of
# _slot_for_sale and _check_members; when no row comes back, those say why.
_BOOK_PG = (
    text(
        """
WITH claimed AS (
    UPDATE slot SET booked = slot.booked + :party
    FROM venue, service
    WHERE slot.id = :slot_id AND venue.id = slot.venue_id AND service.id = slot.service_id
      AND slot.is_open AND slot.lottery_id IS NULL
      AND slot.booked + slot.held + :party <= slot.capacity - CASE
          WHEN slot.kept_until > :now
          THEN slot.kept_for_phone * :not_phone + slot.kept_for_walk_in * :not_walk_in
          ELSE 0 END
      AND slot.starts_at > :now AND slot.starts_at < :window_end
      AND slot.starts_at >= CASE
          WHEN venue.cutoff_time IS NOT NULL AND venue.cutoff_time <= :local_time
          THEN :first_late ELSE :first_start END
      AND (NOT service.requires_notice_number OR :notices = :party)
      -- booking.release.RELEASED: no release covers the day, or one for this birth year opened
      AND COALESCE((SELECT bool_or(r.opens_at <= :now
                  AND (r.born_from IS NULL OR r.born_from <= :birth_year)
                  AND (r.born_to IS NULL OR r.born_to >= :birth_year))
              FROM day_release r
              WHERE r.slots_from <= slot.starts_at AND r.slots_until > slot.starts_at
                AND (r.venue_id IS NULL OR r.venue_id = slot.venue_id)
                AND (r.service_id IS NULL OR r.service_id = slot.service_id)), true)
      -- booking.fairness: no notice number with another active pickup booking (the shape of
      -- fairness.NOTICE_IN_USE, for the same reason: see there)
      AND (NOT service.requires_notice_number OR NOT EXISTS (
          SELECT 1 FROM booking_member bm
          WHERE bm.notice_number_hmac = ANY(CAST(:m_hmac AS text[]))
            AND COALESCE((SELECT true FROM booking b
                JOIN slot bs ON bs.id = b.slot_id
                JOIN service bsv ON bsv.id = b.service_id
                WHERE b.id = bm.booking_id AND b.status IN ('booked', 'checked_in')
                  AND bs.starts_at >= :today_start AND bsv.requires_notice_number), false)))
    RETURNING slot.id, slot.venue_id, slot.service_id, slot.starts_at, slot.ends_at
), made AS (
    INSERT INTO booking (code, slot_id, venue_id, service_id, party_size, channel, status,
        language, name_kana_enc, phone_enc, phone_hmac, phone_line_type, birth_date_enc, proxy,
        version, created_at, updated_at)
    SELECT :code, id, venue_id, service_id, :party, :channel, 'booked', :language,
        :name_kana_enc, :phone_enc, :phone_hmac, :phone_line_type, :birth_date_enc, :proxy, 1,
        :now, :now
    FROM claimed
    ON CONFLICT (code) DO NOTHING
    RETURNING id
), members AS (
    INSERT INTO booking_member (booking_id, position, notice_number_enc, notice_number_hmac,
        braille, e_certificate)
    SELECT made.id, m.position, m.enc, m.digest, m.braille, m.ecert
    FROM made CROSS JOIN unnest(CAST(:m_pos AS integer[]), CAST(:m_enc AS text[]),
        CAST(:m_hmac AS text[]), CAST(:m_braille AS boolean[]), CAST(:m_ecert AS boolean[]))
        AS m(position, enc, digest, braille, ecert)
), event AS (
    INSERT INTO booking_event (booking_id, kind, booking_version, created_at)
    SELECT id, 'booked', 1, :now FROM made
), keyed AS (
    INSERT INTO idempotency_key (key, request_hmac, booking_id, created_at)
    SELECT CAST(:idem_key AS text), CAST(:idem_hmac AS text), id, :now
    FROM made WHERE CAST(:idem_key AS text) IS NOT NULL
)
SELECT claimed.venue_id, claimed.service_id, claimed.starts_at, claimed.ends_at,
    made.id AS booking_id
FROM claimed LEFT JOIN made ON true
"""
    )
    .bindparams(
        bindparam("now", type_=UTCDateTime()),
        bindparam("window_end", type_=UTCDateTime()),
        bindparam("first_start", type_=UTCDateTime()),
        bindparam("first_late", type_=UTCDateTime()),
        bindparam("local_time", type_=Time()),
        bindparam("idem_key", type_=String()),
        bindparam("idem_hmac", type_=String()),
        bindparam("party", type_=Integer()),
        bindparam("proxy", type_=Boolean()),
        bindparam("notices", type_=Integer()),
        bindparam("not_phone", type_=Integer()),
        bindparam("not_walk_in", type_=Integer()),
        bindparam("birth_year", type_=Integer()),
        bindparam("today_start", type_=UTCDateTime()),
    )
    .columns(
        column("venue_id", String()),
        column("service_id", String()),
        column("starts_at", UTCDateTime()),
        column("ends_at", UTCDateTime()),
        column("booking_id", Integer()),
    )
)
_UNDO_CLAIM = _RELEASE_BOOKED


def _insert_booking_rows(
    db: DbSession,
    *,
    code: str,
    slot: _SlotInfo,
    party: int,
    channel: str,
    sealed: Sealed,
    idempotency_key: str | None,
    proxy: bool = False,
    event: str = "booked",
) -> int:
    """Portable path (SQLite): the rows after the seats were claimed, one statement each."""
    now = context(db).now()
    booking_id = db.execute(
        insert(Booking)
        .values(
            code=code,
            slot_id=slot.id,
            venue_id=slot.venue_id,
            service_id=slot.service_id,
            party_size=party,
            channel=channel,
            status="booked",
            language=sealed.language,
            name_kana_enc=sealed.name_kana_enc,
            phone_enc=sealed.phone_enc,
            phone_hmac=sealed.phone_hmac,
            phone_line_type=sealed.phone_line_type,
            birth_date_enc=sealed.birth_date_enc,
            proxy=proxy,
            version=1,
            created_at=now,
            updated_at=now,
        )
        .returning(Booking.id)
    ).scalar_one()
    if sealed.members:
        db.execute(
            insert(BookingMember),
            [
                {
                    "booking_id": booking_id,
                    "position": pos,
                    "notice_number_enc": enc,
                    "notice_number_hmac": digest,
                    "braille": braille,
                    "e_certificate": ecert,
                }
                for pos, enc, digest, braille, ecert in sealed.members
            ],
        )
    _record_event(db, booking_id, event, 1)
    if idempotency_key is not None:
        db.add(
            IdempotencyKey(
                key=idempotency_key,
                request_hmac=sealed.fingerprint,
                booking_id=booking_id,
                created_at=now,
            )
        )
        db.flush()
    return int(booking_id)


# Set on a session whose transaction wrote outbox rows: whoever owns the session (config's
# wiring) may wake the consumers after commit. The booking service itself calls no one.
OUTBOX_WRITTEN = "booking_outbox_written"


def _record_event(db: DbSession, booking_id: int, kind: str, version: int) -> None:
    db.info[OUTBOX_WRITTEN] = True
    db.execute(
        insert(BookingEvent).values(
            booking_id=booking_id, kind=kind, booking_version=version, created_at=context(db).now()
        )
    )


def _book_pg(
    db: DbSession,
    *,
    slot_id: int,
    party: int,
    channel: str,
    sealed: Sealed,
    idempotency_key: str | None,
    proxy: bool = False,
) -> tuple[int, str, _SlotInfo] | None:
    """One-statement booking on PostgreSQL: (id, code, slot), or None when it did not go in."""
    ctx = context(db)
    now = ctx.now()
    first = first_bookable_day(ctx, None)
    members = sealed.members
    params = {
        "slot_id": slot_id,
        "party": party,
        "channel": channel,
        "language": sealed.language,
        "name_kana_enc": sealed.name_kana_enc,
        "phone_enc": sealed.phone_enc,
        "phone_hmac": sealed.phone_hmac,
        "phone_line_type": sealed.phone_line_type,
        "birth_date_enc": sealed.birth_date_enc,
        "proxy": proxy,
        "now": now,
        "window_end": local_midnight(last_bookable_day(ctx) + timedelta(days=1)),
        "first_start": local_midnight(first),
        "first_late": local_midnight(first + timedelta(days=1)),
        "local_time": now.astimezone(TOKYO).time(),
        "notices": sum(1 for m in sealed.member_views if m.notice_number),
        "m_pos": [m[0] for m in members],
        "m_enc": [m[1] for m in members],
        "m_hmac": [m[2] for m in members],
        "m_braille": [m[3] for m in members],
        "m_ecert": [m[4] for m in members],
        "idem_key": idempotency_key,
        "idem_hmac": sealed.fingerprint,
        "birth_year": sealed.birth_date.year,
        "today_start": fairness.today_start(db),
        **quota_params(channel),
    }
    for _ in range(5):  # a code already in use: undo the claim and draw another
        code = codes.new_code()
        row = db.execute(_BOOK_PG, {**params, "code": code}).first()
        if row is None:
            return None
        if row.booking_id is not None:
            db.info[OUTBOX_WRITTEN] = True  # the statement wrote the booking's event too
            slot = _SlotInfo(
                slot_id, row.venue_id, row.service_id, row.starts_at, row.ends_at, True, None, False
            )
            return int(row.booking_id), code, slot
        db.execute(_UNDO_CLAIM, {"slot_id": slot_id, "seats": party})
    raise RuntimeError("could not draw a free booking code in 5 tries")


# The lottery's draw books its winners here, and only here may a slot kept for a lottery be
# claimed: the slot must be that lottery's, open, with the seats free (no channel quota: the
# draw offered the seats it found free when it locked the slots).
_CLAIM_DRAWN = (
    update(Slot)
    .where(
        Slot.id == bindparam("slot_id"),
        Slot.lottery_id == bindparam("drawn_for"),
        Slot.is_open.is_(True),
        Slot.booked + Slot.held + bindparam("seats") <= Slot.capacity,
    )
    .values(booked=Slot.booked + bindparam("seats"))
)


def book_drawn(
    db: DbSession,
    *,
    lottery_id: int,
    slot_id: int,
    party: int,
    channel: str,
    sealed: Sealed,
    proxy: bool = False,
) -> int | None:
    """Book a lottery winner's household in the slot the draw gave it (its outbox event,
    ``drawn``, brings the confirmation: an SMS, or a call to a landline); the booking's id, or
    None when the seats are no longer there."""
    params = {"slot_id": slot_id, "drawn_for": lottery_id, "seats": party}
    if _rowcount(db.execute(_CLAIM_DRAWN, params)) != 1:
        return None
    return _insert_booking_rows(
        db,
        code=_free_code(db),
        slot=_slot_info(db, slot_id),
        party=party,
        channel=channel,
        sealed=sealed,
        idempotency_key=None,
        proxy=proxy,
        event="drawn",  # its outbox event: a confirmation that also reaches a landline
    )


def _why_not_booked(
    db: DbSession, slot_id: int, party: int, resident: ResidentInput, sealed: Sealed
) -> bool:
    """After the booking statement refused: raise the rule it broke, or return True when lapsed
    holds were reclaimed and it is worth one more try."""
    slot = _slot_for_sale(db, slot_id)
    check_members(slot.requires_notice_number, party, resident.members)
    release.check_released(db, slot_id=slot_id, birth_year=sealed.birth_date.year)
    if slot.requires_notice_number:
        fairness.check_notices(db, [m[2] for m in sealed.members])
    if reclaim_expired_holds(db, slot_id=slot_id) > 0:
        return True
    raise _why_not_claimed(db, slot_id)


def _free_code(db: DbSession) -> str:
    while True:
        code = codes.new_code()
        if db.execute(select(Booking.id).where(Booking.code == code)).first() is None:
            return code


def book(
    db: DbSession,
    *,
    slot_id: int | None = None,
    hold_id: str | None = None,
    party: int,
    resident: ResidentInput,
    channel: str,
    idempotency_key: str | None = None,
) -> BookingView:
    """Book ``party`` seats for a household, directly or from a hold; never past capacity.

    The same idempotency key with the same request returns the first booking; with another
    request it is refused.
    """
    ctx = context(db)
    if idempotency_key is not None:
        # Kept as a keyed hash, never as given: a client's key is no field a person types (a
        # random UUID's digits can pass the My Number check), and yet nothing it holds is kept.
        idempotency_key = ctx.vault.digest(f"idempotency:{idempotency_key}")
    if (slot_id is None) == (hold_id is None):
        raise BookingError("both_slot_and_hold", field="slot_id")
    if channel not in CHANNELS:
        raise BookingError("invalid_request", field="channel")
    check_party(ctx, party)
    extra: dict[str, Any] = {"slot": slot_id, "hold": hold_id, "channel": channel}
    if resident.proxy:  # part of the request a retry must repeat (absent: as before proxies)
        extra["proxy"] = True
    if hold_id is None and slot_id is not None and db.get_bind().dialect.name == "postgresql":
        sealed = seal(ctx.vault, ctx.today(), None, party, resident, extra)
        if idempotency_key is not None:
            earlier = _replay(db, idempotency_key, sealed.fingerprint)
            if earlier is not None:
                return earlier
        _check_active_limit(db, sealed.phone_hmac)
        fairness.lock_notices(db, [m[2] for m in sealed.members])
        try:
            found = None
            for _ in range(2):  # the second pass only after lapsed holds were reclaimed
                # A savepoint only when a retry key could collide with a concurrent twin request.
                with db.begin_nested() if idempotency_key is not None else nullcontext():
                    found = _book_pg(
                        db,
                        slot_id=slot_id,
                        party=party,
                        channel=channel,
                        sealed=sealed,
                        idempotency_key=idempotency_key,
                        proxy=resident.proxy,
                    )
                if found is not None or not _why_not_booked(db, slot_id, party, resident, sealed):
                    break
        except (IntegrityError, BookingError):
            if idempotency_key is None:
                raise
            # A twin request with the same key committed first (it may have taken the last
            # seat this one waited for): answer with its booking.
            earlier = _replay(db, idempotency_key, sealed.fingerprint)
            if earlier is None:
                raise
            return earlier
        if found is None:
            raise _why_not_claimed(db, slot_id)
        booking_id, code, slot = found
    else:
        if slot_id is not None:
            target = slot_id
        else:
            try:
                target = _hold_slot(db, str(hold_id))
            except BookingError:
                # Already used by this same request (a retry): answer with its booking.
                earlier = _replay_without_hold(db, idempotency_key, party, resident, extra)
                if earlier is None:
                    raise
                return earlier
        # A hold was checked against the window when it was made; it keeps its seats till it
        # lapses.
        slot = _slot_for_sale(db, target) if hold_id is None else _slot_info(db, target)
        sealed = seal(ctx.vault, ctx.today(), slot.requires_notice_number, party, resident, extra)
        if idempotency_key is not None:
            earlier = _replay(db, idempotency_key, sealed.fingerprint)
            if earlier is not None:
                return earlier
        _check_active_limit(db, sealed.phone_hmac)
        fairness.lock_notices(db, [m[2] for m in sealed.members])
        if hold_id is not None:
            try:
                _take_hold(db, hold_id, party, sealed.birth_date.year)
            except BookingError as exc:
                # A twin request (a double click) took the hold a moment before this one.
                if exc.code != "hold_not_found" or idempotency_key is None:
                    raise
                earlier = _replay(db, idempotency_key, sealed.fingerprint)
                if earlier is None:
                    raise
                return earlier
        else:
            _claim(db, _CLAIM_BOOKED, slot.id, party, channel, sealed.birth_date.year)
        if slot.requires_notice_number:  # after the claim: SQLite's write lock is held by then
            fairness.check_notices(db, [m[2] for m in sealed.members])
        code = _free_code(db)
        booking_id = _insert_booking_rows(
            db,
            code=code,
            slot=slot,
            party=party,
            channel=channel,
            sealed=sealed,
            idempotency_key=idempotency_key,
            proxy=resident.proxy,
        )
    # Answered from what we wrote: reading it back would cost round trips under the slot's lock.
    now = ctx.now()
    return BookingView(
        id=booking_id,
        code=code,
        status="booked",
        channel=channel,
        slot_id=slot.id,
        venue_id=slot.venue_id,
        service_id=slot.service_id,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        party_size=party,
        language=sealed.language,
        name_kana=sealed.name_kana,
        phone=sealed.phone,
        phone_line_type=sealed.phone_line_type,
        birth_date=sealed.birth_date,
        version=1,
        created_at=now,
        members=sealed.member_views,
        proxy=resident.proxy,
    )


def _replay_without_hold(
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
    requires = _slot_info(db, slot_id).requires_notice_number
    sealed = seal(ctx.vault, ctx.today(), requires, party, resident, extra)
    return _replay(db, key, sealed.fingerprint)


def _check_active_limit(db: DbSession, phone_hmac: str) -> None:
    """One phone number may hold only so many future bookings (no hoarding of seats)."""
    ctx = context(db)
    active = db.execute(
        select(func.count())
        .select_from(Booking)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            Booking.phone_hmac == phone_hmac,
            Booking.status == "booked",
            Slot.starts_at > ctx.now(),
        )
    ).scalar_one()
    if active >= ctx.rules.max_active_per_phone:
        raise BookingError("too_many_bookings", field="phone", max=ctx.rules.max_active_per_phone)


# The longest window any attempt limit looks back over, and a margin.
ATTEMPTS_KEPT = timedelta(days=1)


def forget_old_attempts(db: DbSession) -> int:
    """Housekeeping: attempts older than any limit's window, from every client."""
    result = db.execute(
        delete(ClientAttempt).where(ClientAttempt.at < context(db).now() - ATTEMPTS_KEPT)
    )
    fairness.forget_old_cancels(db)  # and last month's cancellation counts
    return _rowcount(result)


def note_attempt(db: DbSession, *, client: str, kind: str, limit: int, window: timedelta) -> bool:
    """Record one attempt by a client; False when it is over ``limit`` within ``window``."""
    now = context(db).now()
    # This client's own old rows only (the index covers it); everyone's go in housekeeping.
    db.execute(
        delete(ClientAttempt).where(
            ClientAttempt.client == client, ClientAttempt.at < now - ATTEMPTS_KEPT
        )
    )
    recent = db.execute(
        select(func.count())
        .select_from(ClientAttempt)
        .where(
            ClientAttempt.client == client,
            ClientAttempt.kind == kind,
            ClientAttempt.at > now - window,
        )
    ).scalar_one()
    if recent >= limit:
        return False
    db.add(ClientAttempt(client=client, kind=kind, at=now))
    db.flush()
    return True


def _replay(db: DbSession, key: str, fingerprint: str) -> BookingView | None:
    record = db.execute(
        select(IdempotencyKey.request_hmac, IdempotencyKey.booking_id).where(
            IdempotencyKey.key == key
        )
    ).first()
    if record is None:
        return None
    if record.request_hmac != fingerprint or record.booking_id is None:
        raise BookingError("idempotency_conflict", field="Idempotency-Key")
    return _view(db, record.booking_id)


# --- Finding, cancelling, moving ----------------------------------------------------------


def _view(db: DbSession, booking_id: int) -> BookingView:
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
    return _view(db, found.id)


@dataclass(frozen=True)
class EventView:
    """One outbox row: a booking was made, moved or cancelled, at this version."""

    id: int
    booking_id: int
    kind: str
    booking_version: int
    created_at: datetime


def pending_events(db: DbSession, *, limit: int = 200) -> list[EventView]:
    """Outbox rows not yet dispatched, oldest first, locked for this transaction; on
    PostgreSQL another dispatcher skips them rather than waiting (SKIP LOCKED)."""
    query = (
        select(BookingEvent)
        .where(BookingEvent.dispatched_at.is_(None))
        .order_by(BookingEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [
        EventView(e.id, e.booking_id, e.kind, e.booking_version, e.created_at)
        for e in db.execute(query).scalars()
    ]


def mark_dispatched(db: DbSession, *, event_ids: list[int]) -> None:
    """The consumer handled these (in the same transaction as what it made of them)."""
    if event_ids:
        db.execute(
            update(BookingEvent)
            .where(BookingEvent.id.in_(event_ids))
            .values(dispatched_at=context(db).now())
        )


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
    return [_view(db, booking_id) for booking_id in ids]


def booking_by_code(db: DbSession, *, code: str) -> BookingView:
    """A booking by its code alone: for staff, who see it with the resident on the line."""
    found = db.execute(select(Booking.id).where(Booking.code == code.strip())).scalar_one_or_none()
    if found is None:
        raise BookingError("booking_not_found", field="code")
    return _view(db, found)


def get_booking(db: DbSession, *, booking_id: int) -> BookingView:
    """A booking by id, for staff screens (which log the access themselves)."""
    return _view(db, booking_id)


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


def _lock_active(db: DbSession, booking_id: int) -> None:
    """Lock the booking row first (the lock order) and bump its version; it must be booked."""
    result = db.execute(
        update(Booking)
        .where(Booking.id == booking_id, Booking.status == "booked")
        .values(version=Booking.version + 1, updated_at=context(db).now())
    )
    if _rowcount(result) != 1:
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
        again = _view(db, view.id)
        if exc.code == "booking_not_active" and again.status == "cancelled":
            return again  # cancelled by a twin request in between: the same answer
        raise


def _release_seats(db: DbSession, slot_id: int, seats: int) -> None:
    """Seats a booking gives up (cancelled or moved away): back on sale, after the release
    delay if one is set."""
    ctx = context(db)
    delay = ctx.rules.release_delay_minutes
    if delay == 0:
        db.execute(_RELEASE_BOOKED, {"slot_id": slot_id, "seats": seats})
        _offer_freed(db, [slot_id])
        return
    # Kept off sale for a while, as a hold nobody owns, so that seats cannot be handed over.
    db.execute(_BOOKED_TO_HELD, {"slot_id": slot_id, "seats": seats})
    db.add(
        Hold(
            id=secrets.token_hex(16),
            slot_id=slot_id,
            seats=seats,
            kind="release_delay",
            channel="web",
            expires_at=ctx.now() + timedelta(minutes=delay),
            created_at=ctx.now(),
        )
    )
    db.flush()


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
    _release_seats(db, booking.slot_id, booking.party_size)
    _record_event(db, booking_id, "cancelled", booking.version)
    return _view(db, booking_id)


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
        return _move(db, booking_id, slot_id, hold_id, channel)


def _move(
    db: DbSession,
    booking_id: int,
    slot_id: int | None,
    hold_id: str | None,
    channel: str,
    event: str = "moved",
) -> BookingView:
    if (slot_id is None) == (hold_id is None):
        raise BookingError("both_slot_and_hold", field="slot_id")
    target = slot_id if slot_id is not None else _hold_slot(db, str(hold_id))
    new_slot = _slot_for_sale(db, target) if hold_id is None else _slot_info(db, target)
    _lock_active(db, booking_id)
    booking = db.execute(
        select(
            Booking.slot_id,
            Booking.party_size,
            Booking.service_id,
            Booking.version,
            Booking.birth_date_enc,
        ).where(Booking.id == booking_id)
    ).one()
    # The day moved to must be released to the resident's group too (erased: to anyone).
    born = booking.birth_date_enc and context(db).vault.decrypt(booking.birth_date_enc)
    birth_year = date.fromisoformat(born).year if born else None
    if new_slot.service_id != booking.service_id:
        raise BookingError("service_mismatch", field="slot_id")
    if new_slot.id == booking.slot_id:
        raise BookingError("same_slot", field="slot_id")
    seats = booking.party_size
    # Both slot rows now, in ascending id order (the lock order).
    _lock_slots(db, [booking.slot_id, new_slot.id])
    if hold_id is not None:
        _take_hold(db, hold_id, seats, birth_year)
    else:
        _claim(db, _CLAIM_BOOKED, new_slot.id, seats, channel, birth_year)
    # Only now, with the new seats secured, do the old ones go.
    _release_seats(db, booking.slot_id, seats)
    db.execute(
        update(Booking)
        .where(Booking.id == booking_id)
        .values(slot_id=new_slot.id, venue_id=new_slot.venue_id)
    )
    _record_event(db, booking_id, event, booking.version)
    return _view(db, booking_id)


# --- The counter's status changes ---------------------------------------------------------

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
        db.execute(_RELEASE_BOOKED, {"slot_id": slot_id, "seats": party})
    elif current == "no_show":
        _retake_seats(db, booking_id)
    _record_event(db, booking_id, "status", int(result.version))
    return _view(db, booking_id)


def _seats_of(db: DbSession, booking_id: int) -> tuple[int, int]:
    slot_id, party = db.execute(
        select(Booking.slot_id, Booking.party_size).where(Booking.id == booking_id)
    ).one()
    return int(slot_id), int(party)


def _retake_seats(db: DbSession, booking_id: int) -> None:
    """A no-show arrived after all: their seats went back when they were marked, so take them
    again, as a walk-in may. If a walk-in has them now, the resident is served anyway: the
    seats are counted over the capacity on purpose (kept over), never lost from the count."""
    slot_id, party = _seats_of(db, booking_id)
    if _rowcount(db.execute(_CLAIM_BOOKED, _claim_params(db, slot_id, party, "walk_in"))) == 1:
        return
    db.execute(
        update(Slot)
        .where(Slot.id == slot_id)
        .values(booked=Slot.booked + party, kept_over=Slot.kept_over + party)
    )


__all__ = [
    "BookingPeriod",
    "BookingView",
    "CapacityDay",
    "ContactView",
    "CounterDay",
    "DayMark",
    "HeldTime",
    "HoldView",
    "MemberInput",
    "MemberView",
    "ReleaseView",
    "ResidentInput",
    "SlotView",
    "Today",
    "add_release",
    "availability",
    "book",
    "booking_contacts",
    "booking_period",
    "cancel",
    "cancel_booking",
    "cancel_by_resident",
    "counter_figures",
    "create_hold",
    "find_booking",
    "first_bookable_day",
    "get_booking",
    "get_hold",
    "last_bookable_day",
    "list_releases",
    "list_services",
    "list_venues",
    "month_marks",
    "note_attempt",
    "reclaim_expired_holds",
    "release_hold",
    "remove_release",
    "reschedule",
    "reschedule_booking",
    "service_or_404",
    "set_status",
    "take_tally",
    "today_figures",
    "venue_or_404",
    "venue_services",
    "ward_info",
]


# --- Capacity and closures: the counter managers' changes ------------------------------------


@dataclass(frozen=True)
class SlotDay:
    """One slot as a manager sees it on the day view."""

    id: int
    service_id: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    booked: int
    held: int
    kept_over: int
    is_open: bool
    kept_for_phone: int
    kept_for_walk_in: int
    kept_until: datetime | None
    lottery_id: int | None = None  # kept for a lottery: no channel takes a seat first-come

    def free_for(self, channel: str, now: datetime) -> int:
        """Seats ``channel`` may still take now (holds counted as taken)."""
        if self.lottery_id is not None:
            return 0
        kept = 0
        if self.kept_until is not None and self.kept_until > now:
            params = quota_params(channel)
            kept = (
                self.kept_for_phone * params["not_phone"]
                + self.kept_for_walk_in * params["not_walk_in"]
            )
        return max(self.capacity - self.booked - self.held - kept, 0)


def slots_of_day(db: DbSession, *, venue_id: str, day: date) -> list[SlotDay]:
    """Every slot of a venue's day (open or closed), by time then service."""
    start = datetime.combine(day, time(0), TOKYO)
    rows = db.execute(
        select(
            Slot.id,
            Slot.service_id,
            Slot.starts_at,
            Slot.ends_at,
            Slot.capacity,
            Slot.booked,
            Slot.held,
            Slot.kept_over,
            Slot.is_open,
            Slot.kept_for_phone,
            Slot.kept_for_walk_in,
            Slot.kept_until,
            Slot.lottery_id,
        )
        .where(
            Slot.venue_id == venue_id,
            Slot.starts_at >= start,
            Slot.starts_at < start + timedelta(days=1),
        )
        .order_by(Slot.starts_at, Slot.service_id)
    )
    return [SlotDay(**row._mapping) for row in rows]


def stranded(db: DbSession, *, slot_ids: list[int], capacity: int | None) -> list[BookingView]:
    """The bookings a change would leave without a seat: every active booking in the slots
    when they close (``capacity`` None); otherwise, per slot, the fewest bookings whose going
    lets the rest fit the new capacity, and of those choices the one that keeps the earliest
    booked (a party of 2 and then 1 cut to 1 seat strands the 2, not both)."""
    rows = db.execute(
        select(Booking.id, Booking.slot_id, Booking.party_size)
        .where(Booking.slot_id.in_(slot_ids), Booking.status == "booked")
        .order_by(Booking.slot_id, Booking.created_at, Booking.id)
    ).all()
    by_slot: dict[int, list[tuple[int, int]]] = {}
    for booking_id, slot_id, party in rows:
        by_slot.setdefault(slot_id, []).append((booking_id, party))
    out: list[int] = []
    for in_order in by_slot.values():
        if capacity is None:
            out += [booking_id for booking_id, _ in in_order]
        else:
            kept = set(keep_within(in_order, capacity))
            out += [booking_id for booking_id, _ in in_order if booking_id not in kept]
    return [_view(db, booking_id) for booking_id in out]


def keep_within(in_order: list[tuple[int, int]], capacity: int) -> list[int]:
    """Of (booking, party) in booking order, the bookings to keep in ``capacity`` seats: as
    many as can fit (the smallest parties show how many), and among the ways to keep that many,
    the earliest booked. Each booking is kept when the rest can still reach that many."""

    def fits(parties: list[int], count: int, seats: int) -> bool:
        return count <= 0 or (len(parties) >= count and sum(sorted(parties)[:count]) <= seats)

    parties = [party for _, party in in_order]
    most = 0
    while fits(parties, most + 1, capacity):
        most += 1
    kept: list[int] = []
    seats = capacity
    for i, (booking_id, party) in enumerate(in_order):
        if len(kept) == most:
            break
        if party <= seats and fits(parties[i + 1 :], most - len(kept) - 1, seats - party):
            kept.append(booking_id)
            seats -= party
    return kept


def set_capacity(
    db: DbSession, *, slot_ids: list[int], capacity: int, keep_stranded: bool = False
) -> list[BookingView]:
    """Give slots a new capacity. A cut below what is booked is refused unless the manager
    keeps those bookings on purpose (the seats over capacity are recorded as kept, and nothing
    more is sold until bookings fall below the capacity). Returns the bookings kept over."""
    if capacity < 0:
        raise BookingError("invalid_party_size", field="capacity")
    if not slot_ids:
        return []
    _lock_slots(db, slot_ids)  # no booking slips in between the check and the change
    over = stranded(db, slot_ids=slot_ids, capacity=capacity)
    if over and not keep_stranded:
        raise BookingError("capacity_strands", field="capacity", count=len(over))
    excess = Slot.booked + Slot.held - capacity
    db.execute(
        update(Slot)
        .where(Slot.id.in_(slot_ids))
        .values(capacity=capacity, kept_over=case((excess > 0, excess), else_=0))
    )
    _offer_freed(db, slot_ids)  # a raise: the new seats go to the waitlist first
    return over


def close_slots(
    db: DbSession, *, slot_ids: list[int], reason: str, keep_stranded: bool = False
) -> list[BookingView]:
    """Close slots (part of a day, or all of it) to every channel. Bookings on them are
    refused unless kept on purpose (the counter will see them anyway). A session whose slots
    are all closed is closed too, with the reason."""
    if not slot_ids:
        return []
    _lock_slots(db, slot_ids)
    over = stranded(db, slot_ids=slot_ids, capacity=None)
    if over and not keep_stranded:
        raise BookingError("capacity_strands", field="slots", count=len(over))
    db.execute(update(Slot).where(Slot.id.in_(slot_ids)).values(is_open=False))
    sessions = select(Slot.session_id).where(Slot.id.in_(slot_ids)).distinct()
    still_open = select(Slot.session_id).where(Slot.is_open.is_(True)).distinct()
    db.execute(
        update(Session)
        .where(Session.id.in_(sessions), Session.id.not_in(still_open))
        .values(status="closed", closed_reason=reason)
    )
    return over


def set_quota(
    db: DbSession,
    *,
    slot_ids: list[int],
    phone: int,
    walk_in: int,
    release_hours_before: int | None,
) -> None:
    """Keep seats of each slot back for the phone line and for walk-ins (channel quotas)
    until ``release_hours_before`` hours before it starts or, when None, until its session
    opens on the day; then every channel may take them. No seats kept clears the quota.
    Bookings already made stay: a quota only limits what is claimed from now on."""
    if phone < 0 or walk_in < 0 or (release_hours_before is not None and release_hours_before < 0):
        raise BookingError("invalid_party_size", field="kept")
    if not slot_ids:
        return
    _lock_slots(db, slot_ids)
    rows = db.execute(
        select(Slot.id, Slot.capacity, Slot.starts_at, Session.day, Session.opens)
        .join(Session, Session.id == Slot.session_id)
        .where(Slot.id.in_(slot_ids))
    ).all()
    for row in rows:
        if phone + walk_in > row.capacity:
            raise BookingError(
                "quota_exceeds_capacity", field="kept", kept=phone + walk_in, capacity=row.capacity
            )
    for row in rows:
        until: datetime | None = None
        if phone or walk_in:
            until = (
                datetime.combine(row.day, row.opens, TOKYO)
                if release_hours_before is None
                else row.starts_at - timedelta(hours=release_hours_before)
            )
        db.execute(
            update(Slot)
            .where(Slot.id == row.id)
            .values(
                kept_for_phone=phone if until else 0,
                kept_for_walk_in=walk_in if until else 0,
                kept_until=until,
            )
        )


def reopen_slots(db: DbSession, *, slot_ids: list[int]) -> None:
    """Open closed slots again (and their sessions)."""
    if not slot_ids:
        return
    db.execute(update(Slot).where(Slot.id.in_(slot_ids)).values(is_open=True))
    sessions = select(Slot.session_id).where(Slot.id.in_(slot_ids)).distinct()
    db.execute(
        update(Session).where(Session.id.in_(sessions)).values(status="open", closed_reason=None)
    )
    _offer_freed(db, slot_ids)


RELOCATE_SEARCH_DAYS = 14


def nearest_free_slot(db: DbSession, *, booking_id: int, avoid: list[int]) -> SlotView | None:
    """The free time nearest to a booking's own, for its service and party: at the same venue
    first, then anywhere; never one of ``avoid`` (the slots being cut or closed)."""
    found = _view(db, booking_id)
    ctx = context(db)
    day = found.starts_at.astimezone(TOKYO).date()
    first = max(first_bookable_day(ctx, None), day - timedelta(days=RELOCATE_SEARCH_DAYS))
    last = min(last_bookable_day(ctx), day + timedelta(days=RELOCATE_SEARCH_DAYS))
    if last < first:
        return None
    for venue in (found.venue_id, None):
        free = [
            s
            for s in availability(
                db,
                service_id=found.service_id,
                venue_id=venue,
                start=first,
                end=last,
                party=found.party_size,
                limit=1000,
                channel=found.channel,
            )
            if s.id not in avoid and s.id != found.slot_id
        ]
        if free:
            return min(free, key=lambda s: abs((s.starts_at - found.starts_at).total_seconds()))
    return None


def relocate(db: DbSession, *, booking_id: int, slot_id: int) -> BookingView:
    """The ward moves a booking (capacity cut, day closed): like a move, with the notice
    saying it was the ward's doing (event ``relocated``). It may take the seats the booking's
    own channel could have taken (a phone booking those kept for the phone line)."""
    channel = db.execute(select(Booking.channel).where(Booking.id == booking_id)).scalar_one()
    return _move(db, booking_id, slot_id, None, channel, event="relocated")


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
    return [_view(db, booking_id) for booking_id in ids]


@dataclass(frozen=True)
class SessionDay:
    """A session as the counter's calendar shows it: when, what, how many seats in all."""

    id: int
    service_id: str
    starts_at: datetime
    ends_at: datetime
    kind: str
    is_open: bool
    closed_reason: str | None
    seats: int


def sessions_between(db: DbSession, *, venue_id: str, start: date, end: date) -> list[SessionDay]:
    """A venue's sessions from ``start`` to ``end`` (inclusive), open or closed."""
    rows = db.execute(
        select(
            Session.id,
            Session.service_id,
            Session.day,
            Session.opens,
            Session.closes,
            Session.kind,
            Session.status,
            Session.closed_reason,
            func.coalesce(func.sum(Slot.capacity), 0),
        )
        .outerjoin(Slot, Slot.session_id == Session.id)
        .where(Session.venue_id == venue_id, Session.day >= start, Session.day <= end)
        .group_by(Session.id)
        .order_by(Session.day, Session.opens, Session.service_id)
    )
    return [
        SessionDay(
            sid,
            service,
            datetime.combine(day, opens, TOKYO),
            datetime.combine(day, closes, TOKYO),
            kind,
            status == "open",
            reason,
            int(seats),
        )
        for sid, service, day, opens, closes, kind, status, reason, seats in rows
    ]


# --- The counter's day: check-in, no-shows, walk-ins -----------------------------------------


def check_in(db: DbSession, *, code: str, venue_id: str) -> BookingView:
    """A resident at the counter, by the code typed or read from the confirmation's QR code:
    it must be today's booking at this venue (a late arrival marked no-show is let in too)."""
    digits = "".join(ch for ch in code if ch.isdigit())
    found = db.execute(select(Booking.id).where(Booking.code == digits)).scalar_one_or_none()
    if found is None:
        raise BookingError("booking_not_found", field="code")
    view = _view(db, found)
    today = context(db).today()
    if view.venue_id != venue_id or view.starts_at.astimezone(TOKYO).date() != today:
        raise BookingError("not_today_here", field="code")
    return set_status(db, booking_id=found, status="checked_in")


def mark_no_shows(db: DbSession, *, late_after: timedelta) -> list[int]:
    """Bookings whose time began more than ``late_after`` ago with nobody checked in become
    no-shows, and their seats go back to the counter for walk-ins."""
    ctx = context(db)
    cutoff = ctx.now() - late_after
    today_start = datetime.combine(ctx.today(), time(0), TOKYO)
    late = db.execute(
        select(Booking.id, Booking.slot_id, Booking.party_size)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            Booking.status == "booked",
            Slot.starts_at < cutoff,
            Slot.starts_at >= today_start - timedelta(days=7),  # a missed run catches up
        )
        .order_by(Booking.id)
    ).all()
    marked = []
    for booking_id, slot_id, party in late:
        result = db.execute(
            update(Booking)
            .where(Booking.id == booking_id, Booking.status == "booked")
            .values(status="no_show", version=Booking.version + 1, updated_at=ctx.now())
            .returning(Booking.version)
        ).first()
        if result is None:  # checked in at the last moment
            continue
        db.execute(_RELEASE_BOOKED, {"slot_id": slot_id, "seats": party})
        _record_event(db, booking_id, "status", int(result.version))
        marked.append(booking_id)
    return marked


@dataclass(frozen=True)
class WalkInView:
    number: int
    slot_id: int
    starts_at: datetime
    party_size: int
    called_at: datetime | None = None
    completed_at: datetime | None = None


def walk_in(db: DbSession, *, venue_id: str, service_id: str, party: int) -> WalkInView:
    """A resident without a booking: seats in the slot being served now or next today (a
    no-show's, or unsold ones), and the day's next queue number."""
    ctx = context(db)
    check_party(ctx, party)
    now = ctx.now()
    day_end = datetime.combine(ctx.today() + timedelta(days=1), time(0), TOKYO)
    candidates = db.execute(
        select(Slot.id, Slot.starts_at)
        .where(
            Slot.venue_id == venue_id,
            Slot.service_id == service_id,
            Slot.is_open.is_(True),
            Slot.lottery_id.is_(None),
            Slot.ends_at > now,
            Slot.starts_at < day_end,
            Slot.booked + Slot.held + party <= Slot.capacity,
        )
        .order_by(Slot.starts_at)
        .limit(5)
    ).all()
    for slot_id, starts_at in candidates:
        params = _claim_params(db, slot_id, party, "walk_in")
        if _rowcount(db.execute(_CLAIM_BOOKED, params)) != 1:
            continue  # taken meanwhile: the next one
        for _ in range(5):  # a number drawn at the same moment elsewhere: the next number
            number = 1 + int(
                db.execute(
                    select(func.coalesce(func.max(WalkIn.number), 0)).where(
                        WalkIn.venue_id == venue_id, WalkIn.day == ctx.today()
                    )
                ).scalar_one()
            )
            try:
                with db.begin_nested():
                    db.add(
                        WalkIn(
                            venue_id=venue_id,
                            service_id=service_id,
                            day=ctx.today(),
                            number=number,
                            party_size=party,
                            slot_id=slot_id,
                            created_at=now,
                        )
                    )
            except IntegrityError:
                continue
            return WalkInView(number, slot_id, starts_at, party)
        raise RuntimeError("could not draw a queue number in 5 tries")
    raise BookingError("slot_full", field="service")


def walk_ins_of_day(db: DbSession, *, venue_id: str, day: date) -> list[WalkInView]:
    rows = db.execute(
        select(
            WalkIn.number,
            WalkIn.slot_id,
            Slot.starts_at,
            WalkIn.party_size,
            WalkIn.called_at,
            WalkIn.completed_at,
        )
        .join(Slot, Slot.id == WalkIn.slot_id)
        .where(WalkIn.venue_id == venue_id, WalkIn.day == day)
        .order_by(WalkIn.number)
    )
    return [WalkInView(*row) for row in rows]


def call_to_counter(db: DbSession, *, booking_id: int) -> BookingView:
    """The counter calls a checked-in resident: their wait ends now. Calling again (nobody
    came) keeps the first call's time."""
    now = context(db).now()
    result = db.execute(
        update(Booking)
        .where(Booking.id == booking_id, Booking.status == "checked_in")
        .values(called_at=func.coalesce(Booking.called_at, now), updated_at=now)
    )
    if _rowcount(result) != 1:
        current = db.execute(
            select(Booking.status).where(Booking.id == booking_id)
        ).scalar_one_or_none()
        if current is None:
            raise BookingError("booking_not_found")
        raise BookingError("invalid_status_change", current=current, target="called")
    return _view(db, booking_id)


def call_walk_in(db: DbSession, *, venue_id: str, number: int) -> WalkInView:
    """The counter calls today's queue number ``number``: that walk-in's wait ends now."""
    now = context(db).now()
    return _mark_walk_in(db, venue_id, number, WalkIn.called_at.is_(None), {"called_at": now})


def complete_walk_in(db: DbSession, *, venue_id: str, number: int) -> WalkInView:
    """The counter finished with today's queue number ``number`` (完了), as for a booking. One
    not called yet is called now too: the resident was served, so their wait ended."""
    now = context(db).now()
    done = {"completed_at": now, "called_at": func.coalesce(WalkIn.called_at, now)}
    return _mark_walk_in(db, venue_id, number, WalkIn.completed_at.is_(None), done)


def _mark_walk_in(
    db: DbSession, venue_id: str, number: int, unmarked: Any, values: dict[str, Any]
) -> WalkInView:
    """Mark today's queue number once (marking again keeps the first time); the walk-in."""
    today = context(db).today()
    db.execute(
        update(WalkIn)
        .where(WalkIn.venue_id == venue_id, WalkIn.day == today, WalkIn.number == number, unmarked)
        .values(**values)
    )
    for view in walk_ins_of_day(db, venue_id=venue_id, day=today):
        if view.number == number:
            return view
    raise BookingError("walk_in_not_found", field="number")


# --- Retention: erasing residents' personal data --------------------------------------------


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


def check_in_offline(db: DbSession, *, booking_id: int, venue_id: str, day: date) -> bool:
    """A check-in a counter recorded while offline, uploaded later: applied once (True), or
    already so (False). The booking must be on that day at that venue. Its time has passed, so
    no seats move (a no-show's seat may have gone to a walk-in meanwhile)."""
    view = _view(db, booking_id)
    if view.venue_id != venue_id or view.starts_at.astimezone(TOKYO).date() != day:
        raise BookingError("not_today_here", field="code")
    if view.status in ("checked_in", "completed"):
        return False
    if view.status not in ("booked", "no_show"):
        raise BookingError("invalid_status_change", current=view.status, target="checked_in")
    # Its checked_in_at stays empty: the time the counter ticked the roster is not known, so
    # it is left out of the wait figures rather than guessed.
    result = db.execute(
        update(Booking)
        .where(Booking.id == booking_id, Booking.status == view.status)
        .values(status="checked_in", version=Booking.version + 1, updated_at=context(db).now())
        .returning(Booking.version)
    ).first()
    if result is None:
        return False  # changed meanwhile: the other change stands
    _record_event(db, booking_id, "status", int(result.version))
    return True


# --- The waitlist: freed seats offered to those waiting, first come first -------------------
#
# A seat freed (a cancellation or move without a release delay, a release delay ending, a
# capacity raised, a slot reopened, a hold lapsed or given back) is offered to the waitlist in
# the same transaction that frees it: the public never sees it free while someone waits for
# it. Each offer is a hold of kind ``waitlist`` claimed by the same conditional UPDATE as any
# hold, so there are never more offers out than seats free; a waitlist hold lapses like any
# other, and its lapse frees the seats again, to the next entry.

# How many waiting entries one freed slot looks at (a party too large for the seats free now
# is passed over and keeps its place for the next seats).
_OFFER_LOOKAHEAD = 50


def _offer_freed(db: DbSession, slot_ids: Any) -> int:
    """Offer the free seats of these slots to their waitlists; returns how many offers."""
    return sum(_offer_slot(db, slot_id) for slot_id in sorted(set(slot_ids)))


def _offer_slot(db: DbSession, slot_id: int) -> int:
    ctx = context(db)
    slot = _slot_info(db, slot_id)
    if not slot.is_open:
        return 0
    try:  # a time no longer bookable (too soon, or past) goes to the counter, not the list
        check_window(ctx, slot.starts_at, slot.cutoff_time)
    except BookingError:
        return 0
    waiting = waitlist.candidates(
        db,
        venue_id=slot.venue_id,
        service_id=slot.service_id,
        slot_id=slot_id,
        starts_at=slot.starts_at,
        limit=_OFFER_LOOKAHEAD,
    )
    if not waiting:
        return 0
    # Slot before entries: the lock order of every offer. FOR NO KEY UPDATE, the lock the seat
    # UPDATEs take: after a cancellation's UPDATE, FOR UPDATE would be an upgrade, and an
    # upgrade with a racer queued on the row deadlocks (measured: 1 in 6 racing cancels).
    db.execute(select(Slot.id).where(Slot.id == slot_id).with_for_update(key_share=True))
    now = ctx.now()
    made = 0
    for entry in waiting:
        params = _claim_params(db, slot_id, entry.party_size, entry.channel)
        if _rowcount(db.execute(_CLAIM_HOLD, params)) != 1:
            continue  # more than the seats free now: it keeps its place for the next ones
        hold_id = secrets.token_hex(16)
        expires_at = now + timedelta(minutes=ctx.rules.waitlist_offer_minutes)
        if not waitlist.mark_offered(
            db, entry_id=entry.id, hold_id=hold_id, slot_id=slot_id, expires_at=expires_at
        ):  # offered elsewhere meanwhile (another slot of its day)
            db.execute(_RELEASE_HELD, {"slot_id": slot_id, "seats": entry.party_size})
            continue
        db.add(
            Hold(
                id=hold_id,
                slot_id=slot_id,
                seats=entry.party_size,
                kind="waitlist",
                channel=entry.channel,
                expires_at=expires_at,
                created_at=now,
            )
        )
        made += 1
    if made:
        db.flush()
        db.info[OUTBOX_WRITTEN] = True  # the offers' messages: wake the pump after commit
    return made


def join_waitlist(
    db: DbSession,
    *,
    venue_id: str,
    service_id: str,
    day: date,
    slot_id: int | None = None,
    party: int,
    phone: str,
    language: str,
    channel: str,
    only_when_full: bool = True,
    offer_now: bool = True,
) -> WaitlistView:
    """Put a resident on the waitlist of a full day (or one full time) of a service at a venue,
    at the end; asking again keeps their place. Refused while seats are free to book, unless
    ``only_when_full`` is False (a lottery's losers, offered the list after the draw). Without
    ``offer_now`` the caller offers the day's free seats itself once it has put everyone on
    (a draw's thousands of losers: one pass over the day, not one per loser)."""
    ctx = context(db)
    check_party(ctx, party)
    if channel not in CHANNELS:
        raise BookingError("invalid_request", field="channel")
    venue = venue_or_404(db, venue_id)
    service_or_404(db, service_id)
    first, last = first_bookable_day(ctx, venue.cutoff_time), last_bookable_day(ctx)
    if not first <= day <= last:
        raise BookingError(
            "outside_booking_window", field="day", first=first.isoformat(), last=last.isoformat()
        )
    if slot_id is not None:
        slot = _slot_info(db, slot_id)
        if (slot.venue_id, slot.service_id) != (venue_id, service_id) or waitlist.local_day(
            slot.starts_at
        ) != day:
            raise BookingError("slot_not_found", field="slot_id")
    start, end = waitlist.day_bounds(day)
    same_day = select(Slot.id).where(
        Slot.venue_id == venue_id,
        Slot.service_id == service_id,
        Slot.starts_at >= start,
        Slot.starts_at < end,
        Slot.is_open.is_(True),
    )
    if slot_id is not None:
        same_day = same_day.where(Slot.id == slot_id)
    opening = list(db.execute(same_day).scalars())
    if not opening:  # a closed day has no seats to free
        raise BookingError("slot_closed", field="day")
    if only_when_full:
        free = availability(
            db,
            service_id=service_id,
            venue_id=venue_id,
            start=day,
            end=day,
            party=party,
            channel=channel,
            limit=200,
        )
        if any(slot_id in (None, s.id) for s in free):
            raise BookingError("waitlist_seats_free", field="day")
    entry = waitlist.add_entry(
        db,
        venue_id=venue_id,
        service_id=service_id,
        day=day,
        slot_id=slot_id,
        party=party,
        phone=phone,
        language=language,
        channel=channel,
    )
    # Seats freed between the check and now (or, for a lottery's list, left over) go at once.
    if offer_now and _offer_freed(db, opening):
        entry = waitlist.get_entry(db, entry_id=entry.id)
    return entry


def take_waitlist_offer(
    db: DbSession,
    *,
    token: str,
    resident: ResidentInput,
    channel: str,
    idempotency_key: str | None = None,
) -> BookingView:
    """Book the seats a waitlist offer keeps, for the entry's party, while the offer is live
    (asking what any booking asks). Taking it again answers with the booking it made."""
    found = waitlist.get_entry(db, token=token)
    if found.status == "booked" and found.booking_id is not None:
        return _view(db, found.booking_id)
    if found.offered_slot_id is None:
        raise BookingError("waitlist_offer_gone", field="token")
    _lock_slots(db, [found.offered_slot_id])  # slot before entry: the lock order
    entry = waitlist.entry_for_update(db, token=token)
    now = context(db).now()
    if entry.status == "booked" and entry.booking_id is not None:  # a twin request won
        return _view(db, entry.booking_id)
    if entry.status != "offered" or entry.hold_id is None:
        raise BookingError("waitlist_offer_gone", field="token")
    with db.begin_nested():  # all or nothing: a refused form leaves the offer as it was
        # The waitlist's hold becomes an ordinary one for the booking to take.
        turned = db.execute(
            update(Hold)
            .where(Hold.id == entry.hold_id, Hold.kind == "waitlist", Hold.expires_at > now)
            .values(kind="offer")
        )
        if _rowcount(turned) != 1:
            raise BookingError("waitlist_offer_gone", field="token")
        made = book(
            db,
            hold_id=entry.hold_id,
            party=entry.party_size,
            resident=resident,
            channel=channel,
            idempotency_key=idempotency_key,
        )
        waitlist.mark_booked(db, entry_id=entry.id, booking_id=made.id)
    return made


def leave_waitlist(db: DbSession, *, token: str) -> WaitlistView:
    """Off the list (the resident, or an agent for them); seats offered go to the next."""
    found = waitlist.get_entry(db, token=token)
    if found.offered_slot_id is not None:
        _lock_slots(db, [found.offered_slot_id])
    entry = waitlist.entry_for_update(db, token=token)
    if entry.status == "offered" and entry.hold_id is not None:
        row = db.execute(
            delete(Hold)
            .where(Hold.id == entry.hold_id, Hold.kind == "waitlist")
            .returning(Hold.slot_id, Hold.seats)
        ).first()
        waitlist.mark_left(db, entry_id=entry.id)
        if row is not None:
            db.execute(_RELEASE_HELD, {"slot_id": row.slot_id, "seats": row.seats})
            _offer_freed(db, [row.slot_id])
    else:
        waitlist.mark_left(db, entry_id=entry.id)
    return waitlist.get_entry(db, entry_id=entry.id)


def extend_waitlist_offer(db: DbSession, *, entry_id: int, until: datetime) -> None:
    """Keep an offer's seats until ``until`` at least: the resident hears of it only then
    (the texts wait out the quiet hours)."""
    found = waitlist.get_entry(db, entry_id=entry_id)
    if found.status != "offered" or found.offered_slot_id is None:
        return
    _lock_slots(db, [found.offered_slot_id])  # slot, entry, hold: reclaiming's lock order
    hold_id = waitlist.extend_offer(db, entry_id=entry_id, until=until)
    if hold_id is not None:
        db.execute(
            update(Hold)
            .where(Hold.id == hold_id, Hold.kind == "waitlist", Hold.expires_at < until)
            .values(expires_at=until)
        )


waitlist_entry = waitlist.get_entry
waitlist_of_day = waitlist.entries_of_day
waitlist_for_phone = waitlist.entries_for_phone
waitlist_offers_to_notice = waitlist.offers_to_notice
mark_waitlist_offers_noticed = waitlist.mark_noticed
erase_waitlist_personal_data = waitlist.erase_personal_data
lottery_losses_to_notice = waitlist.losses_to_notice
mark_lottery_losses_noticed = waitlist.mark_losses_noticed


def offer_freed_seats(db: DbSession, *, slot_ids: list[int]) -> int:
    """Offer these slots' free seats to their waitlists first (a lottery's seats given back
    to first-come after its draw: its losers wait for them); how many offers."""
    return _offer_freed(db, slot_ids)


__all__ += [
    "WaitlistView",
    "erase_waitlist_personal_data",
    "extend_waitlist_offer",
    "join_waitlist",
    "leave_waitlist",
    "lottery_losses_to_notice",
    "mark_lottery_losses_noticed",
    "mark_waitlist_offers_noticed",
    "offer_freed_seats",
    "take_waitlist_offer",
    "waitlist_entry",
    "waitlist_for_phone",
    "waitlist_of_day",
    "waitlist_offers_to_notice",
]
