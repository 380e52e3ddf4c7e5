#!/usr/bin/env python3
"""An opening minute behind the waiting room: thousands of residents arriving in seconds.

The real app (bench.http_app, config.app.create_app) under uvicorn in a process of its own, on a
throwaway PostgreSQL database with the sample ward and a redis-server of the bench's own. A
manager has turned the line on (mode ``on``, released now, ``--rate`` a minute). Then
``--visitors`` residents arrive within ``--arrive`` seconds, each a browser of its own (its own
cookies): it opens the start page, waits on the waiting page as a browser would (reloading when
its <meta refresh> says), and once let in books through the API with its pass: the free times of
the opening day, a proof of work (altcha; ``--pow-max`` kept small here so that the load
generator's CPU goes on requests, its cost measured apart), and a booking, trying another time
when one is taken. A second phase hammers the waiting page alone (``--hammer`` seconds, 64 at
once) for its rate per process.

It reports: the rate the line let residents in at (against the rate set), the waiting page's
rate and latency, how closely admission followed arrival order (pairs let in out of arrival
order, and the largest displacement), bookings made, and seats over capacity read from the
database (must be 0). Exit status 1 when any slot is over capacity, a request failed, or (not in
smoke mode) the admitted rate is more than 10 % off the rate set.

    python3 bench/bench_opening.py                 # 3,000 residents in 5 s, 1,500 a minute
    python3 bench/bench_opening.py --smoke         # 120 in 1 s, as CI runs it (no aim)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import random
import re
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from altcha.v1 import Challenge, ChallengeOptions, Payload, create_challenge, solve_challenge
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.bench_redis import free_port, own_redis, percentile  # noqa: E402
from booking import schedule  # noqa: E402
from booking import service as booking  # noqa: E402
from booking.context import TOKYO  # noqa: E402
from booking.waiting_room import waiting_room  # noqa: E402
from config.app import session_factory  # noqa: E402
from config.migrate import throwaway_database  # noqa: E402
from config.sample import sample_ward  # noqa: E402
from config.settings import Settings  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
POSITION = re.compile(rb'class="line-position">(\d+)<')
REFRESH = re.compile(rb'http-equiv="refresh" content="(\d+);')
SERVICE = "pin_reset"


@dataclass
class Tally:
    """What the visitors saw."""

    admitted: list[tuple[int, float]] = field(default_factory=list)  # (arrival index, when)
    # (the number the line gave, when let in): arrival order as the line saw it
    numbered: list[tuple[int, float]] = field(default_factory=list)
    waiting_pages: list[float] = field(default_factory=list)  # latency of each
    booked: int = 0
    sold_out: int = 0
    taken: int = 0
    failures: list[str] = field(default_factory=list)


def server(
    db_url: URL, redis_url: str, now: datetime, pow_max: int, data_dir: str
) -> tuple[Any, int]:
    """uvicorn with one process, as a ward's web unit runs each (the bench.http_app clock)."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            "MADOGUCHI_ENVIRONMENT": "test",
            "MADOGUCHI_DATA_DIR": data_dir,
            "MADOGUCHI_DATABASE_URL": db_url.render_as_string(hide_password=False),
            "MADOGUCHI_DATA_KEYS": Fernet.generate_key().decode(),
            "MADOGUCHI_LOOKUP_KEY": secrets.token_urlsafe(32),
            "MADOGUCHI_REDIS_URL": redis_url,
            "MADOGUCHI_LOG_LEVEL": "WARNING",
            # Every resident here comes from 127.0.0.1: the per-address limits never refuse.
            "MADOGUCHI_WEB_BOOKINGS_PER_HOUR": str(10**9),
            "MADOGUCHI_WEB_LOOKUPS_PER_15_MINUTES": str(10**9),
            "MADOGUCHI_WAITING_ROOM_POW_MAX_NUMBER": str(pow_max),
            "BENCH_NOW": now.isoformat(),
            "BENCH_POOL_SIZE": "10",
        }
    )
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.http_app:create",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, cwd=REPO, env=env)  # noqa: S603 (our own argv)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"uvicorn exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process, port
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("uvicorn did not answer /healthz within 60 s")


def solved(challenge: dict[str, Any]) -> str:
    made = Challenge(
        challenge["algorithm"],
        challenge["challenge"],
        challenge["maxNumber"],
        challenge["salt"],
        challenge["signature"],
    )
    answer = solve_challenge(made)
    if answer is None:
        raise RuntimeError("an unsolvable challenge")
    return Payload(
        made.algorithm, made.challenge, answer.number, made.salt, made.signature
    ).to_base64()


async def visitor(
    index: int,
    delay: float,
    transport: httpx.AsyncHTTPTransport,
    base: str,
    day: str,
    tally: Tally,
    phones: itertools.count[int],
) -> None:
    """One resident: arrive, wait as the page says, then book once (another time if taken)."""
    await asyncio.sleep(delay)
    try:
        await _visit(index, transport, base, day, tally, phones)
    except httpx.HTTPError as exc:
        tally.failures.append(f"{type(exc).__name__}: {exc}")


async def _visit(
    index: int,
    transport: httpx.AsyncHTTPTransport,
    base: str,
    day: str,
    tally: Tally,
    phones: itertools.count[int],
) -> None:
    # A request waits for a free connection as long as it takes (a browser queues too); once
    # sent, a minute for its answer.
    browser = httpx.AsyncClient(
        transport=transport, base_url=base, timeout=httpx.Timeout(60, pool=None)
    )
    number = 0
    while True:
        started = time.perf_counter()
        page = await browser.get("/")
        took = time.perf_counter() - started
        if page.status_code != 200:
            tally.failures.append(f"start page {page.status_code}")
            return
        waiting = POSITION.search(page.content)
        if waiting is None:
            break
        tally.waiting_pages.append(took)
        number = int(page.headers.get("x-line-number", "0"))
        refresh = REFRESH.search(page.content)
        await asyncio.sleep(int(refresh.group(1)) if refresh else 5)
    tally.admitted.append((index, time.monotonic()))
    if number:
        tally.numbered.append((number, time.time()))
    for _ in range(3):
        free = await browser.get(
            "/api/v1/availability",
            params={"service": SERVICE, "venue": "main", "from": day, "to": day},
        )
        if free.status_code != 200:
            tally.failures.append(f"availability {free.status_code}")
            return
        slots = free.json()
        if not slots:
            tally.sold_out += 1
            return
        challenge = (await browser.get("/api/v1/challenge")).json()
        body = {
            "slot_id": random.choice(slots[:5])["id"],
            "name_kana": "ベンチ タロウ",
            "phone": f"090{next(phones):08d}",
            "birth_date": "1970-01-01",
        }
        made = await browser.post(
            "/api/v1/bookings", json=body, headers={"Altcha": solved(challenge)}
        )
        if made.status_code == 201:
            tally.booked += 1
            return
        if made.status_code != 409:
            tally.failures.append(f"booking {made.status_code} {made.text[:120]}")
            return
        tally.taken += 1
    tally.sold_out += 1


async def opening(base: str, visitors: int, arrive: float, day: str) -> tuple[Tally, float]:
    tally = Tally()
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=200))
    phones = itertools.count(10_000_000)
    started = time.monotonic()
    await asyncio.gather(
        *(
            visitor(n, arrive * n / visitors, transport, base, day, tally, phones)
            for n in range(visitors)
        )
    )
    await transport.aclose()
    return tally, started


async def hammer(base: str, seconds: float) -> list[float]:
    """The waiting page alone, 64 at once (each its own browser, all in line), for its rate."""
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=64))
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def tab() -> None:
        browser = httpx.AsyncClient(
            transport=transport, base_url=base, timeout=httpx.Timeout(60, pool=None)
        )
        while time.monotonic() < deadline:
            started = time.perf_counter()
            page = await browser.get("/")
            if POSITION.search(page.content) is None:
                raise RuntimeError(f"not a waiting page: {page.status_code}")
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(tab() for _ in range(64)))
    await transport.aclose()
    return latencies


def order_kept(admitted: list[tuple[int, float]]) -> tuple[float, int]:
    """Pairs let in out of arrival order (a share of all pairs), and the largest number of
    places a resident was let in ahead of or behind their arrival."""
    ranks = [index for index, _ in sorted(admitted, key=lambda a: a[1])]
    inverted = sum(1 for i, a in enumerate(ranks) for b in ranks[i + 1 :] if a > b)
    pairs = len(ranks) * (len(ranks) - 1) // 2
    by_arrival = sorted(ranks)
    displaced = max((abs(by_arrival.index(r) - i) for i, r in enumerate(ranks)), default=0)
    return (inverted / pairs if pairs else 0.0), displaced


def pow_cost(max_number: int, tries: int) -> float:
    """Seconds one altcha challenge of this range takes to solve, on average, in Python."""
    took = 0.0
    for _ in range(tries):
        made = create_challenge(ChallengeOptions(hmac_key=b"bench", max_number=max_number))
        started = time.perf_counter()
        solve_challenge(made)
        took += time.perf_counter() - started
    return took / tries


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--visitors", type=int, default=3000, help="residents arriving (3000)")
    parser.add_argument("--arrive", type=float, default=5.0, help="within seconds (5)")
    parser.add_argument("--rate", type=int, default=1500, help="let in per minute (1500)")
    parser.add_argument("--pow-max", type=int, default=1000, help="challenge range (1000)")
    parser.add_argument("--hammer", type=float, default=10.0, help="seconds of waiting pages")
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL, help="admin database URL")
    parser.add_argument("--smoke", action="store_true", help="120 residents, as CI runs it")
    args = parser.parse_args()
    if args.smoke:
        args.visitors, args.arrive, args.rate, args.hammer = 120, 1.0, 3000, 1.0
    logging.basicConfig(level=logging.ERROR)
    now = datetime.now(UTC)
    with (
        throwaway_database(args.database_url, prefix="madoguchi_bench_opening") as url,
        own_redis() as (_redis_process, redis_url),
        tempfile.TemporaryDirectory() as data_dir,
    ):
        settings = Settings(
            environment="test",
            database_url=url.render_as_string(hide_password=False),
            data_keys=Fernet.generate_key().decode(),
            lookup_key=secrets.token_urlsafe(32),
        )
        sessions = session_factory(settings)
        with sessions() as db:
            schedule.install_ward(db, sample_ward())
            schedule.extend_schedule(db)
            first = booking.availability(db, service_id=SERVICE, venue_id="main", limit=1)
            day = first[0].starts_at.astimezone(TOKYO).date()
            seats = sum(
                s.remaining
                for s in booking.availability(
                    db, service_id=SERVICE, venue_id="main", start=day, end=day, limit=500
                )
            )
            db.commit()
        sessions.kw["bind"].dispose()
        room = waiting_room(redis_url, mode="off", per_minute=args.rate)
        process, port = server(url, redis_url, now, args.pow_max, data_dir)
        base = f"http://127.0.0.1:{port}"
        try:
            opened = time.time()
            room.set_line(mode="on", per_minute=args.rate, start_at=opened)
            tally, started = asyncio.run(opening(base, args.visitors, args.arrive, day.isoformat()))
            ended = time.monotonic()
            # Nobody admitted during the hammering: released a day from now.
            room.set_line(mode="on", per_minute=1, start_at=time.time() + 86400)
            hammered = asyncio.run(hammer(base, args.hammer))
        finally:
            process.terminate()
            process.wait(timeout=20)
        engine = create_engine(url.render_as_string(hide_password=False))
        with engine.connect() as conn:
            over = conn.execute(
                text("SELECT coalesce(sum(booked - capacity), 0) FROM slot WHERE booked > capacity")
            ).scalar()
            booked_rows = conn.execute(
                text("SELECT count(*) FROM booking WHERE status = 'booked'")
            ).scalar()
        engine.dispose()

    times = sorted(when for _, when in tally.admitted)
    # The line's pace between the 10th and the 90th percentile of admissions: the first and
    # last few come in on a page's reload, not on the line's clock.
    low, high = times[len(times) // 10], times[len(times) * 9 // 10 - 1] if times else 0.0
    middle = len(times) * 9 // 10 - 1 - len(times) // 10
    admitted_rate = middle / (high - low) * 60 if times and high > low else 0.0
    inverted, displaced = order_kept(tally.admitted)
    line_inverted, line_displaced = order_kept(tally.numbered)
    # Each number's turn on the line's clock (a fresh line: number n is due n/rate minutes after
    # the opening); nobody may come in before it, and the lateness is the reload's delay.
    lateness = [when - (opened + number * 60 / args.rate) for number, when in tally.numbered]
    early = sum(1 for late in lateness if late < -0.05)
    # The line is on from the start: whoever got in without a place got past it (a Redis that
    # refused the flood's connections would let residents through).
    unnumbered = len(tally.admitted) - len(tally.numbered)
    waiting_p = [percentile(tally.waiting_pages, q) * 1000 for q in (0.5, 0.99)] or [0, 0]
    hammer_rate = len(hammered) / args.hammer
    hammer_p = [percentile(hammered, q) * 1000 for q in (0.5, 0.99)]
    solve = pow_cost(50_000, 2 if args.smoke else 20)
    print(
        f"\nAn opening minute: {args.visitors} residents arriving in {args.arrive:g} s, the line "
        f"on at {args.rate} a minute, one web process, {os.cpu_count()} CPUs"
    )
    print(f"  let in:                 {len(times)} in {ended - started:.1f} s")
    print(f"  admitted rate:          {admitted_rate:.0f} a minute (set {args.rate})")
    print(
        f"  waiting pages (flood):  {len(tally.waiting_pages)}, median {waiting_p[0]:.1f} ms, "
        f"p99 {waiting_p[1]:.1f} ms"
    )
    print(
        f"  waiting page rate:      {hammer_rate:.0f} a second per process (64 at once, "
        f"median {hammer_p[0]:.1f} ms, p99 {hammer_p[1]:.1f} ms)"
    )
    print(
        f"  arrival order (line):   {line_inverted * 100:.2f} % of pairs let in out of the "
        f"order the line numbered them, largest displacement {line_displaced} places"
    )
    if lateness:
        print(
            f"  let in after one's turn: median {percentile(lateness, 0.5):.1f} s, p99 "
            f"{percentile(lateness, 0.99):.1f} s; before one's turn: {early} of {len(lateness)}"
        )
    print(f"  let in without a place: {unnumbered}")
    print(
        f"  arrival order (sent):   {inverted * 100:.2f} % of pairs let in out of the order "
        f"they were sent, largest displacement {displaced} places"
    )
    print(
        f"  bookings made:          {tally.booked} (seats on the opening day {seats}; "
        f"{tally.taken} times taken meanwhile, {tally.sold_out} found it full)"
    )
    print(f"  in the database:        {booked_rows} booked, {over} seats over capacity")
    print(f"  proof of work:          {solve * 1000:.0f} ms to solve one of 50,000 (Python)")
    print(json.dumps({"failures": tally.failures[:5]}) if tally.failures else "  failures: none")
    broken = (
        bool(over)
        or bool(tally.failures)
        or booked_rows != tally.booked
        or not tally.booked
        or bool(early)
        or bool(unnumbered)
    )
    if not args.smoke and abs(admitted_rate - args.rate) > args.rate * 0.1:
        print(f"aim MISSED: admitted rate {admitted_rate:.0f} against {args.rate}")
        broken = True
    print(f"\n{over} seats over capacity")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
