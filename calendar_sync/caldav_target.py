"""The satellite counters' CalDAV server (the `caldav` library): one calendar per venue under
the configured principal URL, events put and deleted by UID, with a timeout on every request.
caldav 1.x runs on `requests`; later majors bring niquests, whose urllib3-future replaces the
`urllib3` package itself (and so runs Twilio's client on a fork).
A server that cannot be reached raises ``CalendarUnavailable``: the push is tried again later,
and what was not pushed is still the difference then."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlsplit

from caldav.davclient import DAVClient
from caldav.lib import error as caldav_error
from icalendar import Calendar

log = logging.getLogger(__name__)
ICALENDAR = 'text/calendar; charset="utf-8"'


class CalendarUnavailable(Exception):
    """The CalDAV server did not answer or refused: push again later."""


class CalDavTarget:
    def __init__(self, *, url: str, username: str, password: str, timeout: int = 10) -> None:
        self.base = url.rstrip("/") + "/"
        # The client starts at the server's root: the principal is discovered from there (a
        # server may create it on first sight), and each venue's calendar is under ``url``.
        parts = urlsplit(self.base)
        self.client = DAVClient(
            url=f"{parts.scheme}://{parts.netloc}/",
            username=username or None,
            password=password or None,
            timeout=timeout,
        )
        self._calendars: dict[str, Any] = {}  # the library's Calendar objects

    def _calendar(self, venue_id: str, name: str) -> Any:
        """The counter's calendar, made (MKCALENDAR) under the principal the first time."""
        found = self._calendars.get(venue_id)
        if found is not None:
            return found
        found = self.client.calendar(url=f"{self.base}{venue_id}/")  # type: ignore[no-untyped-call]
        try:
            found.get_display_name()
        except caldav_error.NotFoundError:
            principal = self.client.principal()  # type: ignore[no-untyped-call]
            found = principal.make_calendar(name=name, cal_id=venue_id)
        self._calendars[venue_id] = found
        return found

    def put(self, venue_id: str, name: str, ical: bytes) -> None:
        """Create or replace the event with this UID (the server keys it by UID)."""
        try:
            # A plain PUT, verbatim: our SEQUENCE is the one to keep, and the library's save
            # always bumps it. The resource is named by the UID, as the library names it.
            calendar = self._calendar(venue_id, name)
            uid = str(Calendar.from_ical(ical).walk("VEVENT")[0]["UID"])
            url = str(calendar.url.join(quote(uid.replace("/", "%2F")) + ".ics"))
            answer = self.client.put(url, ical.decode(), {"Content-Type": ICALENDAR})
            if answer.status not in (200, 201, 204):
                raise CalendarUnavailable(f"PUT answered {answer.status}")
        except CalendarUnavailable:
            raise
        except Exception as exc:  # any transport or server error: not pushed, try later
            raise CalendarUnavailable(f"{type(exc).__name__}: {exc}"[:200]) from exc

    def delete(self, venue_id: str, name: str, uid: str) -> None:
        """Delete the event with this UID; one already gone is fine."""
        try:
            self._calendar(venue_id, name).event_by_uid(uid).delete()
        except caldav_error.NotFoundError:
            return
        except Exception as exc:
            raise CalendarUnavailable(f"{type(exc).__name__}: {exc}"[:200]) from exc

    def uids(self, venue_id: str, name: str) -> dict[str, int]:
        """UID to SEQUENCE of every event on the counter's calendar (for checks and tests)."""
        try:
            events = self._calendar(venue_id, name).events()
        except caldav_error.NotFoundError:
            return {}
        except Exception as exc:
            raise CalendarUnavailable(f"{type(exc).__name__}: {exc}"[:200]) from exc
        out: dict[str, int] = {}
        for event in events:
            component = event.icalendar_component
            out[str(component["uid"])] = int(component.get("sequence", 0))
        return out
