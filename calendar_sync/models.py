"""What the calendar sync remembers: which events of the ward's published calendar were
imported (by UID, so importing again changes nothing)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
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


class PushedEvent(Base):
    """An event as last put on a satellite counter's CalDAV calendar: pushing compares the
    calendar the counter should have with these, and puts, bumps or deletes only the
    difference, so a push cut short by a server going down converges on the next."""

    __tablename__ = "calendar_pushed_event"

    venue_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    uid: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(Integer)
    pushed_at: Mapped[datetime] = mapped_column(UTCDateTime)
