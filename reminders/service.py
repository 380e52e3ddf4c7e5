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

import math
import tomllib
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import cache
from importlib.resources import files

from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from booking import service as booking
from booking.context import TOKYO, context
from booking.views import BookingView
from reminders.models import Message

# Line types (from phonenumbers) and what reaches them.
SMS_LINES = {"mobile"}
VOICE_LINES = {"fixed_line", "fixed_line_or_mobile", "voip"}


@dataclass(frozen=True)
class ReminderRules:
    day_before_at: time
    morning_at: time | None
    quiet_from: time
    quiet_until: time


@dataclass(frozen=True)
class Planned:
    events: int
    planned: int
    dropped: int


@cache
def texts() -> dict[str, dict[str, str]]:
    raw = files("reminders").joinpath("messages.toml").read_text(encoding="utf-8")
    return {k: {lang: str(t) for lang, t in v.items()} for k, v in tomllib.loads(raw).items()}


WEEKDAYS_JA = "月火水木金土日"


def when_text(at: datetime, language: str) -> str:
    local = at.astimezone(TOKYO)
    if language == "ja":
        return f"{local.month}/{local.day}({WEEKDAYS_JA[local.weekday()]}){local:%-H:%M}"
    return f"{local:%a %b} {local.day} {local:%-H:%M}"


def render(kind: str, language: str, *, code: str, starts_at: datetime, venue: str) -> str:
    template = texts()[kind]["ja" if language == "ja" else "en"]
    return template.format(code=code, when=when_text(starts_at, language), venue=venue)


# GSM 03.38's basic characters: a text of only these is 160 per segment (153 when split);
# anything else (Japanese) makes it UCS-2: 70 per segment, 67 when split.
_GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def sms_segments(text: str) -> int:
    if all(c in _GSM for c in text):
        single, split = 160, 153
    else:
        single, split = 70, 67
    return 1 if len(text) <= single else math.ceil(len(text) / split)


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


def _schedule(
    db: DbSession, view: BookingView, kind: str, channel: str, send_after: datetime
) -> bool:
    """One message per booking, version and kind: planning twice makes no second row."""
    exists = db.execute(
        select(Message.id).where(
            Message.booking_id == view.id,
            Message.booking_version == view.version,
            Message.kind == kind,
        )
    ).first()
    if exists is not None or view.phone is None:
        return False
    ctx = context(db)
    now = ctx.now()
    db.add(
        Message(
            booking_id=view.id,
            booking_version=view.version,
            kind=kind,
            channel=channel,
            to_enc=ctx.vault.encrypt(view.phone),
            to_hmac=ctx.vault.digest(view.phone),
            language=view.language,
            send_after=send_after,
            status="scheduled",
            attempts=0,
            created_at=now,
            updated_at=now,
        )
    )
    db.flush()
    return True


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


def _plan_visit(db: DbSession, view: BookingView, rules: ReminderRules, first: str) -> int:
    """The confirmation (or move notice) and the reminders for a booked visit."""
    now = context(db).now()
    made = 0
    if view.phone_line_type in SMS_LINES:
        made += _schedule(db, view, first, "sms", after_quiet_hours(now, rules))
    channel = channel_for(view.phone_line_type)
    if channel is None:
        return made
    visit = view.starts_at.astimezone(TOKYO)
    day_before = datetime.combine(visit.date() - timedelta(days=1), rules.day_before_at, TOKYO)
    if day_before > now:
        made += _schedule(db, view, "reminder", channel, after_quiet_hours(day_before, rules))
    if rules.morning_at is not None:
        morning = datetime.combine(visit.date(), rules.morning_at, TOKYO)
        if now < morning < visit:
            made += _schedule(db, view, "reminder_morning", channel, morning)
    return made


def plan_from_outbox(db: DbSession, rules: ReminderRules, *, limit: int = 200) -> Planned:
    """Turn undispatched booking events into messages, in one transaction with marking them
    dispatched (the caller commits): each event is planned once."""
    events = booking.pending_events(db, limit=limit)
    planned = dropped = 0
    for event in events:
        view = booking.get_booking(db, booking_id=event.booking_id)
        dropped += _drop_stale(db, view.id, event.booking_version)
        if event.booking_version != view.version:
            continue  # changed again since: its later event plans for the version it has now
        if event.kind in ("booked", "moved") and view.status == "booked":
            first = "confirmation" if event.kind == "booked" else "moved"
            planned += _plan_visit(db, view, rules, first)
        elif event.kind == "cancelled" and view.phone_line_type in SMS_LINES:
            planned += _schedule(
                db, view, "cancelled", "sms", after_quiet_hours(context(db).now(), rules)
            )
    booking.mark_dispatched(db, event_ids=[e.id for e in events])
    return Planned(len(events), planned, dropped)


@dataclass(frozen=True)
class MessageView:
    id: int
    booking_id: int
    booking_version: int
    kind: str
    channel: str
    to: str
    language: str
    send_after: datetime
    status: str
    attempts: int
    provider_sid: str | None


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
        )
        for m in rows
    ]
