"""The RQ job that keeps each satellite counter's CalDAV calendar in step: after booking
changes (woken after commit) and every few minutes. Each run puts, bumps or deletes only the
difference between what the calendar should hold and what was last put there, recording each
event as it lands; a server that goes down mid-way leaves the rest for the next run, which is
armed sooner (a retry) and converges."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from booking import service as booking
from booking.jobs import Jobs
from calendar_sync import service
from calendar_sync.caldav_target import CalendarUnavailable

log = logging.getLogger(__name__)
PUSH = "calendar_sync.jobs.push"
QUEUE = "calendar"
RETRY_AFTER = timedelta(seconds=30)


class Target(Protocol):
    def put(self, venue_id: str, name: str, ical: bytes) -> None: ...

    def delete(self, venue_id: str, name: str, uid: str) -> None: ...


@dataclass(frozen=True)
class Runtime:
    sessions: sessionmaker[Session]
    jobs: Jobs
    target: Target
    venues: tuple[str, ...]  # the satellite counters whose calendars are kept
    days: int = 14
    every: timedelta = timedelta(minutes=5)
    retry_after: timedelta = RETRY_AFTER


_runtime: Runtime | None = None


def use(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("calendar_sync.jobs.use() was not called in this process")
    return _runtime


def configured() -> bool:
    return _runtime is not None


def _now() -> datetime:
    return datetime.now(UTC)


def wake(jobs: Jobs) -> None:
    """Push soon (after a booking change)."""
    jobs.wake(PUSH, queue=QUEUE)


def _arm(rt: Runtime, after: timedelta, why: str) -> None:
    at = _now() + after
    bucket = int(at.timestamp() // max(1, int(after.total_seconds())))
    rt.jobs.run_at(at, PUSH, job_id=f"caldav-{why}-{bucket}", queue=QUEUE)


def push_venue(rt: Runtime, venue_id: str) -> tuple[int, int]:
    """Bring one counter's calendar in step: (events put, events deleted)."""
    with rt.sessions() as db:
        plan = service.plan_push(db, venue_id=venue_id, days=rt.days)
        name = booking.venue_or_404(db, venue_id).name_ja
    put = deleted = 0
    for event, sequence in plan.puts:
        rt.target.put(venue_id, name, event.ical(sequence, _now()))
        with rt.sessions() as db:  # recorded as it lands: a crash after this loses nothing
            service.record_put(db, venue_id=venue_id, event=event, sequence=sequence)
            db.commit()
        put += 1
    for uid in plan.deletes:
        rt.target.delete(venue_id, name, uid)
        with rt.sessions() as db:
            service.record_delete(db, venue_id=venue_id, uid=uid)
            db.commit()
        deleted += 1
    return put, deleted


def push() -> str:
    """Every satellite counter's calendar in step; on a server error, try again soon."""
    rt = runtime()
    done: list[str] = []
    try:
        for venue_id in rt.venues:
            put, deleted = push_venue(rt, venue_id)
            done.append(f"{venue_id} +{put} -{deleted}")
    except CalendarUnavailable as down:
        log.warning("CalDAV server unavailable, pushing again in %s: %s", rt.retry_after, down)
        _arm(rt, rt.retry_after, "retry")
        return f"unavailable after {', '.join(done) or 'nothing'}: {down}"
    _arm(rt, rt.every, "every")
    return ", ".join(done)
