"""The signed roster a satellite counter takes offline for a day (CSV, and .ics for its
calendar), and the upload of the check-ins it recorded. The signature covers the roster as
issued, so an upload can only mark bookings that were on it, and uploading it twice changes
nothing the second time."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.orm import Session as DbSession

from booking import service as booking
from booking.context import TOKYO, context
from booking.errors import BookingError
from calendar_sync.service import bookings_feed

COLUMNS = ["booking", "code", "time", "service", "party", "checked_in"]
SIGNED = COLUMNS[:-1]  # the counter fills in the last column


def _key(db: DbSession) -> bytes:
    return context(db).vault.derive("roster")


def _signature(db: DbSession, head: str, rows: list[list[str]]) -> str:
    canonical = head + "\n" + "\n".join(",".join(r[: len(SIGNED)]) for r in rows)
    return hmac.new(_key(db), canonical.encode(), hashlib.sha256).hexdigest()


def roster_csv(db: DbSession, *, venue_id: str, day: date) -> str:
    """A venue's bookings of a day, as the counter works from them offline: code, time,
    service, party (no names), signed by the installation."""
    rows = [
        [
            str(b.id),
            b.code,
            f"{b.starts_at.astimezone(TOKYO):%H:%M}",
            b.service_id,
            str(b.party_size),
            "済" if b.status in ("checked_in", "completed") else "",
        ]
        for b in booking.bookings_of_day(db, venue_id=venue_id, day=day)
    ]
    head = f"# Madoguchi roster venue={venue_id} day={day.isoformat()}"
    out = io.StringIO()
    out.write(head + "\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    out.write(f"# signature={_signature(db, head, rows)}\n")
    return out.getvalue()


def roster_ics(db: DbSession, *, venue_id: str, day: date) -> bytes:
    """The same day as an iCalendar file, for the counter's calendar program."""
    return bookings_feed(db, venue_id=venue_id, day=day)


@dataclass
class UploadReport:
    applied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


class RosterRefused(ValueError):
    """Not a roster this installation issued, or altered since (apart from the check-ins)."""


def upload_check_ins(db: DbSession, *, text: str) -> UploadReport:
    """Apply the check-ins marked on a returned roster (any text in the last column)."""
    lines = text.splitlines()
    if len(lines) < 3 or not lines[0].startswith("# Madoguchi roster "):
        raise RosterRefused("not a Madoguchi roster")
    head, signature_line = lines[0], lines[-1]
    if not signature_line.startswith("# signature="):
        raise RosterRefused("the roster's signature line is missing")
    rows = list(csv.reader(lines[2:-1]))
    if lines[1].split(",") != COLUMNS or any(len(r) != len(COLUMNS) for r in rows):
        raise RosterRefused("the roster's columns were changed")
    expected = _signature(db, head, rows)
    if not hmac.compare_digest(
        expected.encode(), signature_line.removeprefix("# signature=").encode()
    ):
        raise RosterRefused("the roster was altered since it was issued")
    fields = dict(part.split("=", 1) for part in head.split()[3:])
    venue_id, day = fields["venue"], date.fromisoformat(fields["day"])
    report = UploadReport()
    for row in rows:
        if not row[-1].strip():
            continue
        try:
            with db.begin_nested():
                done = booking.check_in_offline(
                    db, booking_id=int(row[0]), venue_id=venue_id, day=day
                )
        except BookingError as refused:
            report.refused.append(f"{row[1]}: {refused.message('ja')}")
            continue
        (report.applied if done else report.unchanged).append(row[1])
    return report
