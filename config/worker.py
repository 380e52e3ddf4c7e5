"""Wiring for the jobs: Twilio's API, the reminders' runtime, the outbox hook that wakes the
pump after a commit, and `madoguchi worker` (an RQ worker with RQ's scheduler)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.exceptions import DeserializationError, StopRequested
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq.scheduler import RQScheduler
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from booking import lottery_jobs
from booking import service as booking
from booking.jobs import Jobs
from calendar_sync import jobs as calendar_jobs
from calendar_sync.caldav_target import CalDavTarget
from config.housekeeping import HOUSEKEEPING_SECONDS, housekeep
from config.keys import load_twilio_token
from config.logs import configure_logging, running_job
from config.queue import REDIS_TIMEOUT_SECONDS, RqJobs, redis_connection
from config.settings import Settings
from ivr.line_api import LineApi
from ivr.telephony import LogOnly, PhoneApi, TwilioApi
from reminders import jobs as reminder_jobs
from reminders.jobs import MESSAGES_QUEUE, OUTBOX_QUEUE, Runtime
from reminders.models import Message
from reminders.pacing import Pace, Pacer, SharedPace
from reminders.service import ReminderRules

log = logging.getLogger(__name__)
QUEUES = (OUTBOX_QUEUE, MESSAGES_QUEUE, calendar_jobs.QUEUE, lottery_jobs.QUEUE)
# How often a worker whose scheduler holds no lock tries to take one (a lock lapses a minute
# after the worker that held it died).
SCHEDULER_RETRY_SECONDS = 15
NO_REDIS = (
    "MADOGUCHI_REDIS_URL is not set: without Redis, `madoguchi serve` runs the jobs itself "
    "and no worker is needed"
)


def reminder_rules(settings: Settings) -> ReminderRules:
    return ReminderRules(
        day_before_at=settings.reminder_day_before_at,
        morning_at=settings.reminder_morning_at,
        quiet_from=settings.quiet_from,
        quiet_until=settings.quiet_until,
        site_url=settings.public_base_url,
    )


def phone_api(settings: Settings) -> PhoneApi:
    """Twilio's REST API, or the logging stand-in without an account and a number."""
    if not (settings.twilio_account_sid and settings.twilio_from_number):
        return LogOnly()
    return TwilioApi(
        account_sid=settings.twilio_account_sid,
        auth_token=load_twilio_token(settings, announce=False),
        from_number=settings.twilio_from_number,
        base_url=settings.twilio_api_base,
        timeout=settings.twilio_timeout_seconds,
    )


def reminders_runtime(settings: Settings, sessions: sessionmaker[Session], jobs: Jobs) -> Runtime:
    return Runtime(
        sessions=sessions,
        rules=reminder_rules(settings),
        jobs=jobs,
        phone=phone_api(settings),
        public_base_url=settings.public_base_url,
        claim_timeout=timedelta(seconds=settings.reminder_claim_timeout_seconds),
        pump_every=timedelta(seconds=settings.reminder_pump_seconds),
        pace=sending_pace(settings),
        line=line_api(settings),
    )


def line_api(settings: Settings) -> LineApi | None:
    """The LINE channel's Messaging API for pushes, when the channel is on."""
    if not settings.line_channel_access_token:
        return None
    return LineApi(
        access_token=settings.line_channel_access_token.get_secret_value(),
        base_url=settings.line_api_base,
        timeout_seconds=settings.line_timeout_seconds,
    )


def sending_pace(settings: Settings) -> Pacer | None:
    """The sending number's cap: shared by every worker through Redis, or this process's own
    (the embedded default); None without a cap."""
    per_second = settings.twilio_sends_per_second
    if per_second <= 0:
        return None
    if settings.redis_url:
        redis = redis_connection(settings.redis_url)
        return SharedPace(redis, settings.twilio_from_number, per_second)
    return Pace(per_second)


def calendar_runtime(
    settings: Settings, sessions: sessionmaker[Session], jobs: Jobs
) -> calendar_jobs.Runtime | None:
    """The satellite counters' calendar push, when a CalDAV server is configured."""
    if not settings.caldav_url:
        return None
    target = CalDavTarget(
        url=settings.caldav_url,
        username=settings.caldav_username,
        password=settings.caldav_password.get_secret_value() if settings.caldav_password else "",
    )
    venues = tuple(v.strip() for v in settings.caldav_venues.split(",") if v.strip())
    if not venues:
        with sessions() as db:
            venues = tuple(v.id for v in booking.list_venues(db) if v.kind in ("branch", "popup"))
    return calendar_jobs.Runtime(
        sessions=sessions,
        jobs=jobs,
        target=target,
        venues=venues,
        days=settings.caldav_days,
        every=timedelta(minutes=settings.caldav_push_minutes),
    )


def wake_pump_after_commit(
    sessions: sessionmaker[Session], jobs: Jobs, *, calendars: bool = False
) -> None:
    """After any commit that wrote a booking event or a message, run the pump at once (the
    booking service knows no queue; this hook is how its outbox is heard); with satellite
    calendars configured, push them too."""

    def flushed(session: Session, _context: Any, _instances: Any) -> None:
        if any(isinstance(o, Message) for o in session.new):
            session.info["wake_pump"] = True

    def committed(session: Session) -> None:
        wrote_outbox = session.info.pop(booking.OUTBOX_WRITTEN, False)
        if session.info.pop("wake_pump", False) or wrote_outbox:
            reminder_jobs.wake_pump(jobs)
        if wrote_outbox and calendars:
            calendar_jobs.wake(jobs)

    def rolled_back(session: Session) -> None:
        session.info.pop("wake_pump", None)
        session.info.pop(booking.OUTBOX_WRITTEN, None)

    event.listen(sessions, "before_flush", flushed)
    event.listen(sessions, "after_commit", committed)
    event.listen(sessions, "after_rollback", rolled_back)


def _pump_stalled(redis: Redis, every: float) -> bool:
    """No pump waiting to run, or the next one overdue (RQ's scheduler is not running: its
    lock is still held by a worker that was killed, until the lock expires)."""
    queue = Queue(OUTBOX_QUEUE, connection=redis)
    if queue.count or StartedJobRegistry(queue=queue).count:
        return False
    registry = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
    earliest = redis.zrange(registry.key, 0, 0, withscores=True)
    return not earliest or float(earliest[0][1]) < time.time() - 2 * every


def _watch_pump(redis: Redis, jobs: Jobs, stop: threading.Event, every: float) -> None:
    """Keep the outbox pump going when RQ cannot: after Redis restarted empty (the chain of
    pump runs is gone) or while its scheduler is stalled. The pump re-arms every due message,
    so nothing waits on the scheduler for long."""
    while not stop.wait(max(5.0, every)):
        try:
            if _pump_stalled(redis, every):
                log.warning("the outbox pump is not armed or overdue: running it now")
                reminder_jobs.wake_pump(jobs)
        except RedisError as exc:
            log.warning("Redis unreachable: %s", exc)


def _housekeeping(
    redis: Redis, sessions: sessionmaker[Session], settings: Settings, stop: threading.Event
) -> None:
    """The periodic upkeep (schedule horizon, lapsed holds, no-shows, the daily erasure) when
    the service runs as web processes plus workers: one worker at a time runs it (a Redis lock
    per database), every few minutes, starting at once."""
    lock = (
        "madoguchi:housekeeping:"
        + hashlib.sha256(settings.sqlalchemy_url.encode()).hexdigest()[:16]
    )
    late = timedelta(minutes=settings.no_show_after_minutes)
    while True:
        try:
            if redis.set(lock, str(os.getpid()), nx=True, ex=int(HOUSEKEEPING_SECONDS * 0.8)):
                housekeep(sessions, late, settings)
        except RedisError as exc:
            log.warning("Redis unreachable, housekeeping skipped: %s", exc)
        except Exception:  # keep working; the next round tries again
            log.exception("housekeeping failed")
        if stop.wait(HOUSEKEEPING_SECONDS):
            return


def _schedule(redis: Redis, stop: threading.Event) -> None:
    """RQ's scheduler (jobs armed for later moved to their queue on time), on a thread of this
    worker rather than the forked process RQ would start: a worker killed with -9 leaves no
    orphan behind, and its lock lapses in a minute for another worker's scheduler to take."""
    scheduler = RQScheduler(QUEUES, connection=redis, interval=1)
    outage = False
    last_try = 0.0
    while not stop.is_set():
        try:
            mine = scheduler.acquired_locks
            if set(QUEUES) - mine and time.monotonic() - last_try > SCHEDULER_RETRY_SECONDS:
                last_try = time.monotonic()
                scheduler.acquire_locks()  # type: ignore[no-untyped-call]
            if scheduler.acquired_locks:
                scheduler.heartbeat()  # type: ignore[no-untyped-call]
                scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
            if outage:
                log.info("Redis answers again: scheduling resumed")
                outage = False
        except RedisError as exc:
            if not outage:  # once per outage, not once a second
                log.warning("Redis unreachable, scheduling waits: %s", exc)
                outage = True
            last_try = 0.0  # Redis may have come back empty: take the locks again
        except Exception:  # keep scheduling; the next round tries again
            log.exception("scheduling failed")
        stop.wait(1)
    with contextlib.suppress(RedisError):
        scheduler.release_locks()  # type: ignore[no-untyped-call]


PUBSUB_WAKE_SECONDS = 1.0


class _Worker(SimpleWorker):
    """RQ's SimpleWorker that tells ``run_worker`` it was asked to stop: RQ's own flag stays
    unset when the signal comes while idle, and its check of the worker's state fails while
    Redis is away (the stop must hold all the same)."""

    stopping: threading.Event

    def execute_job(self, job: Job, queue: Queue) -> None:
        # RQ's own lines about the job (done, failed, its traceback) are written in here too.
        with running_job(job.id, _function_of(job)):
            super().execute_job(job, queue)

    def subscribe(self) -> None:
        """RQ's command channel (kill a job, stop the worker), its thread waking every second:
        RQ's own wakes every 60 s, and a worker's stop waits for that thread, so a stopped
        worker could take up to a minute to exit (a deploy's restart, systemd's stop)."""
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=PUBSUB_WAKE_SECONDS,
            daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )

    def request_stop(self, signum: int, frame: Any) -> None:
        self.stopping.set()
        try:
            super().request_stop(signum, frame)  # type: ignore[no-untyped-call]
        except RedisError as exc:
            raise StopRequested from exc


def _function_of(job: Job) -> str | None:
    """The job's function (``reminders.jobs.send_message``); None when its payload is unreadable
    (RQ then fails the job and says why)."""
    try:
        return job.func_name
    except (DeserializationError, ValueError, TypeError):
        return None


def _until_redis_answers(redis: Redis, stop: threading.Event) -> None:
    """Wait, with growing pauses, until Redis answers (or the worker is told to stop)."""
    pause = 0.5
    while not stop.is_set():
        try:
            redis.ping()
            return
        except RedisError:
            stop.wait(pause)
            pause = min(pause * 2, 10.0)


def _stop_on_signals(stop: threading.Event) -> None:
    """Between two runs of RQ's loop, SIGTERM and SIGINT stop the worker (RQ's own handlers ask
    Redis for the worker's state, which fails while Redis is away)."""

    def stopping(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)


def _give_jobs_their_runtime(
    settings: Settings, sessions: sessionmaker[Session], jobs: RqJobs
) -> None:
    """Every package's jobs get what they work with, and the pumps are woken."""
    lottery_jobs.use(sessions)
    reminder_jobs.use(reminders_runtime(settings, sessions, jobs))
    reminder_jobs.wake_pump(jobs)
    calendar_jobs.use(calendar_runtime(settings, sessions, jobs))
    if calendar_jobs.configured():
        calendar_jobs.wake(jobs)


def _helper_threads(
    settings: Settings,
    sessions: sessionmaker[Session],
    redis: Redis,
    jobs: RqJobs,
    stop: threading.Event,
) -> list[threading.Thread]:
    """The worker's side threads: the pump's watch, housekeeping and RQ's scheduler (on a
    connection of its own)."""
    redis_url = settings.redis_url or ""
    return [
        threading.Thread(
            target=_watch_pump,
            args=(redis, jobs, stop, float(settings.reminder_pump_seconds)),
            daemon=True,
        ),
        threading.Thread(target=_housekeeping, args=(redis, sessions, settings, stop), daemon=True),
        threading.Thread(target=_schedule, args=(redis_connection(redis_url), stop), daemon=True),
    ]


def run_worker(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    burst: bool = False,
    on_start: Callable[[], None] | None = None,
) -> None:
    """An RQ worker on the outbox and message queues, with RQ's scheduler on a thread. It rides
    out a Redis outage of any length: RQ's loop gives up on a Redis error in the middle of a job
    (its heartbeat fails), so it is started again, on a new worker, once Redis answers."""
    if not settings.redis_url:
        raise SystemExit(NO_REDIS)
    if settings.log_format == "json":
        # The root's JSON handler, before RQ sets up its loggers: RQ then adds no handler of its
        # own (it adds one only when no handler would hear its records) and its lines are JSON.
        # In text, RQ's own handlers write its lines as they always have.
        configure_logging(settings.log_level, settings.log_format)
    redis = redis_connection(settings.redis_url)
    jobs = RqJobs(redis)
    _give_jobs_their_runtime(settings, sessions, jobs)
    stop = threading.Event()
    helpers = _helper_threads(settings, sessions, redis, jobs, stop)
    for helper in helpers:
        helper.start()
    if on_start is not None:
        on_start()
    # RQ's loop blocks on Redis for minutes at a time, with a socket timeout to match (RQ sets
    # it on this connection): a connection of its own, not the one the helpers share.
    rq_redis = Redis.from_url(settings.redis_url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
    try:
        while not stop.is_set():
            # SimpleWorker: jobs run in this process, sharing its database pool (a forked
            # child must not reuse the parent's connections); a crash is what claims are for.
            # Maintenance every 30 s (not RQ's 10 min) cleans up after workers that died.
            worker = _Worker(
                [Queue(q, connection=rq_redis) for q in QUEUES],
                connection=rq_redis,
                maintenance_interval=30,
            )
            worker.stopping = stop
            try:
                worker.work(burst=burst, logging_level=settings.log_level)
            except RedisError as exc:  # RQ's own clean-up failed too: Redis is away
                log.warning("Redis unreachable: %s", exc)
            except StopRequested:
                return
            if burst or stop.is_set():
                return
            _stop_on_signals(stop)
            log.warning("the worker's loop ended on a Redis fault: starting again once it answers")
            _until_redis_answers(rq_redis, stop)
    finally:
        stop.set()
