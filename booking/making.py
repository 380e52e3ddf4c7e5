"""Making a booking: ``book`` (directly or from a hold, with its retry key), and the lottery
winners' ``book_drawn``. On PostgreSQL a booking of a slot is one statement (``_BOOK_PG``: the
seat claim, the booking row, its members, its outbox event, its retry key); elsewhere, and from
a hold, it goes step by step through booking/seats.py. Both paths keep the same rules: the slot
open and for sale in the booking window, the channel's quota, the staged release, the party's
notice numbers, one active pickup per notice number, and the phone number's active limit;
and, when the ward holds pickups to it, the list of cards that have arrived (booking.cards:
one read before the seats, shared by both paths).

A booking with notice numbers takes their advisory locks (booking.fairness) before any row.
"""

from __future__ import annotations

import re
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Boolean, Integer, String, Time, bindparam, column, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from booking import cards, codes, fairness, retry_keys, seats
from booking.availability import (
    check_party,
    first_bookable_day,
    last_bookable_day,
    local_midnight,
    quota_params,
)
from booking.base import UTCDateTime
from booking.context import TOKYO, BookingContext, context
from booking.errors import BookingError
from booking.models import Booking, BookingMember, IdempotencyKey, Slot
from booking.outbox import OUTBOX_WRITTEN, record_event
from booking.personal import Sealed, check_resident, seal
from booking.reads import SlotInfo, slot_for_sale, slot_info
from booking.views import BookingView, ResidentInput

CHANNELS = ("ivr", "web", "agent", "line")


def _compact(sql: str) -> str:
    """A statement without its comments and runs of blanks (it must hold no string literal with
    either): psycopg parses a statement over 4 kB anew on every call, one under it only once."""
    return " ".join(re.sub(r"--[^\n]*", "", sql).split())


# PostgreSQL: check the slot, claim the seats and write the booking, its members, its outbox
# event and its retry key in one statement, so a booking is BEGIN, this, COMMIT, and the hot
# slot's row lock is held for no extra round trip. The WHERE repeats the rules the step-by-step
# path checks in Python (reads.slot_for_sale, the notice-number rule of personal.seal, the
# seat claim's own, seats._SEATS_FIT with release.RELEASED, and fairness.check_notices); when no
# row comes back, _why_not_booked asks those which one it was, in the step-by-step path's order.
# tests/booking/test_booking_rules.py holds the two paths to the same answers.
_BOOK_PG = (
    text(
        _compact(
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
      -- the phone number's active limit (_check_active_limit), here rather than in a round trip
      -- of its own before the statement; it reads no row of this slot, so it runs before the lock
      AND (SELECT count(*) FROM booking ab JOIN slot a_slot ON a_slot.id = ab.slot_id
          WHERE ab.phone_hmac = :phone_hmac AND ab.status = 'booked'
            AND a_slot.starts_at > :now) < :max_active
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
        bindparam("max_active", type_=Integer()),
    )
    .columns(
        column("venue_id", String()),
        column("service_id", String()),
        column("starts_at", UTCDateTime()),
        column("ends_at", UTCDateTime()),
        column("booking_id", Integer()),
    )
)


def _insert_booking_rows(
    db: DbSession,
    *,
    code: str,
    slot: SlotInfo,
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
            **sealed.columns(),
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
            [{"booking_id": booking_id, **row} for row in sealed.member_rows()],
        )
    record_event(db, booking_id, event, 1)
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


def _book_pg(
    db: DbSession,
    *,
    slot_id: int,
    party: int,
    channel: str,
    sealed: Sealed,
    idempotency_key: str | None,
    proxy: bool = False,
) -> tuple[int, str, SlotInfo] | None:
    """One-statement booking on PostgreSQL: (id, code, slot), or None when it did not go in."""
    ctx = context(db)
    now = ctx.now()
    first = first_bookable_day(ctx, None)
    members = sealed.members
    params = {
        "slot_id": slot_id,
        "party": party,
        "channel": channel,
        **sealed.columns(),
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
        "max_active": ctx.rules.max_active_per_phone,
        **quota_params(channel),
    }
    for _ in range(5):  # a code already in use: undo the claim and draw another
        code = codes.new_code()
        row = db.execute(_BOOK_PG, {**params, "code": code}).first()
        if row is None:
            return None
        if row.booking_id is not None:
            db.info[OUTBOX_WRITTEN] = True  # the statement wrote the booking's event too
            slot = SlotInfo(
                slot_id, row.venue_id, row.service_id, row.starts_at, row.ends_at, True, None, False
            )
            return int(row.booking_id), code, slot
        seats.release_booked(db, slot_id, party)  # undo the claim
    raise RuntimeError("could not draw a free booking code in 5 tries")


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
    if not seats.claim_drawn(db, lottery_id=lottery_id, slot_id=slot_id, seats=party):
        return None
    return _insert_booking_rows(
        db,
        code=_free_code(db),
        slot=slot_info(db, slot_id),
        party=party,
        channel=channel,
        sealed=sealed,
        idempotency_key=None,
        proxy=proxy,
        event="drawn",  # its outbox event: a confirmation that also reaches a landline
    )


# --- book(), in steps -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Made:
    """What a booking wrote, to answer from without reading it back."""

    booking_id: int
    code: str
    slot: SlotInfo
    sealed: Sealed


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
    key = retry_keys.stored_key(ctx, idempotency_key)
    _check_request(ctx, slot_id, hold_id, party, channel)
    extra = _request_extra(slot_id, hold_id, channel, resident)
    made: _Made | BookingView
    if slot_id is not None and _one_statement(db):
        made = _book_in_one_statement(db, slot_id, party, resident, channel, key, extra)
    else:
        made = _book_step_by_step(db, slot_id, hold_id, party, resident, channel, key, extra)
    if isinstance(made, BookingView):  # a retry: the booking the same request made before
        return made
    return _answer(ctx, made, party, channel, resident.proxy)


def _check_request(
    ctx: BookingContext, slot_id: int | None, hold_id: str | None, party: int, channel: str
) -> None:
    """A slot or a hold (not both), a known channel, a party size the rules allow."""
    if (slot_id is None) == (hold_id is None):
        raise BookingError("both_slot_and_hold", field="slot_id")
    if channel not in CHANNELS:
        raise BookingError("invalid_request", field="channel")
    check_party(ctx, party)


def _request_extra(
    slot_id: int | None, hold_id: str | None, channel: str, resident: ResidentInput
) -> dict[str, Any]:
    """The parts of the request beside the household that a retry must repeat."""
    extra: dict[str, Any] = {"slot": slot_id, "hold": hold_id, "channel": channel}
    if resident.proxy:  # absent when not a proxy: keys made before proxies still match
        extra["proxy"] = True
    return extra


def _one_statement(db: DbSession) -> bool:
    """A slot (not a hold) is booked in one statement on PostgreSQL; elsewhere step by step."""
    return db.get_bind().dialect.name == "postgresql"


def _before_claim(
    db: DbSession, key: str | None, sealed: Sealed, *, active_limit: bool = True
) -> BookingView | None:
    """Before any seat: a retry answered with its booking; else the phone number's active
    limit (``active_limit`` False: the booking statement counts them itself), and the notice
    numbers' advisory locks (booking.fairness)."""
    if key is not None:
        earlier = retry_keys.replay(db, key, sealed.fingerprint)
        if earlier is not None:
            return earlier
    if active_limit:
        _check_active_limit(db, sealed.phone_hmac)
    fairness.lock_notices(db, sealed.notice_digests())
    return None


def _book_in_one_statement(
    db: DbSession,
    slot_id: int,
    party: int,
    resident: ResidentInput,
    channel: str,
    key: str | None,
    extra: dict[str, Any],
) -> _Made | BookingView:
    """PostgreSQL: the booking statement (``_BOOK_PG``); the rule it broke when it refuses."""
    ctx = context(db)
    try:
        # The notice-number rule is the statement's: its service is not read first.
        sealed = seal(ctx.vault, ctx.today(), None, party, resident, extra)
        earlier = _before_claim(db, key, sealed, active_limit=False)
    except BookingError:
        _refuse_as_step_by_step(db, slot_id, party, resident)  # what it meets first, if any
        raise
    if earlier is not None:
        return earlier
    # A string compared and nothing read when the ward does not hold pickups to its list.
    if ctx.ready_cards == "refuse":
        try:
            cards.check_slot(db, slot_id=slot_id, digests=sealed.notice_digests())
        except BookingError:
            # What the step-by-step path checks before the list, in its order.
            _refuse_as_step_by_step(db, slot_id, party, resident)
            _check_active_limit(db, sealed.phone_hmac)
            raise
    try:
        found = _book_pg_reclaiming(db, slot_id, party, channel, resident, sealed, key)
    except (IntegrityError, BookingError):
        if key is None:
            raise
        # A twin request with the same key committed first (it may have taken the last
        # seat this one waited for): answer with its booking.
        earlier = retry_keys.replay(db, key, sealed.fingerprint)
        if earlier is None:
            raise
        return earlier
    if found is None:
        raise seats.why_not_claimed(db, slot_id, sealed.birth_date.year)
    booking_id, code, slot = found
    return _Made(booking_id, code, slot, sealed)


def _book_pg_reclaiming(
    db: DbSession,
    slot_id: int,
    party: int,
    channel: str,
    resident: ResidentInput,
    sealed: Sealed,
    key: str | None,
) -> tuple[int, str, SlotInfo] | None:
    """The booking statement; once more only after lapsed holds were reclaimed. Raises the
    rule a refusal broke."""
    found = None
    for _ in range(2):  # the second pass only after lapsed holds were reclaimed
        # A savepoint only when a retry key could collide with a concurrent twin request.
        with db.begin_nested() if key is not None else nullcontext():
            found = _book_pg(
                db,
                slot_id=slot_id,
                party=party,
                channel=channel,
                sealed=sealed,
                idempotency_key=key,
                proxy=resident.proxy,
            )
        if found is not None or not _why_not_booked(db, slot_id, party, channel, resident, sealed):
            break
    return found


def _replayed(
    db: DbSession, key: str, party: int, resident: ResidentInput, extra: dict[str, Any]
) -> BookingView | None:
    """A retry of a booking already made, answered with it whatever became of its slot since
    (closed, or out of the booking window), as the booking statement answers it. Anything
    else (a new key, one sent with another request, fields that do not pass) is left to the
    checks that follow, in their order."""
    ctx = context(db)
    try:
        sealed = seal(ctx.vault, ctx.today(), None, party, resident, extra)
        return retry_keys.replay(db, key, sealed.fingerprint)
    except BookingError:
        return None


def _book_step_by_step(
    db: DbSession,
    slot_id: int | None,
    hold_id: str | None,
    party: int,
    resident: ResidentInput,
    channel: str,
    key: str | None,
    extra: dict[str, Any],
) -> _Made | BookingView:
    """The portable path (SQLite, and every booking from a hold): check, claim the seats
    through booking/seats.py, then write the rows."""
    ctx = context(db)
    target = (
        slot_id
        if slot_id is not None
        else _hold_target(db, str(hold_id), key, party, resident, extra)
    )
    if isinstance(target, BookingView):
        return target
    if hold_id is None and key is not None:
        earlier = _replayed(db, key, party, resident, extra)
        if earlier is not None:
            return earlier
    # A hold was checked against the window when it was made; it keeps its seats till it
    # lapses.
    slot = slot_for_sale(db, target) if hold_id is None else slot_info(db, target)
    sealed = seal(ctx.vault, ctx.today(), slot.requires_notice_number, party, resident, extra)
    earlier = _before_claim(db, key, sealed)
    if earlier is not None:
        return earlier
    if ctx.ready_cards == "refuse":  # before any seat, as on the one-statement path
        cards.check_slot(db, slot_id=slot.id, digests=sealed.notice_digests())
    if hold_id is not None:
        earlier = _take_hold(db, hold_id, party, sealed, key)
        if earlier is not None:
            return earlier
    else:
        seats.claim_booked(db, slot.id, party, channel, sealed.birth_date.year)
    if slot.requires_notice_number:  # after the claim: SQLite's write lock is held by then
        fairness.check_notices(db, sealed.notice_digests())
    code = _free_code(db)
    booking_id = _insert_booking_rows(
        db,
        code=code,
        slot=slot,
        party=party,
        channel=channel,
        sealed=sealed,
        idempotency_key=key,
        proxy=resident.proxy,
    )
    return _Made(booking_id, code, slot, sealed)


def _hold_target(
    db: DbSession,
    hold_id: str,
    key: str | None,
    party: int,
    resident: ResidentInput,
    extra: dict[str, Any],
) -> int | BookingView:
    """The slot a hold keeps; or, the hold gone, the booking this same request made from it."""
    try:
        return seats.hold_slot(db, hold_id)
    except BookingError:
        # Already used by this same request (a retry): answer with its booking.
        earlier = retry_keys.replay_without_hold(db, key, party, resident, extra)
        if earlier is None:
            raise
        return earlier


def _take_hold(
    db: DbSession, hold_id: str, party: int, sealed: Sealed, key: str | None
) -> BookingView | None:
    """The hold's seats become booked (None); or the booking a twin request made from it."""
    try:
        seats.take_hold(db, hold_id, party, sealed.birth_date.year)
    except BookingError as exc:
        # A twin request (a double click) took the hold a moment before this one.
        if exc.code != "hold_not_found" or key is None:
            raise
        earlier = retry_keys.replay(db, key, sealed.fingerprint)
        if earlier is None:
            raise
        return earlier
    return None


def _answer(ctx: BookingContext, made: _Made, party: int, channel: str, proxy: bool) -> BookingView:
    """The booking as written: reading it back would cost round trips under the slot's lock."""
    slot, sealed = made.slot, made.sealed
    return BookingView(
        id=made.booking_id,
        code=made.code,
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
        created_at=ctx.now(),
        members=sealed.member_views,
        proxy=proxy,
    )


def _refuse_as_step_by_step(
    db: DbSession, slot_id: int, party: int, resident: ResidentInput
) -> None:
    """What the step-by-step path checks before anything else, in its order: the slot for sale,
    then every field with the slot's own notice-number rule (FieldProblems, as ``seal`` says
    it). Asked only once the one-statement path has a refusal, so that both name the same."""
    slot = slot_for_sale(db, slot_id)
    check_resident(context(db).today(), slot.requires_notice_number, party, resident)


def _why_not_booked(
    db: DbSession, slot_id: int, party: int, channel: str, resident: ResidentInput, sealed: Sealed
) -> bool:
    """After the booking statement refused: raise the rule it broke, named as the step-by-step
    path would (the slot, the fields, the seat claim's own rules, then the notice numbers); or
    return True when lapsed holds were reclaimed and it is worth one more try."""
    _refuse_as_step_by_step(db, slot_id, party, resident)
    _check_active_limit(db, sealed.phone_hmac)  # the step-by-step path's next check
    if seats.reclaim_expired_holds(db, slot_id=slot_id) > 0:
        return True
    birth_year = sealed.birth_date.year
    if not seats.seats_fit(db, slot_id, party, channel, birth_year):
        raise seats.why_not_claimed(db, slot_id, birth_year)
    if slot_info(db, slot_id).requires_notice_number:
        fairness.check_notices(db, sealed.notice_digests())
    raise seats.why_not_claimed(db, slot_id, birth_year)


def _free_code(db: DbSession) -> str:
    while True:
        code = codes.new_code()
        if db.execute(select(Booking.id).where(Booking.code == code)).first() is None:
            return code


# Built once, as every statement of the hot path: the future bookings a phone number holds.
_ACTIVE_FOR_PHONE = (
    select(func.count())
    .select_from(Booking)
    .join(Slot, Slot.id == Booking.slot_id)
    .where(
        Booking.phone_hmac == bindparam("phone_hmac"),
        Booking.status == "booked",
        Slot.starts_at > bindparam("now"),
    )
)


def _check_active_limit(db: DbSession, phone_hmac: str) -> None:
    """One phone number may hold only so many future bookings (no hoarding of seats)."""
    ctx = context(db)
    params = {"phone_hmac": phone_hmac, "now": ctx.now()}
    if db.execute(_ACTIVE_FOR_PHONE, params).scalar_one() >= ctx.rules.max_active_per_phone:
        raise BookingError("too_many_bookings", field="phone", max=ctx.rules.max_active_per_phone)
