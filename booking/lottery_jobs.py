"""The lottery's draw as an RQ job: armed for the draw time when a manager keeps sessions for a
lottery, with one job id per lottery. The database is the truth: the lottery row is claimed in
the draw's own transaction, so the job does its work once however many times it is enqueued or
run (at the same moment on two workers too), and the housekeeping draws any lottery whose job
was lost (Redis restarted empty)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from booking import lottery
from booking.jobs import Jobs

log = logging.getLogger(__name__)
DRAW = "booking.lottery_jobs.draw"
QUEUE = "lottery"

_sessions: sessionmaker[Session] | None = None


def use(sessions: sessionmaker[Session]) -> None:
    """Give this process's draw jobs their database (the worker does this at start)."""
    global _sessions
    _sessions = sessions


def arm(jobs: Jobs, *, lottery_id: int, at: datetime) -> None:
    """The draw job at the draw time (after the commit that made the lottery)."""
    jobs.run_at(at, DRAW, lottery_id, job_id=f"lottery-draw-{lottery_id}", queue=QUEUE)


def draw(lottery_id: int) -> str:
    """Draw one lottery if its time has come and it is not drawn yet; commit."""
    if _sessions is None:
        raise RuntimeError("booking.lottery_jobs.use() was not called in this process")
    with _sessions() as db:
        outcome = lottery.run_draw(db, lottery_id=lottery_id)
        db.commit()
    if outcome is None:
        return "nothing to draw"
    won, lost = len(outcome.won), len(outcome.lost)
    log.info("lottery %s drawn: %d won, %d not drawn", lottery_id, won, lost)
    return f"drawn: {won} won, {lost} not drawn"


def draw_due(sessions: sessionmaker[Session]) -> int:
    """Draw every lottery whose time has passed (the housekeeping's catch-up), each in its own
    transaction; how many were drawn."""
    with sessions() as db:
        ids = lottery.due(db)
    drawn = 0
    for lottery_id in ids:
        with sessions() as db:
            drawn += lottery.run_draw(db, lottery_id=lottery_id) is not None
            db.commit()
    return drawn
