"""Crowding at the counters (混雑状況), as the public pages and the counter's call screen show it:
per venue, how many are waiting, the estimated wait for someone arriving now, its colour band,
the numbers being called and the walk-in seats left today. Read only, from the day's queue
(booking.counter_queue); no personal data, only counts and queue numbers.

The colour band follows the lamps of Otsu and Tosu: blue when the wait is short, red when it is
long, yellow between; the thresholds are the ward's (settings). Pages always say the band in
words too: colour is never the only signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session as DbSession

from booking.counter_queue import venue_queue

Band = Literal["blue", "yellow", "red"]
BANDS: tuple[Band, ...] = ("blue", "yellow", "red")


@dataclass(frozen=True)
class Thresholds:
    """Blue at ``blue_at_most`` minutes or less, red at ``red_at_least`` or more, yellow between
    (the defaults are Otsu's and Tosu's lamps)."""

    blue_at_most: int = 20
    red_at_least: int = 40

    def __post_init__(self) -> None:
        if not 0 <= self.blue_at_most < self.red_at_least:
            raise ValueError("blue_at_most must be below red_at_least")

    def band(self, wait_minutes: int) -> Band:
        """The colour of an estimated wait."""
        if wait_minutes <= self.blue_at_most:
            return "blue"
        if wait_minutes >= self.red_at_least:
            return "red"
        return "yellow"


@dataclass(frozen=True)
class VenueCrowding:
    """One venue's counter right now, as it may be published."""

    venue_id: str
    waiting: int  # residents waiting to be called (walk-ins and checked-in bookings)
    wait_minutes: int  # the estimated wait for someone arriving now
    now_calling: tuple[int, ...]  # queue numbers being called, the latest first
    seats_left: int  # walk-in seats left today
    read_at: datetime  # when these were read (UTC)

    def band(self, thresholds: Thresholds) -> Band:
        return thresholds.band(self.wait_minutes)


def venue_crowding(db: DbSession, *, venue_id: str) -> VenueCrowding:
    """The venue's crowding now, from today's queue (one short read)."""
    queue = venue_queue(db, venue_id=venue_id)
    return VenueCrowding(
        venue_id=venue_id,
        waiting=len(queue.waiting),
        wait_minutes=queue.estimated_wait_minutes,
        now_calling=tuple(queue.now_calling),
        seats_left=queue.remaining_walk_in_seats,
        read_at=queue.at,
    )
