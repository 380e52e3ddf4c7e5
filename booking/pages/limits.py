"""Per-client limits on the pages' lookups, holds and bookings: a clear message, not a wall.

Counted in the database (web processes keep nothing between requests); the client is a keyed
hash of its address, so no address is stored.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request

from booking import service
from booking.pages.render import language_of
from booking.web import unit_of_work


def _limits(request: Request) -> dict[str, tuple[int, timedelta]]:
    settings = request.app.state.settings
    return {
        "lookup": (settings.web_lookups_per_15_minutes, timedelta(minutes=15)),
        "book": (settings.web_bookings_per_hour, timedelta(hours=1)),
    }


def over_limit(request: Request, kind: str) -> str | None:
    """Count this attempt; the message to show when the client has tried too often."""
    limit, window = _limits(request)[kind]
    address = request.client.host if request.client else "unknown"
    with unit_of_work(request) as db:
        client = db.info["booking"].vault.digest(f"client:{address}")
        allowed = service.note_attempt(db, client=client, kind=kind, limit=limit, window=window)
        db.commit()
    if allowed:
        return None
    message: str = request.app.state.languages.gettext(
        language_of(request),
        "Too many tries from this device. Please wait %(minutes)s minutes and try again, "
        "or call the My Number card call center.",
    )
    return message % {"minutes": int(window.total_seconds() // 60)}
