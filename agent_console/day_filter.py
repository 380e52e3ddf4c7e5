"""What part of a venue's day the manager looks at: some services, and slots starting within a
time range. Read from the page's query (so a filtered view can be bookmarked and is kept
across a change); a value that cannot be read is left out with a note, never an error."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import time

from booking.context import TOKYO
from booking.service import SlotDay

NOON = time(12, 0)
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::\d{2})?")
_SHOWN_IN_NOTE = 20  # characters of a value that could not be read, quoted back


@dataclass(frozen=True)
class DayFilter:
    """The services shown (none chosen: all of them) and the slots' starting times shown:
    from ``start`` (inclusive) until ``end`` (exclusive); None is open-ended."""

    services: tuple[str, ...] = ()
    start: time | None = None
    end: time | None = None
    notes: tuple[str, ...] = ()

    def shows(self, slot: SlotDay) -> bool:
        """True if the slot is in the chosen services and starts within the time range."""
        if self.services and slot.service_id not in self.services:
            return False
        starts = slot.starts_at.astimezone(TOKYO).time()
        if self.start is not None and starts < self.start:
            return False
        return self.end is None or starts < self.end

    @property
    def active(self) -> bool:
        return bool(self.services) or self.start is not None or self.end is not None

    def query(self) -> list[tuple[str, str]]:
        """The filter as query parameters (and hidden fields of the forms that come back)."""
        pairs = [("service", s) for s in self.services]
        if self.start is not None:
            pairs.append(("from", self.start.strftime("%H:%M")))
        if self.end is not None:
            pairs.append(("to", self.end.strftime("%H:%M")))
        return pairs

    def with_times(self, start: time | None, end: time | None) -> DayFilter:
        """The same services over another time range (the morning / afternoon shortcuts)."""
        return DayFilter(services=self.services, start=start, end=end)


def _quoted(value: str) -> str:
    cut = value[:_SHOWN_IN_NOTE]
    return f"「{cut}{'…' if len(value) > _SHOWN_IN_NOTE else ''}」"


def _clock(value: str) -> time | None:
    """A time of day typed as 9:00, 09:00 or 09:00:00 (what a time input sends), or None."""
    found = _TIME.fullmatch(value.strip())
    if found is None:
        return None
    hour, minute = int(found.group(1)), int(found.group(2))
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def read_filter(
    *, services: Iterable[str], start: str, end: str, known: Mapping[str, str]
) -> DayFilter:
    """The filter from the page's query. ``known`` names the services by id; an unknown
    service, an unreadable time or a range that ends before it starts is left out, with a
    note saying so."""
    notes: list[str] = []
    chosen: list[str] = []
    for service in services:
        if service in known:
            if service not in chosen:
                chosen.append(service)
        elif service:
            notes.append(f"用件{_quoted(service)}はないため、用件では絞り込んでいません。")
    times: list[time | None] = []
    for value, name in ((start, "開始"), (end, "終了")):
        read = _clock(value) if value.strip() else None
        if value.strip() and read is None:
            notes.append(
                f"{name}の時刻{_quoted(value)}を読めないため、使っていません（09:30 の形で）。"
            )
        times.append(read)
    begin, until = times
    if begin is not None and until is not None and until <= begin:
        notes.append(
            f"終了（{until:%H:%M}）が開始（{begin:%H:%M}）より前のため、時間では絞り込んでいません。"
        )
        begin = until = None
    return DayFilter(services=tuple(chosen), start=begin, end=until, notes=tuple(notes))
