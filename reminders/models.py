"""The notification ledger: every message meant for a resident, one row per booking, booking
version and kind, so a message is planned once, and a stale one (the booking moved or was
cancelled since) is dropped rather than sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from booking.base import Base, UTCDateTime

KINDS = ("confirmation", "moved", "cancelled", "reminder", "reminder_morning")
CHANNELS = ("sms", "voice")
STATUSES = (
    "scheduled",  # planned; due at send_after
    "claimed",  # a worker took it and is sending (the attempt is recorded before the call)
    "sent",  # the provider accepted it (provider_sid)
    "delivered",  # the provider's status callback said so
    "failed",  # the provider could not deliver it, or it could not be sent
    "dropped",  # no longer wanted: the booking moved or was cancelled, or the resident opted out
)


class Message(Base):
    __tablename__ = "message"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id", ondelete="CASCADE"))
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
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("booking_id", "booking_version", "kind", name="once_per_version"),
        CheckConstraint("kind IN (" + ", ".join(f"'{k}'" for k in KINDS) + ")", name="kind_known"),
        CheckConstraint(
            "channel IN (" + ", ".join(f"'{c}'" for c in CHANNELS) + ")", name="channel_known"
        ),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")", name="status_known"
        ),
        Index("ix_message_due", "status", "send_after"),
    )
