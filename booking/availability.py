"""Reads of the engine: the catalogue, the booking window and free seats. Nothing here writes;
channels reach these through booking.service, which re-exports them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Integer, Time, and_, bindparam, case, func, select, true, tuple_
from sqlalchemy.orm import Session as DbSession

from booking.base import UTCDateTime
from booking.context import TOKYO, BookingContext, context
from booking.errors import BookingError
from booking.localized import WardInfo
from booking.models import Hold, Service, Session, Slot, Venue, VenueService, WardProfile
from booking.views import SlotView

MAX_RANGE_DAYS = 62

# --- Catalogue ----------------------------------------------------------------------------


def list_services(db: DbSession) -> list[Service]:
    """Every appointment type, in display order."""
    return list(db.execute(select(Service).order_by(Service.sort_order, Service.id)).scalars())


def list_venues(db: DbSession, *, service_id: str | None = None) -> list[Venue]:
    """Active venues in display order, optionally only those offering a service."""
    query = select(Venue).where(Venue.active.is_(True)).order_by(Venue.sort_order, Venue.id)
    if service_id is not None:
        query = query.join(VenueService, VenueService.venue_id == Venue.id).where(
            VenueService.service_id == service_id
        )
    return list(db.execute(query).scalars())


def ward_info(db: DbSession) -> WardInfo:
    """Who runs the service (empty until the ward's JSON is installed)."""
    row = db.get(WardProfile, 1)
    return WardInfo.from_profile(row.profile if row is not None else None)


def venue_services(db: DbSession) -> dict[str, list[str]]:
    """Which services each venue offers."""
    offered: dict[str, list[str]] = {}
    for venue_id, service_id in db.execute(select(VenueService.venue_id, VenueService.service_id)):
        offered.setdefault(venue_id, []).append(service_id)
    return offered


def service_or_404(db: DbSession, service_id: str) -> Service:
    """A service by id, or the unknown_service error."""
    service = db.get(Service, service_id)
    if service is None:
        raise BookingError("unknown_service", field="service")
    return service


def venue_or_404(db: DbSession, venue_id: str) -> Venue:
    """A venue by id (also one no longer active, as a booking's may be), or unknown_venue."""
    venue = db.get(Venue, venue_id)
    if venue is None:
        raise BookingError("unknown_venue", field="venue")
    return venue


# --- The booking window -------------------------------------------------------------------


def first_bookable_day(ctx: BookingContext, cutoff: time | None) -> date:
    """The earliest day a new booking may be for at a venue with this daily cut-off."""
    now_local = ctx.now().astimezone(TOKYO)
    first = now_local.date() + timedelta(days=ctx.rules.min_days_ahead)
    if cutoff is not None and now_local.time() >= cutoff:
        first += timedelta(days=1)
    return first


def last_bookable_day(ctx: BookingContext) -> date:
    return ctx.today() + timedelta(days=ctx.rules.max_days_ahead)


def check_window(ctx: BookingContext, starts_at: datetime, cutoff: time | None) -> None:
    first = first_bookable_day(ctx, cutoff)
    last = last_bookable_day(ctx)
    day = starts_at.astimezone(TOKYO).date()
    if day < first or day > last or starts_at <= ctx.now():
        raise BookingError(
            "outside_booking_window", field="slot", first=first.isoformat(), last=last.isoformat()
        )


def check_party(ctx: BookingContext, party: int) -> None:
    if not 1 <= party <= ctx.rules.max_party_size:
        raise BookingError("invalid_party_size", field="party_size", max=ctx.rules.max_party_size)


# --- Availability -------------------------------------------------------------------------


_NOW = bindparam("now", type_=UTCDateTime())
_ACTIVE_HOLDS = (
    select(Hold.slot_id, func.sum(Hold.seats).label("seats"))
    .where(Hold.expires_at > _NOW)
    .group_by(Hold.slot_id)
    .subquery()
)
# Channel quotas: the seats a slot still keeps back from the asking channel (see Slot).
KEPT_BACK = case(
    (
        Slot.kept_until > _NOW,
        Slot.kept_for_phone * bindparam("not_phone", type_=Integer())
        + Slot.kept_for_walk_in * bindparam("not_walk_in", type_=Integer()),
    ),
    else_=0,
)
_REMAINING = Slot.capacity - Slot.booked - func.coalesce(_ACTIVE_HOLDS.c.seats, 0) - KEPT_BACK

# Which kept seats each channel must leave alone while they are kept: the web leaves the
# phone line's and the walk-ins', the phone line (IVR and agents) the walk-ins', a walk-in none.
# The LINE chat counts as the web: its residents book on their phones' screens, and the seats
# kept for the phone line are for those who cannot (the elderly calling in); it leaves them.
QUOTA_CHANNELS = ("web", "ivr", "agent", "walk_in", "line")


def quota_params(channel: str) -> dict[str, int]:
    """The bind parameters of KEPT_BACK for a channel."""
    if channel not in QUOTA_CHANNELS:
        raise BookingError("invalid_request", field="channel")
    return {
        "not_phone": int(channel in ("web", "line")),
        "not_walk_in": int(channel != "walk_in"),
    }


# Built once. A lapsed hold no longer counts, swept or not; a venue's cut-off moves its first
# bookable day on by one once the local time has passed it. Shared by the time list and the
# month calendar, so both show the same seats.
_FOR_SALE = (
    Slot.service_id == bindparam("service_id"),
    Slot.is_open.is_(True),
    Slot.lottery_id.is_(None),  # a lottery's seats are applied for, never sold first-come
    Venue.active.is_(True),
    Slot.starts_at > _NOW,
    Slot.starts_at >= bindparam("range_start", type_=UTCDateTime()),
    Slot.starts_at < bindparam("range_end", type_=UTCDateTime()),
    Slot.starts_at
    >= case(
        (
            and_(
                Venue.cutoff_time.is_not(None),
                Venue.cutoff_time <= bindparam("local_time", type_=Time()),
            ),
            bindparam("first_late", type_=UTCDateTime()),
        ),
        else_=bindparam("first_start", type_=UTCDateTime()),
    ),
)
_AVAILABILITY = (
    select(
        Slot.id,
        Slot.venue_id,
        Slot.service_id,
        Slot.starts_at,
        Slot.ends_at,
        _REMAINING.label("remaining"),
    )
    .join(Venue, Venue.id == Slot.venue_id)
    .outerjoin(_ACTIVE_HOLDS, _ACTIVE_HOLDS.c.slot_id == Slot.id)
    .where(*_FOR_SALE, _REMAINING >= bindparam("party"))
    .order_by(Slot.starts_at, Venue.sort_order, Slot.venue_id, Slot.id)
    .limit(bindparam("limit"))
)
_AVAILABILITY_AT_VENUE = _AVAILABILITY.where(Slot.venue_id == bindparam("venue_id"))
# The next page of a list already shown: the times after the last one shown, in the same order
# (the order's columns compared as one row). The bound on starts_at alone lets the index on
# (service_id, starts_at) start the scan at the last time shown, so a later page costs no more
# than the first.
_CURSOR = (
    select(Slot.id, Slot.starts_at, Slot.venue_id, Venue.sort_order)
    .join(Venue, Venue.id == Slot.venue_id)
    .where(Slot.id == bindparam("after"))
    .subquery()
)
_CURSOR_START = (
    select(Slot.starts_at).where(Slot.id == bindparam("after")).correlate(None).scalar_subquery()
)
_AVAILABILITY_AFTER = _AVAILABILITY.join(_CURSOR, true()).where(
    Slot.starts_at >= _CURSOR_START,
    tuple_(Slot.starts_at, Venue.sort_order, Slot.venue_id, Slot.id)
    > tuple_(_CURSOR.c.starts_at, _CURSOR.c.sort_order, _CURSOR.c.venue_id, _CURSOR.c.id),
)
_AVAILABILITY_AT_VENUE_AFTER = _AVAILABILITY_AFTER.where(Slot.venue_id == bindparam("venue_id"))


def availability(
    db: DbSession,
    *,
    service_id: str,
    venue_id: str | None = None,
    start: date | None = None,
    end: date | None = None,
    party: int = 1,
    limit: int = 100,
    channel: str = "web",
    after: int | None = None,
) -> list[SlotView]:
    """Open slots with ``party`` seats free to ``channel``, earliest first; across all venues
    if none given. Seats a quota keeps for another channel do not count as free. ``after`` (a
    slot's id, the last one a list showed) gives the next page: only the slots after it."""
    ctx = context(db)
    check_party(ctx, party)
    start = start or ctx.today()
    end = end or last_bookable_day(ctx)
    if end < start or (end - start).days > MAX_RANGE_DAYS or not _plausible(start, end):
        raise BookingError("invalid_date_range", field="to", max_days=MAX_RANGE_DAYS)
    params = _sale_params(ctx, service_id, venue_id, start, end, party, channel)
    params["limit"] = limit
    if after is None:
        query = _AVAILABILITY if venue_id is None else _AVAILABILITY_AT_VENUE
    else:
        params["after"] = after
        query = _AVAILABILITY_AFTER if venue_id is None else _AVAILABILITY_AT_VENUE_AFTER
    found = [SlotView(*row) for row in db.execute(query, params)]
    if not found:  # nothing free, or nothing to ask about: say which
        _check_offered(db, service_id, venue_id)
    return found


def _plausible(*days: date) -> bool:
    """Dates a booking could be about (far-off years overflow the UTC conversion)."""
    return all(date(2000, 1, 1) <= day <= date(2200, 1, 1) for day in days)


def _sale_params(
    ctx: BookingContext,
    service_id: str,
    venue_id: str | None,
    start: date,
    end: date,
    party: int,
    channel: str,
) -> dict[str, object]:
    now = ctx.now()
    first = first_bookable_day(ctx, None)
    return {
        **quota_params(channel),
        "service_id": service_id,
        "venue_id": venue_id,
        "now": now,
        "range_start": local_midnight(start),
        "range_end": local_midnight(min(end, last_bookable_day(ctx)) + timedelta(days=1)),
        "party": party,
        "local_time": now.astimezone(TOKYO).time(),
        "first_start": local_midnight(first),
        "first_late": local_midnight(first + timedelta(days=1)),
    }


# --- The month calendar -------------------------------------------------------------------

# A day shows △ when no more than this share of its seats is still free.
FEW_LEFT_SHARE = 0.2

_FREE_FOR_PARTY = case((_REMAINING >= bindparam("party"), _REMAINING), else_=0)
_DAYS = (
    select(
        Session.day,
        func.sum(Slot.capacity).label("capacity"),
        func.sum(_FREE_FOR_PARTY).label("free"),
    )
    .join(Session, Session.id == Slot.session_id)
    .join(Venue, Venue.id == Slot.venue_id)
    .outerjoin(_ACTIVE_HOLDS, _ACTIVE_HOLDS.c.slot_id == Slot.id)
    .where(*_FOR_SALE)
    .group_by(Session.day)
)
_DAYS_AT_VENUE = _DAYS.where(Slot.venue_id == bindparam("venue_id"))


@dataclass(frozen=True)
class DayMark:
    """One day of the month calendar: ○ seats left, △ few left, × full, － closed or not
    bookable (the convention of Japanese booking pages)."""

    day: date
    mark: str  # open | few | full | closed
    free: int


def month_marks(
    db: DbSession,
    *,
    service_id: str,
    venue_id: str | None,
    month: date,
    party: int = 1,
    channel: str = "web",
) -> list[DayMark]:
    """Every day of ``month`` (any date in it) marked for a party of ``party`` asking through
    ``channel``."""
    ctx = context(db)
    check_party(ctx, party)
    first = month.replace(day=1)
    if not _plausible(first):
        raise BookingError("invalid_date_range", field="month", max_days=MAX_RANGE_DAYS)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    params = _sale_params(ctx, service_id, venue_id, first, last, party, channel)
    query = _DAYS if venue_id is None else _DAYS_AT_VENUE
    sold = {row.day: (int(row.capacity), int(row.free)) for row in db.execute(query, params)}
    if not sold:
        _check_offered(db, service_id, venue_id)
    marks = []
    day = first
    while day <= last:
        capacity, free = sold.get(day, (0, 0))
        if capacity == 0:
            mark = "closed"
        elif free == 0:
            mark = "full"
        elif free <= capacity * FEW_LEFT_SHARE:
            mark = "few"
        else:
            mark = "open"
        marks.append(DayMark(day, mark, free))
        day += timedelta(days=1)
    return marks


def _check_offered(db: DbSession, service_id: str, venue_id: str | None) -> None:
    service_or_404(db, service_id)
    if venue_id is None:
        return
    if db.get(Venue, venue_id) is None:
        raise BookingError("unknown_venue", field="venue")
    if db.get(VenueService, (venue_id, service_id)) is None:
        raise BookingError("service_not_offered", field="venue")


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=TOKYO)
