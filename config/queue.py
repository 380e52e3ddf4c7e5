"""Where jobs run: RQ on Redis (``RqJobs``, with `madoguchi worker`), or a thread inside the web
process (``InlineJobs``, the embedded default with no Redis configured). Both take the same job
functions by name, so the embedded default sends exactly what a worker would."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import uuid
from datetime import UTC, datetime

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job, JobStatus
from rq.utils import import_attribute

log = logging.getLogger(__name__)
WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


# The longest any one Redis command may take outside a worker's blocking wait. A web process
# never waits even this long on a request (its wakes go through ``Waker``); it bounds how long
# the waker, the pump's watcher and housekeeping are held up by a Redis that froze.
REDIS_TIMEOUT_SECONDS = 0.5


def redis_connection(url: str) -> Redis:
    """Short timeouts: a Redis that is down or frozen holds nothing up for long (what the jobs
    are for is in the database; the next pump finds it)."""
    return Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


class RqJobs:
    """Jobs on RQ: ``run_at`` goes to RQ's scheduler (a worker started with it moves the job to
    its queue on time). A Redis that cannot be reached is logged, not raised: what the job was
    for is in the database, and the next pump finds it."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def _waiting(self, job_id: str) -> bool:
        try:
            status = Job.fetch(job_id, connection=self.redis).get_status(refresh=False)
        except Exception:  # no such job (rq raises NoSuchJobError), or an unreadable one
            return False
        return status in WAITING

    def run_at(self, at: datetime, func: str, *args: object, job_id: str, queue: str) -> None:
        try:
            if not self._waiting(job_id):
                Queue(queue, connection=self.redis).enqueue_at(
                    at, func, *args, job_id=job_id, result_ttl=600, failure_ttl=7 * 86400
                )
        except RedisError as exc:
            log.warning("Redis unreachable, job %s waits for the next pump: %s", job_id, exc)

    def run_soon(self, func: str, *args: object, job_id: str, queue: str) -> None:
        try:
            if not self._waiting(job_id):
                Queue(queue, connection=self.redis).enqueue(
                    func, *args, job_id=job_id, result_ttl=600, failure_ttl=7 * 86400
                )
        except RedisError as exc:
            log.warning("Redis unreachable, job %s waits for the next pump: %s", job_id, exc)

    def wake(self, func: str, *, queue: str) -> None:
        try:
            waiting = Queue(queue, connection=self.redis)
            if waiting.count == 0:  # else a run not yet started will see every commit so far
                waiting.enqueue(
                    func, job_id=f"{queue}-{uuid.uuid4().hex}", result_ttl=60, failure_ttl=86400
                )
        except RedisError as exc:
            log.warning("Redis unreachable, %s waits for its next round: %s", func, exc)


class InlineJobs:
    """The same jobs on one thread of this process, each at its time: no Redis needed."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, str, str, tuple[object, ...]]] = []
        self._waiting: set[str] = set()
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._work, name="madoguchi-jobs", daemon=True)

    def start(self) -> InlineJobs:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=10)

    def run_at(self, at: datetime, func: str, *args: object, job_id: str, queue: str) -> None:
        with self._wake:
            if job_id in self._waiting:
                return
            self._waiting.add(job_id)
            heapq.heappush(self._heap, (at, next(self._order), job_id, func, args))
            self._wake.notify()

    def run_soon(self, func: str, *args: object, job_id: str, queue: str) -> None:
        self.run_at(datetime.now(UTC), func, *args, job_id=job_id, queue=queue)

    def wake(self, func: str, *, queue: str) -> None:
        now = datetime.now(UTC)
        with self._wake:
            # A run due now will see every commit so far; one armed for later (the next
            # round of the pump) will not, soon enough.
            if any(f == func and at <= now for at, _, _, f, _ in self._heap):
                return
        self.run_soon(func, job_id=f"{queue}-{uuid.uuid4().hex}", queue=queue)

    def _next(self) -> tuple[str, str, tuple[object, ...]] | None:
        with self._wake:
            while not self._stopped:
                if self._heap:
                    wait = (self._heap[0][0] - datetime.now(UTC)).total_seconds()
                    if wait <= 0:
                        _, _, job_id, func, args = heapq.heappop(self._heap)
                        self._waiting.discard(job_id)
                        return job_id, func, args
                    self._wake.wait(timeout=min(wait, 60))
                else:
                    self._wake.wait(timeout=60)
            return None

    def _work(self) -> None:
        while (job := self._next()) is not None:
            job_id, func, args = job
            try:
                result = import_attribute(func)(*args)
                log.info("job %s: %s", job_id, result)
            except Exception:  # one job failing must not stop the others
                log.exception("job %s failed", job_id)


# A job to arm: at (None for now, WAKE for a wake), the function, its arguments, the queue.
WAKE = datetime.min.replace(tzinfo=UTC)
Arming = tuple[datetime | None, str, tuple[object, ...], str]


class Waker:
    """Arms jobs from a thread of its own, so that a request that committed a booking answers at
    once whatever Redis is doing: down, restarting or frozen (``kill -STOP``), it costs the
    request nothing. An arming already waiting here is not queued twice; past ``most`` waiting,
    new ones are dropped and logged: the pump's own rounds find what they were for."""

    def __init__(self, jobs: RqJobs | InlineJobs, *, most: int = 10_000) -> None:
        self.jobs = jobs
        self.most = most
        self._waiting: dict[str, Arming] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def run_at(self, at: datetime, func: str, *args: object, job_id: str, queue: str) -> None:
        self._put(job_id, (at, func, args, queue))

    def run_soon(self, func: str, *args: object, job_id: str, queue: str) -> None:
        self._put(job_id, (None, func, args, queue))

    def wake(self, func: str, *, queue: str) -> None:
        self._put(f"wake:{func}", (WAKE, func, (), queue))

    def pending(self) -> int:
        with self._wake:
            return len(self._waiting)

    def _put(
        self, job_id: str, arming: tuple[datetime | None, str, tuple[object, ...], str]
    ) -> None:
        with self._wake:
            if job_id in self._waiting:
                return
            if len(self._waiting) >= self.most:
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    log.warning("%d job armings dropped: Redis is not keeping up", self.dropped)
                return
            self._waiting[job_id] = arming
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="madoguchi-waker", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._waiting:
                    self._wake.wait()
                job_id = next(iter(self._waiting))
                at, func, args, queue = self._waiting.pop(job_id)
            try:
                if at is WAKE:
                    self.jobs.wake(func, queue=queue)
                elif at is None:
                    self.jobs.run_soon(func, *args, job_id=job_id, queue=queue)
                else:
                    self.jobs.run_at(at, func, *args, job_id=job_id, queue=queue)
            except Exception:  # one arming failing must not stop the others
                log.exception("arming job %s failed", job_id)
