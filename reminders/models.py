"""The notification ledger: every message meant for a resident, one row per booking, booking
version and kind, so a message is planned once, and a stale one (the booking moved or was
cancelled since) is dropped rather than sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from booking.base import Base, UTCDateTime

KINDS = (
    "confirmation",
    "moved",
    "cancelled",
    "reminder",
    "reminder_morning",
    "relocated",
    "waitlist_offer",
    # A lottery's loser: not drawn, and where they now stand on the waitlist (about the entry).
    "lottery_lost",
    # A lottery's winner: booked by the draw, told so (a confirmation in its own words).
    "drawn",
    # A walk-in's ticket (about the walk-in): few are ahead now; called to the counter.
    "queue_near",
    "queue_called",
    # The web booking's link, to a caller who asked for it on the phone line (about the call).
    "booking_link",
)
# Where an opt-out came from: the resident's page, an agent on the phone, Twilio (the resident
# replied STOP: error 21610), or the resident's keypad in a reminder call.
OPT_OUT_SOURCES = ("resident", "agent", "provider", "call")
# "line": a LINE push to the LINE user a booking is linked to (ivr's LINE chat), while they
# follow the ward's account; refused or unfollowed, the same message goes by SMS or a call.
CHANNELS = ("sms", "voice", "line")
STATUSES = (
    "scheduled",  # planned; due at send_after
    "claimed",  # a worker took it and is sending (the attempt is recorded before the call)
    "sent",  # the provider accepted it (provider_sid)
    "delivered",  # the provider's status callback said so
    "failed",  # the provider could not deliver it, or it could not be sent
    "dropped",  # no longer wanted: the booking moved or was cancelled, or the resident opted out
)


# About exactly one of a booking, a waitlist entry, a walk-in's ticket, a call.
ONE_SUBJECT = (
    "CASE WHEN call_id IS NOT NULL "
    "THEN booking_id IS NULL AND waitlist_entry_id IS NULL AND walk_in_id IS NULL "
    "WHEN walk_in_id IS NULL THEN (booking_id IS NULL) <> (waitlist_entry_id IS NULL) "
    "ELSE booking_id IS NULL AND waitlist_entry_id IS NULL END"
)


class Message(Base):
    __tablename__ = "message"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # About a booking, or (kinds ``waitlist_offer``, ``lottery_lost``) about a waitlist entry.
    booking_id: Mapped[int | None] = mapped_column(
        ForeignKey("booking.id", ondelete="CASCADE"), nullable=True
    )
    waitlist_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("waitlist_entry.id", ondelete="CASCADE"), nullable=True
    )
    # (kinds ``queue_near``, ``queue_called``) about a walk-in's ticket.
    walk_in_id: Mapped[int | None] = mapped_column(
        ForeignKey("walk_in.id", ondelete="CASCADE"), nullable=True
    )
    # (kind ``booking_link``) about a call on the phone line: the caller asked for the link.
    call_id: Mapped[int | None] = mapped_column(
        ForeignKey("call.id", ondelete="CASCADE"), nullable=True
    )
    booking_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(10))
    # The number it goes to, encrypted (with its keyed hash for opt-outs and lookups).
    to_enc: Mapped[str] = mapped_column(Text)
    to_hmac: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(5))
    # The text is made when the message is sent, from the booking as it is then.
    send_after: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default="scheduled")
    # 0 for the planned message; an agent's resend of it is copy 1, 2, ...
    copy: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the last attempt was claimed: an attempt claimed long ago and never finished (a worker
    # died) is reconciled with Twilio from this time on.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    provider_sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # One SMS and one call at most per booking version and kind (a call where the SMS
        # failed), plus agents' resends as further copies.
        UniqueConstraint(
            "booking_id", "booking_version", "kind", "channel", "copy", name="once_per_version"
        ),
        # One message per offer and channel, as per booking version (an entry is offered once).
        UniqueConstraint(
            "waitlist_entry_id", "booking_version", "kind", "channel", "copy", name="once_per_offer"
        ),
        # One message per ticket, kind and channel: the alerts go once.
        UniqueConstraint(
            "walk_in_id", "booking_version", "kind", "channel", "copy", name="once_per_ticket"
        ),
        # One link per call: the pump may see a request twice, the second insert fails.
        UniqueConstraint(
            "call_id", "booking_version", "kind", "channel", "copy", name="once_per_call"
        ),
        CheckConstraint(ONE_SUBJECT, name="one_subject"),
        CheckConstraint("kind IN (" + ", ".join(f"'{k}'" for k in KINDS) + ")", name="kind_known"),
        CheckConstraint(
            "channel IN (" + ", ".join(f"'{c}'" for c in CHANNELS) + ")", name="channel_known"
        ),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")", name="status_known"
        ),
        Index("ix_message_due", "status", "send_after"),
    )


class OptOut(Base):
    """A resident said no more messages: for one booking, or for every booking of a number."""

    __tablename__ = "reminder_opt_out"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    booking_id: Mapped[int | None] = mapped_column(
        ForeignKey("booking.id", ondelete="CASCADE"), nullable=True, unique=True
    )
    to_hmac: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    source: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("(booking_id IS NULL) <> (to_hmac IS NULL)", name="booking_or_number"),
        CheckConstraint(
            "source IN (" + ", ".join(f"'{s}'" for s in OPT_OUT_SOURCES) + ")", name="source_known"
        ),
    )
