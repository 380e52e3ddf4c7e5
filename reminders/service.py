"""Planning residents' notifications from the booking outbox: which message, by which channel,
when; and their texts. No HTTP, no Redis here (``reminders.jobs`` sends).

- A booking made or moved: a confirmation by SMS to a mobile (a landline heard it on the call or
  saw it on the page), and a reminder the day before (SMS to a mobile, a voice call to a
  landline), optionally another on the morning of the visit.
- A booking cancelled: a cancellation SMS to a mobile.
- Moving or cancelling bumps the booking's version: messages planned for an earlier version
  that are not sent yet are dropped, never sent.
- Nothing goes out in quiet hours: what falls in them waits until they end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from booking import service as booking
from booking.context import TOKYO, context
from booking.errors import BookingError
from booking.localized import name_of, text_of
from booking.views import BookingView
from ivr import service as calls
from ivr.placed import PlacedCall as CallAbout
from ivr.telephony import UNSUBSCRIBED, Accepted, TwilioFailure
from reminders.models import STATUSES, Message, OptOut
from reminders.texts import Visit, compose, compose_lost, compose_offer

# The texts' catalogue and measures, re-exported: their home is reminders.texts.
from reminders.texts import render as render
from reminders.texts import sms_segments as sms_segments
from reminders.texts import texts as texts
from reminders.texts import when_text as when_text

# Line types (from phonenumbers) and what reaches them.
SMS_LINES = {"mobile"}
VOICE_LINES = {"fixed_line", "fixed_line_or_mobile", "voip"}


@dataclass(frozen=True)
class ReminderRules:
    day_before_at: time
    morning_at: time | None
    quiet_from: time
    quiet_until: time
    # The residents' site, for the links a text carries (a waitlist offer's page).
    site_url: str = ""


@dataclass(frozen=True)
class Planned:
    events: int
    planned: int
    dropped: int
    # The new messages and when each is due: what the caller arms jobs for after commit.
    due: tuple[tuple[int, datetime], ...] = ()


def channel_for(line_type: str | None) -> str | None:
    if line_type in SMS_LINES:
        return "sms"
    if line_type in VOICE_LINES:
        return "voice"
    return None  # toll-free, pager, unknown: neither an SMS nor a call reaches a resident there


def after_quiet_hours(at: datetime, rules: ReminderRules) -> datetime:
    """``at``, or the end of the quiet hours it falls in (Tokyo time)."""
    local = at.astimezone(TOKYO)
    now = local.time()
    quiet = (
        rules.quiet_from <= now or now < rules.quiet_until
        if rules.quiet_from > rules.quiet_until
        else rules.quiet_from <= now < rules.quiet_until
    )
    if not quiet:
        return at
    day = local.date() if now < rules.quiet_until else local.date() + timedelta(days=1)
    return datetime.combine(day, rules.quiet_until, TOKYO)


def _message(
    db: DbSession, view: BookingView, kind: str, channel: str, send_after: datetime, copy: int = 0
) -> Message | None:
    """A message for this booking version, not yet added (None without a number)."""
    if view.phone is None:
        return None
    ctx = context(db)
    now = ctx.now()
    return Message(
        booking_id=view.id,
        booking_version=view.version,
        kind=kind,
        channel=channel,
        to_enc=ctx.vault.encrypt(view.phone),
        to_hmac=ctx.vault.digest(view.phone),
        language=view.language,
        send_after=send_after,
        status="scheduled",
        copy=copy,
        attempts=0,
        created_at=now,
        updated_at=now,
    )


def _key(m: Message) -> tuple[int | None, int, str, str, int]:
    return (m.booking_id, m.booking_version, m.kind, m.channel, m.copy)


def _add_new(db: DbSession, messages: list[Message]) -> list[Message]:
    """Add the messages not planned already (one per booking, version, kind, channel and
    copy: planning twice makes no second row), in one flush."""
    if not messages:
        return []
    booking_ids = {m.booking_id for m in messages}
    existing = {
        tuple(row)
        for row in db.execute(
            select(
                Message.booking_id,
                Message.booking_version,
                Message.kind,
                Message.channel,
                Message.copy,
            ).where(Message.booking_id.in_(booking_ids))
        )
    }
    new = [m for m in messages if _key(m) not in existing]
    db.add_all(new)
    db.flush()
    return new


def _schedule(
    db: DbSession,
    view: BookingView,
    kind: str,
    channel: str,
    send_after: datetime,
    copy: int = 0,
) -> int | None:
    """One message, planned unless it was already: its id, or None."""
    message = _message(db, view, kind, channel, send_after, copy)
    added = _add_new(db, [message] if message is not None else [])
    return added[0].id if added else None


def _drop_stale(db: DbSession, booking_id: int, version: int) -> int:
    """Unsent messages planned for an earlier version of the booking: not wanted any more."""
    result = db.execute(
        update(Message)
        .where(
            Message.booking_id == booking_id,
            Message.booking_version < version,
            Message.status == "scheduled",
        )
        .values(status="dropped", updated_at=context(db).now())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _plan_visit(
    db: DbSession, view: BookingView, rules: ReminderRules, first: str, why: str = "booked"
) -> list[Message | None]:
    """The confirmation (or move notice) and the reminders for a booked visit."""
    now = context(db).now()
    made: list[Message | None] = []
    channel = channel_for(view.phone_line_type)
    if view.phone_line_type in SMS_LINES:
        made.append(_message(db, view, first, "sms", after_quiet_hours(now, rules)))
    elif why == "drawn" and channel == "voice":
        made.append(_message(db, view, first, "voice", after_quiet_hours(now, rules)))
    elif first == "relocated" and channel == "voice":
        # The ward moved it: a landline hears it too (press 1 to accept, 2 for an agent).
        made.append(_message(db, view, first, "voice", after_quiet_hours(now, rules)))
    elif first == "relocated" and view.phone is not None:
        _agents_call(db, view.phone, view.language)  # neither SMS nor a call reaches it
    if channel is None:
        return made
    visit = view.starts_at.astimezone(TOKYO)
    day_before = datetime.combine(visit.date() - timedelta(days=1), rules.day_before_at, TOKYO)
    if day_before > now:
        at = after_quiet_hours(day_before, rules)
        made.append(_message(db, view, "reminder", channel, at))
    if rules.morning_at is not None:
        morning = datetime.combine(visit.date(), rules.morning_at, TOKYO)
        if now < morning < visit:
            made.append(_message(db, view, "reminder_morning", channel, morning))
    return made


# The first message after a booking event; reminders follow for the visit.
FIRST_MESSAGE = {"booked": "confirmation", "moved": "moved", "relocated": "relocated"}
# Booked by the lottery's draw: no one heard it on a call or saw it on a page, so a landline is
# called with the confirmation (the call says they were drawn, reads the booking out: keep it,
# or cancel it); a mobile's SMS says they were drawn, then what a confirmation says.
FIRST_MESSAGE["drawn"] = "drawn"


def _agents_call(db: DbSession, phone: str, language: str) -> None:
    """A resident the ward must tell of a change and cannot reach by SMS or an automated call:
    on the agents' callback list."""
    try:
        calls.ask_agents_to_call(db, phone=phone, language=language, reason="relocated")
    except BookingError:
        pass  # not a number an agent can call either; the counter sees the booking


def plan_from_outbox(db: DbSession, rules: ReminderRules, *, limit: int = 200) -> Planned:
    """Turn undispatched booking events into messages, in one transaction with marking them
    dispatched (the caller commits): each event is planned once."""
    events = booking.pending_events(db, limit=limit)
    made: list[Message | None] = []
    dropped = 0
    for event in events:
        view = booking.get_booking(db, booking_id=event.booking_id)
        if event.booking_version > 1:  # a first version has nothing earlier to drop
            dropped += _drop_stale(db, view.id, event.booking_version)
        if event.booking_version != view.version:
            continue  # changed again since: its later event plans for the version it has now
        if event.kind in FIRST_MESSAGE and view.status == "booked":
            made += _plan_visit(db, view, rules, FIRST_MESSAGE[event.kind], event.kind)
        elif event.kind == "cancelled" and view.phone_line_type in SMS_LINES:
            at = after_quiet_hours(context(db).now(), rules)
            made.append(_message(db, view, "cancelled", "sms", at))
    booking.mark_dispatched(db, event_ids=[e.id for e in events])
    new = _add_new(db, [m for m in made if m is not None])
    new += _plan_offers(db, rules, limit=limit)
    new += _plan_losses(db, rules, limit=limit)
    return Planned(len(events), len(new), dropped, tuple((m.id, m.send_after) for m in new))


@dataclass(frozen=True)
class MessageView:
    id: int
    booking_id: int | None
    booking_version: int
    kind: str
    channel: str
    to: str
    language: str
    send_after: datetime
    status: str
    attempts: int
    provider_sid: str | None
    last_error: str | None
    updated_at: datetime


def messages_for(db: DbSession, *, booking_id: int) -> list[MessageView]:
    """A booking's messages, as agents see its history."""
    vault = context(db).vault
    rows = db.execute(
        select(Message).where(Message.booking_id == booking_id).order_by(Message.id)
    ).scalars()
    return [
        MessageView(
            m.id,
            m.booking_id,
            m.booking_version,
            m.kind,
            m.channel,
            vault.decrypt(m.to_enc),
            m.language,
            m.send_after,
            m.status,
            m.attempts,
            m.provider_sid,
            m.last_error,
            m.updated_at,
        )
        for m in rows
    ]


# --- sending: claim, record, reconcile (``reminders.jobs`` calls Twilio between these) -------

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


@dataclass(frozen=True)
class Later:
    """Not now: arm the message's job again at ``at``."""

    id: int
    at: datetime


def due_message_ids(db: DbSession, *, limit: int = 1000) -> list[Later]:
    """Scheduled messages whose time has passed, with that time: normally their jobs take
    them; any left here lost their job (Redis restarted empty, or was down when planned)."""
    now = context(db).now()
    query = (
        select(Message.id, Message.send_after)
        .where(Message.status == "scheduled", Message.send_after <= now)
        .order_by(Message.send_after)
        .limit(limit)
    )
    return [Later(message_id, at) for message_id, at in db.execute(query)]


def _opted_out(db: DbSession, booking_id: int, to_hmac: str) -> bool:
    found = db.execute(
        select(OptOut.id).where(or_(OptOut.booking_id == booking_id, OptOut.to_hmac == to_hmac))
    ).first()
    return found is not None


def _unwanted(db: DbSession, message: Message, view: BookingView) -> str | None:
    """Why this message must not go out now (None: it should)."""
    if view.version != message.booking_version:
        return "stale: the booking changed since"
    if message.kind == "cancelled":
        if view.status != "cancelled":
            return "stale: the booking is not cancelled"
    elif view.status != "booked" or view.starts_at <= context(db).now():
        return "stale: the visit is not ahead"
    if view.phone is None:
        return "no number"
    if _opted_out(db, view.id, message.to_hmac):
        return "opted out"
    return None


def _set(db: DbSession, message_id: int, status_now: str, **values: object) -> bool:
    """Move a message on from ``status_now`` (only from it): True when it moved."""
    result = db.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == status_now)
        .values(updated_at=context(db).now(), **values)
    )
    return bool(getattr(result, "rowcount", 0))


def _drop_or_claim(db: DbSession, message_id: int, reason: str | None, now: datetime) -> bool:
    """Drop a scheduled message no longer wanted (``reason``), or claim it for this attempt;
    False when dropped, or when another worker took it between our read and our claim."""
    if reason is not None:
        _set(db, message_id, "scheduled", status="dropped", last_error=reason)
        return False
    return _set(
        db,
        message_id,
        "scheduled",
        status="claimed",
        attempts=Message.attempts + 1,
        claimed_at=now,
    )


def claim(db: DbSession, *, message_id: int, rules: ReminderRules) -> Outgoing | Later | None:
    """Take a due message for one attempt. The caller commits before calling Twilio, so a
    worker that dies mid-send leaves a claim to reconcile, never a silent resend. None when it
    is not due, already taken, or not wanted any more (then it is dropped)."""
    now = context(db).now()
    message = db.get(Message, message_id)
    if message is None or message.status != "scheduled":
        return None
    if message.send_after > now:
        return Later(message.id, message.send_after)  # armed early (a re-arm, a clock apart)
    quiet_end = after_quiet_hours(now, rules)
    if quiet_end > now:  # a retry or a late job ran into the night: wait for the morning
        _set(db, message.id, "scheduled", send_after=quiet_end)
        return Later(message.id, quiet_end)
    if message.waitlist_entry_id is not None and message.kind == "lottery_lost":
        return _claim_loss(db, message, message.waitlist_entry_id, rules)
    if message.waitlist_entry_id is not None:
        return _claim_offer(db, message, message.waitlist_entry_id, rules)
    if message.booking_id is None:  # (never: the table's CHECK, a booking's or an offer's)
        return None
    view = booking.get_booking(db, booking_id=message.booking_id)
    reason = _unwanted(db, message, view)
    if not _drop_or_claim(db, message.id, reason, now):
        return None
    return Outgoing(
        message.id, message.kind, message.channel, str(view.phone), _text(db, message, view), now
    )


def _text(db: DbSession, message: Message, view: BookingView) -> str:
    if message.channel != "sms":
        return ""
    return sms_body(
        db,
        kind=message.kind,
        language=message.language,
        venue_id=view.venue_id,
        service_id=view.service_id,
        code=view.code,
        starts_at=view.starts_at,
        party=view.party_size,
    )


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
    venue = booking.venue_or_404(db, venue_id)
    service = booking.service_or_404(db, service_id)
    visit = Visit(
        code=code,
        starts_at=starts_at,
        venue=name_of(venue, language),
        party=party,
        bring=text_of(service, "bring", language),
        address=text_of(venue, "address", language),
        access=text_of(venue, "access", language),
        phone=booking.ward_info(db).phone,
    )
    return compose(kind, language, visit)


def outgoing(
    db: DbSession, *, message_id: int, rules: ReminderRules | None = None
) -> Outgoing | None:
    """A claimed message as it was sent: what to ask Twilio about when the outcome is unknown."""
    message = db.get(Message, message_id)
    if message is None or message.status != "claimed" or message.claimed_at is None:
        return None
    if message.waitlist_entry_id is not None:
        entry = booking.waitlist_entry(db, entry_id=message.waitlist_entry_id)
        site_url = rules.site_url if rules else ""
        if message.kind == "lottery_lost":
            body = _lost_text(db, message, entry, site_url)
        else:
            body = _offer_text(db, message, entry, site_url)
        to = context(db).vault.decrypt(message.to_enc)
        return Outgoing(message.id, message.kind, message.channel, to, body, message.claimed_at)
    if message.booking_id is None:
        return None
    view = booking.get_booking(db, booking_id=message.booking_id)
    to = context(db).vault.decrypt(message.to_enc)
    body = _text(db, message, view)
    return Outgoing(message.id, message.kind, message.channel, to, body, message.claimed_at)


def record_sent(db: DbSession, *, message_id: int, accepted: Accepted) -> None:
    """Twilio took it: keep its SID (status callbacks and reconciliation find it by that)."""
    _set(db, message_id, "claimed", status="sent", provider_sid=accepted.sid, last_error=None)


def _retry_or_give_up(
    db: DbSession, message: Message, detail: str, rules: ReminderRules, *, back_off: bool = True
) -> Later | None:
    if message.attempts >= MAX_ATTEMPTS:
        _set(db, message.id, "claimed", status="failed", last_error=f"gave up: {detail}"[:200])
        return None
    wait = BACKOFF[min(message.attempts, len(BACKOFF)) - 1] if back_off else 0
    at = after_quiet_hours(context(db).now() + timedelta(seconds=wait), rules)
    _set(db, message.id, "claimed", status="scheduled", send_after=at, last_error=detail[:200])
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
        _set(db, message.id, "claimed", last_error=failure.detail[:200])
        return None
    _set(db, message.id, "claimed", status="failed", last_error=failure.detail[:200])
    if message.kind == "relocated":
        _agents_call(db, context(db).vault.decrypt(message.to_enc), message.language)
    if failure.code == UNSUBSCRIBED:
        _opt_out_number(db, message.to_hmac, "provider")
        return None
    if failure.code in NOT_A_MOBILE:
        return _call_instead(db, message, rules)
    return None


def count_by_status(db: DbSession) -> dict[str, int]:
    """How many messages are in each state now (every state listed, 0 when none): one grouped
    count, for the operators' metrics."""
    found = dict.fromkeys(STATUSES, 0)
    for status, n in db.execute(select(Message.status, func.count()).group_by(Message.status)):
        found[status] = int(n)
    return found


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
            _agents_call(db, context(db).vault.decrypt(message.to_enc), message.language)
        elif message.channel == "sms" and message.kind in REMINDERS:
            _call_instead(db, message, rules)  # an SMS reminder that failed: call instead
    elif message.status == "claimed" and status not in DELIVERED | FAILED:
        message.status, message.provider_sid = "sent", sid  # the callback beat our own record
    message.updated_at = context(db).now()
    db.flush()
    return True


REMINDERS = {"reminder", "reminder_morning"}


def _call_instead(db: DbSession, message: Message, rules: ReminderRules) -> Later | None:
    """A reminder that could not go by SMS goes as a voice call, once."""
    if message.kind not in REMINDERS or message.booking_id is None:
        return None
    view = booking.get_booking(db, booking_id=message.booking_id)
    if view.version != message.booking_version or view.status != "booked":
        return None
    at = after_quiet_hours(context(db).now(), rules)
    made = _schedule(db, view, message.kind, "voice", at)
    return Later(made, at) if made is not None else None


# --- the waitlist's offers: seats freed on a full day, kept for the next resident waiting ---


def _plan_offers(db: DbSession, rules: ReminderRules, *, limit: int) -> list[Message]:
    """A message for each new waitlist offer, once (the offers' outbox is marked in the same
    transaction): an SMS with the offer's link to a mobile, a call to a landline (press 1 to
    book it). A number neither reaches goes on the agents' callback list: they call, and book
    the offer for the resident on the phone."""
    entry_ids = booking.waitlist_offers_to_notice(db, limit=limit)
    made: list[Message] = []
    ctx = context(db)
    for entry_id in entry_ids:
        entry = booking.waitlist_entry(db, entry_id=entry_id)
        if entry.status != "offered" or entry.phone is None:
            continue
        channel = channel_for(entry.phone_line_type)
        if channel is None:  # neither a text nor a call reaches it: the agents call
            _agents_call_offer(db, entry.phone, entry.language)
            continue
        now = ctx.now()
        at = after_quiet_hours(now, rules)
        if at > now:  # told in the morning: kept from then, for the full time
            until = at + timedelta(minutes=ctx.rules.waitlist_offer_minutes)
            booking.extend_waitlist_offer(db, entry_id=entry_id, until=until)
        made.append(
            Message(
                booking_id=None,
                waitlist_entry_id=entry_id,
                booking_version=1,
                kind="waitlist_offer",
                channel=channel,
                to_enc=ctx.vault.encrypt(entry.phone),
                to_hmac=ctx.vault.digest(entry.phone),
                language=entry.language,
                send_after=at,
                status="scheduled",
                copy=0,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
    booking.mark_waitlist_offers_noticed(db, entry_ids=entry_ids)
    db.add_all(made)
    db.flush()
    return made


def pass_on_lapsed_offers(db: DbSession) -> int:
    """Holds past their time, waitlist offers among them, given back by the engine: an
    unanswered offer goes to the next waiting. Returns the seats that came back."""
    return booking.reclaim_expired_holds(db)


def _agents_call_offer(db: DbSession, phone: str, language: str) -> None:
    try:
        calls.ask_agents_to_call(db, phone=phone, language=language, reason="waitlist_offer")
    except BookingError:
        pass  # not a number an agent can call either: the offer lapses to the next


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
    elif db.execute(select(OptOut.id).where(OptOut.to_hmac == message.to_hmac)).first():
        reason = "opted out"
    if not _drop_or_claim(db, message.id, reason, now):
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


# --- a lottery's losers: not drawn, and where they stand on the waitlist now ----------------


def _plan_losses(db: DbSession, rules: ReminderRules, *, limit: int) -> list[Message]:
    """A "not drawn" message for each lottery loser the draw put on the waitlist, once (that
    outbox is marked in the same transaction): an SMS with their waitlist page's link to a
    mobile, a call to a landline. A number neither reaches hears nothing: the lottery's page
    and the agents give the outcome to whoever asks."""
    entry_ids = booking.lottery_losses_to_notice(db, limit=limit)
    made: list[Message] = []
    ctx = context(db)
    now = ctx.now()
    for entry_id in entry_ids:
        entry = booking.waitlist_entry(db, entry_id=entry_id)
        channel = channel_for(entry.phone_line_type)
        if entry.phone is None or channel is None:
            continue
        made.append(
            Message(
                booking_id=None,
                waitlist_entry_id=entry_id,
                booking_version=1,
                kind="lottery_lost",
                channel=channel,
                to_enc=ctx.vault.encrypt(entry.phone),
                to_hmac=ctx.vault.digest(entry.phone),
                language=entry.language,
                send_after=after_quiet_hours(now, rules),
                status="scheduled",
                copy=0,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
    booking.mark_lottery_losses_noticed(db, entry_ids=entry_ids)
    db.add_all(made)
    db.flush()
    return made


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
    elif db.execute(select(OptOut.id).where(OptOut.to_hmac == message.to_hmac)).first():
        reason = "opted out"
    now = context(db).now()
    if not _drop_or_claim(db, message.id, reason, now):
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


# --- opt-outs, resends, what a reminder call is about ----------------------------------------


def _opt_out_number(db: DbSession, to_hmac: str, source: str) -> None:
    try:
        with db.begin_nested():
            db.add(OptOut(to_hmac=to_hmac, source=source, created_at=context(db).now()))
    except IntegrityError:
        pass  # already opted out


def opt_out(
    db: DbSession, *, booking_id: int, whole_number: bool = False, source: str = "resident"
) -> int:
    """No more messages for this booking (or for every booking of its number); messages not
    sent yet are dropped. Returns how many were dropped."""
    view = booking.get_booking(db, booking_id=booking_id)
    ctx = context(db)
    if whole_number and view.phone is not None:  # (no number left: this booking alone)
        to_hmac = ctx.vault.digest(view.phone)
        _opt_out_number(db, to_hmac, source)
        target = Message.to_hmac == to_hmac
    else:
        try:
            with db.begin_nested():
                db.add(OptOut(booking_id=booking_id, source=source, created_at=ctx.now()))
        except IntegrityError:
            pass
        target = Message.booking_id == booking_id
    result = db.execute(
        update(Message)
        .where(target, Message.status == "scheduled")
        .values(status="dropped", last_error="opted out", updated_at=ctx.now())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def opted_out(db: DbSession, *, booking_id: int) -> bool:
    """Whether messages for this booking are off (for it, or for its number)."""
    view = booking.get_booking(db, booking_id=booking_id)
    digest = context(db).vault.digest(view.phone) if view.phone else ""
    return _opted_out(db, booking_id, digest)


def resend_confirmation(db: DbSession, *, booking_id: int, rules: ReminderRules) -> Later:
    """An agent sends the booking's confirmation again (by SMS, to a mobile), now."""
    view = booking.get_booking(db, booking_id=booking_id)
    if view.status != "booked":
        raise BookingError("booking_not_active", status=view.status)
    if view.phone is None or view.phone_line_type not in SMS_LINES:
        raise BookingError("sms_needs_mobile")
    kind = "moved" if view.version > 1 else "confirmation"
    copies = db.execute(
        select(Message.copy).where(
            Message.booking_id == view.id,
            Message.booking_version == view.version,
            Message.kind == kind,
            Message.channel == "sms",
        )
    ).scalars()
    copy = max(copies, default=-1) + 1
    at = after_quiet_hours(context(db).now(), rules)
    made = _schedule(db, view, kind, "sms", at, copy=copy)
    if made is None:  # a new copy number is never there yet; only a missing number gets here
        raise BookingError("sms_needs_mobile")
    return Later(made, at)


def call_about(db: DbSession, *, message_id: int) -> CallAbout | None:
    message = db.get(Message, message_id)
    if message is None or message.channel != "voice":
        return None
    if message.waitlist_entry_id is not None:
        return CallAbout(None, message.language, message.kind, message.waitlist_entry_id)
    return CallAbout(message.booking_id, message.language, message.kind)


def erase_personal_data(db: DbSession, *, before: datetime, everything: bool = False) -> int:
    """Erase the numbers of messages due before ``before`` (or of every message): the record
    of what was sent, when and how stays. (One due that long ago and never sent never will be:
    its visit has passed.) Returns how many were erased."""
    due = update(Message).where(Message.to_enc != "")
    if not everything:
        due = due.where(Message.send_after < before)
    return int(db.execute(due.values(to_enc="", to_hmac="")).rowcount)  # type: ignore[attr-defined]
