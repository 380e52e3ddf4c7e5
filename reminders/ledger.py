"""The message ledger as people see it: a booking's messages for the agents, the counts by state
for the operators, what a placed call is about for the IVR, and the erasure of old numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from booking.context import context
from ivr.placed import PlacedCall
from reminders.models import STATUSES, Message


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


def count_by_status(db: DbSession) -> dict[str, int]:
    """How many messages are in each state now (every state listed, 0 when none): one grouped
    count, for the operators' metrics."""
    found = dict.fromkeys(STATUSES, 0)
    for status, n in db.execute(select(Message.status, func.count()).group_by(Message.status)):
        found[status] = int(n)
    return found


# What a placed call is about is the phone line's type (ivr.placed): it reads it out.
CallAbout = PlacedCall


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


def move_message(db: DbSession, message_id: int, status_now: str, **values: object) -> bool:
    """Move a message on from ``status_now`` (only from it): True when it moved."""
    result = db.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == status_now)
        .values(updated_at=context(db).now(), **values)
    )
    return bool(getattr(result, "rowcount", 0))


def drop_or_claim(db: DbSession, message_id: int, reason: str | None, now: datetime) -> bool:
    """Drop a scheduled message no longer wanted (``reason``), or claim it for this attempt;
    False when dropped, or when another worker took it between our read and our claim."""
    if reason is not None:
        move_message(db, message_id, "scheduled", status="dropped", last_error=reason)
        return False
    return move_message(
        db,
        message_id,
        "scheduled",
        status="claimed",
        attempts=Message.attempts + 1,
        claimed_at=now,
    )


def add_once(db: DbSession, message: Message) -> bool:
    """Add a message its unique keys allow once (a ticket's alert, a call's link): False when
    another worker or desk made the same one at the same moment (theirs stands)."""
    try:
        with db.begin_nested():
            db.add(message)
            db.flush()
    except IntegrityError:
        return False
    return True
