"""The waitlist as the channels use it: joining a full day's (or time's) list, taking an offer
(a booking from the offer's hold), leaving, and the offers' own reads. The offers themselves
are made where seats are freed, in booking/seats.py; the entries live in booking/waitlist.py.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from booking import seats, waitlist
from booking.availability import (
    availability,
    check_party,
    first_bookable_day,
    last_bookable_day,
    service_or_404,
    venue_or_404,
)
from booking.context import context
from booking.errors import BookingError
from booking.making import CHANNELS, book
from booking.models import Hold, Slot
from booking.reads import booking_view, slot_info
from booking.seats import rowcount
from booking.views import BookingView, ResidentInput
from booking.waitlist import WaitlistView


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
    opening = _open_slots_waited_for(db, venue_id, service_id, day, slot_id, party, channel)
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
    if offer_now and seats.offer_freed(db, opening):
        entry = waitlist.get_entry(db, entry_id=entry.id)
    return entry


def _open_slots_waited_for(
    db: DbSession,
    venue_id: str,
    service_id: str,
    day: date,
    slot_id: int | None,
    party: int,
    channel: str,
) -> list[int]:
    """The open slots an entry would wait for (the day's, or the one time's); refused for a
    request the engine would refuse, a day outside the booking window, or a closed day."""
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
        slot = slot_info(db, slot_id)
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
    return opening


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
        return booking_view(db, found.booking_id)
    if found.offered_slot_id is None:
        raise BookingError("waitlist_offer_gone", field="token")
    seats.lock_slots(db, [found.offered_slot_id])  # slot before entry: the lock order
    entry = waitlist.entry_for_update(db, token=token)
    now = context(db).now()
    if entry.status == "booked" and entry.booking_id is not None:  # a twin request won
        return booking_view(db, entry.booking_id)
    if entry.status != "offered" or entry.hold_id is None:
        raise BookingError("waitlist_offer_gone", field="token")
    with db.begin_nested():  # all or nothing: a refused form leaves the offer as it was
        # The waitlist's hold becomes an ordinary one for the booking to take.
        turned = db.execute(
            update(Hold)
            .where(Hold.id == entry.hold_id, Hold.kind == "waitlist", Hold.expires_at > now)
            .values(kind="offer")
        )
        if rowcount(turned) != 1:
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
        seats.lock_slots(db, [found.offered_slot_id])
    entry = waitlist.entry_for_update(db, token=token)
    if entry.status == "offered" and entry.hold_id is not None:
        freed = seats.withdraw_offer(db, entry.hold_id)
        waitlist.mark_left(db, entry_id=entry.id)
        if freed is not None:
            seats.offer_freed(db, [freed])
    else:
        waitlist.mark_left(db, entry_id=entry.id)
    return waitlist.get_entry(db, entry_id=entry.id)


def extend_waitlist_offer(db: DbSession, *, entry_id: int, until: datetime) -> None:
    """Keep an offer's seats until ``until`` at least: the resident hears of it only then
    (the texts wait out the quiet hours)."""
    found = waitlist.get_entry(db, entry_id=entry_id)
    if found.status != "offered" or found.offered_slot_id is None:
        return
    seats.lock_slots(db, [found.offered_slot_id])  # slot, entry, hold: reclaiming's lock order
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
    return seats.offer_freed(db, slot_ids)
