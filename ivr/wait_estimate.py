"""How long a caller in the agents' queue will wait: from the last hour's answered calls of
that queue, the rate at which agents took callers from it.

The core (``estimate_wait``) is pure: it takes answer times and waits in seconds, so the
benchmark (bench/bench_wait_estimate.py) runs the very function the phone line uses against
simulated queues. ``queue_wait_estimate`` reads the answers from the calls table.

Chosen by measurement (bench/README.md, "The wait estimate"): the caller at place k waits
about k answers, and the queue's answers come at the rate measured since the first answer of
the hour (not over the whole hour: when booking opens, the hour is mostly empty). The naive
estimate, the mean wait of the hour's answered calls, lags a queue that grows (the jam) by
the whole backlog.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from booking.context import context
from ivr.models import Call

WINDOW_SECONDS = 3600.0
# Fewer answers than this in the hour: too few to know the rate, so no estimate is said.
MIN_ANSWERS = 3
# The answers' span is never taken as shorter than this (three answers a second apart are
# not a rate of one a second).
MIN_SPAN_SECONDS = 60.0
# Past 15 minutes the estimate is said in 5-minute steps; past an hour, as "over an hour".
FINE_MINUTES = 15
STEP_MINUTES = 5
LONGEST_MINUTES = 60


@dataclass(frozen=True)
class Answer:
    """A caller an agent took from the queue: when (seconds on any clock) and after how long."""

    at: float
    waited: float


def estimate_wait(
    position: int,
    answers: Sequence[Answer],
    *,
    now: float,
    window: float = WINDOW_SECONDS,
    min_answers: int = MIN_ANSWERS,
) -> float | None:
    """Seconds the caller at ``position`` (1 = next) will still wait: ``position`` answers at
    the rate measured since the window's first answer; None when the window holds too few."""
    times = sorted(a.at for a in answers if now - window <= a.at <= now)
    if len(times) < min_answers:
        return None
    span = max(now - times[0], MIN_SPAN_SECONDS)
    rate = (len(times) - 1) / span  # the gaps between answers, and the one still running
    return max(1, position) / rate


def mean_wait(
    answers: Sequence[Answer],
    *,
    now: float,
    window: float = WINDOW_SECONDS,
    min_answers: int = MIN_ANSWERS,
) -> float | None:
    """The naive estimate the benchmark compares with: the mean wait of the window's answered
    calls, whatever the caller's place."""
    waits = [a.waited for a in answers if now - window <= a.at <= now]
    if len(waits) < min_answers:
        return None
    return sum(waits) / len(waits)


def hour_rate_wait(
    position: int,
    answers: Sequence[Answer],
    *,
    now: float,
    window: float = WINDOW_SECONDS,
    min_answers: int = MIN_ANSWERS,
) -> float | None:
    """Another the benchmark measured: ``position`` answers at the whole window's rate."""
    count = sum(1 for a in answers if now - window <= a.at <= now)
    if count < min_answers:
        return None
    return max(1, position) / (count / window)


def spoken_minutes(seconds: float) -> int:
    """The estimate as it is said: 0 for "less than a minute", whole minutes rounded up to 15,
    then up to 5-minute steps; more than LONGEST_MINUTES for "over an hour"."""
    if seconds < 60:
        return 0
    minutes = math.ceil(seconds / 60)
    if minutes > FINE_MINUTES:
        minutes = math.ceil(minutes / STEP_MINUTES) * STEP_MINUTES
    return minutes


def queue_answers(db: DbSession, *, queue: str, since: datetime) -> list[tuple[datetime, float]]:
    """The queue's answered calls since ``since``: when each was answered, after how long."""
    rows = db.execute(
        select(Call.answered_at, Call.enqueued_at).where(
            Call.queue == queue, Call.answered_at >= since, Call.answered_at.is_not(None)
        )
    ).all()
    return [
        (answered, max(0.0, (answered - (enqueued or answered)).total_seconds()))
        for answered, enqueued in rows
        if answered is not None
    ]


def queue_wait_estimate(db: DbSession, *, queue: str, position: int) -> float | None:
    """Seconds the caller at ``position`` in ``queue`` will still wait, from the last hour's
    answered calls of that queue; None when the hour holds too few answers."""
    now = context(db).now()
    since = now - timedelta(seconds=WINDOW_SECONDS)
    found = queue_answers(db, queue=queue, since=since)
    answers = [Answer((at - since).total_seconds(), waited) for at, waited in found]
    return estimate_wait(position, answers, now=WINDOW_SECONDS)
