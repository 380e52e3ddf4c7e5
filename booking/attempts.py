"""Attempt limits: how often one client (a keyed hash of a web address or a calling number) may
look a booking up or try to book within a window, and the housekeeping of old attempts.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as DbSession

from booking import fairness
from booking.context import context
from booking.models import ClientAttempt
from booking.seats import rowcount

# The longest window any attempt limit looks back over, and a margin.
ATTEMPTS_KEPT = timedelta(days=1)


def forget_old_attempts(db: DbSession) -> int:
    """Housekeeping: attempts older than any limit's window, from every client."""
    result = db.execute(
        delete(ClientAttempt).where(ClientAttempt.at < context(db).now() - ATTEMPTS_KEPT)
    )
    fairness.forget_old_cancels(db)  # and last month's cancellation counts
    return rowcount(result)


def note_attempt(db: DbSession, *, client: str, kind: str, limit: int, window: timedelta) -> bool:
    """Record one attempt by a client; False when it is over ``limit`` within ``window``."""
    now = context(db).now()
    # This client's own old rows only (the index covers it); everyone's go in housekeeping.
    db.execute(
        delete(ClientAttempt).where(
            ClientAttempt.client == client, ClientAttempt.at < now - ATTEMPTS_KEPT
        )
    )
    recent = db.execute(
        select(func.count())
        .select_from(ClientAttempt)
        .where(
            ClientAttempt.client == client,
            ClientAttempt.kind == kind,
            ClientAttempt.at > now - window,
        )
    ).scalar_one()
    if recent >= limit:
        return False
    db.add(ClientAttempt(client=client, kind=kind, at=now))
    db.flush()
    return True
