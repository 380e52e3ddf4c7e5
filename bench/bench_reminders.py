#!/usr/bin/env python3
"""How fast residents' messages are planned and sent: the time to schedule reminders for
10,000 bookings (outbox -> message rows -> jobs in RQ's scheduler), and messages dispatched
per second by one worker against a local fake of Twilio's REST API.

Needs PostgreSQL and Redis (the CI machine's by default). See --help and bench/README.md.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import text
from sqlalchemy.engine import URL
from tqdm import tqdm

from booking import schedule
from booking import service as booking
from booking.service import ResidentInput
from config.app import session_factory
from config.migrate import throwaway_database
from config.queue import RqJobs, Waker, redis_connection
from config.sample import sample_ward
from config.settings import Settings
from config.worker import wake_pump_after_commit
from ivr.fake_twilio import FakeTwilio
from ivr.telephony import TwilioApi
from reminders import jobs
from reminders import service as reminders
from reminders.jobs import MESSAGES_QUEUE, Runtime
from reminders.pacing import Pace
from reminders.service import ReminderRules

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
WORKER = "from config.cli import main; raise SystemExit(main(['worker']))"
RULES = ReminderRules(clock_time(18), None, quiet_from=clock_time(0), quiet_until=clock_time(0))


def bench_settings(url: URL) -> Settings:
    """The settings of a throwaway database, with keys of its own."""
    return Settings(
        environment="test",
        database_url=url.render_as_string(hide_password=False),
        data_keys=Fernet.generate_key().decode(),
        lookup_key=secrets.token_urlsafe(32),
    )


def campaign_ward(settings: Settings) -> None:
    """The sample ward in a card campaign's month: ten times its seats, so 10,000 residents fit."""
    sessions = session_factory(settings)
    with sessions() as db:
        schedule.install_ward(db, sample_ward())
        schedule.extend_schedule(db)
        db.execute(text("UPDATE slot SET capacity = capacity * 10"))
        db.commit()
    sessions.kw["bind"].dispose()


def make_bookings(settings: Settings, count: int) -> None:
    """``count`` bookings by mobile phone, spread over the whole booking window."""
    campaign_ward(settings)
    sessions = session_factory(settings)
    with sessions() as db:
        free = [
            (s.id, s.remaining)
            for s in booking.availability(db, service_id="application_help", limit=100_000)
        ]
    seats = [slot for slot, remaining in free for _ in range(remaining)]
    if len(seats) < count:
        raise SystemExit(f"only {len(seats)} free seats for {count} bookings")
    step = len(seats) / count
    with sessions() as db:
        for n in tqdm(range(count), desc="booking", unit="booking"):
            phone = f"+8190{10_000_000 + n:08d}"
            resident = ResidentInput("ヨテイ ハナコ", phone, date(1970, 1, 1))
            booking.book(
                db, slot_id=seats[int(n * step)], party=1, resident=resident, channel="web"
            )
            if n % 200 == 199:
                db.commit()
        db.commit()
    sessions.kw["bind"].dispose()


def schedule_all(rt: Runtime) -> tuple[float, float, int]:
    """Plan every outbox event into messages and arm a job for each: (planning s, arming s,
    messages)."""
    planning = arming = 0.0
    made = 0
    while True:
        started = time.perf_counter()
        with rt.sessions() as db:
            planned = reminders.plan_from_outbox(db, rt.rules, limit=1000)
            db.commit()
        planning += time.perf_counter() - started
        if planned.events == 0:
            return planning, arming, made
        started = time.perf_counter()
        jobs.arm_all(rt, [reminders.Later(message_id, at) for message_id, at in planned.due])
        arming += time.perf_counter() - started
        made += len(planned.due)


def dispatch(rt: Runtime, redis: Redis, twilio: FakeTwilioProcess, count: int) -> tuple[int, float]:
    """One worker sends ``count`` due confirmations, armed as the pump arms them (in batches of
    ``rt.batch_size`` due together; 1: a job per message, one at a time, as before batches):
    (messages Twilio took, seconds taken)."""
    queue = Queue(MESSAGES_QUEUE, connection=redis)
    # Only these: the confirmations' jobs armed when planning are taken out of the queue.
    queue.empty()  # type: ignore[no-untyped-call]
    with rt.sessions() as db:
        due = reminders.due_message_ids(db, limit=count)
    jobs.arm_all(rt, due)
    worker = SimpleWorker([queue], connection=redis)
    before = twilio.sent()
    started = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    seconds = time.perf_counter() - started
    return twilio.sent() - before, seconds


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def confirmation_lag(
    settings: Settings,
    twilio: FakeTwilio,
    redis_url: str,
    *,
    rate: float,
    seconds: float,
    workers: int,
) -> tuple[int, float, float, float, float]:
    """Book at ``rate`` per second for ``seconds``, one commit each (each wakes the pump, as
    the web does), with ``workers`` real `madoguchi worker` processes sending: the delay from
    each booking's commit to its confirmation's acceptance by Twilio. Returns (confirmations,
    achieved booking rate, p50, p90, max lag in seconds)."""
    env = {
        **os.environ,
        "MADOGUCHI_ENVIRONMENT": "test",
        "MADOGUCHI_DATABASE_URL": settings.database_url,
        "MADOGUCHI_REDIS_URL": redis_url,
        "MADOGUCHI_DATA_KEYS": settings.data_keys,
        "MADOGUCHI_LOOKUP_KEY": settings.lookup_key,
        "MADOGUCHI_PUBLIC_BASE_URL": "https://madoguchi.example.jp",
        "MADOGUCHI_TWILIO_ACCOUNT_SID": twilio.account_sid,
        "MADOGUCHI_TWILIO_AUTH_TOKEN": "fake-token",
        "MADOGUCHI_TWILIO_FROM_NUMBER": "+81353334111",
        "MADOGUCHI_TWILIO_API_BASE": twilio.base_url,
        "MADOGUCHI_QUIET_FROM": "00:00",
        "MADOGUCHI_QUIET_UNTIL": "00:00",
        "MADOGUCHI_LOG_LEVEL": os.environ.get("LAG_LOG", "WARNING"),
    }
    log_dir = Path(tempfile.mkdtemp(prefix="madoguchi-lag-"))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from config.cli import main; raise SystemExit(main(['worker']))",
            ],
            env=env,
            stdout=(log_dir / f"worker-{n}.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for n in range(workers)
    ]
    sessions = session_factory(settings)
    waker = Waker(RqJobs(redis_connection(redis_url)))
    wake_pump_after_commit(sessions, waker)
    try:
        time.sleep(2)  # the workers start
        with sessions() as db:
            free = [
                (s.id, s.remaining)
                for s in booking.availability(db, service_id="pin_reset", limit=100_000)
            ]
        seats = [slot for slot, remaining in free for _ in range(remaining)]
        count = int(rate * seconds)
        ids = []
        started = time.perf_counter()
        for n in tqdm(range(count), desc=f"booking at {rate:.0f}/s", unit="booking", mininterval=1):
            due = started + n / rate
            if (pause := due - time.perf_counter()) > 0:
                time.sleep(pause)
            with sessions() as db:
                resident = ResidentInput(
                    "ヨテイ ハナコ", f"+8180{20_000_000 + n:08d}", date(1970, 1, 1)
                )
                made = booking.book(
                    db, slot_id=seats[n * 7 % len(seats)], party=1, resident=resident, channel="web"
                )
                db.commit()
                ids.append(made.id)
        achieved = count / (time.perf_counter() - started)
        deadline = time.monotonic() + float(os.environ.get("LAG_WAIT", 300))
        query = text(
            "SELECT EXTRACT(EPOCH FROM m.updated_at - b.created_at) FROM message m "
            "JOIN booking b ON b.id = m.booking_id WHERE m.kind = 'confirmation' "
            "AND m.status = 'sent' AND b.id = ANY(:ids)"
        )
        lags: list[float] = []
        while time.monotonic() < deadline:
            with sessions() as db:
                lags = [float(x) for x in db.execute(query, {"ids": ids}).scalars()]
            if len(lags) >= count:
                break
            time.sleep(0.5)
        if len(lags) < count:
            with sessions() as db:
                states = db.execute(
                    text(
                        "SELECT m.status, m.last_error, count(*) FROM booking b LEFT JOIN message m"
                        " ON m.booking_id = b.id AND m.kind = 'confirmation' WHERE b.id = ANY(:ids)"
                        " GROUP BY 1, 2"
                    ),
                    {"ids": ids},
                ).all()
            with sessions() as db:
                stuck = db.execute(
                    text(
                        "SELECT m.id, m.send_after, m.created_at FROM message m WHERE m.kind = "
                        "'confirmation' AND m.status = 'scheduled' AND m.booking_id = ANY(:ids) "
                        "ORDER BY m.id LIMIT 5"
                    ),
                    {"ids": ids},
                ).all()
            redis = Redis.from_url(redis_url, decode_responses=True)
            for message_id, send_after, _created in stuck:  # where each one's job went
                for key in redis.keys(f"rq:job:message-{message_id}-*"):
                    status = redis.hget(key, "status")
                    print(f"message {message_id}, due {send_after}: {key!s} {status!s}")
            raise SystemExit(
                f"only {len(lags)} of {count} confirmations sent in 5 minutes: {states} "
                f"(the workers' logs: {log_dir})"
            )
        return count, achieved, _percentile(lags, 0.5), _percentile(lags, 0.9), max(lags)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
        sessions.kw["bind"].dispose()


class FakeTwilioProcess:
    """``ivr.fake_twilio`` in a process of its own, as Twilio is not in the worker's: its
    answering threads do not compete with the worker's for the GIL. ``delay`` is set from here;
    ``sent()`` counts what it accepted."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._delay = context.Value("d", 0.0)
        self._sent = context.Value("i", 0)
        mine, theirs = context.Pipe()
        self._process = context.Process(
            target=_serve_fake, args=(theirs, self._delay, self._sent), daemon=True
        )
        self._process.start()
        self.base_url, self.account_sid = mine.recv()

    @property
    def delay(self) -> float:
        return float(self._delay.value)

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._delay.value = seconds

    def sent(self) -> int:
        time.sleep(0.2)  # the fake's count is copied here every 50 ms
        return int(self._sent.value)

    def stop(self) -> None:
        self._process.terminate()
        self._process.join()


def _serve_fake(pipe: Any, delay: Any, sent: Any) -> None:
    with FakeTwilio() as fake:
        pipe.send((fake.base_url, fake.account_sid))
        while True:
            fake.delay = delay.value
            sent.value = len(fake.sent)
            time.sleep(0.05)


def schedule_and_dispatch(args: argparse.Namespace, redis: Redis, latencies: list[float]) -> None:
    """Plan and arm the messages of --bookings bookings, then one worker sends --send of them
    at each Twilio latency."""
    twilio = FakeTwilioProcess()
    with throwaway_database(args.database_url, prefix="madoguchi_bench") as url:
        settings = bench_settings(url)
        make_bookings(settings, args.bookings)
        sessions = session_factory(settings)
        api = TwilioApi(
            account_sid=twilio.account_sid,
            auth_token="fake-token",  # noqa: S106 (the fake's)
            from_number="+81353334111",
            base_url=twilio.base_url,
            timeout=10,
        )
        pace = Pace(args.sends_per_second) if args.sends_per_second > 0 else None
        rt = Runtime(sessions, RULES, RqJobs(redis), api, "https://madoguchi.example.jp", pace=pace)
        jobs.use(rt)
        planning, arming, made = schedule_all(rt)
        total = planning + arming
        print(
            f"scheduling {args.bookings} bookings: {made} messages in {total:.1f} s "
            f"(planning {planning:.1f} s, arming RQ jobs {arming:.1f} s; "
            f"{args.bookings / total:.0f} bookings/s)"
        )
        # The confirmations are due now: their jobs wait in the queue, armed when planned.
        for latency in latencies:
            twilio.delay = latency
            # One at a time (a job per message, as before batches) on a tenth as many, then in
            # batches: the ratio is measured in one run, on the same machine's load.
            rates = []
            for batch_size, count in ((1, max(10, args.send // 10)), (rt.batch_size, args.send)):
                sent, seconds = dispatch(replace(rt, batch_size=batch_size), redis, twilio, count)
                if sent == 0:
                    raise SystemExit("the worker sent nothing")
                rates.append(sent / seconds)
                how = "one at a time" if batch_size == 1 else f"in batches of {batch_size}"
                print(
                    f"dispatch {how}, Twilio answering in {latency * 1000:.0f} ms: {sent} "
                    f"messages in {seconds:.1f} s = {sent / seconds:.0f} messages/s by one worker"
                )
            print(f"  batches send {rates[1] / rates[0]:.1f} times as many a second")
        sessions.kw["bind"].dispose()
    twilio.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bookings", type=int, default=10_000, help="bookings to plan (10000)")
    parser.add_argument("--send", type=int, default=2_000, help="messages to dispatch (2000)")
    parser.add_argument(
        "--latency",
        type=float,
        action="append",
        help="fake Twilio's answer delay in seconds; repeat for several runs (0 and 0.1)",
    )
    parser.add_argument(
        "--sends-per-second",
        type=float,
        default=0,
        help="the sending number's cap for the dispatch runs (0: none)",
    )
    parser.add_argument(
        "--lag-rate", type=float, default=36, help="bookings per second for the lag run (36)"
    )
    parser.add_argument(
        "--lag-seconds", type=float, default=20, help="how long the lag run books (20; 0: none)"
    )
    parser.add_argument("--lag-workers", type=int, default=2, help="workers in the lag run (2)")
    parser.add_argument(
        "--lag-only", action="store_true", help="only the lag run (no scheduling or dispatch)"
    )
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL, help="admin database URL")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help="a Redis database to empty")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny numbers, as CI runs it: fails when a message is not sent, not on speed",
    )
    args = parser.parse_args()
    if args.smoke:
        args.bookings, args.send, args.latency = 40, 20, [0.0]
        args.lag_seconds, args.lag_rate = 2.0, 10.0
    latencies = args.latency or [0.0, 0.1]
    logging.basicConfig(level=logging.WARNING)
    redis = Redis.from_url(args.redis_url)
    redis.flushdb()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    if not args.lag_only:
        schedule_and_dispatch(args, redis, latencies)
    if args.lag_seconds > 0:
        # A database of its own: no backlog of the runs above (their due confirmations, whose
        # jobs are gone, would be swept up and sent first: a backlog drains before new ones).
        redis.flushdb()
        with (
            throwaway_database(args.database_url, prefix="madoguchi_bench_lag") as url,
            FakeTwilio() as twilio,
        ):
            settings = bench_settings(url)
            campaign_ward(settings)
            count, achieved, p50, p90, worst = confirmation_lag(
                settings,
                twilio,
                args.redis_url,
                rate=args.lag_rate,
                seconds=args.lag_seconds,
                workers=args.lag_workers,
            )
            print(
                f"confirmation lag, {count} bookings at {achieved:.0f}/s with "
                f"{args.lag_workers} workers: median {p50 * 1000:.0f} ms, 90th {p90 * 1000:.0f} ms,"
                f" longest {worst * 1000:.0f} ms"
            )
    redis.flushdb()


if __name__ == "__main__":
    main()
