"""Sending: claims, outcomes and reconciliation (``reminders.jobs`` calls Twilio between these).

A batch of messages is claimed in one statement and committed before Twilio is called for any
of them: a worker that dies mid-batch leaves claims, each settled by asking Twilio whether it
went (``settle``), never by sending again blindly. Twilio's answers are recorded together,
after the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session as DbSession

from booking import service as booking
from booking.context import context
from booking.localized import Described, name_of, text_of
from booking.personal import Vault
from ivr import service as calls
from ivr.telephony import UNSUBSCRIBED, Accepted, TwilioFailure
from reminders.ledger import drop_or_claim, move_message
from reminders.links import claim_link_text, link_text
from reminders.models import Message
from reminders.opt_outs import number_opted_out, opt_out_number, opted_out_of
from reminders.planning import (
    REMINDERS,
    Contact,
    Later,
    ReminderRules,
    after_quiet_hours,
    agents_call,
    call_instead,
    fall_back_from_line,
)
from reminders.queue_alerts import claim_queue_alert, queue_alert_text
from reminders.texts import Visit, compose, compose_lost, compose_offer

MAX_ATTEMPTS = 5
# Seconds before a retry, by the number of attempts made so far.
BACKOFF = (30, 120, 600, 1800, 3600)
# Twilio codes that say the number takes no SMS: the reminder goes by voice instead.
NOT_A_MOBILE = {21612, 21614}


@dataclass(frozen=True)
class Outgoing:
    """A claimed message: one attempt recorded (and committed) before Twilio is called."""

    id: int
    kind: str
    channel: str
    to: str
    body: str  # the SMS text (a call speaks the booking in the IVR instead)
    claimed_at: datetime


def due_message_ids(
    db: DbSession, *, limit: int = 1000, older_than: timedelta = timedelta(0)
) -> list[Later]:
    """Scheduled messages whose time has passed (by more than ``older_than``), with that time:
    normally their jobs take them; any left here lost their job (Redis restarted empty, or was
    down when planned)."""
    now = context(db).now()
    query = (
        select(Message.id, Message.send_after)
        .where(Message.status == "scheduled", Message.send_after <= now - older_than)
        .order_by(Message.send_after)
        .limit(limit)
    )
    return [Later(message_id, at) for message_id, at in db.execute(query)]


def _unwanted(
    message: Message, contact: Contact | None, now: datetime, opted: tuple[set[int], set[str]]
) -> str | None:
    """Why this message must not go out now (None: it should)."""
    if contact is None:
        return "stale: the booking is gone"
    if contact.version != message.booking_version:
        return "stale: the booking changed since"
    if message.kind == "cancelled":
        if contact.status != "cancelled":
            return "stale: the booking is not cancelled"
    elif contact.status != "booked" or contact.starts_at <= now:
        return "stale: the visit is not ahead"
    if not contact.phone_enc:
        return "no number"
    if contact.id in opted[0] or message.to_hmac in opted[1]:
        return "opted out"
    return None


def claim(db: DbSession, *, message_id: int, rules: ReminderRules) -> Outgoing | Later | None:
    """Take a due message for one attempt. The caller commits before calling Twilio, so a
    worker that dies mid-send leaves a claim to reconcile, never a silent resend. None when it
    is not due, already taken, or not wanted any more (then it is dropped)."""
    got = claim_batch(db, message_ids=[message_id], rules=rules)
    return got[0] if got else None


def claim_batch(
    db: DbSession, *, message_ids: list[int], rules: ReminderRules
) -> list[Outgoing | Later]:
    """Take these messages for one attempt each, the bookings' in one statement (the caller
    commits before calling Twilio for any). Those not due yet, or due in quiet hours, come back
    as ``Later``; those no longer wanted are dropped and those taken already are left out."""
    now = context(db).now()
    messages = db.execute(
        select(Message)
        .where(Message.id.in_(message_ids), Message.status == "scheduled")
        .order_by(Message.id)
    ).scalars()
    quiet_end = after_quiet_hours(now, rules)
    got: list[Outgoing | Later] = []
    about_bookings: list[Message] = []
    for message in messages:
        if message.send_after > now:  # armed early (a re-arm, a clock apart)
            got.append(Later(message.id, message.send_after))
        elif quiet_end > now and message.call_id is None:
            # A retry or a late job ran into the night: wait for the morning (not a link the
            # caller asked for on the phone just now: they are waiting for it).
            move_message(db, message.id, "scheduled", send_after=quiet_end)
            got.append(Later(message.id, quiet_end))
        elif message.call_id is not None:
            if (sending := claim_link_text(db, message, rules)) is not None:
                to, body = sending
                got.append(Outgoing(message.id, message.kind, message.channel, to, body, now))
        elif message.walk_in_id is not None:
            if (sending := claim_queue_alert(db, message, rules)) is not None:
                to, body = sending
                got.append(Outgoing(message.id, message.kind, message.channel, to, body, now))
        elif message.waitlist_entry_id is not None:
            claim_entry = _claim_loss if message.kind == "lottery_lost" else _claim_offer
            if (out := claim_entry(db, message, message.waitlist_entry_id, rules)) is not None:
                got.append(out)
        elif message.booking_id is not None:  # (always: the table's CHECK)
            about_bookings.append(message)
    return got + _claim_for_bookings(db, about_bookings, now, rules)


def _unfollowed(
    db: DbSession, messages: list[Message], rules: ReminderRules
) -> tuple[set[int], list[Later]]:
    """LINE pushes to residents who unfollowed (or blocked) the account since they were
    planned: not pushed; failed, and the same message planned by SMS or a call instead. The
    messages so failed, and when their fallbacks are due."""
    line = [m for m in messages if m.channel == "line"]
    if not line:
        return set(), []
    following = calls.following_users(db, user_hmacs=sorted({m.to_hmac for m in line}))
    failed: set[int] = set()
    later: list[Later] = []
    for message in line:
        if message.to_hmac in following:
            continue
        reason = "LINE: the resident unfollowed the account"
        if move_message(db, message.id, "scheduled", status="failed", last_error=reason):
            failed.add(message.id)
            found = fall_back_from_line(db, message, rules)
            later += [found] if found is not None else []
    return failed, later


def _claim_for_bookings(
    db: DbSession, messages: list[Message], now: datetime, rules: ReminderRules
) -> list[Outgoing | Later]:
    failed, fallen_back = _unfollowed(db, messages, rules)
    messages = [m for m in messages if m.id not in failed]
    if not messages:
        return list(fallen_back)
    booking_ids = sorted({int(m.booking_id or 0) for m in messages})
    contacts = booking.booking_contacts(db, booking_ids=booking_ids)
    opted = opted_out_of(db, booking_ids=booking_ids, to_hmacs=[m.to_hmac for m in messages])
    dropped: dict[str, list[int]] = {}
    wanted: list[tuple[Message, Contact]] = []
    for message in messages:
        contact = contacts.get(int(message.booking_id or 0))
        reason = _unwanted(message, contact, now, opted)
        if reason is not None or contact is None:
            dropped.setdefault(reason or "", []).append(message.id)
        else:
            wanted.append((message, contact))
    for reason, ids in dropped.items():
        db.execute(
            update(Message)
            .where(Message.id.in_(ids), Message.status == "scheduled")
            .values(status="dropped", last_error=reason, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    if not wanted:
        return list(fallen_back)
    # The claim: only rows still scheduled move, so a message taken by another worker between
    # our read and this statement is left to it.
    claimed = set(
        db.execute(
            update(Message)
            .where(Message.id.in_([m.id for m, _ in wanted]), Message.status == "scheduled")
            .values(status="claimed", attempts=Message.attempts + 1, claimed_at=now, updated_at=now)
            .returning(Message.id)
            .execution_options(synchronize_session=False)
        ).scalars()
    )
    words = Words(db)
    vault = context(db).vault
    claims: list[Outgoing | Later] = [
        Outgoing(m.id, m.kind, m.channel, _to(vault, m, c), words.of(m, c), now)
        for m, c in wanted
        if m.id in claimed
    ]
    return claims + fallen_back


def _to(vault: Vault, message: Message, contact: Contact) -> str:
    """Where a message goes: the LINE user it was planned for, or the booking's number."""
    if message.channel == "line":
        return vault.decrypt(message.to_enc)
    return vault.decrypt(str(contact.phone_enc))


class Words:
    """The texts of many messages, reading each venue, service and the ward's number once."""

    def __init__(self, db: DbSession) -> None:
        self.db = db
        self._venues: dict[str, Described] = {}
        self._services: dict[str, Described] = {}
        self._phone: str | None = None

    def of(self, message: Message, contact: Contact) -> str:
        if message.channel not in ("sms", "line"):
            return ""  # a call speaks the booking in the IVR; a LINE push says what an SMS says
        return self.sms(
            kind=message.kind,
            language=message.language,
            venue_id=contact.venue_id,
            service_id=contact.service_id,
            code=contact.code,
            starts_at=contact.starts_at,
            party=contact.party_size,
        )

    def sms(
        self,
        *,
        kind: str,
        language: str,
        venue_id: str,
        service_id: str,
        code: str,
        starts_at: datetime,
        party: int,
    ) -> str:
        if venue_id not in self._venues:
            self._venues[venue_id] = booking.venue_or_404(self.db, venue_id)
        if service_id not in self._services:
            self._services[service_id] = booking.service_or_404(self.db, service_id)
        if self._phone is None:
            self._phone = booking.ward_info(self.db).phone
        venue, service = self._venues[venue_id], self._services[service_id]
        visit = Visit(
            code=code,
            starts_at=starts_at,
            venue=name_of(venue, language),
            party=party,
            bring=text_of(service, "bring", language),
            address=text_of(venue, "address", language),
            access=text_of(venue, "access", language),
            phone=self._phone,
        )
        return compose(kind, language, visit)


def sms_body(
    db: DbSession,
    *,
    kind: str,
    language: str,
    venue_id: str,
    service_id: str,
    code: str,
    starts_at: datetime,
    party: int,
) -> str:
    """An SMS in the booking's language: the venue by its name in that language, for a
    confirmation what to bring and where to go, the call center's number last."""
    return Words(db).sms(
        kind=kind,
        language=language,
        venue_id=venue_id,
        service_id=service_id,
        code=code,
        starts_at=starts_at,
        party=party,
    )


def outgoing(
    db: DbSession, *, message_id: int, rules: ReminderRules | None = None
) -> Outgoing | None:
    """A claimed message as it was sent: what to ask Twilio about when the outcome is unknown."""
    message = db.get(Message, message_id)
    if message is None or message.status != "claimed" or message.claimed_at is None:
        return None
    to = context(db).vault.decrypt(message.to_enc)
    if message.call_id is not None:
        body = link_text(message, rules.site_url if rules else "")
        return Outgoing(message.id, message.kind, message.channel, to, body, message.claimed_at)
    if message.walk_in_id is not None:
        body = queue_alert_text(db, message, rules.site_url if rules else "")
        return Outgoing(message.id, message.kind, message.channel, to, body, message.claimed_at)
    if message.waitlist_entry_id is not None:
        entry = booking.waitlist_entry(db, entry_id=message.waitlist_entry_id)
        site_url = rules.site_url if rules else ""
        if message.kind == "lottery_lost":
            body = _lost_text(db, message, entry, site_url)
        else:
            body = _offer_text(db, message, entry, site_url)
        return Outgoing(message.id, message.kind, message.channel, to, body, message.claimed_at)
    if message.booking_id is None:
        return None
    contact = booking.booking_contacts(db, booking_ids=[message.booking_id])[message.booking_id]
    body = Words(db).of(message, contact)
    return Outgoing(message.id, message.kind, message.channel, to, body, message.claimed_at)


def record_sent(db: DbSession, *, message_id: int, accepted: Accepted) -> None:
    """Twilio took it: keep its SID (status callbacks and reconciliation find it by that)."""
    move_message(
        db, message_id, "claimed", status="sent", provider_sid=accepted.sid, last_error=None
    )


_table = cast(Table, Message.__table__)
_RECORD_SENT = (
    update(_table)
    .where(_table.c.id == bindparam("message_id"), _table.c.status == "claimed")
    .values(
        status="sent",
        provider_sid=bindparam("sid"),
        last_error=None,
        updated_at=bindparam("now"),
    )
)


def record_sent_many(db: DbSession, *, sent: list[tuple[int, Accepted]]) -> None:
    """A batch's messages Twilio took, recorded in one round trip (each only from its claim: a
    delivery callback that came first has said more already)."""
    if sent:
        now = context(db).now()
        db.execute(_RECORD_SENT, [{"message_id": i, "sid": a.sid, "now": now} for i, a in sent])


def give_back(db: DbSession, *, message_ids: list[int], at: datetime) -> list[Later]:
    """Claims never sent (held back by the sending number's cap: Twilio was not called), back
    to scheduled at ``at``; the attempt is not counted."""
    if not message_ids:
        return []
    back = db.execute(
        update(Message)
        .where(Message.id.in_(message_ids), Message.status == "claimed")
        .values(
            status="scheduled",
            attempts=Message.attempts - 1,
            send_after=at,
            updated_at=context(db).now(),
        )
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    ).scalars()
    return [Later(message_id, at) for message_id in back]


def _retry_or_give_up(
    db: DbSession, message: Message, detail: str, rules: ReminderRules, *, back_off: bool = True
) -> Later | None:
    if message.attempts >= MAX_ATTEMPTS:
        move_message(
            db, message.id, "claimed", status="failed", last_error=f"gave up: {detail}"[:200]
        )
        return fall_back_from_line(db, message, rules)  # LINE never took it: by SMS or a call
    wait = BACKOFF[min(message.attempts, len(BACKOFF)) - 1] if back_off else 0
    at = after_quiet_hours(context(db).now() + timedelta(seconds=wait), rules)
    move_message(
        db, message.id, "claimed", status="scheduled", send_after=at, last_error=detail[:200]
    )
    return Later(message.id, at)


def record_failure(
    db: DbSession, *, message_id: int, failure: TwilioFailure, rules: ReminderRules
) -> Later | None:
    """What Twilio's refusal means: try again later (it certainly did not send), leave the
    claim for reconciliation (it may have), or fail (it never will: a voice call instead of an
    SMS where the number takes none; an opt-out where the resident unsubscribed)."""
    message = db.get(Message, message_id)
    if message is None or message.status != "claimed":
        return None
    if failure.outcome == "retry":
        return _retry_or_give_up(db, message, failure.detail, rules)
    if failure.outcome == "uncertain":
        move_message(db, message.id, "claimed", last_error=failure.detail[:200])
        return None
    move_message(db, message.id, "claimed", status="failed", last_error=failure.detail[:200])
    if message.channel == "line":  # refused (blocked): the same message by SMS or a call
        return fall_back_from_line(db, message, rules)
    if message.kind == "relocated":
        agents_call(db, context(db).vault.decrypt(message.to_enc), message.language)
    if failure.code == UNSUBSCRIBED:
        opt_out_number(db, message.to_hmac, "provider")
        return None
    if failure.code in NOT_A_MOBILE:
        return call_instead(db, message, rules)
    return None


def claims_to_reconcile(db: DbSession, *, older_than: timedelta, limit: int = 200) -> list[int]:
    """Claims left unfinished for longer than any send takes: their worker died or their
    answer was lost. Each is settled by asking Twilio, never by sending again blindly."""
    cutoff = context(db).now() - older_than
    query = (
        select(Message.id)
        .where(Message.status == "claimed", Message.claimed_at < cutoff)
        .order_by(Message.claimed_at)
        .limit(limit)
    )
    return list(db.execute(query).scalars())


def settle(
    db: DbSession, *, sent: Outgoing, found: Accepted | None, rules: ReminderRules
) -> Later | None:
    """An uncertain attempt, settled by what Twilio says: sent (found there) or not sent
    (free to try again). Only the claim that was asked about is settled."""
    message = db.get(Message, sent.id)
    if message is None or message.status != "claimed" or message.claimed_at != sent.claimed_at:
        return None
    if found is not None:
        record_sent(db, message_id=sent.id, accepted=found)
        return None
    # Twilio never got it (a worker died before its request went out): send it now.
    detail = "not found at Twilio after an unfinished attempt"
    return _retry_or_give_up(db, message, detail, rules, back_off=False)


# Twilio's message and call statuses, as the message ledger keeps them.
DELIVERED = {"delivered", "completed", "read"}
FAILED = {"undelivered", "failed", "busy", "no-answer", "canceled"}


def apply_status(
    db: DbSession, *, message_id: int, sid: str, status: str, rules: ReminderRules
) -> bool:
    """A delivery status callback from Twilio. False when it is about no message of ours."""
    message = db.get(Message, message_id)
    if message is None or message.provider_sid not in (None, sid):
        return False
    if status in DELIVERED and message.status in ("claimed", "sent"):
        message.status, message.provider_sid = "delivered", sid
    elif status in FAILED and message.status in ("claimed", "sent"):
        message.status, message.provider_sid = "failed", sid
        message.last_error = f"Twilio: {status}"
        if message.kind == "relocated":
            agents_call(db, context(db).vault.decrypt(message.to_enc), message.language)
        elif message.channel == "sms" and message.kind in REMINDERS:
            call_instead(db, message, rules)  # an SMS reminder that failed: call instead
    elif message.status == "claimed" and status not in DELIVERED | FAILED:
        message.status, message.provider_sid = "sent", sid  # the callback beat our own record
    message.updated_at = context(db).now()
    db.flush()
    return True


# --- about a waitlist entry: an offer's text, a lottery loser's ------------------------------


def _claim_offer(
    db: DbSession, message: Message, entry_id: int, rules: ReminderRules
) -> Outgoing | None:
    """Claim an offer's text while the offer still stands (taken, given up or lapsed: dropped)."""
    entry = booking.waitlist_entry(db, entry_id=entry_id)
    now = context(db).now()
    reason = None
    if not entry.offer_live(now):
        reason = "stale: the offer was taken, given up or passed on"
    elif entry.phone is None:
        reason = "no number"
    elif number_opted_out(db, message.to_hmac):
        reason = "opted out"
    if not drop_or_claim(db, message.id, reason, now):
        return None
    body = _offer_text(db, message, entry, rules.site_url)
    return Outgoing(message.id, message.kind, message.channel, str(entry.phone), body, now)


def offer_link(site_url: str, token: str) -> str:
    """The resident's page for a waitlist offer (it shows the offer; only its form books)."""
    return f"{site_url.rstrip('/')}/w/{token}"


def _offer_text(db: DbSession, message: Message, entry: booking.WaitlistView, site_url: str) -> str:
    starts_at, until = entry.offered_starts_at, entry.offer_expires_at
    if message.channel != "sms" or starts_at is None or until is None:
        return ""  # a call says the offer in the IVR
    venue = booking.venue_or_404(db, entry.venue_id)
    return compose_offer(
        message.language,
        starts_at=starts_at,
        venue=name_of(venue, message.language),
        party=entry.party_size,
        until=until,
        link=offer_link(site_url, entry.token),
        phone=booking.ward_info(db).phone,
    )


def _claim_loss(
    db: DbSession, message: Message, entry_id: int, rules: ReminderRules
) -> Outgoing | None:
    """Claim a loser's message while they are still on the list (booked from an offer first,
    or gone from the list: dropped, their offer's own message or their leaving said enough)."""
    entry = booking.waitlist_entry(db, entry_id=entry_id)
    reason = None
    if entry.status not in ("waiting", "offered"):
        reason = "stale: no longer on the waitlist"
    elif entry.phone is None:
        reason = "no number"
    elif number_opted_out(db, message.to_hmac):
        reason = "opted out"
    now = context(db).now()
    if not drop_or_claim(db, message.id, reason, now):
        return None
    body = _lost_text(db, message, entry, rules.site_url)
    return Outgoing(message.id, message.kind, message.channel, str(entry.phone), body, now)


def _lost_text(db: DbSession, message: Message, entry: booking.WaitlistView, site_url: str) -> str:
    if message.channel != "sms":
        return ""  # a call says it in the IVR
    venue = booking.venue_or_404(db, entry.venue_id)
    return compose_lost(
        message.language,
        day=entry.day,
        venue=name_of(venue, message.language),
        place=None if entry.ahead is None else entry.ahead + 1,
        link=offer_link(site_url, entry.token),
        phone=booking.ward_info(db).phone,
    )
