"""iCalendar feeds for staff calendars: a venue's free times, and (behind the venue's secret)
its bookings of a day."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

from booking.errors import BookingError
from booking.schemas import ErrorOut
from booking.web import read_only_unit, unit_of_work
from calendar_sync import service

router = APIRouter(prefix="/calendar", tags=["calendar"])
ICS = "text/calendar; charset=utf-8"
_CALENDAR = {"content": {"text/calendar": {"schema": {"type": "string"}}}}
_TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}
_FAULTS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorOut, "description": "A value that cannot be read (the day)"},
    500: {"model": ErrorOut},
    503: {"model": ErrorOut},
}


@router.get(
    "/venues/{venue_id}/free.ics",
    response_class=Response,
    responses={
        200: {"description": "The free times, iCalendar", **_CALENDAR},
        404: {"description": "No such venue", **_TEXT},
        **_FAULTS,
    },
)
async def free_times(request: Request, venue_id: str) -> Response:
    """The venue's open times with free seats over the booking window (no personal data)."""

    def work() -> bytes:
        # Only shown (and cached five minutes): the read replica may serve it.
        with read_only_unit(request) as db:
            return service.slots_feed(db, venue_id=venue_id)

    try:
        body = await run_in_threadpool(work)
    except BookingError as error:
        return PlainTextResponse(error.message("en"), status_code=error.status)
    return Response(body, media_type=ICS, headers={"Cache-Control": "max-age=300"})


@router.get(
    "/venues/{venue_id}/bookings.ics",
    response_class=Response,
    responses={
        200: {"description": "The day's bookings, iCalendar", **_CALENDAR},
        403: {"description": "Wrong or missing feed token", **_TEXT},
        **_FAULTS,
    },
)
async def bookings(
    request: Request, venue_id: str, token: str = "", day: date | None = None
) -> Response:
    """The venue's bookings of a day (today by default): code, service, party size; staff
    only, by the venue's secret token."""

    def work() -> bytes | None:
        # The primary: a feed token just changed there must stop working at once, and the
        # counter checks residents in against this list (a booking made a moment ago included).
        with unit_of_work(request) as db:
            if not service.token_ok(db, venue_id, token):
                return None
            chosen = day or db.info["booking"].today()
            return service.bookings_feed(db, venue_id=venue_id, day=chosen)

    body = await run_in_threadpool(work)
    if body is None:
        return PlainTextResponse("wrong or missing feed token", status_code=403)
    return Response(body, media_type=ICS, headers={"Cache-Control": "no-store"})
