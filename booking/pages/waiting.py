"""The waiting room at the door of the booking pages and the booking API (an ASGI middleware).

A request to a guarded address with a valid pass (a signed cookie; renewed on every guarded
answer, so it lasts while the resident is active) goes through without a word to Redis. One
without asks the line (booking.waiting_room) once: let in, it gets its pass; else the waiting
page, which reads nothing from PostgreSQL (the ward's name only if this process already knows
it) and refreshes itself without JavaScript. The API answers 503 with the place and Retry-After.

Redis away: residents are let through (logged), without a pass, so they are asked again next
time. A line that cannot be reached must not close the booking; the engine still refuses every
seat past capacity, and the per-client limits still hold.

Not guarded: the phone line (callers have their own queue), the console (agents booking for
callers), static files, health and metrics, a booking's own pages (look-up, cancel, the done
page): only what shows or takes free seats.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeTimedSerializer
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from booking.errors import BookingError
from booking.localized import WardInfo
from booking.pages.i18n import Languages
from booking.pages.render import language_of
from booking.pages.ward import cache_of, in_language
from booking.waiting_room import Place, WaitingRoom

log = logging.getLogger(__name__)
VISITOR_COOKIE = "wr_id"
PASS_COOKIE = "wr_pass"  # noqa: S105 (a cookie's name)
VISITOR_MAX_AGE = 24 * 3600
# The API's addresses that show or take seats, by method.
GUARDED_API = {
    ("GET", "/api/v1/availability"),
    ("POST", "/api/v1/holds"),
    ("POST", "/api/v1/bookings"),
}
# The refresh interval of the waiting page: when the visitor's turn is due (the estimate is the
# line's own arithmetic), at most half a minute apart, never a hammering.
REFRESH_LEAST, REFRESH_MOST = 3, 30
LOG_EVERY_SECONDS = 60.0
STILL = "still"  # the query parameter of the waiting page that stops its reloading


def guarded(method: str, path: str) -> bool:
    """The booking pages (choosing, holding, booking, moving) and the API's seat routes."""
    if path.startswith("/api/"):
        return (method, path) in GUARDED_API or (
            method == "POST"
            and path.startswith("/api/v1/bookings/")
            and path.endswith("/reschedule")
        )
    return path == "/" or path.startswith(("/book/", "/hold", "/manage/move"))


def refresh_seconds(place: Place) -> int:
    """The estimated wait, between 3 and 30 seconds."""
    return min(REFRESH_MOST, max(REFRESH_LEAST, place.wait_seconds))


@dataclass(frozen=True)
class Door:
    """The pass's signer and lifetime, from the app's keys and settings."""

    signer: URLSafeTimedSerializer
    pass_seconds: int

    def valid(self, token: str | None) -> bool:
        if not token:
            return False
        try:
            self.signer.loads(token, max_age=self.pass_seconds)
        except BadSignature:
            return False
        return True

    def pass_cookie(self, visitor: str) -> str:
        return _cookie(PASS_COOKIE, self.signer.dumps(visitor), self.pass_seconds)


def _cookie(name: str, value: str, max_age: int) -> str:
    return f"{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax"


def _cookies(scope: Scope) -> dict[str, str]:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # an unreadable cookie header is no pass
                return {}
            return {key: morsel.value for key, morsel in jar.items()}
    return {}


class WaitingRoomDoor:
    """The middleware; does nothing while the app has no waiting room (no Redis)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._logged = -LOG_EVERY_SECONDS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not guarded(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        room: WaitingRoom | None = getattr(state, "waiting_room", None)
        if room is None:
            await self.app(scope, receive, send)
            return
        door: Door = state.waiting_door
        cookies = _cookies(scope)
        visitor = cookies.get(VISITOR_COOKIE) or secrets.token_urlsafe(16)
        if door.valid(cookies.get(PASS_COOKIE)):
            await self._through(scope, receive, send, [door.pass_cookie(visitor)])
            return
        try:
            place = await room.enter(visitor)
        except (RedisError, OSError, TimeoutError) as exc:
            self._unreachable(exc)
            await self.app(scope, receive, send)
            return
        kept = _cookie(VISITOR_COOKIE, visitor, VISITOR_MAX_AGE)
        if place.admitted:
            await self._through(scope, receive, send, [kept, door.pass_cookie(visitor)])
            return
        answer = waiting_answer(Request(scope), place)
        answer.raw_headers.append((b"set-cookie", kept.encode("latin-1")))
        await answer(scope, receive, send)

    async def _through(
        self, scope: Scope, receive: Receive, send: Send, cookies: list[str]
    ) -> None:
        async def with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *((b"set-cookie", c.encode("latin-1")) for c in cookies),
                ]
            await send(message)

        await self.app(scope, receive, with_cookies)

    def _unreachable(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY_SECONDS:
            self._logged = now
            log.warning("waiting room: Redis unreachable, residents let through: %s", exc)


def waiting_answer(request: Request, place: Place) -> Response:
    """The waiting page, or for the API a 503 with the place and when to come back."""
    refresh = refresh_seconds(place)
    # The place's number in the line (arrival order as the line saw it), for machines.
    number = {"X-Line-Number": str(place.number)}
    if request.url.path.startswith("/api/"):
        body: dict[str, Any] = BookingError("waiting_room").to_dict()
        body |= {"position": place.position, "wait_seconds": place.wait_seconds}
        headers = {"Retry-After": str(refresh), **number}
        return JSONResponse({"error": body}, status_code=503, headers=headers)
    return HTMLResponse(waiting_page(request, place, refresh), headers=number)


def waiting_page(request: Request, place: Place, refresh: int) -> str:
    """The page in the visitor's language; no database (booking.pages.ward's cache only). It
    reloads itself unless the visitor turned that off (?still=1: WCAG 2.2.1 asks that a page
    that refreshes itself can be stopped)."""
    languages: Languages = request.app.state.languages
    language = language_of(request)
    ward = cache_of(request).get(WardInfo, may_read=False)
    here = request.url.path if request.method == "GET" else "/"
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != STILL]
    query = "?" + urlencode(kept) if request.method == "GET" and kept else ""
    still = request.method == "GET" and request.query_params.get(STILL) == "1"
    switch = {code: f"{here}?lang={code}" for code in languages.environments if code != language}
    minutes = max(1, -(-place.wait_seconds // 60))
    return languages.render(
        language,
        "waiting.html",
        switch=switch,
        ward=in_language(ward, language),
        place=place,
        minutes=minutes,
        refresh=None if still else refresh,
        again=here + query + (("&" if query else "?") + f"{STILL}=1" if still else ""),
        still=here + query + ("&" if query else "?") + f"{STILL}=1",
        moving=here + query,
        pass_minutes=request.app.state.waiting_door.pass_seconds // 60,
    )
