"""Crowding in public (混雑状況) and the counter's call screen (呼出表示).

- ``/crowding`` and ``/crowding/<venue>``: residents see, before they set out, how many are
  waiting, the estimated wait with its colour band (and the band in words), the walk-in seats
  left today and when the figures were read. The pages reload themselves (a meta refresh); with
  JavaScript, ``crowding.js`` fetches the JSON instead, more often, without reloading.
- ``/crowding.json`` and ``/crowding/<venue>.json``: the same figures for the ward's own site
  (any origin may GET them; fields in the README).
- ``/signage/<venue>``: a screen at the counter with the numbers being called, very large, in
  every language of the pages at once. Queue numbers only: never a name, a phone number or a
  booking code.

Each process reuses a venue's figures for a few seconds (``FreshFor``), so a flood of readers
costs one read per venue per few seconds; a reader arriving while the figures are being read
waits for that read rather than starting another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session as DbSession

from booking import service
from booking.context import TOKYO
from booking.crowding import Band, Thresholds, VenueCrowding, venue_crowding
from booking.errors import BookingError
from booking.localized import name_of
from booking.pages.i18n import ICON_URI, Languages
from booking.pages.render import language_of, not_found, page
from booking.web import json_response, read_only_unit

router = APIRouter(include_in_schema=False)
T = TypeVar("T")
VENUES_KEY = ""  # the cache's key for the list of venues (no venue id is empty)
# The pages reload themselves this often without JavaScript; with it, they fetch the JSON.
PAGE_REFRESH_SECONDS = 60
PAGE_POLL_SECONDS = 15
SIGNAGE_POLL_SECONDS = 3
# The band in words, by band: what the pages say beside the colour.
BAND_WORDS: dict[Band, str] = {
    "blue": "Short wait",
    "yellow": "Somewhat crowded",
    "red": "Crowded",
}


class FreshFor(Generic[T]):
    """Values read at most once per key every ``seconds``, per process."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, T]] = {}
        self._reading: dict[str, threading.Lock] = {}

    def get(self, key: str, read: Callable[[], T]) -> T:
        """The value kept for ``key`` if read less than ``seconds`` ago, else ``read()``'s."""
        kept = self._fresh(key)
        if kept is not None:
            return kept[1]
        with self._lock:
            reading = self._reading.setdefault(key, threading.Lock())
        # One reader per key: the others wait for its value rather than read the same again.
        with reading:
            kept = self._fresh(key)
            if kept is not None:
                return kept[1]
            value = read()
            with self._lock:
                self._values[key] = (self.clock(), value)
            return value

    def forget(self) -> None:
        with self._lock:
            self._values.clear()

    def _fresh(self, key: str) -> tuple[float, T] | None:
        with self._lock:
            kept = self._values.get(key)
        if kept is not None and self.clock() - kept[0] < self.seconds:
            return kept
        return None


@dataclass
class VenueName:
    """What the pages need of a venue: its id and its names (booking.localized.Described;
    not frozen, as that protocol's fields are plain attributes)."""

    id: str
    name_ja: str
    name_en: str
    texts: dict[str, dict[str, str]]


def crowding_cache(request: Request) -> FreshFor[Any]:
    """The application's cache of venues and their figures, made on first use."""
    state = request.app.state
    cache: FreshFor[Any] | None = getattr(state, "crowding_cache", None)
    if cache is None:
        seconds = float(getattr(state.settings, "crowding_cache_seconds", 5.0))
        cache = state.crowding_cache = FreshFor(seconds)
    return cache


def thresholds_of(request: Request) -> Thresholds:
    settings = request.app.state.settings
    return Thresholds(settings.crowding_blue_minutes, settings.crowding_red_minutes)


def venues(request: Request) -> list[VenueName]:
    """The active venues in display order (kept as the figures are)."""

    def read() -> list[VenueName]:
        with read_only_unit(request) as db:
            return [
                VenueName(v.id, v.name_ja, v.name_en, dict(v.texts or {}))
                for v in service.list_venues(db)
            ]

    found: list[VenueName] = crowding_cache(request).get(VENUES_KEY, read)
    return found


def figures(request: Request, venue_id: str) -> VenueCrowding:
    """A known venue's crowding, read at most once per few seconds per process."""
    return ward_figures(request, [venue_id])[venue_id]


def ward_figures(request: Request, venue_ids: list[str]) -> dict[str, VenueCrowding]:
    """Known venues' crowding, each read at most once per few seconds per process; those not
    kept are read in one session (opened only if one is needed)."""
    cache = crowding_cache(request)
    with ExitStack() as opened:
        session: list[DbSession] = []

        def read(venue_id: str) -> VenueCrowding:
            if not session:
                session.append(opened.enter_context(read_only_unit(request)))
            return venue_crowding(session[0], venue_id=venue_id)

        return {v: cache.get(v, partial(read, v)) for v in venue_ids}


def venue_named(request: Request, venue_id: str) -> VenueName:
    """A venue by id; only known ids reach the cache of figures."""
    for venue in venues(request):
        if venue.id == venue_id:
            return venue
    raise BookingError("unknown_venue")


# --- the JSON for the ward's own site ---------------------------------------------------------


class VenueCrowdingOut(BaseModel):
    venue_id: str
    name: dict[str, str]  # by language
    waiting: int
    estimated_wait_minutes: int
    band: Literal["blue", "yellow", "red"]
    band_label: dict[str, str]  # the band in words, by language
    now_calling: list[int]
    remaining_walk_in_seats: int
    updated_at: datetime  # Tokyo time, with its offset
    page: str  # the venue's crowding page on this site


class ThresholdsOut(BaseModel):
    blue_at_most_minutes: int
    red_at_least_minutes: int


class WardCrowdingOut(BaseModel):
    updated_at: datetime | None  # the oldest of the venues' figures
    thresholds: ThresholdsOut
    venues: list[VenueCrowdingOut]


def venue_out(
    request: Request, venue: VenueName, found: VenueCrowding, thresholds: Thresholds
) -> VenueCrowdingOut:
    languages: Languages = request.app.state.languages
    codes = list(languages.environments)
    band = found.band(thresholds)
    return VenueCrowdingOut(
        venue_id=venue.id,
        name={code: name_of(venue, code) for code in codes},
        waiting=found.waiting,
        estimated_wait_minutes=found.wait_minutes,
        band=band,
        band_label={code: languages.gettext(code, BAND_WORDS[band]) for code in codes},
        now_calling=list(found.now_calling),
        remaining_walk_in_seats=found.seats_left,
        updated_at=found.read_at.astimezone(TOKYO),
        page=f"/crowding/{venue.id}",
    )


def thresholds_out(thresholds: Thresholds) -> ThresholdsOut:
    return ThresholdsOut(
        blue_at_most_minutes=thresholds.blue_at_most,
        red_at_least_minutes=thresholds.red_at_least,
    )


def public(response: Response, request: Request) -> Response:
    """Figures anyone may read and keep as long as this process does: any site may fetch them
    (a GET without credentials), and a proxy may answer for us meanwhile."""
    seconds = int(crowding_cache(request).seconds)
    response.headers["access-control-allow-origin"] = "*"
    response.headers["cache-control"] = f"public, max-age={seconds}"
    return response


@router.get("/crowding.json")
def ward_json(request: Request) -> Response:
    """Every venue's crowding, for the ward's own site."""
    thresholds = thresholds_of(request)
    listed = venues(request)
    found = ward_figures(request, [v.id for v in listed])
    out = [venue_out(request, v, found[v.id], thresholds) for v in listed]
    body = WardCrowdingOut(
        updated_at=min((v.updated_at for v in out), default=None),
        thresholds=thresholds_out(thresholds),
        venues=out,
    )
    return public(json_response(body), request)


@router.get("/crowding/{venue_id}.json")
def venue_json(request: Request, venue_id: str) -> Response:
    """One venue's crowding, for the ward's own site (404 for an unknown venue)."""
    venue = venue_named(request, venue_id)
    found = venue_out(request, venue, figures(request, venue_id), thresholds_of(request))
    return public(json_response(found), request)


# --- the resident pages -----------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """A venue's crowding as a page shows it."""

    venue: VenueName
    figures: VenueCrowding
    band: Band
    band_words: str


def shown(
    request: Request, venue: VenueName, found: VenueCrowding, thresholds: Thresholds
) -> Shown:
    languages: Languages = request.app.state.languages
    band = found.band(thresholds)
    return Shown(venue, found, band, languages.gettext(language_of(request), BAND_WORDS[band]))


def _crowding_page(
    request: Request, venues_shown: list[Shown], poll: str, one: VenueName | None
) -> HTMLResponse:
    """The page, updating itself unless the visitor stopped it (``?still=1``)."""
    thresholds = thresholds_of(request)
    read_at = min((s.figures.read_at for s in venues_shown), default=None)
    response = page(
        request,
        "crowding.html",
        shown=venues_shown,
        one=one,
        thresholds=thresholds,
        read_at=read_at,
        poll=poll,
        poll_seconds=PAGE_POLL_SECONDS,
        refresh=PAGE_REFRESH_SECONDS,
        still="still" in request.query_params,
        tokyo=TOKYO,
    )
    return response


@router.get("/crowding", response_class=HTMLResponse)
def ward_page(request: Request) -> HTMLResponse:
    """Every venue's crowding on one page."""
    thresholds = thresholds_of(request)
    every = venues(request)
    found = ward_figures(request, [v.id for v in every])
    listed = [shown(request, v, found[v.id], thresholds) for v in every]
    return _crowding_page(request, listed, "/crowding.json", None)


@router.get("/crowding/{venue_id}", response_class=HTMLResponse)
def venue_page(request: Request, venue_id: str) -> HTMLResponse:
    """One venue's crowding."""
    try:
        venue = venue_named(request, venue_id)
    except BookingError as error:
        return not_found(request, error)
    listed = [shown(request, venue, figures(request, venue_id), thresholds_of(request))]
    return _crowding_page(request, listed, f"/crowding/{venue_id}.json", venue)


# --- the counter's call screen ----------------------------------------------------------------


@router.get("/signage/{venue_id}", response_class=HTMLResponse)
def signage(request: Request, venue_id: str) -> HTMLResponse:
    """The numbers being called at a venue, for a screen across the room: every language the
    ward offers on its pages at once, the page's (Japanese by default) first and largest."""
    try:
        venue = venue_named(request, venue_id)
    except BookingError as error:
        return not_found(request, error)
    languages: Languages = request.app.state.languages
    first = language_of(request)
    codes = [first] + [code for code in languages.environments if code != first]
    words = {
        code: {
            "calling": languages.gettext(code, "Numbers being called"),
            "none": languages.gettext(code, "No number is being called"),
            "waiting": languages.gettext(code, "People waiting at the counter"),
            "name": name_of(venue, code),
        }
        for code in codes
    }
    # The venue's name in the other languages, each name once (Chinese and やさしい日本語 may
    # write it as Japanese does).
    other_names: list[tuple[str, str]] = []
    for code in codes[1:]:
        name = words[code]["name"]
        if name != words[first]["name"] and name not in (n for _, n in other_names):
            other_names.append((code, name))
    found = figures(request, venue_id)
    html = languages.render(
        first,
        "signage.html",
        venue=venue,
        figures=found,
        words=words,
        codes=codes,
        other_names=other_names,
        poll=f"/crowding/{venue_id}.json",
        poll_seconds=SIGNAGE_POLL_SECONDS,
        refresh=PAGE_REFRESH_SECONDS,
        tokyo=TOKYO,
        icon=ICON_URI,
    )
    return HTMLResponse(html)
