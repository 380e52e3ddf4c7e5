"""The calendar: sessions from weekly templates, holidays, year-end closure, extra sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import jpholiday
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session as DbSession

from booking.context import TOKYO, context
from booking.errors import BookingError
from booking.localized import SERVICE_FIELDS, VENUE_FIELDS, WARD_FIELDS, checked_texts
from booking.models import (
    Closure,
    Service,
    Session,
    Slot,
    Venue,
    VenueService,
    WardProfile,
    WeeklyTemplate,
)


def year_end(day: date) -> bool:
    """Municipal offices close from 29 December to 3 January."""
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


def closed_reason(day: date, venue_id: str, closures: set[tuple[str | None, date]]) -> str | None:
    """Why the regular sessions of this day are closed, or None when they are open."""
    if year_end(day):
        return "year_end"
    holiday = jpholiday.is_holiday_name(day)  # includes 振替休日 and 国民の休日
    if holiday:
        return f"holiday: {holiday}"
    if (venue_id, day) in closures or (None, day) in closures:
        return "closure"
    return None


def week_of_month(day: date) -> int:
    return (day.day - 1) // 7 + 1


def local_dt(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=TOKYO)


def _slot_rows(session: Session, slot_minutes: int, seats: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    start = local_dt(session.day, session.opens)
    end = local_dt(session.day, session.closes)
    step = timedelta(minutes=slot_minutes)
    while start + step <= end:
        rows.append(
            {
                "session_id": session.id,
                "venue_id": session.venue_id,
                "service_id": session.service_id,
                "starts_at": start,
                "ends_at": start + step,
                "capacity": seats,
                "booked": 0,
                "held": 0,
                "is_open": session.status == "open",
            }
        )
        start += step
    return rows


@dataclass(frozen=True)
class ScheduleResult:
    sessions: int
    slots: int


def extend_schedule(
    db: DbSession, *, first: date | None = None, through: date | None = None
) -> ScheduleResult:
    """Create the regular sessions and slots the weekly templates give, up to the booking horizon.

    Idempotent: a day that already has its regular session is left as it is.
    """
    ctx = context(db)
    first = first or ctx.today()
    through = through or ctx.today() + timedelta(days=ctx.rules.max_days_ahead)
    templates = _active_templates(db)
    existing = {
        (r.venue_id, r.service_id, r.day, r.opens)
        for r in db.execute(
            select(Session.venue_id, Session.service_id, Session.day, Session.opens).where(
                Session.day.between(first, through)
            )
        )
    }
    closures = {
        (r.venue_id, r.day)
        for r in db.execute(
            select(Closure.venue_id, Closure.day).where(Closure.day.between(first, through))
        )
    }
    new_sessions: list[tuple[Session, WeeklyTemplate]] = []
    day = first
    while day <= through:
        for template in templates:
            key = (template.venue_id, template.service_id, day, template.opens)
            if not _template_runs_on(template, day) or key in existing:
                continue
            if closed_reason(day, template.venue_id, closures):
                continue
            new_sessions.append((_regular_session(template, day), template))
            existing.add(key)
        day += timedelta(days=1)
    db.add_all([s for s, _ in new_sessions])
    db.flush()
    slot_rows = [row for s, t in new_sessions for row in _slot_rows(s, t.slot_minutes, t.seats)]
    if slot_rows:
        db.execute(insert(Slot), slot_rows)
    return ScheduleResult(sessions=len(new_sessions), slots=len(slot_rows))


def _active_templates(db: DbSession) -> list[WeeklyTemplate]:
    """The weekly templates of active venues, for services the venue still offers."""
    return list(
        db.execute(
            select(WeeklyTemplate)
            .join(Venue, Venue.id == WeeklyTemplate.venue_id)
            .join(
                VenueService,
                (VenueService.venue_id == WeeklyTemplate.venue_id)
                & (VenueService.service_id == WeeklyTemplate.service_id),
            )
            .where(Venue.active.is_(True))
        )
        .scalars()
        .all()
    )


def _template_runs_on(template: WeeklyTemplate, day: date) -> bool:
    """Its weekday, and (when it names some) one of its weeks of the month."""
    if template.weekday != day.weekday():
        return False
    if template.weeks_of_month:
        weeks = {int(w) for w in template.weeks_of_month.split(",")}
        return week_of_month(day) in weeks
    return True


def _regular_session(template: WeeklyTemplate, day: date) -> Session:
    return Session(
        venue_id=template.venue_id,
        service_id=template.service_id,
        day=day,
        opens=template.opens,
        closes=template.closes,
        kind="regular",
        status="open",
    )


def open_extra_session(
    db: DbSession,
    *,
    venue_id: str,
    service_id: str,
    day: date,
    opens: time,
    closes: time,
    slot_minutes: int,
    seats: int,
    kind: str = "holiday",
) -> Session:
    """Open a holiday, evening or pop-up session; it is open even on a closed day."""
    if db.get(Venue, venue_id) is None:
        raise BookingError("unknown_venue", field="venue")
    if db.get(Service, service_id) is None:
        raise BookingError("unknown_service", field="service")
    if not db.get(VenueService, (venue_id, service_id)):
        db.add(VenueService(venue_id=venue_id, service_id=service_id))
    if opens >= closes or slot_minutes <= 0 or seats < 0:
        raise BookingError("invalid_request", field="hours")
    clash = db.execute(
        select(Session.id).where(
            Session.venue_id == venue_id,
            Session.service_id == service_id,
            Session.day == day,
            Session.opens < closes,
            Session.closes > opens,
        )
    ).first()
    if clash is not None:
        raise BookingError("session_overlaps", field="opens")
    session = Session(
        venue_id=venue_id,
        service_id=service_id,
        day=day,
        opens=opens,
        closes=closes,
        kind=kind,
        status="open",
    )
    db.add(session)
    db.flush()
    rows = _slot_rows(session, slot_minutes, seats)
    if rows:
        db.execute(insert(Slot), rows)
    return session


def close_day(db: DbSession, *, day: date, reason: str, venue_id: str | None = None) -> int:
    """Close a day's regular sessions (one venue or all); extra sessions stay open.

    Returns how many slots were closed. Bookings on them stay booked: a manager decides about
    them (the day view lists them; booking.service.stranded names those on given slots).
    """
    ctx = context(db)
    if venue_id is not None and db.get(Venue, venue_id) is None:
        raise BookingError("unknown_venue", field="venue")
    db.add(Closure(venue_id=venue_id, day=day, reason=reason, created_at=ctx.now()))
    sessions = select(Session.id).where(Session.day == day, Session.kind == "regular")
    if venue_id is not None:
        sessions = sessions.where(Session.venue_id == venue_id)
    session_ids = list(db.execute(sessions).scalars())
    if not session_ids:
        return 0
    db.execute(
        update(Session)
        .where(Session.id.in_(session_ids))
        .values(status="closed", closed_reason=reason)
    )
    result = db.execute(update(Slot).where(Slot.session_id.in_(session_ids)).values(is_open=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _time(value: str | None) -> time | None:
    return None if value is None else time.fromisoformat(value)


@dataclass(frozen=True)
class WardCounts:
    services: int
    venues: int
    templates: int


def install_ward(db: DbSession, ward: dict[str, Any]) -> WardCounts:
    """Load a ward's services, venues and weekly templates (the shape of config/sample_ward.json).

    Existing rows with the same ids are updated, so a ward can re-run it after editing its file.
    """
    if "ward" in ward:
        _install_profile(db, dict(ward["ward"]))
    _install_services(db, ward["services"])
    _install_venues(db, ward["venues"])
    count = _install_templates(db, ward["weekly_templates"])
    return WardCounts(len(ward["services"]), len(ward["venues"]), count)


def _install_profile(db: DbSession, about: dict[str, Any]) -> None:
    db.merge(
        WardProfile(
            id=1,
            profile={
                "phone": str(about.get("phone") or ""),
                "logo": str(about.get("logo") or ""),
                "texts": checked_texts(about.get("texts"), WARD_FIELDS, "ward"),
            },
        )
    )


def _install_services(db: DbSession, services: list[dict[str, Any]]) -> None:
    for item in services:
        db.merge(
            Service(
                id=item["id"],
                name_ja=item["name_ja"],
                name_en=item["name_en"],
                duration_minutes=int(item["duration_minutes"]),
                requires_notice_number=bool(item["requires_notice_number"]),
                sort_order=int(item.get("sort_order", 0)),
                texts=checked_texts(item.get("texts"), SERVICE_FIELDS, f"service {item['id']}"),
            )
        )
    db.flush()


def _install_venues(db: DbSession, venues: list[dict[str, Any]]) -> None:
    for item in venues:
        db.merge(
            Venue(
                id=item["id"],
                name_ja=item["name_ja"],
                name_en=item["name_en"],
                kind=item["kind"],
                address_ja=item["address_ja"],
                address_en=item["address_en"],
                cutoff_time=_time(item.get("cutoff_time")),
                active=bool(item.get("active", True)),
                sort_order=int(item.get("sort_order", 0)),
                alert_ahead=int(item.get("alert_ahead", 3)),
                texts=checked_texts(item.get("texts"), VENUE_FIELDS, f"venue {item['id']}"),
            )
        )
        db.flush()
        for service_id in item["services"]:
            db.merge(VenueService(venue_id=item["id"], service_id=service_id))
    db.flush()


def _install_templates(db: DbSession, templates: list[dict[str, Any]]) -> int:
    """Each template once per weekday it names, matched to an existing row by venue, service,
    weekday and opening time; returns how many were written."""
    count = 0
    for item in templates:
        for weekday in item["weekdays"]:
            opens = time.fromisoformat(item["opens"])
            existing = db.execute(
                select(WeeklyTemplate).where(
                    WeeklyTemplate.venue_id == item["venue"],
                    WeeklyTemplate.service_id == item["service"],
                    WeeklyTemplate.weekday == weekday,
                    WeeklyTemplate.opens == opens,
                )
            ).scalar_one_or_none()
            template = existing or WeeklyTemplate(
                venue_id=item["venue"], service_id=item["service"], weekday=weekday, opens=opens
            )
            template.closes = time.fromisoformat(item["closes"])
            template.slot_minutes = int(item["slot_minutes"])
            template.seats = int(item["seats"])
            template.weeks_of_month = item.get("weeks_of_month")
            db.add(template)
            count += 1
    db.flush()
    return count


def is_empty(db: DbSession) -> bool:
    """True before any venue was loaded."""
    return db.execute(select(Venue.id).limit(1)).first() is None


def add_popup_venue(
    db: DbSession, *, venue_id: str, name_ja: str, name_en: str, address_ja: str
) -> Venue:
    """A pop-up venue (出張会場: a community centre, a shopping mall) that sessions can open at."""
    if not venue_id.replace("_", "").isalnum() or not venue_id.isascii() or len(venue_id) > 40:
        raise BookingError("unknown_venue", field="venue")
    if db.get(Venue, venue_id) is not None:
        raise BookingError("venue_exists", field="venue")
    order = db.execute(select(func.coalesce(func.max(Venue.sort_order), 0))).scalar_one()
    venue = Venue(
        id=venue_id,
        name_ja=name_ja.strip() or venue_id,
        name_en=name_en.strip() or venue_id,
        kind="popup",
        address_ja=address_ja.strip(),
        address_en="",
        cutoff_time=None,
        active=True,
        sort_order=int(order) + 1,
    )
    db.add(venue)
    db.flush()
    return venue


@dataclass(frozen=True)
class OpenedDays:
    opened: list[date]
    refused: list[tuple[date, str]]


def open_sessions_for_range(
    db: DbSession,
    *,
    venue_id: str,
    service_id: str,
    first: date,
    last: date,
    opens: time,
    closes: time,
    slot_minutes: int,
    seats: int,
    kind: str = "extra",
) -> OpenedDays:
    """The same session on every day of a range (a pop-up week, evening openings before a
    deadline); a day that cannot take it (it overlaps a session there) is reported, not fatal."""
    if last < first or (last - first).days > 92:
        raise BookingError("invalid_date_range", field="last", max_days=92)
    opened: list[date] = []
    refused: list[tuple[date, str]] = []
    day = first
    while day <= last:
        try:
            with db.begin_nested():
                open_extra_session(
                    db,
                    venue_id=venue_id,
                    service_id=service_id,
                    day=day,
                    opens=opens,
                    closes=closes,
                    slot_minutes=slot_minutes,
                    seats=seats,
                    kind=kind,
                )
            opened.append(day)
        except BookingError as error:
            if error.code in ("unknown_venue", "unknown_service", "invalid_request"):
                raise
            refused.append((day, error.message("ja")))
        day += timedelta(days=1)
    return OpenedDays(opened, refused)
