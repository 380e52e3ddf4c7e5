"""What every package's routers share: the unit of work per request, the error shape, and the
residents' forms (the CSRF check, the proof that a browser may manage a booking)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel
from sqlalchemy.orm import Session as DbSession

from booking import service
from booking.errors import BookingError


@dataclass(frozen=True)
class Problem:
    """A request that went wrong, for the renderer of the part of the service it asked
    (config.errors chooses): a code of booking/messages.toml, its status, the request's id."""

    status: int
    code: str
    request_id: str
    # For a malformed request: each field and what is wrong with it (never the value given).
    fields: Sequence[dict[str, str]] = field(default_factory=tuple)

    @property
    def ours(self) -> bool:
        """Our fault (5xx), not the request's."""
        return self.status >= 500


# Database ids are 32-bit: a larger number from a URL or a form is a malformed request.
ROW_ID_MAX = 2**31 - 1


def whole_number(text: object, most: int = ROW_ID_MAX, *, least: int = 0) -> int:
    """A whole number typed in a form or a URL, from ``least`` to ``most``; ValueError otherwise.
    ASCII digits only: int() also reads "٣" and " 1_0 ", and "²" passes isdigit() but not int();
    and a number past the column's width must never reach the database (it overflows there)."""
    value = str(text).strip() if text is not None else ""
    if not (value.isascii() and value.isdecimal() and len(value) <= 12):
        raise ValueError(f"not a whole number: {value[:20]!r}")
    number = int(value)
    if not least <= number <= most:
        raise ValueError(f"{number} is outside {least}..{most}")
    return number


def row_id(text: object) -> int:
    """A row's id from a form or a URL (1 to 2³¹-1); ValueError otherwise."""
    return whole_number(text, least=1)


def row_id_or_none(text: object) -> int | None:
    """A row's id where the field is optional: anything that is not one is None."""
    try:
        return row_id(text)
    except ValueError:
        return None


@contextmanager
def unit_of_work(request: Request) -> Iterator[DbSession]:
    """One session and transaction per request. Routes that write call ``commit()`` before they
    answer, so a 2xx always means committed; anything else is rolled back on the way out.

    Opened inside the (sync) route rather than as a FastAPI dependency: a generator dependency
    costs two more hops between the event loop and the thread pool on every request.
    """
    with request.app.state.sessions() as db:
        yield db


@contextmanager
def read_only_unit(request: Request) -> Iterator[DbSession]:
    """A session for reads that are only shown (calendar marks, free times, feeds): on the read
    replica when one is configured and answers, else on the primary. Read-only either way, so a
    write put here by mistake fails in development as it would on the replica. Never for a read
    that decides a write (a hold, a booking, a move, a cancellation): the replica may lag a
    moment. ``app.state.shown_reads`` (config.replica.ShownReads) chooses the server.
    """
    with request.app.state.shown_reads(request.app.state.sessions) as db:
        yield db


# --- residents' forms: the booking pages' and the pages of other packages that act on a booking


CSRF_COOKIE = "csrf"
FORM_MAX_AGE = 2 * 3600
MANAGE_COOKIE = "manage"
MANAGE_MAX_AGE = 30 * 60


def signer(request: Request, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.page_key, salt=purpose)


def csrf_ok(request: Request, token: str | None) -> bool:
    browser = request.cookies.get(CSRF_COOKIE)
    if not browser or not token:
        return False
    try:
        return bool(signer(request, "csrf").loads(token, max_age=FORM_MAX_AGE) == browser)
    except BadSignature:
        return False


def managed_booking_id(request: Request) -> int | None:
    """The booking this browser proved it may manage (code and second factor), if any: for
    the booking's own pages and those of other packages that act on it (stopping its
    messages)."""
    token = request.cookies.get(MANAGE_COOKIE)
    if not token:
        return None
    try:
        return int(signer(request, "manage").loads(token, max_age=MANAGE_MAX_AGE))
    except (BadSignature, ValueError):
        return None


def _attempt_limits(request: Request) -> dict[str, tuple[int, timedelta]]:
    settings = request.app.state.settings
    return {
        "lookup": (settings.web_lookups_per_15_minutes, timedelta(minutes=15)),
        "book": (settings.web_bookings_per_hour, timedelta(hours=1)),
    }


def over_attempt_limit(request: Request, kind: str) -> int | None:
    """Count one lookup or booking attempt by this client, in its own committed transaction (a
    failed lookup rolls its request back, and must still count); the minutes to wait when the
    client has tried too often, else None.

    Counted in the database, as web processes keep nothing between requests; the client is a
    keyed hash of its address, so no address is stored.
    """
    limit, window = _attempt_limits(request)[kind]
    address = request.client.host if request.client else "unknown"
    with unit_of_work(request) as db:
        client = db.info["booking"].vault.digest(f"client:{address}")
        allowed = service.note_attempt(db, client=client, kind=kind, limit=limit, window=window)
        db.commit()
    return None if allowed else int(window.total_seconds() // 60)


def refuse_when_over_limit(request: Request, kind: str) -> None:
    """The API's form of the limit: a 429 with Retry-After."""
    minutes = over_attempt_limit(request, kind)
    if minutes is not None:
        raise BookingError("too_many_attempts", minutes=minutes)


def json_response(content: BaseModel | Sequence[BaseModel], status_code: int = 200) -> Response:
    """Serialise once: returning a Response skips FastAPI's second validation pass of models
    the route has already built (the route's ``response_model`` still documents the shape)."""
    if isinstance(content, BaseModel):
        body = content.model_dump_json()
    else:
        body = "[" + ",".join(item.model_dump_json() for item in content) + "]"
    return Response(body, status_code=status_code, media_type="application/json")


def _booking_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, BookingError):
        raise exc
    headers = None
    if exc.code == "too_many_attempts":
        headers = {"Retry-After": str(int(exc.params["minutes"]) * 60)}
    return JSONResponse(status_code=exc.status, content={"error": exc.to_dict()}, headers=headers)


def api_problem(_request: Request, problem: Problem) -> Response:
    """The JSON error shape for a request that went wrong (config.errors chooses the renderer):
    the same ``{"error": ...}`` as every refusal, with the request id to quote."""
    body = BookingError(problem.code).to_dict()
    if problem.fields:
        body["field"] = problem.fields[0]["field"]
        body["problems"] = list(problem.fields)
    body["request_id"] = problem.request_id
    return JSONResponse(status_code=problem.status, content={"error": body})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BookingError, _booking_error)
