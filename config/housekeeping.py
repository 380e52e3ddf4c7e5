"""The periodic upkeep: the schedule kept at the booking horizon, lapsed holds, no-shows, old
attempts, lost lottery draws and the daily erasure. Run on the web process's loop in the
embedded default (config.app), by one worker at a time under a Redis lock otherwise
(config.worker)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from booking import lottery_jobs, schedule, service
from config.retention import erase_expired_daily
from config.settings import Settings
from reminders import service as reminders

log = logging.getLogger(__name__)
HOUSEKEEPING_SECONDS = 300
NO_SHOW_AFTER = timedelta(minutes=15)


def housekeep(
    sessions: sessionmaker[Session],
    no_show_after: timedelta = NO_SHOW_AFTER,
    settings: Settings | None = None,
) -> None:
    """Keep the schedule at the booking horizon, give lapsed holds back to sale, mark the
    day's no-shows (their seats go to walk-ins), forget attempts older than any rate limit
    looks at, erase the numbers walk-ins left on past days' tickets, and once a day erase the
    personal data past its retention (with a record)."""
    with sessions() as db:
        schedule.extend_schedule(db)
        service.reclaim_expired_holds(db)
        service.mark_no_shows(db, late_after=no_show_after)
        service.forget_old_attempts(db)
        # A walk-in's number was left for the day's alerts only: gone once the day is over.
        service.erase_ticket_phones(db, before=db.info["booking"].today())
        reminders.erase_queue_alert_numbers(db)
        db.commit()
    lottery_jobs.draw_due(sessions)  # a draw whose job was lost (Redis restarted empty)
    if settings is not None:
        erase_expired_daily(sessions, settings)


async def housekeeping_loop(
    sessions: sessionmaker[Session], no_show_after: timedelta, settings: Settings
) -> None:
    """The upkeep every few minutes on this process's loop (its work on a thread: it blocks)."""
    while True:
        await asyncio.sleep(HOUSEKEEPING_SECONDS)
        try:
            await asyncio.to_thread(housekeep, sessions, no_show_after, settings)
        except Exception:  # keep serving; the next round tries again
            log.exception("housekeeping failed")
