"""What a request that went wrong answers, in the language of the part of the service it asked:
the JSON error shape under /api/v1 (and the machines' routes), TwiML that apologises and offers
a person under /ivr/, the staff's page under /console, and the residents' page everywhere else.

- A malformed request (an unknown path, a method the path does not take, a value the route
  cannot read) is a 4xx in that language.
- An unexpected error is logged once, with a request id that the answer also carries (the
  ``X-Request-ID`` header, and the page or body), so a resident's or an agent's report can be
  matched to the log. While the database is down it is a 503 with Retry-After, not a 500.

The request id is the proxy's ``X-Request-ID`` when it sent a sane one (nginx's $request_id),
else one made here.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from booking.web import Problem

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
# How long a client waits before trying again while the database is away.
RETRY_AFTER_SECONDS = 30
# Starlette's and FastAPI's own refusals (400: a body that cannot be read), in our words.
_HTTP_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}


Render = Callable[[Request, Problem], Response]


@dataclass(frozen=True)
class Answers:
    """Which renderer answers for which part of the service: the longest matching prefix."""

    by_prefix: Sequence[tuple[str, Render]]
    default: Render

    def render(self, request: Request, problem: Problem) -> Response:
        path = request.url.path
        chosen = self.default
        longest = -1
        for prefix, render in self.by_prefix:
            if (path == prefix.rstrip("/") or path.startswith(prefix)) and len(prefix) > longest:
                chosen, longest = render, len(prefix)
        try:
            response = chosen(request, problem)
        except Exception:  # the page itself failed: the plainest answer that still helps
            log.exception("the error page for request %s failed", problem.request_id)
            response = Response(
                f"{problem.status} (request {problem.request_id})\n",
                status_code=problem.status,
                media_type="text/plain",
            )
        if problem.status == 503:
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response.headers[REQUEST_ID_HEADER] = problem.request_id
        return response


def database_unavailable(error: BaseException) -> bool:
    """The database cannot be reached or is too busy (a 503 to try again), not a fault here."""
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    return isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated


def request_id(scope: Scope) -> str:
    """This request's id: made once, kept in the scope for every later reader."""
    state: dict[str, Any] = scope.setdefault("state", {})
    found = state.get("request_id")
    if isinstance(found, str):
        return found
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            given = str(value.decode("latin-1"))
            if _SANE_ID.fullmatch(given):
                state["request_id"] = given
                return given
    made = secrets.token_hex(8)
    state["request_id"] = made
    return made


class UnexpectedErrors:
    """Catches what no route handled, logs it once and answers in the route's own language. Sits
    inside Starlette's last-resort handler, which would answer plain text and log it again."""

    def __init__(self, app: ASGIApp, answers: Answers) -> None:
        self.app = app
        self.answers = answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                if not any(name == REQUEST_ID_HEADER.encode() for name, _ in headers):
                    headers.append((REQUEST_ID_HEADER.encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as error:
            unavailable = database_unavailable(error)
            # The path only: a query string may hold what a resident typed.
            log.error(
                "request %s: %s %s failed%s",
                rid,
                scope.get("method", ""),
                scope.get("path", ""),
                " (the database is unavailable)" if unavailable else "",
                exc_info=error,
            )
            if started:  # the answer is half sent: nothing more can be said on it
                return
            problem = Problem(
                503 if unavailable else 500,
                "service_unavailable" if unavailable else "server_error",
                rid,
            )
            response = self.answers.render(Request(scope, receive), problem)
            await response(scope, receive, sending)


def install(app: FastAPI, answers: Answers) -> None:
    """The error answers for the whole app: malformed requests and unexpected errors."""

    def malformed(request: Request, error: Exception) -> Response:
        if not isinstance(error, RequestValidationError):
            raise error
        fields = []
        for problem in error.errors():
            where = [str(p) for p in problem.get("loc", ()) if p not in ("body", "query", "header")]
            # The message only: pydantic's "input" would echo personal data back and into logs.
            fields.append({"field": ".".join(where), "problem": str(problem.get("msg", ""))})
        found = Problem(422, "invalid_request", request_id(request.scope), tuple(fields))
        return answers.render(request, found)

    def http_error(request: Request, error: Exception) -> Response:
        if not isinstance(error, HTTPException):
            raise error
        code = _HTTP_CODES.get(error.status_code)
        if code is None:  # a status a route chose on purpose: its own words
            return Response(str(error.detail), status_code=error.status_code, headers=error.headers)
        response = answers.render(
            request, Problem(error.status_code, code, request_id(request.scope))
        )
        for name, value in (error.headers or {}).items():
            response.headers[name] = value
        return response

    app.add_exception_handler(RequestValidationError, malformed)
    app.add_exception_handler(HTTPException, http_error)
    app.add_middleware(UnexpectedErrors, answers=answers)
