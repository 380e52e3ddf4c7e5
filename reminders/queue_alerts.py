"""A walk-in's ticket alerts (整理券): an SMS when only a few are ahead of them (the venue's
number, 3 unless the ward says otherwise) and one when they are called, to the mobile number
they left. Each is a ``message`` row born in the transaction of the counter's action that made
it due (a call, a completion), once per ticket and kind (the table's unique key), then claimed
and sent like any message. The numbers go at the end of the day, with the ticket's.
"""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from booking import service as booking
from booking.context import TOKYO, context
from booking.localized import name_of
from reminders.ledger import add_once, drop_or_claim
from reminders.models import Message
from reminders.opt_outs import number_opted_out
from reminders.planning import ReminderRules
from reminders.texts import compose_queue_alert

NEAR, CALLED = "queue_near", "queue_called"


def plan_queue_alerts(db: DbSession, *, venue_id: str) -> list[int]:
    """The alerts the venue's queue makes due now, each once: "a few ahead" for a ticket that
    many (or fewer) places from the counter, "called" for one called. In the caller's
    transaction; returns the new messages' ids."""
    ctx = context(db)
    tickets = [
        t
        for t in booking.tickets_with_phones(db, venue_id=venue_id, day=ctx.today())
        if t.completed_at is None and t.phone
    ]
    if not tickets:
        return []
    queue = booking.venue_queue(db, venue_id=venue_id)
    near = booking.alert_ahead(db, venue_id=venue_id)
    sent = {
        (walk_in_id, kind)
        for walk_in_id, kind in db.execute(
            select(Message.walk_in_id, Message.kind).where(
                Message.walk_in_id.in_([t.walk_in_id for t in tickets])
            )
        )
    }
    made: list[int] = []
    now = ctx.now()
    for ticket in tickets:
        if ticket.called_at is not None:
            kind = CALLED
        else:
            ahead = queue.ahead_of_walk_in(ticket.walk_in_id)
            if ahead is None or ahead > near:
                continue
            kind = NEAR
        if (ticket.walk_in_id, kind) in sent:
            continue
        message = Message(
            booking_id=None,
            waitlist_entry_id=None,
            walk_in_id=ticket.walk_in_id,
            booking_version=1,
            kind=kind,
            channel="sms",
            to_enc=ctx.vault.encrypt(str(ticket.phone)),
            to_hmac=ctx.vault.digest(str(ticket.phone)),
            language=ticket.language,
            send_after=now,  # at the counter's hours: no quiet hours to wait for
            status="scheduled",
            copy=0,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        if not add_once(db, message):
            continue  # another made it at the same moment
        made.append(message.id)
    if made:
        db.info[booking.OUTBOX_WRITTEN] = True  # wake the pump after commit: it arms them
    return made


def fresh_queue_alerts(db: DbSession, *, since: datetime) -> list[tuple[int, datetime]]:
    """Ticket alerts planned since ``since`` still waiting to go (the pump arms their jobs:
    arming one twice makes no second job)."""
    rows = db.execute(
        select(Message.id, Message.send_after).where(
            Message.walk_in_id.is_not(None),
            Message.status == "scheduled",
            Message.created_at >= since,
        )
    )
    return [(int(message_id), at) for message_id, at in rows]


def claim_queue_alert(
    db: DbSession, message: Message, rules: ReminderRules
) -> tuple[str, str] | None:
    """Claim a ticket's alert while it still says the truth (a "few ahead" for a ticket since
    called or served, or a number erased: dropped), committed by the caller before sending:
    the number and the text to send, or None."""
    found = booking.ticket_of_walk_in(db, walk_in_id=int(message.walk_in_id or 0))
    now = context(db).now()
    reason = None
    if found.phone is None or not message.to_enc:
        reason = "no number"
    elif found.completed_at is not None or (message.kind == NEAR and found.called_at is not None):
        reason = "stale: the ticket moved on"
    elif found.day != context(db).today():
        reason = "stale: the day is over"
    elif number_opted_out(db, message.to_hmac):
        reason = "opted out"
    if not drop_or_claim(db, message.id, reason, now):
        return None  # dropped, or another worker took it
    return str(found.phone), queue_alert_text(db, message, rules.site_url)


def queue_alert_text(db: DbSession, message: Message, site_url: str) -> str:
    """The alert's text, from the ticket and the queue as they are now."""
    found = booking.ticket_of_walk_in(db, walk_in_id=int(message.walk_in_id or 0))
    venue = booking.venue_or_404(db, found.venue_id)
    ahead = booking.venue_queue(db, venue_id=found.venue_id).ahead_of_walk_in(found.walk_in_id)
    return compose_queue_alert(
        message.kind,
        message.language,
        number=found.number,
        venue=name_of(venue, message.language),
        ahead=ahead or 0,
        desk=found.called_desk,
        link=status_link(site_url, found.token),
    )


def status_link(site_url: str, token: str) -> str:
    """The resident's status page of a ticket."""
    return f"{site_url.rstrip('/')}/queue/{token}"


def erase_queue_alert_numbers(db: DbSession, *, today: datetime | None = None) -> int:
    """The numbers of ticket alerts of days before today: erased (what was sent, when, stays)."""
    day = (today or context(db).now()).astimezone(TOKYO).date()
    start = datetime.combine(day, time(0), TOKYO)
    result = db.execute(
        update(Message)
        .where(Message.walk_in_id.is_not(None), Message.send_after < start, Message.to_enc != "")
        .values(to_enc="", to_hmac="")
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
