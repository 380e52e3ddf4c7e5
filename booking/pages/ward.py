"""Who runs the service, on every resident page: the ward's name and logo, its call center's
number and hours, who handles residents' data and what it asks of proxies and children, in the
page's language (booking/localized.py falls back to English, then Japanese).

The ward's profile is one row that changes when the ward re-installs its file: each process keeps
it a minute. A page rendered on the event loop (an async route's error answer) never reads the
database: it uses what the process last read, however old.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import phonenumbers
from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError

from booking import service
from booking.localized import Described, WardInfo, text_of
from booking.web import unit_of_work

FRESH_SECONDS = 60.0


@dataclass(frozen=True)
class WardPage:
    """The ward's words in one language, as the templates show them."""

    name: str
    logo: str  # an address for <img src>, or ''
    phone: str  # as Japanese readers write it: 03-1234-5678
    tel: str  # for a tel: link, E.164
    call_center: str
    hours: str
    handler: str
    privacy_contact: str
    proxy: str
    children: str


def national(number: str) -> str:
    """An E.164 number as written in Japan (03-1234-5678); as given when it is no number."""
    try:
        parsed = phonenumbers.parse(number, "JP")
    except phonenumbers.NumberParseException:
        return number
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL))


LOGO_TYPES = {".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg"}


@lru_cache(maxsize=8)
def logo_address(logo: str) -> str:
    """The logo's address for <img src>: a file of the pages' static folder goes inline (a data:
    address; one request fewer on a slow phone, and the pages stay light), else as given."""
    if not logo or logo.startswith("https://"):
        return logo
    parts = logo.strip("/").split("/")
    source = files("booking.pages").joinpath("static", *parts)
    kind = LOGO_TYPES.get(Path(logo).suffix.lower())
    if kind is None or ".." in parts or not source.is_file():
        return "/static/" + logo.lstrip("/")
    return f"data:{kind};base64," + base64.b64encode(source.read_bytes()).decode("ascii")


def in_language(info: WardInfo, language: str) -> WardPage:
    return WardPage(
        name=info.text("name", language),
        logo=logo_address(info.logo),
        phone=national(info.phone) if info.phone else "",
        tel=info.phone,
        call_center=info.text("call_center", language),
        hours=info.text("hours", language),
        handler=info.text("handler", language),
        privacy_contact=info.text("privacy_contact", language),
        proxy=info.text("proxy", language),
        children=info.text("children", language),
    )


class WardCache:
    """The ward's profile as last read, and when; one per application."""

    def __init__(
        self, fresh_seconds: float = FRESH_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.fresh_seconds = fresh_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._info: WardInfo | None = None
        self._read_at = 0.0

    def forget(self) -> None:
        """The next page reads the profile again (after the ward re-installs its file)."""
        with self._lock:
            self._info = None

    def get(self, read: Callable[[], WardInfo], *, may_read: bool) -> WardInfo:
        with self._lock:
            info, read_at = self._info, self._read_at
        if info is not None and (self.clock() - read_at < self.fresh_seconds or not may_read):
            return info
        if not may_read:
            return WardInfo()
        try:
            info = read()
        except SQLAlchemyError:
            # The database is what failed (a problem page is being drawn): last words or none.
            return self._info or WardInfo()
        with self._lock:
            self._info, self._read_at = info, self.clock()
        return info


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def cache_of(request: Request) -> WardCache:
    state = request.app.state
    cache: WardCache | None = getattr(state, "ward_cache", None)
    if cache is None:
        cache = state.ward_cache = WardCache()
    return cache


def ward_info(request: Request) -> WardInfo:
    """The ward's profile, read at most once a minute per process."""

    def read() -> WardInfo:
        with unit_of_work(request) as db:
            return service.ward_info(db)

    return cache_of(request).get(read, may_read=not _on_event_loop())


def retention_days(request: Request) -> int:
    settings = getattr(request.app.state, "settings", None)
    return int(getattr(settings, "retention_days", 0))


def page_context(request: Request, language: str) -> dict[str, Any]:
    """What every resident template may use: ``ward``, ``words_of(venue or service, field)``
    in the page's language, and the retention period in days."""

    def words_of(thing: Described, name: str) -> str:
        return text_of(thing, name, language)

    return {
        "ward": in_language(ward_info(request), language),
        "words_of": words_of,
        "retention_days": retention_days(request),
    }
