"""Fetching the ward's published calendar from its URL: a timeout on every request, and a few
tries (a GET is safe to repeat) when the ward's server is briefly down or busy."""

from __future__ import annotations

import time

import httpx

ATTEMPTS = 3
RETRY_STATUSES = {429, 500, 502, 503, 504}


class CalendarFetchFailed(Exception):
    """The calendar could not be fetched: the message says why, for the person importing."""


def fetch_calendar(url: str, *, timeout: float = 10.0, pause: float = 1.0) -> bytes:
    """The .ics at ``url`` (http or https), or CalendarFetchFailed after ``ATTEMPTS`` tries."""
    if not url.startswith(("https://", "http://")):
        raise CalendarFetchFailed("the address must start with https:// (or http://)")
    last = "no answer"
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(pause * attempt)
        try:
            answer = httpx.get(url, timeout=timeout, follow_redirects=True)
        except httpx.TimeoutException:
            last = f"no answer within {timeout:.0f} s"
            continue
        except httpx.TransportError as exc:
            last = f"could not connect ({type(exc).__name__})"
            continue
        if answer.status_code in RETRY_STATUSES:
            last = f"the server answered {answer.status_code}"
            continue
        if answer.status_code != 200:  # 404, 403...: trying again will not help
            raise CalendarFetchFailed(f"the server answered {answer.status_code}")
        return answer.content
    raise CalendarFetchFailed(f"{last}, after {ATTEMPTS} tries")
