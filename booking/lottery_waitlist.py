"""A lottery's losers on the waitlist: each household not drawn joins the list of the day of its
first preferred time, in the draw's order, marked for its "not drawn" message (planned once by
the notification side from that mark); then the free seats of those days are offered, once.
``booking.lottery.run_draw`` calls these in the draw's transaction."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from booking import service, waitlist
from booking.context import context
from booking.errors import BookingError
from booking.models import LotteryApplication, Slot


def offer_free_seats(db: DbSession, days: set[tuple[str, str, date]]) -> None:
    """Seats free on the losers' days, at times the lottery does not keep, offered to those
    waiting (the losers, in the draw's order, after anyone who waited before): one pass."""
    slot_ids: list[int] = []
    for venue_id, service_id, day in sorted(days):
        start, end = waitlist.day_bounds(day)
        slot_ids += db.execute(
            select(Slot.id).where(
                Slot.venue_id == venue_id,
                Slot.service_id == service_id,
                Slot.starts_at >= start,
                Slot.starts_at < end,
                Slot.is_open.is_(True),
                Slot.lottery_id.is_(None),
            )
        ).scalars()
    if slot_ids:
        service.offer_freed_seats(db, slot_ids=slot_ids)


def offer_waitlist(
    db: DbSession, *, lottery_id: int, application_id: int
) -> tuple[str, str, date] | None:
    """An application not drawn goes on the waitlist, in the draw's order (the caller calls in
    that order), for the whole day of its first preferred time: any seat of that day freed
    later (a winner's cancellation, the lottery's seats given back) is offered to the losers
    first, the first drawn first. A day the list refuses (closed) gives way to the next
    preferred day. The entry is marked for the "not drawn" message, planned once by the
    notification side from that mark (an outbox). Returns the (venue, service, day) whose list
    it joined, whose free seats the caller offers once everyone is on; None when no day would
    take it."""
    a = db.get(LotteryApplication, application_id)
    if a is None or a.phone_enc is None:
        return None
    phone = context(db).vault.decrypt(a.phone_enc)
    tried: set[tuple[str, str, date]] = set()
    for slot_id in a.preferences:  # the next preferred day only when a day refuses
        row = db.execute(
            select(Slot.venue_id, Slot.service_id, Slot.starts_at).where(Slot.id == slot_id)
        ).one()
        venue_id, service_id, day = row.venue_id, row.service_id, waitlist.local_day(row.starts_at)
        if (venue_id, service_id, day) in tried:
            continue
        tried.add((venue_id, service_id, day))
        try:
            # No savepoint: join_waitlist refuses before it writes anything.
            entry = service.join_waitlist(
                db,
                venue_id=venue_id,
                service_id=service_id,
                day=day,
                party=a.party_size,
                phone=phone,
                language=a.language,
                channel=a.channel,
                only_when_full=False,
                offer_now=False,
            )
        except BookingError as error:
            if error.code != "outside_booking_window":
                continue
            # Drawn long before the day (past the booking window): the entry waits, and seats
            # of that day are offered once the day is bookable.
            try:
                entry = waitlist.add_entry(
                    db,
                    venue_id=venue_id,
                    service_id=service_id,
                    day=day,
                    slot_id=None,
                    party=a.party_size,
                    phone=phone,
                    language=a.language,
                    channel=a.channel,
                )
            except BookingError:  # (refused before writing: a draw never fails on one loser)
                continue
        waitlist.mark_lottery_loser(db, entry_id=entry.id, lottery_id=lottery_id)
        return venue_id, service_id, day
    return None
