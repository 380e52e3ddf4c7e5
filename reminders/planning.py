"""Planning residents' notifications from the booking outbox: which message, by which channel,
when. Many events are planned at once (an evening's campaign is thousands of bookings): their
bookings are read in one query, the messages inserted in one statement, and a booking's number
is copied as it is stored (sealed, with its keyed hash), never decrypted and sealed again.

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

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session as DbSession

from booking import service as booking
from booking.context import TOKYO, context
from booking.errors import BookingError
from ivr import service as calls
from reminders.models import Message

# Line types (from phonenumbers) and what reaches them.
SMS_LINES = {"mobile"}
VOICE_LINES = {"fixed_line", "fixed_line_or_mobile", "voip"}
REMINDERS = {"reminder", "reminder_morning"}
Contact = booking.ContactView


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


@dataclass(frozen=True)
class Later:
    """Not now: arm the message's job again at ``at``."""

    id: int
    at: datetime


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
    db: DbSession,
    contact: Contact,
    kind: str,
    channel: str,
    send_after: datetime,
    now: datetime,
    copy: int = 0,
) -> dict[str, object] | None:
    """A message row for this booking version, not yet inserted (None without a number). The
    number is the booking's as stored: the same sealed value and keyed hash."""
    if not contact.phone_enc:
        return None
    to_hmac = contact.phone_hmac or context(db).vault.digest(
        context(db).vault.decrypt(contact.phone_enc)
    )
    return {
        "booking_id": contact.id,
        "waitlist_entry_id": None,
        "booking_version": contact.version,
        "kind": kind,
        "channel": channel,
        "to_enc": contact.phone_enc,
        "to_hmac": to_hmac,
        "language": contact.language,
        "send_after": send_after,
        "status": "scheduled",
        "copy": copy,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


Key = tuple[int | None, int, str, str, int]
_KEY = (Message.booking_id, Message.booking_version, Message.kind, Message.channel, Message.copy)


def _key(row: dict[str, object]) -> Key:
    return (
        row["booking_id"],  # type: ignore[return-value]
        row["booking_version"],
        row["kind"],
        row["channel"],
        row["copy"],
    )


def _add_new(db: DbSession, rows: list[dict[str, object]]) -> list[tuple[int, datetime]]:
    """Insert the messages not planned already (one per booking, version, kind, channel and
    copy: planning twice makes no second row), in one statement: their ids and times."""
    if not rows:
        return []
    booking_ids = sorted({int(key[0] or 0) for key in map(_key, rows)})
    existing = {tuple(k) for k in db.execute(select(*_KEY).where(_KEY[0].in_(booking_ids)))}
    new = {_key(r): r for r in rows if _key(r) not in existing}  # (a key listed twice: once)
    if not new:
        return []
    db.execute(insert(Message), list(new.values()))
    found = db.execute(
        select(Message.id, Message.send_after, *_KEY).where(
            _KEY[0].in_(booking_ids), Message.status == "scheduled"
        )
    )
    return [(row[0], row[1]) for row in found if tuple(row[2:]) in new]


def schedule_one(
    db: DbSession,
    contact: Contact,
    kind: str,
    channel: str,
    send_after: datetime,
    copy: int = 0,
) -> int | None:
    """One message, planned unless it was already: its id, or None. Added through the session
    (not a bulk insert), so that committing it wakes the pump."""
    row = _message(db, contact, kind, channel, send_after, context(db).now(), copy)
    if row is None:
        return None
    same = (column == value for column, value in zip(_KEY, _key(row), strict=True))
    if db.execute(select(Message.id).where(*same)).first() is not None:
        return None
    message = Message(**row)
    db.add(message)
    db.flush()
    return message.id


def contact_of(db: DbSession, booking_id: int) -> Contact:
    """One booking's contact (the booking must exist)."""
    found = booking.booking_contacts(db, booking_ids=[booking_id]).get(booking_id)
    if found is None:
        raise BookingError("booking_not_found")
    return found


def _drop_stale(db: DbSession, contacts: list[Contact], now: datetime) -> int:
    """Unsent messages planned for an earlier version of these bookings: not wanted any more
    (one statement per version the bookings are at now)."""
    by_version: dict[int, list[int]] = {}
    for contact in contacts:
        by_version.setdefault(contact.version, []).append(contact.id)
    dropped = 0
    for version, booking_ids in by_version.items():
        result = db.execute(
            update(Message)
            .where(
                Message.booking_id.in_(booking_ids),
                Message.booking_version < version,
                Message.status == "scheduled",
            )
            .values(status="dropped", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        dropped += int(getattr(result, "rowcount", 0) or 0)
    return dropped


def line_targets(db: DbSession, contacts: list[Contact]) -> dict[int, tuple[str, str]]:
    """The LINE users (sealed, keyed hash) of these bookings who still follow the account:
    their notices go by LINE push instead (cheaper, and the ward's own account)."""
    links = booking.line_links_of(db, booking_ids=[c.id for c in contacts])
    following = calls.following_users(db, user_hmacs=sorted({h for _, h in links.values()}))
    return {b: link for b, link in links.items() if link[1] in following}


def _line_message(
    contact: Contact, target: tuple[str, str], kind: str, send_after: datetime, now: datetime
) -> dict[str, object]:
    """A LINE push's row: to the LINE user as the link stores it (sealed, keyed hash)."""
    return {
        "booking_id": contact.id,
        "waitlist_entry_id": None,
        "booking_version": contact.version,
        "kind": kind,
        "channel": "line",
        "to_enc": target[0],
        "to_hmac": target[1],
        "language": contact.language,
        "send_after": send_after,
        "status": "scheduled",
        "copy": 0,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def _plan_line_visit(
    contact: Contact, target: tuple[str, str], rules: ReminderRules, first: str, now: datetime
) -> list[dict[str, object] | None]:
    """A booking linked to a LINE user who follows: the first message and the reminders by
    LINE push, whatever the phone's line type (a landline too: LINE is on their phone)."""
    made: list[dict[str, object] | None] = [
        _line_message(contact, target, first, after_quiet_hours(now, rules), now)
    ]
    visit = contact.starts_at.astimezone(TOKYO)
    day_before = datetime.combine(visit.date() - timedelta(days=1), rules.day_before_at, TOKYO)
    if day_before > now:
        at = after_quiet_hours(day_before, rules)
        made.append(_line_message(contact, target, "reminder", at, now))
    if rules.morning_at is not None:
        morning = datetime.combine(visit.date(), rules.morning_at, TOKYO)
        if now < morning < visit:
            made.append(_line_message(contact, target, "reminder_morning", morning, now))
    return made


def _plan_visit(
    db: DbSession,
    contact: Contact,
    rules: ReminderRules,
    first: str,
    why: str,
    now: datetime,
    line: tuple[str, str] | None = None,
) -> list[dict[str, object] | None]:
    """The confirmation (or move notice) and the reminders for a booked visit."""
    if line is not None and first != "relocated":  # a relocation keeps its call (press 1)
        return _plan_line_visit(contact, line, rules, first, now)
    made: list[dict[str, object] | None] = []
    channel = channel_for(contact.phone_line_type)
    at_once = after_quiet_hours(now, rules)
    if contact.phone_line_type in SMS_LINES:
        made.append(_message(db, contact, first, "sms", at_once, now))
    elif why == "drawn" and channel == "voice":
        made.append(_message(db, contact, first, "voice", at_once, now))
    elif first == "relocated" and channel == "voice":
        # The ward moved it: a landline hears it too (press 1 to accept, 2 for an agent).
        made.append(_message(db, contact, first, "voice", at_once, now))
    elif first == "relocated" and contact.phone_enc:
        # Neither SMS nor a call reaches it: the agents call.
        agents_call(db, context(db).vault.decrypt(contact.phone_enc), contact.language)
    if channel is None:
        return made
    visit = contact.starts_at.astimezone(TOKYO)
    day_before = datetime.combine(visit.date() - timedelta(days=1), rules.day_before_at, TOKYO)
    if day_before > now:
        at = after_quiet_hours(day_before, rules)
        made.append(_message(db, contact, "reminder", channel, at, now))
    if rules.morning_at is not None:
        morning = datetime.combine(visit.date(), rules.morning_at, TOKYO)
        if now < morning < visit:
            made.append(_message(db, contact, "reminder_morning", channel, morning, now))
    return made


# The first message after a booking event; reminders follow for the visit.
FIRST_MESSAGE = {"booked": "confirmation", "moved": "moved", "relocated": "relocated"}
# Booked by the lottery's draw: no one heard it on a call or saw it on a page, so a landline is
# called with the confirmation (the call says they were drawn, reads the booking out: keep it,
# or cancel it); a mobile's SMS says they were drawn, then what a confirmation says.
FIRST_MESSAGE["drawn"] = "drawn"


def agents_call(db: DbSession, phone: str, language: str, reason: str = "relocated") -> None:
    """A resident the ward must tell of a change and cannot reach by SMS or an automated call:
    on the agents' callback list."""
    try:
        calls.ask_agents_to_call(db, phone=phone, language=language, reason=reason)
    except BookingError:
        pass  # not a number an agent can call either; the counter sees the booking


def plan_from_outbox(db: DbSession, rules: ReminderRules, *, limit: int = 200) -> Planned:
    """Turn undispatched booking events into messages, in one transaction with marking them
    dispatched (the caller commits): each event is planned once."""
    events = booking.pending_events(db, limit=limit)
    contacts = booking.booking_contacts(db, booking_ids=sorted({e.booking_id for e in events}))
    now = context(db).now()
    moved = {e.booking_id for e in events if e.booking_version > 1}  # a first has none earlier
    dropped = _drop_stale(db, [contacts[b] for b in sorted(moved) if b in contacts], now)
    made: list[dict[str, object] | None] = []
    line = line_targets(db, list(contacts.values()))
    for event in events:
        contact = contacts.get(event.booking_id)
        if contact is None or event.booking_version != contact.version:
            continue  # changed again since: its later event plans for the version it has now
        target = line.get(contact.id)
        if event.kind in FIRST_MESSAGE and contact.status == "booked":
            first = FIRST_MESSAGE[event.kind]
            made += _plan_visit(db, contact, rules, first, event.kind, now, target)
        elif event.kind == "cancelled" and target is not None:
            made.append(
                _line_message(contact, target, "cancelled", after_quiet_hours(now, rules), now)
            )
        elif event.kind == "cancelled" and contact.phone_line_type in SMS_LINES:
            at = after_quiet_hours(now, rules)
            made.append(_message(db, contact, "cancelled", "sms", at, now))
    booking.mark_dispatched(db, event_ids=[e.id for e in events])
    new = _add_new(db, [m for m in made if m is not None])
    new += [(m.id, m.send_after) for m in _plan_offers(db, rules, limit=limit)]
    new += [(m.id, m.send_after) for m in _plan_losses(db, rules, limit=limit)]
    return Planned(len(events), len(new), dropped, tuple(new))


def call_instead(db: DbSession, message: Message, rules: ReminderRules) -> Later | None:
    """A reminder that could not go by SMS goes as a voice call, once."""
    if message.kind not in REMINDERS or message.booking_id is None:
        return None
    contact = contact_of(db, message.booking_id)
    if contact.version != message.booking_version or contact.status != "booked":
        return None
    at = after_quiet_hours(context(db).now(), rules)
    made = schedule_one(db, contact, message.kind, "voice", at)
    return Later(made, at) if made is not None else None


def fall_back_from_line(db: DbSession, message: Message, rules: ReminderRules) -> Later | None:
    """A LINE push refused (the resident blocked the account, LINE will not take it) or not
    sent (they unfollowed): the same message by SMS to a mobile, a reminder by a call to a
    landline, once each (a channel's message is planned once per version and kind)."""
    if message.channel != "line" or message.booking_id is None:
        return None
    contact = contact_of(db, message.booking_id)
    if contact.version != message.booking_version:
        return None
    if message.kind == "cancelled" and contact.status != "cancelled":
        return None
    if message.kind != "cancelled" and contact.status != "booked":
        return None
    channel = channel_for(contact.phone_line_type)
    if channel is None or (channel == "voice" and message.kind not in REMINDERS):
        return None  # as without LINE: a landline hears only reminders (it heard the rest)
    at = after_quiet_hours(context(db).now(), rules)
    made = schedule_one(db, contact, message.kind, channel, at)
    return Later(made, at) if made is not None else None


def resend_confirmation(db: DbSession, *, booking_id: int, rules: ReminderRules) -> Later:
    """An agent sends the booking's confirmation again (by SMS, to a mobile), now."""
    contact = contact_of(db, booking_id)
    if contact.status != "booked":
        raise BookingError("booking_not_active", status=contact.status)
    if not contact.phone_enc or contact.phone_line_type not in SMS_LINES:
        raise BookingError("sms_needs_mobile")
    kind = "moved" if contact.version > 1 else "confirmation"
    copies = db.execute(
        select(Message.copy).where(
            Message.booking_id == contact.id,
            Message.booking_version == contact.version,
            Message.kind == kind,
            Message.channel == "sms",
        )
    ).scalars()
    copy = max(copies, default=-1) + 1
    at = after_quiet_hours(context(db).now(), rules)
    made = schedule_one(db, contact, kind, "sms", at, copy=copy)
    if made is None:  # a new copy number is never there yet; only a missing number gets here
        raise BookingError("sms_needs_mobile")
    return Later(made, at)


# --- the waitlist's offers and a lottery's losers: about a waitlist entry, not a booking ---


def _entry_message(
    db: DbSession, entry: booking.WaitlistView, kind: str, channel: str, at: datetime
) -> Message:
    ctx = context(db)
    now = ctx.now()
    return Message(
        booking_id=None,
        waitlist_entry_id=entry.id,
        booking_version=1,
        kind=kind,
        channel=channel,
        to_enc=ctx.vault.encrypt(str(entry.phone)),
        to_hmac=ctx.vault.digest(str(entry.phone)),
        language=entry.language,
        send_after=at,
        status="scheduled",
        copy=0,
        attempts=0,
        created_at=now,
        updated_at=now,
    )


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
            # (not a number an agent can call either: the offer lapses to the next)
            agents_call(db, entry.phone, entry.language, reason="waitlist_offer")
            continue
        now = ctx.now()
        at = after_quiet_hours(now, rules)
        if at > now:  # told in the morning: kept from then, for the full time
            until = at + timedelta(minutes=ctx.rules.waitlist_offer_minutes)
            booking.extend_waitlist_offer(db, entry_id=entry_id, until=until)
        made.append(_entry_message(db, entry, "waitlist_offer", channel, at))
    booking.mark_waitlist_offers_noticed(db, entry_ids=entry_ids)
    db.add_all(made)
    db.flush()
    return made


def pass_on_lapsed_offers(db: DbSession) -> int:
    """Holds past their time, waitlist offers among them, given back by the engine: an
    unanswered offer goes to the next waiting. Returns the seats that came back."""
    return booking.reclaim_expired_holds(db)


def _plan_losses(db: DbSession, rules: ReminderRules, *, limit: int) -> list[Message]:
    """A "not drawn" message for each lottery loser the draw put on the waitlist, once (that
    outbox is marked in the same transaction): an SMS with their waitlist page's link to a
    mobile, a call to a landline. A number neither reaches hears nothing: the lottery's page
    and the agents give the outcome to whoever asks."""
    entry_ids = booking.lottery_losses_to_notice(db, limit=limit)
    made: list[Message] = []
    at = after_quiet_hours(context(db).now(), rules)
    for entry_id in entry_ids:
        entry = booking.waitlist_entry(db, entry_id=entry_id)
        channel = channel_for(entry.phone_line_type)
        if entry.phone is None or channel is None:
            continue
        made.append(_entry_message(db, entry, "lottery_lost", channel, at))
    booking.mark_lottery_losses_noticed(db, entry_ids=entry_ids)
    db.add_all(made)
    db.flush()
    return made
