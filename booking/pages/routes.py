"""The resident pages: choose a service, a venue, a day on the month calendar, then a time.

Plain HTML forms and links that work without JavaScript; every text through the catalogues.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from booking import service
from booking.availability import MAX_RANGE_DAYS
from booking.context import TOKYO, BookingContext
from booking.errors import BookingError
from booking.pages.forms import form_page
from booking.pages.i18n import ICON
from booking.pages.render import ANYWHERE, not_found, page
from booking.web import ROW_ID_MAX, read_only_unit, unit_of_work

router = APIRouter(include_in_schema=False)
Party = Annotated[int, Query(ge=1, le=20)]


# The pages' icon (a counter window), for browsers that ask /favicon.ico whatever the pages say.
FAVICON = ICON.encode()


@router.get("/favicon.ico")
async def favicon() -> Response:
    """The icon, from memory: nothing here waits."""
    return Response(
        FAVICON, media_type="image/svg+xml", headers={"cache-control": "public, max-age=86400"}
    )


@router.get("/", response_class=HTMLResponse)
def start(request: Request) -> HTMLResponse:
    """Step 1: what the visit is for, with what to bring."""
    with unit_of_work(request) as db:
        services = service.list_services(db)
        # Staged release: the days not open yet, announced with when they open.
        releases = service.list_releases(db, upcoming_only=True)
        venues = {v.id: v for v in service.list_venues(db)} if releases else {}
    return page(
        request,
        "start.html",
        services=services,
        releases=releases,
        release_venues=venues,
        release_services={s.id: s for s in services},
        tokyo=TOKYO,
    )


@router.get("/book/{service_id}", response_class=HTMLResponse)
def choose_venue(request: Request, service_id: str) -> HTMLResponse:
    """Step 2: where, or the earliest time anywhere."""
    with unit_of_work(request) as db:
        try:
            chosen = service.service_or_404(db, service_id)
        except BookingError as error:
            return not_found(request, error)
        venues = service.list_venues(db, service_id=service_id)
    return page(request, "venues.html", service=chosen, venues=venues, anywhere=ANYWHERE)


# How many times one page of "the earliest time anywhere" lists: a phone's screenful or two.
EARLIEST_PAGE = 10
# The last slot a page of the earliest times showed: the next page starts after it.
After = Annotated[int | None, Query(ge=1, le=ROW_ID_MAX)]


@dataclass(frozen=True)
class Window:
    """How far ahead bookings are taken, for the sentence under the calendar: up to ``last``
    (``days`` ahead); ``next_day``, the first day not yet open, opens on ``opens``."""

    days: int
    last: date
    next_day: date
    opens: date


def booking_window(ctx: BookingContext) -> Window:
    """The window as the engine applies it (the ward's settings), never a number of our own."""
    last = service.last_bookable_day(ctx)
    return Window(
        ctx.rules.max_days_ahead,
        last,
        last + timedelta(days=1),
        ctx.today() + timedelta(days=1),
    )


def _month(value: str | None, earliest: date, latest: date) -> tuple[date, str | None]:
    """The month to show and, when it is not the one asked for, why: a month that has passed,
    one not open yet, or one the address does not say clearly all show the current month."""
    if value is None:
        return earliest, None
    try:
        year, month = (int(part) for part in value.split("-"))
        wanted = date(year, month, 1)
    except ValueError:
        return earliest, "unreadable"
    if wanted < earliest:
        return earliest, "past"
    if wanted > latest:
        return earliest, "beyond"
    return wanted, None


@router.get("/book/{service_id}/{place}", response_class=HTMLResponse)
def calendar(
    request: Request,
    service_id: str,
    place: str,
    month: str | None = None,
    party: Party = 1,
    move: bool = False,
    after: After = None,
) -> Response:
    """Step 3: the month calendar, each day ○ △ × or －; or, anywhere, the earliest times."""
    if place == ANYWHERE:
        return _earliest(request, service_id, party, move, after)
    with read_only_unit(request) as db:
        ctx: BookingContext = db.info["booking"]
        window = booking_window(ctx)
        earliest = ctx.today().replace(day=1)
        shown, note = _month(month, earliest, window.last.replace(day=1))
        try:
            chosen = service.service_or_404(db, service_id)
            venue = _venue(db, place, service_id)
            marks = service.month_marks(
                db, service_id=service_id, venue_id=place, month=shown, party=party
            )
        except BookingError as error:
            return not_found(request, error)
        first = service.first_bookable_day(ctx, venue.cutoff_time)
        max_party = ctx.rules.max_party_size
    previous = (shown - timedelta(days=1)).replace(day=1)
    following = (shown + timedelta(days=32)).replace(day=1)
    return page(
        request,
        "calendar.html",
        service=chosen,
        venue=venue,
        place=place,
        party=party,
        month=shown,
        note=note,
        window=window,
        weeks=_weeks([_outside_window(m, first, window.last) for m in marks]),
        previous=previous if previous >= earliest else None,
        following=following if following <= window.last else None,
        query=lambda **q: urlencode({"party": party, **({"move": 1} if move else {}), **q}),
        move=move,
        max_party=max_party,
    )


def _outside_window(mark: service.DayMark, first: date, last: date) -> service.DayMark:
    """A day the window does not reach says so, apart from a day the office is closed: one
    whose booking has ended (past) and one not open yet (later)."""
    if mark.day < first:
        return replace(mark, mark="past")
    if mark.day > last:
        return replace(mark, mark="later")
    return mark


def _earliest(
    request: Request, service_id: str, party: int, move: bool, after: int | None
) -> Response:
    """The earliest free times at any venue, a page at a time: each one press from being held."""
    with read_only_unit(request) as db:
        ctx: BookingContext = db.info["booking"]
        today = ctx.today()
        try:
            chosen = service.service_or_404(db, service_id)
            # One statement with a LIMIT on the (service, start) index: one more than a page,
            # to know whether there is a next one.
            slots = service.availability(
                db,
                service_id=service_id,
                start=today,
                end=min(service.last_bookable_day(ctx), today + timedelta(days=MAX_RANGE_DAYS)),
                party=party,
                limit=EARLIEST_PAGE + 1,
                after=after,
            )
        except BookingError as error:
            return not_found(request, error)
        venues = {v.id: v for v in service.list_venues(db, service_id=service_id)}
        window = booking_window(ctx)
        max_party = ctx.rules.max_party_size
    shown = slots[:EARLIEST_PAGE]
    return form_page(
        request,
        "earliest.html",
        service=chosen,
        venue=None,
        venues=venues,
        place=ANYWHERE,
        party=party,
        # The day a "taken" page offers the next times from, should the time go meanwhile.
        day=shown[0].starts_at.astimezone(TOKYO).date() if shown else today,
        slots=shown,
        more=shown[-1].id if len(slots) > EARLIEST_PAGE else None,
        after=after,
        window=window,
        query=lambda **q: urlencode({"party": party, **({"move": 1} if move else {}), **q}),
        move=move,
        max_party=max_party,
    )


@router.get("/book/{service_id}/{place}/{day}", response_class=HTMLResponse)
def times(
    request: Request, service_id: str, place: str, day: date, party: Party = 1, move: bool = False
) -> Response:
    """Step 4: the day's times with the seats left."""
    with read_only_unit(request) as db:
        venue_id = None if place == ANYWHERE else place
        try:
            chosen = service.service_or_404(db, service_id)
            venue = _venue(db, venue_id, service_id)
            slots = service.availability(
                db,
                service_id=service_id,
                venue_id=venue_id,
                start=day,
                end=day,
                party=party,
                limit=500,
            )
        except BookingError as error:
            return not_found(request, error)
        venues = {v.id: v for v in service.list_venues(db, service_id=service_id)}
    return form_page(
        request,
        "times.html",
        service=chosen,
        venue=venue,
        venues=venues,
        place=place,
        party=party,
        day=day,
        slots=slots,
        move=move,
    )


def _venue(db: Any, venue_id: str | None, service_id: str) -> Any:
    if venue_id is None:
        return None
    found = next(
        (v for v in service.list_venues(db, service_id=service_id) if v.id == venue_id), None
    )
    if found is None:
        raise BookingError("unknown_venue")
    return found


def _weeks(marks: list[service.DayMark]) -> list[list[service.DayMark | None]]:
    """Calendar rows from Sunday to Saturday, as Japanese calendars are laid out."""
    lead = (marks[0].day.weekday() + 1) % 7
    cells: list[service.DayMark | None] = [None] * lead + list(marks)
    cells += [None] * (-len(cells) % 7)
    return [cells[i : i + 7] for i in range(0, len(cells), 7)]
