#!/usr/bin/env python3
"""How many readers the crowding pages (混雑状況), their JSON and the counter's call screen
(呼出表示) answer a second, and what each costs the database.

Each page is asked for through the real app (``config.app.create_app``) in-process (Starlette's
TestClient: routing, the reads, the Jinja template, no network), on the sample ward at 10:00 on
a busy day: every venue has walk-ins with queue numbers, some of them called, and about half its
seats taken. Each page runs twice: with the per-process cache of each venue's figures (the
default, 5 seconds) and without it (``MADOGUCHI_CROWDING_CACHE_SECONDS=0``), counting the SQL
statements sent, so that the cache's saving shows as statements per request.

Examples:
  python3 bench/bench_crowding.py                   # SQLite file (the embedded default)
  python3 bench/bench_crowding.py --postgres        # a throwaway PostgreSQL database too
  python3 bench/bench_crowding.py --requests 1000   # more requests per page

It prints, per page, database and cache: requests per second (one client, one after another)
and SQL statements per request (without the cache, a quarter as many requests are sent).
"""

from __future__ import annotations

import argparse
import logging
import random
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text

from bench.bench_pages import DEFAULT_ADMIN_URL, postgres_database, sqlite_database
from booking import schedule, service
from booking.context import TOKYO
from config.app import booking_context, create_app
from config.db import make_engine, make_sessionmaker
from config.sample import sample_ward
from config.settings import Settings
from tests.live import listening_socket, serving

# A Monday morning in Tokyo, every venue open.
NOW = datetime(2026, 11, 2, 10, 0, tzinfo=TOKYO)
WALK_INS = 6  # per venue, the first two called
PAGES = {
    "ward page": "/crowding",
    "ward JSON": "/crowding.json",
    "venue page": "/crowding/main",
    "venue JSON": "/crowding/main.json",
    "call screen": "/signage/main",
}


@dataclass(frozen=True)
class Run:
    page: str
    database: str
    cached: bool
    requests: int
    seconds: float
    statements: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def statements_per_request(self) -> float:
        return self.statements / self.requests


class Statements:
    """SQL statements the engine sends, counted (from any thread)."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        with self._lock:
            self.count += 1


@dataclass(frozen=True)
class Flood:
    database: str
    readers: int
    requests: int
    seconds: float
    statements: int
    cache_seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def flood(engine: Engine, url: str, database: str, readers: int, seconds: float) -> Flood:
    """``readers`` clients at once, each asking for the call screen, the venue's JSON and the
    ward's page in turn, as fast as answered, from the real app under uvicorn."""
    counted = Statements(engine)
    settings = settings_for(url, 5.0)
    app = create_app(settings)
    app.state.sessions = make_sessionmaker(
        engine, replace(booking_context(settings), clock=lambda: NOW)
    )
    paths = ["/signage/main", "/crowding/main.json", "/crowding"]
    sock, base = listening_socket()
    done = [0] * readers
    start = threading.Barrier(readers + 1)
    with serving(app, sock, name="bench-crowding"):
        httpx.get(base + "/crowding.json", timeout=10)  # warm, and every venue kept
        before = counted.count
        stop_at = [0.0]

        def reader(n: int) -> None:
            with httpx.Client(base_url=base, timeout=30) as http:
                start.wait()
                while time.perf_counter() < stop_at[0]:
                    answer = http.get(paths[done[n] % len(paths)])
                    if answer.status_code != 200:
                        raise SystemExit(f"flood: {answer.status_code} {answer.text[:200]}")
                    done[n] += 1

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(readers)]
        for thread in threads:
            thread.start()
        began = time.perf_counter()
        stop_at[0] = began + seconds
        start.wait()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
        statements = counted.count - before
    return Flood(database, readers, sum(done), elapsed, statements, 5.0)


def busy_day(url: str, seed: int) -> Engine:
    """The sample ward at 10:00: walk-ins at every venue, some called; half the seats taken."""
    settings = settings_for(url, 5.0)
    ctx = replace(booking_context(settings), clock=lambda: NOW)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine, ctx)
    rng = random.Random(seed)
    with sessions() as db:
        schedule.install_ward(db, sample_ward())
        schedule.extend_schedule(db)
        db.commit()
        for venue in service.list_venues(db):
            for n in range(WALK_INS):
                service.walk_in(db, venue_id=venue.id, service_id="pickup", party=1)
                if n < 2:
                    service.call_walk_in(db, venue_id=venue.id, number=n + 1)
        db.commit()
    # Seats are taken straight in the table (bench_pages does the same): the pages read counts.
    with engine.begin() as conn:
        for slot_id, capacity, booked in conn.execute(
            text("SELECT id, capacity, booked FROM slot")
        ).all():
            taken = max(booked, rng.randint(0, capacity))
            conn.execute(
                text("UPDATE slot SET booked = :n WHERE id = :id"), {"n": taken, "id": slot_id}
            )
    return engine


def settings_for(url: str, cache_seconds: float) -> Settings:
    return Settings(
        database_url=url,
        environment="test",
        data_dir=Path(tempfile.gettempdir()),
        data_keys=Fernet.generate_key().decode(),
        lookup_key=secrets.token_hex(16),
        crowding_cache_seconds=cache_seconds,
    )


@contextmanager
def client(engine: Engine, url: str, cache_seconds: float) -> Iterator[TestClient]:
    settings = settings_for(url, cache_seconds)
    ctx = replace(booking_context(settings), clock=lambda: NOW)
    app = create_app(settings)
    app.state.sessions = make_sessionmaker(engine, ctx)
    with TestClient(app) as http:
        yield http


def measure(engine: Engine, url: str, database: str, requests: int) -> list[Run]:
    counted = Statements(engine)
    runs = []
    for cached in (True, False):
        # Without the cache a quarter of the requests: the ward's pages read every venue.
        asked = requests if cached else max(requests // 4, 10)
        with client(engine, url, 5.0 if cached else 0.0) as http:
            for name, path in PAGES.items():
                for _ in range(5):  # warm: templates compiled, statements cached, pool filled
                    check(http.get(path), path)
                before = counted.count
                started = time.perf_counter()
                for _ in range(asked):
                    check(http.get(path), path)
                seconds = time.perf_counter() - started
                runs.append(Run(name, database, cached, asked, seconds, counted.count - before))
    return runs


def check(answer: Any, path: str) -> None:
    if answer.status_code != 200:
        raise SystemExit(f"{path} answered {answer.status_code}: {answer.text[:200]}")
    if path.endswith(".json") and '"now_calling":[2,1]' not in answer.text:
        raise SystemExit(f"{path} does not show the numbers being called: {answer.text[:300]}")


def report(runs: list[Run], floods: list[Flood]) -> str:
    lines = [
        f"{'page':<12} {'database':<10} {'cache':<6} {'requests/s':>11} {'SQL/request':>12}",
        "-" * 55,
    ]
    for r in runs:
        lines.append(
            f"{r.page:<12} {r.database:<10} {'5 s' if r.cached else 'none':<6} "
            f"{r.per_second:>11.0f} {r.statements_per_request:>12.2f}"
        )
    if floods:
        lines.append("")
        lines.append(f"{'flood':<12} {'database':<10} {'readers':>7} {'requests/s':>11} {'SQL':>5}")
    for f in floods:
        lines.append(
            f"{'':<12} {f.database:<10} {f.readers:>7} {f.per_second:>11.0f} {f.statements:>5}"
            f"  in {f.seconds:.1f} s (the ward: 11 venues, kept {f.cache_seconds:.0f} s)"
        )
    cached = [r for r in runs if r.cached]
    slowest = min(cached, key=lambda r: r.per_second)
    lines.append("")
    lines.append(
        f"crowding pages with the cache, slowest: {slowest.per_second:.0f} requests per second "
        f"({slowest.page}, {slowest.database}), one client in one process"
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Requests per second of the crowding pages, their JSON and the counter's call "
            "screen, with and without the per-process cache of each venue's figures, as the "
            "real app answers them in-process on a busy day of the sample ward."
        )
    )
    parser.add_argument(
        "--requests", type=int, default=300, help="requests per page with the cache (default: 300)"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also run on a throwaway PostgreSQL database (created and dropped by the bench)",
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_ADMIN_URL,
        help=f"PostgreSQL server for --postgres (default: {DEFAULT_ADMIN_URL})",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed for the seats taken")
    parser.add_argument(
        "--readers", type=int, default=16, help="clients at once in the flood (default: 16)"
    )
    parser.add_argument(
        "--flood-seconds", type=float, default=8.0, help="how long the flood lasts (default: 8)"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="10 requests per page on both databases, as CI runs it: fails on a page that does "
        "not answer, never on a speed",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.requests, args.postgres, args.readers, args.flood_seconds = 10, True, 4, 1.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request
    runs: list[Run] = []
    floods: list[Flood] = []
    with sqlite_database() as url:
        engine = busy_day(url, args.seed)
        runs += measure(engine, url, "SQLite", args.requests)
        floods.append(flood(engine, url, "SQLite", args.readers, args.flood_seconds))
        engine.dispose()
    if args.postgres:
        with postgres_database(args.database_url) as url:
            engine = busy_day(url, args.seed)
            runs += measure(engine, url, "PostgreSQL", args.requests)
            floods.append(flood(engine, url, "PostgreSQL", args.readers, args.flood_seconds))
            engine.dispose()
    print(report(runs, floods))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
