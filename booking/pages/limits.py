"""Per-client limits on the pages' lookups and bookings: a clear message, not a wall."""

from __future__ import annotations

from fastapi import Request

from booking.pages.render import language_of
from booking.web import over_attempt_limit


def over_limit(request: Request, kind: str) -> str | None:
    """Count this attempt; the message to show when the client has tried too often."""
    minutes = over_attempt_limit(request, kind)
    if minutes is None:
        return None
    message: str = request.app.state.languages.gettext(
        language_of(request),
        "Too many tries from this device. Please wait %(minutes)s minutes and try again, "
        "or call the My Number card call center.",
    )
    return message % {"minutes": minutes}
