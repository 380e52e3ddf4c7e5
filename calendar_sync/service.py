"""iCalendar (RFC 5545, made with ``icalendar``) for staff: each venue's free times, a
staff-only list of a venue's bookings (code, party, service; no names) behind a per-venue
secret, and the import of the ward's published holiday sessions and closures.

Events carry stable UIDs (a slot's, a booking's), DTSTAMP, and times in Asia/Tokyo with the
VTIMEZONE included, so any calendar program shows the counter's own hours.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from booking import schedule
from booking import service as booking
from booking.context import TOKYO, context
from booking.errors import BookingError
from calendar_sync.models import ImportedEvent, PushedEvent

PRODID = "-//Madoguchi//My Number card counters//JA"
UID_DOMAIN = "madoguchi"
FEED_DAYS = 45


def feed_token(db: DbSession, venue_id: str) -> str:
    """The secret in a venue's bookings feed URL: derived from the installation's keys, so a
    key rotation changes every feed's address."""
    key = context(db).vault.derive("calendar-feed")
    return hmac.new(key, venue_id.encode(), hashlib.sha256).hexdigest()[:32]


def token_ok(db: DbSession, venue_id: str, token: str) -> bool:
    # Bytes: compare_digest refuses a str that is not ASCII, and a URL's token may be anything.
    return hmac.compare_digest(feed_token(db, venue_id).encode(), token.encode())


def _calendar(name: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", "Asia/Tokyo")
    return cal


def _event(uid: str, summary: str, starts: datetime, ends: datetime, stamp: datetime) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("dtstart", starts.astimezone(TOKYO))
    event.add("dtend", ends.astimezone(TOKYO))
    event.add("summary", summary)
    return event


def _finish(cal: Calendar) -> bytes:
    cal.add_missing_timezones()  # the VTIMEZONE for Asia/Tokyo
    return bytes(cal.to_ical())


def slots_feed(db: DbSession, *, venue_id: str, days: int = FEED_DAYS) -> bytes:
    """A venue's open times with free seats, slot by slot, for staff planning."""
    venue = booking.venue_or_404(db, venue_id)
    services = {s.id: s for s in booking.list_services(db)}
    offered = booking.venue_services(db).get(venue_id, [])
    ctx = context(db)
    today = ctx.today()
    cal = _calendar(f"{venue.name_ja} 空き状況")
    for service_id in offered:
        free = booking.availability(
            db,
            service_id=service_id,
            venue_id=venue_id,
            start=today,
            end=today + timedelta(days=days),
            limit=10_000,
        )
        name = services[service_id].name_ja
        for slot in free:
            event = _event(
                f"slot-{slot.id}@{UID_DOMAIN}",
                f"{name} 空き{slot.remaining}席",
                slot.starts_at,
                slot.ends_at,
                ctx.now(),
            )
            event.add("location", venue.name_ja)
            event.add("x-madoguchi-free-seats", str(slot.remaining))
            cal.add_component(event)
    return _finish(cal)


def bookings_feed(db: DbSession, *, venue_id: str, day: date) -> bytes:
    """A venue's bookings on a day with the least personal data that serves the counter:
    the code, the party size and the service. No names, no numbers."""
    venue = booking.venue_or_404(db, venue_id)
    services = {s.id: s for s in booking.list_services(db)}
    now = context(db).now()
    cal = _calendar(f"{venue.name_ja} 予約 {day.isoformat()}")
    for b in booking.bookings_of_day(db, venue_id=venue_id, day=day):
        event = _event(
            f"booking-{b.id}@{UID_DOMAIN}",
            f"予約 {b.code} {services[b.service_id].name_ja} {b.party_size}名",
            b.starts_at,
            b.ends_at,
            now,
        )
        event.add("sequence", b.version)
        event.add("status", "CONFIRMED")
        cal.add_component(event)
    return _finish(cal)


# --- importing the ward's calendar ----------------------------------------------------------

CLOSED_WORDS = ("閉庁", "休止", "closed", "closure")


@dataclass
class ImportReport:
    """What an import did, event by event."""

    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # differs from what was imported: by hand
    refused: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.created) + len(self.unchanged) + len(self.changed) + len(self.refused)


@dataclass(frozen=True)
class _WardEvent:
    """One event of the ward's published calendar: a session to open, or a closure."""

    uid: str
    kind: str  # session | closure
    venue_id: str | None  # None: a closure of every venue
    service_id: str | None
    day: date
    opens: time | None
    closes: time | None
    seats: int
    slot_minutes: int
    reason: str

    @property
    def fingerprint(self) -> str:
        raw = json.dumps([str(v) for v in self.__dict__.values()], ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()

    @property
    def label(self) -> str:
        where = self.venue_id or "全会場"
        when = f"{self.day.isoformat()}"
        if self.opens and self.closes:
            when += f" {self.opens:%H:%M}-{self.closes:%H:%M}"
        return f"{where} {when} {self.reason}"


def _local(value: Any) -> datetime | date:
    moment = value.dt
    if isinstance(moment, datetime):
        return (moment if moment.tzinfo else moment.replace(tzinfo=TOKYO)).astimezone(TOKYO)
    return moment  # type: ignore[no-any-return]


def _read(component: Any) -> _WardEvent:
    """One VEVENT as a session or a closure. Venue and service by X-MADOGUCHI-VENUE /
    -SERVICE (or the LOCATION as a venue id); a closure by its CATEGORIES or SUMMARY."""
    uid = str(component.get("uid", "")).strip()
    if not uid:
        raise ValueError("an event without a UID cannot be imported idempotently")
    summary = str(component.get("summary", "")).strip()
    categories = component.get("categories")
    words = summary.lower() + " " + (categories.to_ical().decode().lower() if categories else "")
    closure = any(w in words for w in CLOSED_WORDS)
    venue = str(component.get("x-madoguchi-venue", component.get("location", ""))).strip()
    service = str(component.get("x-madoguchi-service", "")).strip() or None
    starts = _local(component["dtstart"])
    ends = _local(component["dtend"]) if component.get("dtend") else None
    day = starts.date() if isinstance(starts, datetime) else starts
    opens = starts.time() if isinstance(starts, datetime) else None
    closes = ends.time() if isinstance(ends, datetime) else None
    if not closure and (service is None or opens is None or closes is None or not venue):
        raise ValueError("a session needs a venue, a service (X-MADOGUCHI-SERVICE) and times")
    return _WardEvent(
        uid=uid,
        kind="closure" if closure else "session",
        venue_id=venue or None,
        service_id=service,
        day=day,
        opens=opens,
        closes=closes,
        seats=int(str(component.get("x-madoguchi-seats", "4"))),
        slot_minutes=int(str(component.get("x-madoguchi-slot-minutes", "15"))),
        reason=summary or ("臨時閉庁" if closure else "休日開庁"),
    )


def import_calendar(db: DbSession, *, ics: bytes) -> ImportReport:
    """Create the holiday sessions and closures the ward's calendar announces. Each event is
    applied once, by UID: importing the same file again changes nothing; an event changed
    since it was imported is reported for a manager rather than applied over bookings."""
    report = ImportReport()
    try:
        cal = Calendar.from_ical(ics)
    except ValueError as exc:
        raise BookingError("invalid_request", field="file") from exc
    for component in cal.walk("VEVENT"):
        try:
            wanted = _read(component)
        except (ValueError, KeyError) as exc:
            report.refused.append(f"{component.get('summary', '?')}: {exc}")
            continue
        seen = db.get(ImportedEvent, wanted.uid)
        if seen is not None:
            bucket = report.unchanged if seen.fingerprint == wanted.fingerprint else report.changed
            bucket.append(wanted.label)
            continue
        try:
            with db.begin_nested():
                made = _apply(db, wanted)
                db.add(
                    ImportedEvent(
                        uid=wanted.uid,
                        fingerprint=wanted.fingerprint,
                        kind=wanted.kind,
                        made=made,
                        imported_at=context(db).now(),
                    )
                )
        except BookingError as refused:
            report.refused.append(f"{wanted.label}: {refused.message('ja')}")
            continue
        report.created.append(wanted.label)
    return report


def _apply(db: DbSession, wanted: _WardEvent) -> str:
    if wanted.kind == "closure":
        schedule.close_day(db, day=wanted.day, reason=wanted.reason, venue_id=wanted.venue_id)
        return f"closure:{wanted.venue_id or '*'}:{wanted.day.isoformat()}"
    session = schedule.open_extra_session(
        db,
        venue_id=str(wanted.venue_id),
        service_id=str(wanted.service_id),
        day=wanted.day,
        opens=wanted.opens or time(9),
        closes=wanted.closes or time(17),
        slot_minutes=wanted.slot_minutes,
        seats=wanted.seats,
        kind="holiday",
    )
    return f"session:{session.id}"


# --- pushing to satellite counters' CalDAV calendars ----------------------------------------


@dataclass(frozen=True)
class Wanted:
    """An event a satellite counter's calendar should hold, before its SEQUENCE is known."""

    uid: str
    summary: str
    starts_at: datetime
    ends_at: datetime
    description: str = ""

    @property
    def fingerprint(self) -> str:
        raw = f"{self.summary}|{self.starts_at.isoformat()}|{self.ends_at.isoformat()}|"
        return hashlib.sha256((raw + self.description).encode()).hexdigest()

    def ical(self, sequence: int, stamp: datetime) -> bytes:
        cal = _calendar("madoguchi")
        event = _event(self.uid, self.summary, self.starts_at, self.ends_at, stamp)
        event.add("sequence", sequence)
        if self.description:
            event.add("description", self.description)
        cal.add_component(event)
        return _finish(cal)


def wanted_events(db: DbSession, *, venue_id: str, days: int) -> dict[str, Wanted]:
    """What the counter's calendar should hold for the coming days: each open session, and
    each booking (code, service, party: no names), by UID."""
    services = {s.id: s.name_ja for s in booking.list_services(db)}
    today = context(db).today()
    out: dict[str, Wanted] = {}
    for s in booking.sessions_between(
        db, venue_id=venue_id, start=today, end=today + timedelta(days=days)
    ):
        if s.is_open:
            uid = f"session-{s.id}@{UID_DOMAIN}"
            summary = f"{services.get(s.service_id, s.service_id)} 受付（定員{s.seats}）"
            out[uid] = Wanted(uid, summary, s.starts_at, s.ends_at)
    last = today + timedelta(days=days)
    for b in booking.bookings_between(db, venue_id=venue_id, first=today, last=last):
        uid = f"booking-{b.id}@{UID_DOMAIN}"
        summary = f"予約 {b.code} {services.get(b.service_id, b.service_id)} {b.party_size}名"
        out[uid] = Wanted(uid, summary, b.starts_at, b.ends_at, f"status: {b.status}")
    return out


@dataclass(frozen=True)
class PushPlan:
    """What to put (with its SEQUENCE) and what to delete on one counter's calendar."""

    puts: list[tuple[Wanted, int]]
    deletes: list[str]


def plan_push(db: DbSession, *, venue_id: str, days: int) -> PushPlan:
    """The difference between what the counter's calendar should hold and what was last put
    there: new events (SEQUENCE 0), changed ones (SEQUENCE bumped), gone ones (deleted)."""
    wanted = wanted_events(db, venue_id=venue_id, days=days)
    pushed = {
        p.uid: p
        for p in db.execute(select(PushedEvent).where(PushedEvent.venue_id == venue_id)).scalars()
    }
    puts = []
    for uid, event in wanted.items():
        before = pushed.get(uid)
        if before is None:
            puts.append((event, 0))
        elif before.fingerprint != event.fingerprint:
            puts.append((event, before.sequence + 1))
    deletes = [uid for uid in pushed if uid not in wanted]
    return PushPlan(puts, deletes)


def record_put(db: DbSession, *, venue_id: str, event: Wanted, sequence: int) -> None:
    row = db.get(PushedEvent, (venue_id, event.uid))
    now = context(db).now()
    if row is None:
        db.add(
            PushedEvent(
                venue_id=venue_id,
                uid=event.uid,
                fingerprint=event.fingerprint,
                sequence=sequence,
                pushed_at=now,
            )
        )
    else:
        row.fingerprint, row.sequence, row.pushed_at = event.fingerprint, sequence, now
    db.flush()


def record_delete(db: DbSession, *, venue_id: str, uid: str) -> None:
    row = db.get(PushedEvent, (venue_id, uid))
    if row is not None:
        db.delete(row)
        db.flush()


def pushed_uids(db: DbSession, *, venue_id: str) -> dict[str, int]:
    """UID to SEQUENCE of what was last put on the counter's calendar."""
    rows = db.execute(select(PushedEvent).where(PushedEvent.venue_id == venue_id)).scalars()
    return {p.uid: p.sequence for p in rows}
