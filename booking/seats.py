"""Seats: the only code that changes a slot's ``booked`` and ``held`` (the one booking statement
of booking/making.py aside). Every claim is one conditional UPDATE (``booked + held + n <=
capacity``) with a CHECK behind it; no Python lock and no count-then-insert, so every channel and
every process may call it. Here too are the holds (seats kept for someone deciding, or offered
to the waitlist), their lapse, and the rule that freed seats go to the waitlist first.

Lock order, where one transaction touches several rows: the booking row first, then slot rows in
ascending id order, then their holds and waitlist entries.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session as DbSession

from booking import release, waitlist
from booking.availability import KEPT_BACK, check_party, check_window, quota_params
from booking.context import context
from booking.errors import BookingError
from booking.models import Hold, Slot
from booking.outbox import OUTBOX_WRITTEN, tally
from booking.reads import slot_for_sale, slot_info
from booking.release import RELEASED, release_params
from booking.views import HeldTime, HoldView

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
# The claim's WHERE as a read: which rule refused a booking statement (booking/making.py).
_FITS = select(Slot.id).where(*_SEATS_FIT)

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


def rowcount(result: Any) -> int:
    """How many rows an UPDATE or DELETE touched."""
    return int(result.rowcount)


def lock_slots(db: DbSession, slot_ids: Any) -> None:
    """Lock slot rows in ascending id order before touching their holds: slots before holds is
    the lock order everywhere (a booking locks its slot, then may reclaim that slot's holds)."""
    db.execute(select(Slot.id).where(Slot.id.in_(slot_ids)).order_by(Slot.id).with_for_update())


def reclaim_expired_holds(db: DbSession, *, slot_id: int | None = None) -> int:
    """Give the seats of lapsed holds back to sale; returns how many seats came back."""
    now = context(db).now()
    lapsed = select(Hold.slot_id).where(Hold.expires_at <= now)
    if slot_id is not None:
        lapsed = lapsed.where(Hold.slot_id == slot_id)
    lock_slots(db, lapsed.scalar_subquery())
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
            tally(db, "hold_lapsed", channel)
        elif kind == "waitlist":
            unanswered.append(hold_id)
    for sid in sorted(per_slot):  # ascending slot id: the lock order
        db.execute(_RELEASE_HELD, {"slot_id": sid, "seats": per_slot[sid]})
    waitlist.mark_lapsed(db, hold_ids=unanswered)
    offer_freed(db, per_slot)  # the next on the waitlist before the public
    return sum(per_slot.values())


def why_not_claimed(db: DbSession, slot_id: int, birth_year: int | None = None) -> BookingError:
    """The rule a refused claim broke: kept for a lottery, not released to the resident's group
    (raised), closed, or full."""
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
        if rowcount(db.execute(statement, params)) == 1:
            return
        if attempt == 0 and reclaim_expired_holds(db, slot_id=slot_id) == 0:
            break
    raise why_not_claimed(db, slot_id, birth_year)


def claim_booked(
    db: DbSession, slot_id: int, seats: int, channel: str, birth_year: int | None = None
) -> None:
    """Book seats as ``channel`` may, for a resident born in ``birth_year``, or raise why not
    (lapsed holds reclaimed once first)."""
    _claim(db, _CLAIM_BOOKED, slot_id, seats, channel, birth_year)


def try_claim_booked(db: DbSession, slot_id: int, seats: int, channel: str) -> bool:
    """Book seats as ``channel`` may, in one try; False when they are not there."""
    params = _claim_params(db, slot_id, seats, channel)
    return rowcount(db.execute(_CLAIM_BOOKED, params)) == 1


def seats_fit(
    db: DbSession, slot_id: int, seats: int, channel: str, birth_year: int | None = None
) -> bool:
    """Whether a claim of these seats would go in now (a read: nothing is claimed)."""
    params = _claim_params(db, slot_id, seats, channel, birth_year)
    return db.execute(_FITS, params).first() is not None


def claim_drawn(db: DbSession, *, lottery_id: int, slot_id: int, seats: int) -> bool:
    """Book a lottery winner's seats in a slot kept for that lottery; False when gone."""
    params = {"slot_id": slot_id, "drawn_for": lottery_id, "seats": seats}
    return rowcount(db.execute(_CLAIM_DRAWN, params)) == 1


def release_booked(db: DbSession, slot_id: int, seats: int) -> None:
    """Booked seats back to the slot at once (a no-show's go back to the counter); no offers."""
    db.execute(_RELEASE_BOOKED, {"slot_id": slot_id, "seats": seats})


def release_seats(db: DbSession, slot_id: int, seats: int) -> None:
    """Seats a booking gives up (cancelled or moved away): back on sale, after the release
    delay if one is set."""
    ctx = context(db)
    delay = ctx.rules.release_delay_minutes
    if delay == 0:
        db.execute(_RELEASE_BOOKED, {"slot_id": slot_id, "seats": seats})
        offer_freed(db, [slot_id])
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


def retake_seats(db: DbSession, slot_id: int, party: int) -> None:
    """A no-show arrived after all: their seats went back when they were marked, so take them
    again, as a walk-in may. If a walk-in has them now, the resident is served anyway: the
    seats are counted over the capacity on purpose (kept over), never lost from the count."""
    if try_claim_booked(db, slot_id, party, "walk_in"):
        return
    db.execute(
        update(Slot)
        .where(Slot.id == slot_id)
        .values(booked=Slot.booked + party, kept_over=Slot.kept_over + party)
    )


# --- Holds --------------------------------------------------------------------------------


def create_hold(db: DbSession, *, slot_id: int, seats: int, channel: str) -> HoldView:
    """Keep seats for someone deciding; they lapse after the configured minutes by themselves."""
    ctx = context(db)
    check_party(ctx, seats)
    slot_for_sale(db, slot_id)
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
    tally(db, "hold_taken", channel)
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
    lock_slots(db, select(Hold.slot_id).where(Hold.id == hold_id).scalar_subquery())
    row = db.execute(
        delete(Hold)
        .where(Hold.id == hold_id, Hold.kind == "offer")
        .returning(Hold.slot_id, Hold.seats)
    ).first()
    if row is None:
        raise BookingError("hold_not_found", field="hold_id")
    db.execute(_RELEASE_HELD, {"slot_id": row.slot_id, "seats": row.seats})
    offer_freed(db, [row.slot_id])


def take_hold(db: DbSession, hold_id: str, seats: int, birth_year: int | None = None) -> int:
    """Turn a hold into booked seats; returns its slot. Cannot fail for lack of seats, but
    refuses a slot closed since the hold was made, or a day not yet released to the
    resident's group."""
    hold_id = _known_form(hold_id)
    lock_slots(db, select(Hold.slot_id).where(Hold.id == hold_id).scalar_subquery())
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
        if rowcount(db.execute(_HELD_TO_BOOKED, params)) != 1:
            # Closed, kept for a lottery, or not released to the resident's group since the
            # hold was made.
            raise BookingError(why_not_claimed(db, row.slot_id, birth_year).code, field="hold_id")
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


def hold_slot(db: DbSession, hold_id: str) -> int:
    """The slot a hold keeps seats in (a hold of kind ``offer``), or hold_not_found."""
    hold_id = _known_form(hold_id)
    slot_id = db.execute(
        select(Hold.slot_id).where(Hold.id == hold_id, Hold.kind == "offer")
    ).scalar_one_or_none()
    if slot_id is None:
        raise BookingError("hold_not_found", field="hold_id")
    return slot_id


# --- Freed seats: to the waitlist first, first come first ------------------------------------
#
# A seat freed (a cancellation or move without a release delay, a release delay ending, a
# capacity raised, a slot reopened, a hold lapsed or given back) is offered to the waitlist in
# the same transaction that frees it: the public never sees it free while someone waits for
# it. Each offer is a hold of kind ``waitlist`` claimed by the same conditional UPDATE as any
# hold, so there are never more offers out than seats free; a waitlist hold lapses like any
# other, and its lapse frees the seats again, to the next entry. The waitlist's own side (its
# entries) is booking/waitlist.py; joining, taking and leaving are booking/offers.py.

# How many waiting entries one freed slot looks at (a party too large for the seats free now
# is passed over and keeps its place for the next seats).
_OFFER_LOOKAHEAD = 50


def offer_freed(db: DbSession, slot_ids: Iterable[int]) -> int:
    """Offer the free seats of these slots to their waitlists; returns how many offers."""
    return sum(_offer_slot(db, slot_id) for slot_id in sorted(set(slot_ids)))


def _offer_slot(db: DbSession, slot_id: int) -> int:
    ctx = context(db)
    slot = slot_info(db, slot_id)
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
        if rowcount(db.execute(_CLAIM_HOLD, params)) != 1:
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


def withdraw_offer(db: DbSession, hold_id: str) -> int | None:
    """A waitlist offer's hold goes and its seats with it (not yet offered on: the caller
    does, once the entry is off the list); the slot, or None when the hold was gone."""
    row = db.execute(
        delete(Hold)
        .where(Hold.id == hold_id, Hold.kind == "waitlist")
        .returning(Hold.slot_id, Hold.seats)
    ).first()
    if row is None:
        return None
    db.execute(_RELEASE_HELD, {"slot_id": row.slot_id, "seats": row.seats})
    return int(row.slot_id)
