#!/usr/bin/env python3
"""How fast residents' messages are planned and sent: the time to schedule reminders for
10,000 bookings (outbox -> message rows -> jobs in RQ's scheduler), and messages dispatched
per second by one worker against a local fake of Twilio's REST API.

Needs PostgreSQL and Redis (the CI machine's by default). See --help and bench/README.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import secrets
import time
from datetime import date
from datetime import time as clock_time

from cryptography.fernet import Fernet
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import text
from tqdm import tqdm

from booking import schedule
from booking import service as booking
from booking.service import ResidentInput
from config.app import session_factory
from config.migrate import throwaway_database
from config.queue import RqJobs
from config.sample import sample_ward
from config.settings import Settings
from ivr.fake_twilio import FakeTwilio
from ivr.twilio_api import TwilioApi
from reminders import jobs
from reminders import service as reminders
from reminders.jobs import MESSAGES_QUEUE, Runtime
from reminders.service import ReminderRules

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
RULES = ReminderRules(clock_time(18), None, quiet_from=clock_time(0), quiet_until=clock_time(0))


def make_bookings(settings: Settings, count: int) -> None:
    """``count`` bookings by mobile phone, spread over the whole booking window."""
    sessions = session_factory(settings)
    with sessions() as db:
        schedule.install_ward(db, sample_ward())
        schedule.extend_schedule(db)
        # A card campaign's month: ten times the sample ward's seats, so 10,000 residents fit.
        db.execute(text("UPDATE slot SET capacity = capacity * 10"))
        db.commit()
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
        for message_id, at in planned.due:
            jobs.arm(rt, reminders.Later(message_id, at))
        arming += time.perf_counter() - started
        made += len(planned.due)


def dispatch(rt: Runtime, redis: Redis, count: int) -> float:
    """One worker sends ``count`` due messages: seconds taken."""
    worker = SimpleWorker([Queue(MESSAGES_QUEUE, connection=redis)], connection=redis)
    started = time.perf_counter()
    worker.work(burst=True, max_jobs=count, logging_level="WARNING")
    return time.perf_counter() - started


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
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL, help="admin database URL")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help="a Redis database to empty")
    args = parser.parse_args()
    latencies = args.latency or [0.0, 0.1]
    logging.basicConfig(level=logging.WARNING)
    redis = Redis.from_url(args.redis_url)
    redis.flushdb()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    with (
        throwaway_database(args.database_url, prefix="madoguchi_bench") as url,
        FakeTwilio() as twilio,
    ):
        settings = Settings(
            environment="test",
            database_url=url.render_as_string(hide_password=False),
            data_keys=Fernet.generate_key().decode(),
            lookup_key=secrets.token_urlsafe(32),
        )
        make_bookings(settings, args.bookings)
        sessions = session_factory(settings)
        api = TwilioApi(
            account_sid=twilio.account_sid,
            auth_token="fake-token",  # noqa: S106 (the fake's)
            from_number="+81353334111",
            base_url=twilio.base_url,
            timeout=10,
        )
        rt = Runtime(sessions, RULES, RqJobs(redis), api, "https://madoguchi.example.jp")
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
            before = len(twilio.messages())
            seconds = dispatch(rt, redis, args.send)
            sent = len(twilio.messages()) - before
            print(
                f"dispatch, Twilio answering in {latency * 1000:.0f} ms: {sent} messages in "
                f"{seconds:.1f} s = {sent / seconds:.0f} messages/s by one worker"
            )
        sessions.kw["bind"].dispose()
    redis.flushdb()


if __name__ == "__main__":
    main()
