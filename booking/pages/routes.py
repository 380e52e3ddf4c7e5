"""The resident pages: choose a service, a venue, a day on the month calendar, then a time.

Plain HTML forms and links that work without JavaScript; every text through the catalogues.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from booking import service
from booking.errors import BookingError
from booking.pages.forms import form_page
from booking.pages.render import ANYWHERE, not_found, page
from booking.web import unit_of_work

router = APIRouter(include_in_schema=False)
Party = Annotated[int, Query(ge=1, le=20)]


@router.get("/", response_class=HTMLResponse)
def start(request: Request) -> HTMLResponse:
    """Step 1: what the visit is for, with what to bring."""
    with unit_of_work(request) as db:
        services = service.list_services(db)
    return page(request, "start.html", services=services)


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


def _month(value: str | None, today: date) -> date:
    if value:
        try:
            year, month = (int(part) for part in value.split("-"))
            return date(year, month, 1)
        except ValueError:
            pass
    return today.replace(day=1)


@router.get("/book/{service_id}/{place}", response_class=HTMLResponse)
def calendar(
    request: Request,
    service_id: str,
    place: str,
    month: str | None = None,
    party: Party = 1,
    move: bool = False,
) -> HTMLResponse:
    """Step 3: the month calendar, each day ○ △ × or －."""
    with unit_of_work(request) as db:
        today = service.first_bookable_day(db.info["booking"], None) - timedelta(days=1)
        shown = _month(month, today)
        venue_id = None if place == ANYWHERE else place
        try:
            chosen = service.service_or_404(db, service_id)
            venue = _venue(db, venue_id, service_id)
            marks = service.month_marks(
                db, service_id=service_id, venue_id=venue_id, month=shown, party=party
            )
        except BookingError as error:
            return not_found(request, error)
        last = service.last_bookable_day(db.info["booking"])
        max_party = db.info["booking"].rules.max_party_size
    earliest = today.replace(day=1)
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
        weeks=_weeks(marks),
        previous=previous if previous >= earliest else None,
        following=following if following <= last else None,
        query=lambda **q: urlencode({"party": party, **({"move": 1} if move else {}), **q}),
        move=move,
        max_party=max_party,
    )


@router.get("/book/{service_id}/{place}/{day}", response_class=HTMLResponse)
def times(
    request: Request, service_id: str, place: str, day: date, party: Party = 1, move: bool = False
) -> Response:
    """Step 4: the day's times with the seats left."""
    with unit_of_work(request) as db:
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
