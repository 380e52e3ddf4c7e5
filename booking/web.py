"""What every package's routers share: the per-request database session and the error shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session as DbSession

from booking.errors import BookingError


def db_session(request: Request) -> Iterator[DbSession]:
    """One session per request. Routes that write call ``commit()`` themselves before answering,
    so a 2xx always means committed; anything else is rolled back when the session closes."""
    factory = request.app.state.sessions
    with factory() as db:
        yield db


def _booking_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, BookingError):
        raise exc
    return JSONResponse(status_code=exc.status, content={"error": exc.to_dict()})


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
