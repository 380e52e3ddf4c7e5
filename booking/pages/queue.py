"""A resident's place in the counter's queue (/queue/<token>): the link of a walk-in's ticket
(整理券) QR code, or of a booked resident's page once they checked in. Their number, how many
are ahead, the numbers being called, the wait at today's pace, and "called: go to desk X" once
called. It reloads itself without JavaScript (the resident may stop that: WCAG 2.2.1), and a
walk-in may leave a mobile number there for the SMS alerts (a form's POST with its CSRF token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from booking import service
from booking.errors import BookingError
from booking.pages.flow import _refused
from booking.pages.forms import form_page
from booking.pages.render import LANGUAGE_COOKIE, language_of, not_found
from booking.personal import mask_phone
from booking.web import csrf_ok, unit_of_work

router = APIRouter(include_in_schema=False)

# Seconds between the page's own reloads: often enough to hear one's number in time.
REFRESH_SECONDS = 30
STILL = "still"  # the query parameter that stops the reloading


@dataclass(frozen=True)
class Place:
    """What the status page shows."""

    token: str
    walk_in: bool
    number: int | None  # a walk-in's queue number
    venue: Any
    service: Any
    state: str  # waiting | called | done | not_here (a booking not checked in)
    ahead: int | None
    wait: int | None
    now_calling: list[int]
    desk: str | None
    phone: str | None  # masked
    language: str
    pace_from_calls: bool


def _place(request: Request, token: str) -> Place:
    with unit_of_work(request) as db:
        if service.is_booking_token(token):
            found = service.booking_in_queue(db, token=token)
            queue = service.venue_queue(db, venue_id=found.venue_id)
            ahead = queue.ahead_of_booking(found.booking_id)
            if found.status == "completed":
                state = "done"
            elif found.status != "checked_in":
                state = "not_here"
            else:
                state = "called" if found.called_at is not None else "waiting"
            number, desk, phone, language = None, found.called_desk, None, found.language
            venue_id, service_id = found.venue_id, found.service_id
        else:
            ticket = service.ticket(db, token=token)
            queue = service.venue_queue(db, venue_id=ticket.venue_id)
            ahead = queue.ahead_of_walk_in(ticket.walk_in_id)
            today = db.info["booking"].today()
            if ticket.completed_at is not None or ticket.day != today:
                state = "done"
            else:
                state = "called" if ticket.called_at is not None else "waiting"
            number, desk, language = ticket.number, ticket.called_desk, ticket.language
            phone = mask_phone(ticket.phone) if ticket.phone else None
            venue_id, service_id = ticket.venue_id, ticket.service_id
        venue = service.venue_or_404(db, venue_id)
        chosen = service.service_or_404(db, service_id)
    return Place(
        token=token,
        walk_in=number is not None,
        number=number,
        venue=venue,
        service=chosen,
        state=state,
        ahead=ahead if state == "waiting" else None,
        wait=queue.wait_for(ahead) if state == "waiting" and ahead is not None else None,
        now_calling=queue.now_calling,
        desk=desk,
        phone=phone,
        language=language,
        pace_from_calls=queue.pace_from_calls,
    )


def _status_page(request: Request, place: Place, status_code: int = 200, **extra: Any) -> Response:
    here = f"/queue/{place.token}"
    still = request.query_params.get(STILL) == "1"
    refresh = None if still or place.state == "done" else REFRESH_SECONDS
    response = form_page(
        request,
        "queue.html",
        status_code=status_code,
        place=place,
        refresh=refresh,
        again=here + (f"?{STILL}=1" if still else ""),
        still=f"{here}?{STILL}=1",
        moving=here,
        **extra,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token stays on this page
    return response


@router.get("/queue/{token}")
def status(request: Request, token: str) -> Response:
    """The resident's place in the counter's queue."""
    try:
        place = _place(request, token[:64])
    except BookingError as error:
        return not_found(request, error)
    chosen = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
    if chosen is None and place.language != language_of(request):
        # First visit from the ticket's QR code: the language the counter noted for them.
        return RedirectResponse(f"/queue/{token}?lang={place.language}", status_code=303)
    return _status_page(request, place)


@router.post("/queue/{token}/phone")
async def leave_phone(request: Request, token: str) -> Response:
    """A mobile number for the ticket's SMS alerts (a few ahead, called), erased after the day."""
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items()}
    token = token[:64]
    language = language_of(request)

    def save() -> None:
        with unit_of_work(request) as db:
            service.leave_ticket_phone(
                db, token=token, phone=form.get("phone", ""), language=language
            )
            db.commit()

    if not csrf_ok(request, form.get("csrf")):
        return _refused(request)
    problem = None
    try:
        await run_in_threadpool(save)
    except BookingError as error:
        problem = error
    try:
        place = await run_in_threadpool(_place, request, token)
    except BookingError as error:
        return not_found(request, error)
    if problem is not None:
        return _status_page(
            request, place, status_code=problem.status, problem=problem.message(language)
        )
    return RedirectResponse(f"/queue/{token}", status_code=303)
