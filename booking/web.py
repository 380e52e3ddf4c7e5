"""What every package's routers share: the unit of work per request and the error shape."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session as DbSession

from booking import service
from booking.errors import BookingError


@contextmanager
def unit_of_work(request: Request) -> Iterator[DbSession]:
    """One session and transaction per request. Routes that write call ``commit()`` before they
    answer, so a 2xx always means committed; anything else is rolled back on the way out.

    Opened inside the (sync) route rather than as a FastAPI dependency: a generator dependency
    costs two more hops between the event loop and the thread pool on every request.
    """
    with request.app.state.sessions() as db:
        yield db


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


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        raise exc
    problems: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "header")]
        # The message only: pydantic's "input" would echo personal data back and into logs.
        problems.append({"field": ".".join(loc), "problem": err.get("msg", "")})
    base = BookingError("invalid_request", field=problems[0]["field"] if problems else None)
    body = base.to_dict()
    body["problems"] = problems
    return JSONResponse(status_code=422, content={"error": body})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BookingError, _booking_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
