"""The read replica (MADOGUCHI_DATABASE_READ_URL): where the reads that are only shown go, and
what it says of itself to `madoguchi doctor` and /readyz.

While the replica answers, shown reads go there; while it does not, they go to the primary
(read-only, as without a replica), so a resident's calendar still renders during an outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

# While the replica is down, one request in this many seconds tries it again (the others go
# straight to the primary): an unreachable host then costs one request its connect timeout per
# period, not every request.
RETRY_SECONDS = 10.0
# libpq's least: a replica whose host drops packets fails a request's checkout in 2 s, not
# after the kernel's two minutes of SYN retries.
CONNECT_TIMEOUT_SECONDS = 2


class ShownReads:
    """Sessions for the reads that are only shown (calendar marks, free times, feeds): the
    replica's while it answers, else the primary's, read-only either way. An outage is logged
    once as it starts and once as it ends, never per request."""

    def __init__(
        self,
        replica: sessionmaker[Session] | None,
        *,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replica = replica
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_try = 0.0

    @property
    def replica_down(self) -> bool:
        """Whether the last try of the replica failed (shown reads go to the primary)."""
        return self._down_since is not None

    def __call__(self, primary: sessionmaker[Session]) -> Session:
        """A session for one request's shown reads; the caller closes it. ``primary``: the
        app's own sessions, asked of the app on each request (tests put theirs there)."""
        if self.replica is not None and self._may_try():
            db = self.replica()
            try:
                # The connection leaves the pool now (pre-pinged there), so a replica that is
                # down shows here, before the route has read anything.
                db.connection()
            except DBAPIError as exc:
                db.close()
                self._failed(exc)
            else:
                self._answered()
                return db
        db = primary()
        if db.get_bind().dialect.name == "postgresql":
            # Set as the connection leaves the pool, before the transaction begins: no round
            # trip (psycopg sends BEGIN READ ONLY with the first statement).
            db.connection(execution_options={"postgresql_readonly": True})
        return db

    def _may_try(self) -> bool:
        if self._down_since is None:
            return True
        with self._lock:
            now = self._clock()
            if now < self._next_try:
                return False
            self._next_try = now + self.retry_seconds  # this request tries; the others wait
            return True

    def _failed(self, exc: DBAPIError) -> None:
        with self._lock:
            now = self._clock()
            self._next_try = now + self.retry_seconds
            if self._down_since is not None:
                return
            self._down_since = now
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
        log.warning(
            "the read replica does not answer (%s: %s): shown reads go to the primary until "
            "it does, tried again every %g s",
            type(exc.orig).__name__,
            reason,
            self.retry_seconds,
        )

    def _answered(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is None:
                return
            lasted = self._clock() - self._down_since
            self._down_since = None
        log.info("the read replica answers again after %.0f s: shown reads go back to it", lasted)


# --- what the replica says of itself ----------------------------------------------------------


@dataclass(frozen=True)
class ReplicaState:
    """A replica's own answer: a standby replaying the primary's WAL, how far behind."""

    in_recovery: bool
    paused: bool
    # Seconds between the last transaction replayed and now, 0 when everything received has
    # been replayed (an idle primary sends nothing, and is not lag); None when it cannot tell.
    lag_seconds: float | None


# pg_is_wal_replay_paused() raises outside recovery: each CASE asks it only of a standby.
STATE = text(
    "SELECT pg_is_in_recovery(),"
    " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END,"
    " CASE WHEN NOT pg_is_in_recovery() THEN NULL"
    "      WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    "      ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END"
)


def replica_state(conn: Connection) -> ReplicaState:
    """Ask the replica whether it is a standby, replaying, and how far behind."""
    in_recovery, paused, lag = conn.execute(STATE).one()
    return ReplicaState(bool(in_recovery), bool(paused), None if lag is None else float(lag))
