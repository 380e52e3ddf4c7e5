"""What the calendar sync remembers: which events of the ward's published calendar were
imported (by UID, so importing again changes nothing)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from booking.base import Base, UTCDateTime


class ImportedEvent(Base):
    """One VEVENT of the ward's calendar, as last imported."""

    __tablename__ = "calendar_imported_event"

    uid: Mapped[str] = mapped_column(String(255), primary_key=True)
    # A hash of what the event said (type, venue, service, times, seats): a changed event has
    # a new fingerprint.
    fingerprint: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(10))  # session | closure
    # What it made: "session:123" or "closure:main:2027-01-09".
    made: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
