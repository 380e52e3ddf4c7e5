#!/usr/bin/env python3
"""A booking's response time while Redis is healthy, frozen and stopped.

The real app (config.app.create_app) is served by uvicorn on a throwaway PostgreSQL database
with the sample ward, its jobs on a redis-server of the bench's own. A client books over HTTP
(POST /api/v1/bookings, one booking at a time) in three states of that Redis:

  healthy  Redis answers;
  frozen   the redis-server is stopped with SIGSTOP: connections are accepted by the kernel and
           then nothing answers (the worst case: every command waits for its timeout);
  stopped  the redis-server is gone: connections are refused at once.

Each booking's commit wakes the outbox pump through Redis. The web process arms that job from a
thread of its own (config.queue.Waker), so the aim is that a booking's answer never waits on
Redis: with Redis frozen it stays within REDIS_TIMEOUT_SECONDS (0.5 s) of a healthy one, and in
practice as fast. Exit status 1 when the frozen or stopped p99 misses that.

    python3 bench/bench_redis.py              # 200 bookings in each state
    python3 bench/bench_redis.py --smoke      # 5 in each, as CI runs it (no aim)
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from redis import Redis
from tqdm import tqdm

from booking import schedule
from booking import service as booking
from config.app import create_app, session_factory
from config.migrate import throwaway_database
from config.queue import REDIS_TIMEOUT_SECONDS
from config.sample import sample_ward
from config.settings import Settings

# The tests' live-server helper, from the repository this script sits in.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.live import listening_socket, serving

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
STATES = ("healthy", "frozen", "stopped")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def own_redis() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A redis-server of the bench's own (the machine's is shared, and must not be frozen)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(  # noqa: S603 (our own redis-server)
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while True:
            try:
                if Redis.from_url(url).ping():
                    break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        try:
            yield process, url
        finally:
            process.send_signal(signal.SIGCONT)
            process.terminate()
            process.wait(timeout=10)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bookings", type=int, default=200, help="bookings per state (200)")
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL, help="admin database URL")
    parser.add_argument(
        "--smoke", action="store_true", help="5 bookings per state, as CI runs it: no aim"
    )
    args = parser.parse_args()
    if args.smoke:
        args.bookings = 5
    logging.basicConfig(level=logging.ERROR)  # Redis being away is logged; it is the point here
    logging.getLogger("httpx").setLevel(logging.WARNING)
    figures: dict[str, list[float]] = {}
    with (
        throwaway_database(args.database_url, prefix="madoguchi_bench_redis") as url,
        own_redis() as (redis_process, redis_url),
        tempfile.TemporaryDirectory() as data_dir,
    ):
        sock, base_url = listening_socket()
        settings = Settings(
            environment="test",
            database_url=url.render_as_string(hide_password=False),
            data_dir=Path(data_dir),
            data_keys=Fernet.generate_key().decode(),
            lookup_key=secrets.token_urlsafe(32),
            redis_url=redis_url,
            public_base_url=base_url,
            web_bookings_per_hour=10**9,  # one client books them all
            log_level="ERROR",
        )
        sessions = session_factory(settings)
        with sessions() as db:
            schedule.install_ward(db, sample_ward())
            schedule.extend_schedule(db)
            later = db.info["booking"].today() + timedelta(days=2)
            free = booking.availability(db, service_id="pin_reset", start=later, limit=2000)
            db.commit()
        seats = [slot.id for slot in free for _ in range(slot.remaining)]
        needed = args.bookings * len(STATES)
        if len(seats) < needed:
            raise SystemExit(f"only {len(seats)} free seats for {needed} bookings")
        app = create_app(settings)
        with serving(app, sock), httpx.Client(base_url=base_url, timeout=30) as client:
            n = 0
            for state in STATES:
                if state == "frozen":
                    redis_process.send_signal(signal.SIGSTOP)
                elif state == "stopped":
                    redis_process.send_signal(signal.SIGCONT)
                    redis_process.terminate()
                    redis_process.wait(timeout=10)
                times: list[float] = []
                for _ in tqdm(range(args.bookings), desc=f"Redis {state}", unit="booking"):
                    body = {
                        "slot_id": seats[n],
                        "name_kana": "ベンチ タロウ",
                        "phone": f"090{10_000_000 + n:08d}",
                        "birth_date": date(1970, 1, 1).isoformat(),
                    }
                    n += 1
                    started = time.perf_counter()
                    answer = client.post("/api/v1/bookings", json=body)
                    times.append(time.perf_counter() - started)
                    if answer.status_code != 201:
                        raise SystemExit(f"Redis {state}: {answer.status_code} {answer.text[:300]}")
                figures[state] = times
        sessions.kw["bind"].dispose()
    print(
        f"\nA booking's answer (POST /api/v1/bookings over HTTP, one at a time), "
        f"{args.bookings} bookings per state of Redis, {os.cpu_count()} CPUs"
    )
    print(f"{'Redis':<10}{'median':>10}{'p90':>10}{'p99':>10}{'slowest':>10}")
    for state, times in figures.items():
        row = [percentile(times, 0.5), percentile(times, 0.9), percentile(times, 0.99), max(times)]
        print(f"{state:<10}" + "".join(f"{v * 1000:>8.1f}ms" for v in row))
    healthy = percentile(figures["healthy"], 0.99)
    bound = healthy + REDIS_TIMEOUT_SECONDS
    worst = max(percentile(figures[s], 0.99) for s in ("frozen", "stopped"))
    verdict = "met" if worst <= bound else "MISSED"
    print(
        f"\naim: with Redis frozen or stopped, p99 within {REDIS_TIMEOUT_SECONDS * 1000:.0f} ms of "
        f"healthy ({bound * 1000:.0f} ms): {worst * 1000:.1f} ms, {verdict}"
    )
    return 0 if worst <= bound or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
