#!/usr/bin/env python3
"""Bookings per second on PostgreSQL: bare SQL, the slot engine and the HTTP API, side by side.

See --help and bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import platform
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import psycopg
from cryptography.fernet import Fernet
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from booking import schedule, service
from booking.context import TOKYO, BookingContext, BookingRules
from booking.errors import BookingError
from booking.models import Slot
from booking.personal import Vault
from booking.service import ResidentInput
from config.db import make_engine, make_sessionmaker
from config.migrate import throwaway_database
from config.sample import sample_ward

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "latest.json"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"

# The clock every bench session uses: a Monday morning in Tokyo. Bookings are allowed from the
# next day up to 45 days ahead, so the bench slots (2 to 44 days ahead) are always for sale.
NOW = datetime(2026, 10, 5, 10, 0, tzinfo=TOKYO)
VENUE = "main"
SERVICE = "application_help"  # needs no notice numbers: a party of one books with its own data
HOT_SEATS = 1_000_000
SPREAD_SEATS = 10_000
AIM_ENGINE = 0.50
AIM_HTTP = 0.25
METHODS = ("raw", "orm", "engine", "http")
CASES = ("hot", "spread")
RAW_SQL = "UPDATE slot SET booked = booked + 1 WHERE id = %s AND booked + held + 1 <= capacity"
# The same bare UPDATE through a SQLAlchemy session: the least any booking on this stack costs.
ORM_SQL = text(
    "UPDATE slot SET booked = booked + 1 WHERE id = :id AND booked + held + 1 <= capacity"
)
NAME_KANA = "ベンチ タロウ"
BIRTH = date(1980, 4, 1)

DESCRIPTION = """\
Bookings per second on PostgreSQL, three ways, in one run and on one fresh database:

  raw SQL  the bare conditional UPDATE the engine is built on (psycopg, one connection per
           client, one UPDATE + COMMIT per booking): the ceiling for this server and machine;
  ORM      the same bare UPDATE through a SQLAlchemy session and commit, as the engine runs
           them: the floor of this stack, so engine minus ORM is the engine's own work;
  engine   booking.service.book() through SQLAlchemy sessions (validation, encryption, one
           statement that checks the slot, claims the seats and writes booking, members,
           outbox event and retry key; COMMIT);
  HTTP     POST /api/v1/bookings on the real FastAPI app under uvicorn, driven by separate
           load-generator processes with keep-alive connections.

Each runs for --seconds with --clients concurrent clients on two cases: one hot slot that every
client books (row-lock contention), and bookings spread at random over --slots slots. The result
is the engine and HTTP rates as a share of the raw SQL rate (aims: engine >= 50%, HTTP >= 25%),
and availability queries per second through booking.service.availability().

Correctness is checked after every phase, and the run fails loudly (exit status 1) on any
overbooking: for every bench slot booked + held <= capacity, the booked counter equals the seats
of its bookings and the successes the clients counted; a sell-out check hammers small slots with
all clients and expects exactly their capacity sold, no more.
"""

EPILOG = """\
examples:
  python3 bench/bench_booking.py                       # the whole run, about a minute
  python3 bench/bench_booking.py --seconds 10 --clients 16
  python3 bench/bench_booking.py --skip-http --cases hot
  py-spy record -o engine.svg -- python3 bench/bench_booking.py --methods engine

The database named by --database-url is only used to CREATE and DROP a throwaway database
madoguchi_bench_<random> (kept with --keep-database). Results also go to
bench/results/latest.json. On a small machine the clients, uvicorn and PostgreSQL share the
same cores: the CPU line under each phase says who used them.
"""


# --- Small helpers --------------------------------------------------------------------------


def fixed_clock() -> datetime:
    return NOW.astimezone(UTC)


def random_phone(rng: random.Random) -> str:
    """A valid Japanese mobile number, different for (almost) every booking."""
    return f"0{rng.choice('789')}0{rng.randint(10_000_000, 99_999_999)}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


# --- CPU accounting from /proc --------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def _process_table() -> dict[int, tuple[int, str, int]]:
    """pid -> (ppid, comm, utime + stime jiffies) for every visible process."""
    table: dict[int, tuple[int, str, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                raw = handle.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        table[int(entry)] = (int(rest[1]), comm, int(rest[11]) + int(rest[12]))
    return table


def _postgres_group(pid: int, database: str) -> str | None:
    """Backends of the bench database, the server's shared processes, or None (other work)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            title = handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    if f" {database} " in title:
        return "postgres"  # its backends, and autovacuum on it
    if "(" in title or "[local]" in title or "autovacuum worker" in title:
        return None  # a backend of another database: someone else's work
    return "postgres shared"  # postmaster, WAL writer, checkpointer, background writer…


@dataclass(frozen=True)
class CpuSnapshot:
    busy: int
    total: int
    processes: dict[int, tuple[str, int]]  # pid -> (group, jiffies)


@dataclass(frozen=True)
class Watch:
    """Which processes belong to whom while a phase runs."""

    database: str
    load_pids: frozenset[int] = frozenset()
    server_pid: int | None = None


def cpu_snapshot(watch: Watch) -> CpuSnapshot:
    busy, total = _machine_jiffies()
    processes: dict[int, tuple[str, int]] = {}
    me = os.getpid()
    for pid, (ppid, comm, jiffies) in _process_table().items():
        group: str | None = None
        if pid == me:
            group = "bench"
        elif pid in watch.load_pids:
            group = "load generators"
        elif watch.server_pid is not None and watch.server_pid in (pid, ppid):
            group = "uvicorn"
        elif comm == "postgres":
            group = _postgres_group(pid, watch.database)
        if group is not None:
            processes[pid] = (group, jiffies)
    return CpuSnapshot(busy, total, processes)


@dataclass(frozen=True)
class CpuUse:
    """Who used the CPUs during a phase."""

    share: dict[str, float]  # of the whole machine (all cores) over the phase
    seconds: dict[str, float]  # CPU seconds


def cpu_use(before: CpuSnapshot, after: CpuSnapshot) -> CpuUse:
    total = max(after.total - before.total, 1)
    busy = after.busy - before.busy
    used: dict[str, int] = {}
    for pid, (group, jiffies) in after.processes.items():
        _, earlier = before.processes.get(pid, (group, 0))
        used[group] = used.get(group, 0) + jiffies - earlier
    # Anything else running on the machine: other jobs, the kernel, processes that exited.
    used["other"] = max(busy - sum(used.values()), 0)
    order = ["bench", "load generators", "uvicorn", "postgres", "postgres shared", "other"]
    used = {k: used[k] for k in order if k in used}
    share = {"machine busy": busy / total} | {k: v / total for k, v in used.items()}
    return CpuUse(share=share, seconds={k: v / CLK_TCK for k, v in used.items()})


def describe_cpu(cpu: CpuUse, ops: int, unit: str) -> str:
    cores = os.cpu_count() or 1
    parts = [
        f"{name} {value * 100:.0f}%"
        for name, value in cpu.share.items()
        if value >= 0.005 or name in ("machine busy", "postgres")
    ]
    line = f"CPU ({cores} cores = 100%): " + ", ".join(parts)
    if ops:
        per = [
            f"{name} {seconds / ops * 1000:.2f} ms"
            for name, seconds in cpu.seconds.items()
            if name != "other" and seconds / ops >= 0.000005
        ]
        line += f"\n    CPU per {unit}: " + ", ".join(per)
    return line


# --- The throwaway database and the bench slots ---------------------------------------------


@dataclass
class BenchSlots:
    hot: dict[str, int] = field(default_factory=dict)
    spread: dict[str, list[int]] = field(default_factory=dict)
    sellout: dict[str, int] = field(default_factory=dict)

    def all_ids(self) -> list[int]:
        ids = [*self.hot.values(), *self.sellout.values()]
        for group in self.spread.values():
            ids.extend(group)
        return ids


def _open_session(
    db: Session,
    day: date,
    opens: clock_time,
    minutes: int,
    count: int,
    seats: int,
    venue: str = VENUE,
) -> list[int]:
    closes = (datetime.combine(day, opens) + timedelta(minutes=minutes * count)).time()
    made = schedule.open_extra_session(
        db,
        venue_id=venue,
        service_id=SERVICE,
        day=day,
        opens=opens,
        closes=closes,
        slot_minutes=minutes,
        seats=seats,
        kind="extra",
    )
    return list(
        db.execute(
            select(Slot.id).where(Slot.session_id == made.id).order_by(Slot.starts_at)
        ).scalars()
    )


def set_up(
    sessions: sessionmaker[Session], methods: list[str], spread: int, sellout_seats: int
) -> BenchSlots:
    """The sample ward, its regular schedule, and separate bench slots for every method."""
    slots = BenchSlots()
    first_day = NOW.date() + timedelta(days=2)
    last_day = NOW.date() + timedelta(days=44)
    per_evening = 419  # 1-minute slots from 17:00 to 23:59
    ward = sample_ward()
    # Evening sessions, day after day, then at the next venue: room for about 190,000 slots.
    evenings = (
        (first_day + timedelta(days=d), venue["id"])
        for venue in ward["venues"]
        for d in range((last_day - first_day).days + 1)
    )
    with sessions() as db:
        schedule.install_ward(db, ward)
        schedule.extend_schedule(db)
        for i, method in enumerate(methods):
            # One-slot sessions in the early morning, one day each, outside regular hours.
            (slots.hot[method],) = _open_session(
                db, first_day + timedelta(days=i), clock_time(6, 0), 30, 1, HOT_SEATS
            )
            (slots.sellout[method],) = _open_session(
                db, first_day + timedelta(days=i), clock_time(7, 0), 30, 1, sellout_seats
            )
        for method in methods:
            ids: list[int] = []
            while len(ids) < spread:
                day, venue = next(evenings)
                count = min(per_evening, spread - len(ids))
                ids += _open_session(db, day, clock_time(17, 0), 1, count, SPREAD_SEATS, venue)
            slots.spread[method] = ids
        db.commit()
    return slots


# --- Correctness checks ---------------------------------------------------------------------


def check_invariants(
    engine: Engine, slot_ids: list[int], counted: int, *, with_bookings: bool
) -> list[str]:
    """Problems found on these slots (an empty list means all is well)."""
    problems: list[str] = []
    with engine.connect() as conn:
        over = conn.execute(
            text(
                "SELECT count(*) FROM slot WHERE booked + held > capacity OR booked < 0 OR held < 0"
            )
        ).scalar_one()
        if over:
            problems.append(f"{over} slots overbooked (booked + held > capacity)")
        booked = conn.execute(
            text("SELECT coalesce(sum(booked + held), 0) FROM slot WHERE id = ANY(:ids)"),
            {"ids": slot_ids},
        ).scalar_one()
        if booked != counted:
            problems.append(f"slots say {booked} seats taken, the clients counted {counted}")
        if with_bookings:
            mismatched = conn.execute(
                text(
                    """
                    SELECT count(*) FROM slot s
                    LEFT JOIN (SELECT slot_id, sum(party_size) AS seats FROM booking
                               WHERE status = 'booked' GROUP BY slot_id) b ON b.slot_id = s.id
                    WHERE s.id = ANY(:ids) AND s.booked <> coalesce(b.seats, 0)
                    """
                ),
                {"ids": slot_ids},
            ).scalar_one()
            if mismatched:
                problems.append(f"{mismatched} slots whose booked counter != seats of bookings")
            silent = conn.execute(
                text(
                    """
                    SELECT count(*) FROM booking b WHERE b.slot_id = ANY(:ids)
                    AND NOT EXISTS (SELECT 1 FROM booking_event e
                                    WHERE e.booking_id = b.id AND e.kind = 'booked')
                    """
                ),
                {"ids": slot_ids},
            ).scalar_one()
            if silent:
                problems.append(f"{silent} bookings without their outbox event")
    return problems


# --- Running a phase ------------------------------------------------------------------------


@dataclass
class Tally:
    """One client's counts; only its own thread writes it."""

    ok: int = 0
    refused: int = 0  # slot full (409 over HTTP)
    errors: int = 0
    found: int = 0  # availability: slots in the answers
    last: float = 0.0
    error: str | None = None

    def fail(self, exc: BaseException | str) -> None:
        self.errors += 1
        if self.error is None:
            self.error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"


@dataclass
class PhaseResult:
    method: str
    case: str
    clients: int
    ok: int
    refused: int
    errors: int
    seconds: float
    found: int
    cpu: CpuUse
    first_error: str | None = None
    checks: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


def _progress(
    label: str,
    seconds: float,
    started: float,
    counted: Callable[[], int],
    done: Callable[[], bool],
    timeout: float,
) -> None:
    """A progress bar until ``seconds`` passed (timed phases) or ``done()`` (sell-out)."""
    with tqdm(
        total=round(seconds, 1),
        desc=f"{label:<26}",
        unit="s",
        bar_format="{desc} {bar} {n:.1f}/{total:.0f}s {postfix}",
        leave=True,
        file=sys.stderr,
    ) as bar:
        while True:
            time.sleep(0.2)
            elapsed = time.perf_counter() - started
            bar.n = round(min(elapsed, seconds), 1)
            bar.set_postfix_str(f"{counted():,} ok, {counted() / max(elapsed, 1e-9):,.0f}/s")
            if done() or elapsed >= timeout:
                break


Worker = Callable[[int, Tally, threading.Event, threading.Barrier], None]


def run_threads(
    label: str,
    clients: int,
    seconds: float,
    worker: Worker,
    watch: Watch,
    *,
    sellout: bool = False,
) -> tuple[list[Tally], float, CpuUse]:
    """Start ``clients`` threads; time them from a common start to the last one finishing."""
    tallies = [Tally() for _ in range(clients)]
    stop = threading.Event()
    barrier = threading.Barrier(clients + 1)
    threads = [
        threading.Thread(target=worker, args=(i, tallies[i], stop, barrier), daemon=True)
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    before = cpu_snapshot(watch)
    started = time.perf_counter()
    _progress(
        label,
        seconds,
        started,
        lambda: sum(t.ok for t in tallies),
        (lambda: not any(t.is_alive() for t in threads)) if sellout else (lambda: False),
        timeout=60.0 if sellout else seconds,
    )
    after = cpu_snapshot(watch)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = max((t.last for t in tallies), default=started) - started
    return tallies, elapsed, cpu_use(before, after)


def summarise(
    method: str, case: str, tallies: list[Tally], elapsed: float, cpu: CpuUse
) -> PhaseResult:
    errors = [t.error for t in tallies if t.error]
    return PhaseResult(
        method=method,
        case=case,
        clients=len(tallies),
        ok=sum(t.ok for t in tallies),
        refused=sum(t.refused for t in tallies),
        errors=sum(t.errors for t in tallies),
        seconds=elapsed,
        found=sum(t.found for t in tallies),
        cpu=cpu,
        first_error=errors[0] if errors else None,
    )


# --- raw SQL --------------------------------------------------------------------------------


def raw_worker(url: str, slot_ids: list[int], sellout: bool) -> Worker:
    def work(index: int, tally: Tally, stop: threading.Event, barrier: threading.Barrier) -> None:
        rng = random.Random(index)
        with psycopg.connect(url) as conn:
            barrier.wait()
            with conn.cursor() as cur:
                while not stop.is_set():
                    slot_id = slot_ids[0] if len(slot_ids) == 1 else rng.choice(slot_ids)
                    try:
                        cur.execute(RAW_SQL, (slot_id,))
                        claimed = cur.rowcount
                        conn.commit()
                    except psycopg.Error as exc:
                        conn.rollback()
                        tally.fail(exc)
                        claimed = -1
                    tally.last = time.perf_counter()
                    if claimed == 1:
                        tally.ok += 1
                    elif claimed == 0:
                        tally.refused += 1
                        if sellout:
                            return

    return work


# --- the ORM floor --------------------------------------------------------------------------


def orm_worker(sessions: sessionmaker[Session], slot_ids: list[int], sellout: bool) -> Worker:
    """The bare UPDATE, session and commit exactly as the engine worker runs them: the stack's
    own cost, so that engine minus floor is the engine's work."""

    def work(index: int, tally: Tally, stop: threading.Event, barrier: threading.Barrier) -> None:
        rng = random.Random(2000 + index)
        with sessions() as db:
            db.execute(text("SELECT 1"))  # take the pooled connection before the clock starts
            db.rollback()
            barrier.wait()
            while not stop.is_set():
                slot_id = slot_ids[0] if len(slot_ids) == 1 else rng.choice(slot_ids)
                try:
                    result = db.execute(ORM_SQL, {"id": slot_id})
                    claimed = int(result.rowcount)  # type: ignore[attr-defined]
                    db.commit()
                except Exception as exc:  # count it, keep going: the report shows the first one
                    db.rollback()
                    tally.fail(exc)
                    claimed = -1
                tally.last = time.perf_counter()
                if claimed == 1:
                    tally.ok += 1
                elif claimed == 0:
                    tally.refused += 1
                    if sellout:
                        return

    return work


# --- engine ---------------------------------------------------------------------------------


def engine_worker(sessions: sessionmaker[Session], slot_ids: list[int], sellout: bool) -> Worker:
    def work(index: int, tally: Tally, stop: threading.Event, barrier: threading.Barrier) -> None:
        rng = random.Random(1000 + index)
        with sessions() as db:
            db.execute(text("SELECT 1"))  # take the pooled connection before the clock starts
            db.rollback()
            barrier.wait()
            while not stop.is_set():
                slot_id = slot_ids[0] if len(slot_ids) == 1 else rng.choice(slot_ids)
                resident = ResidentInput(
                    name_kana=NAME_KANA, phone=random_phone(rng), birth_date=BIRTH
                )
                try:
                    service.book(db, slot_id=slot_id, party=1, resident=resident, channel="web")
                    db.commit()
                    tally.ok += 1
                except BookingError as exc:
                    db.rollback()
                    if exc.code == "slot_full":
                        tally.refused += 1
                        if sellout:
                            tally.last = time.perf_counter()
                            return
                    else:
                        tally.fail(f"BookingError {exc.code}")
                except Exception as exc:  # count it, keep going: the report shows the first one
                    db.rollback()
                    tally.fail(exc)
                tally.last = time.perf_counter()

    return work


def availability_worker(sessions: sessionmaker[Session], service_id: str) -> Worker:
    first = NOW.date() + timedelta(days=1)
    days = [first + timedelta(days=n) for n in range(45)]

    def work(index: int, tally: Tally, stop: threading.Event, barrier: threading.Barrier) -> None:
        rng = random.Random(2000 + index)
        with sessions() as db:
            db.execute(text("SELECT 1"))
            db.rollback()
            barrier.wait()
            while not stop.is_set():
                day = rng.choice(days)
                try:
                    found = service.availability(
                        db, service_id=service_id, start=day, end=day, party=1, limit=20
                    )
                    db.rollback()  # end the read transaction, as a request would
                    tally.ok += 1
                    tally.found += len(found)
                except Exception as exc:
                    db.rollback()
                    tally.fail(exc)
                tally.last = time.perf_counter()

    return work


# --- HTTP -----------------------------------------------------------------------------------


class HttpServer:
    """uvicorn serving bench.http_app:create in a child process."""

    def __init__(self, db_url: URL, workers: int, pool: int) -> None:
        self.port = free_port()
        env = dict(os.environ)
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
                "MADOGUCHI_ENVIRONMENT": "test",
                "MADOGUCHI_DATABASE_URL": db_url.render_as_string(hide_password=False),
                "MADOGUCHI_DATA_KEYS": Fernet.generate_key().decode(),
                "MADOGUCHI_LOOKUP_KEY": secrets.token_urlsafe(32),
                "MADOGUCHI_LOG_LEVEL": "WARNING",
                # The load generators are a few addresses booking thousands of times: the
                # per-address limit still counts each booking (its cost is in the figure),
                # but never refuses one.
                "MADOGUCHI_WEB_BOOKINGS_PER_HOUR": str(10**9),
                "MADOGUCHI_WEB_LOOKUPS_PER_15_MINUTES": str(10**9),
                "BENCH_NOW": NOW.isoformat(),
                "BENCH_POOL_SIZE": str(pool),
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
            str(self.port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        self.process = subprocess.Popen(command, cwd=REPO, env=env)  # noqa: S603 (our own argv)
        self._wait_ready(workers)

    def _wait_ready(self, workers: int) -> None:
        deadline = time.monotonic() + 60
        url = f"http://127.0.0.1:{self.port}/healthz"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with status {self.process.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        if workers > 1:
                            time.sleep(2.0)  # let every worker finish starting
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("uvicorn did not answer /healthz within 60 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _read_response(sock: socket.socket, buffer: bytes) -> tuple[int, bytes, bytes]:
    """(status, body, bytes left over) of one HTTP/1.1 response with a Content-Length."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise ConnectionError("response without Content-Length")
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        rest += chunk
    return status, rest[:length], rest[length:]


# Slots of the shared counter array per load-generator process.
_OK, _REFUSED, _ERRORS, _LAST, _FIELDS = 0, 1, 2, 3, 4


def http_client(
    index: int,
    port: int,
    slot_ids: list[int],
    sellout: bool,
    barrier: Any,
    stop: Any,
    counts: Any,
) -> None:
    """One load-generator process: a keep-alive connection posting bookings back to back."""
    rng = random.Random(3000 + index)
    base = index * _FIELDS
    head = (
        "POST /api/v1/bookings HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n"
    )
    first_error: str | None = None
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = b""
    sock.sendall(b"GET /api/v1/services HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # warm up
    _, _, buffer = _read_response(sock, buffer)
    barrier.wait()
    while not stop.is_set():
        slot_id = slot_ids[0] if len(slot_ids) == 1 else rng.choice(slot_ids)
        body = json.dumps(
            {
                "slot_id": slot_id,
                "party_size": 1,
                "name_kana": NAME_KANA,
                "phone": random_phone(rng),
                "birth_date": BIRTH.isoformat(),
            }
        ).encode()
        try:
            sock.sendall(head.format(len(body)).encode() + body)
            status, answer, buffer = _read_response(sock, buffer)
        except OSError as exc:
            counts[base + _ERRORS] += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
            sock.close()
            sock = socket.create_connection(("127.0.0.1", port))
            buffer = b""
            continue
        counts[base + _LAST] = time.perf_counter()
        if status == 201:
            counts[base + _OK] += 1
        elif status == 409:
            counts[base + _REFUSED] += 1
            if sellout:
                break
        else:
            counts[base + _ERRORS] += 1
            first_error = first_error or f"HTTP {status}: {answer[:200]!r}"
    sock.close()
    if first_error:
        print(f"load generator {index}: first error: {first_error}", file=sys.stderr)
    sys.stderr.flush()
    # Leave at once: tearing down the interpreter (the bench's imports) takes seconds of CPU
    # that the sell-out check would otherwise wait for, and the counts are already shared.
    os._exit(0)


def run_http(
    label: str,
    server: HttpServer,
    clients: int,
    seconds: float,
    slot_ids: list[int],
    database: str,
    *,
    sellout: bool = False,
) -> tuple[list[Tally], float, CpuUse]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(clients + 1)
    stop = ctx.Event()
    counts = ctx.Array("d", clients * _FIELDS, lock=False)
    procs = [
        ctx.Process(
            target=http_client,
            args=(i, server.port, slot_ids, sellout, barrier, stop, counts),
            daemon=True,
        )
        for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=120)
    watch = Watch(
        database, frozenset(p.pid for p in procs if p.pid is not None), server.process.pid
    )
    before = cpu_snapshot(watch)
    started = time.perf_counter()
    _progress(
        label,
        seconds,
        started,
        lambda: int(sum(counts[i * _FIELDS + _OK] for i in range(clients))),
        (lambda: not any(p.is_alive() for p in procs)) if sellout else (lambda: False),
        timeout=60.0 if sellout else seconds,
    )
    after = cpu_snapshot(watch)
    stop.set()
    for proc in procs:
        proc.join(timeout=30)
    tallies = []
    for i, proc in enumerate(procs):
        b = i * _FIELDS
        tally = Tally(
            ok=int(counts[b + _OK]),
            refused=int(counts[b + _REFUSED]),
            errors=int(counts[b + _ERRORS]),
            last=counts[b + _LAST],
        )
        if tally.errors:
            tally.error = "non-201/409 answers (see the load generators' messages above)"
        if proc.exitcode != 0:
            tally.fail(f"load generator {i} exited with status {proc.exitcode}")
        tallies.append(tally)
    elapsed = max((t.last for t in tallies), default=started) - started
    return tallies, elapsed, cpu_use(before, after)


# --- The run --------------------------------------------------------------------------------


@dataclass
class Run:
    args: argparse.Namespace
    url: URL
    engine: Engine
    sessions: sessionmaker[Session]
    slots: BenchSlots
    server: HttpServer | None = None
    results: list[PhaseResult] = field(default_factory=list)
    sellouts: list[PhaseResult] = field(default_factory=list)
    availability: PhaseResult | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def watch(self) -> Watch:
        return Watch(str(self.url.database))

    @property
    def psycopg_url(self) -> str:
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def phase(self, method: str, case: str, *, sellout: bool = False) -> PhaseResult:
        clients, seconds = self.args.clients, self.args.seconds
        if sellout:
            ids = [self.slots.sellout[method]]
            label = f"{method} sell-out"
        else:
            ids = [self.slots.hot[method]] if case == "hot" else self.slots.spread[method]
            label = f"{method} {'hot slot' if case == 'hot' else f'{len(ids)} slots'}"
        if method == "raw":
            tallies, elapsed, cpu = run_threads(
                label,
                clients,
                seconds,
                raw_worker(self.psycopg_url, ids, sellout),
                self.watch,
                sellout=sellout,
            )
        elif method == "orm":
            tallies, elapsed, cpu = run_threads(
                label,
                clients,
                seconds,
                orm_worker(self.sessions, ids, sellout),
                self.watch,
                sellout=sellout,
            )
        elif method == "engine":
            tallies, elapsed, cpu = run_threads(
                label,
                clients,
                seconds,
                engine_worker(self.sessions, ids, sellout),
                self.watch,
                sellout=sellout,
            )
        else:
            assert self.server is not None
            tallies, elapsed, cpu = run_http(
                label, self.server, clients, seconds, ids, self.watch.database, sellout=sellout
            )
        result = summarise(method, "sell-out" if sellout else case, tallies, elapsed, cpu)
        result.checks = check_invariants(
            self.engine, ids, result.ok, with_bookings=method not in ("raw", "orm")
        )
        if sellout:
            expected = self.args.sellout_seats
            if result.ok != expected:
                result.checks.append(f"sold {result.ok} of {expected} seats")
            if any(t.ok + t.refused + t.errors == 0 for t in tallies):
                result.checks.append("a client never got an answer")
        elif result.refused:
            result.checks.append(f"{result.refused} bookings refused on a slot far from full")
        if result.errors:
            result.checks.append(f"{result.errors} client errors; first: {result.first_error}")
        self.report(result)
        return result

    def report(self, result: PhaseResult) -> None:
        verdict = "OK" if not result.checks else "FAILED: " + "; ".join(result.checks)
        line = (
            f"    {result.ok:,} in {result.seconds:.2f} s = {result.rate:,.0f}/s"
            f"  |  invariants {verdict}"
        )
        print(line, file=sys.stderr)
        if result.case == "sell-out":
            print(
                f"    sold {result.ok} of {self.args.sellout_seats} seats, "
                f"{result.refused} refusals (a correctness check: its rate means little)",
                file=sys.stderr,
            )
        else:
            unit = "query" if result.method == "availability" else "booking"
            print(f"    {describe_cpu(result.cpu, result.ok, unit)}", file=sys.stderr)
        for problem in result.checks:
            self.failures.append(f"{result.method} {result.case}: {problem}")
            print(f"!!! {result.method} {result.case}: {problem}", file=sys.stderr)


def rate_of(results: list[PhaseResult], method: str, case: str) -> float | None:
    for result in results:
        if result.method == method and result.case == case:
            return result.rate
    return None


def ratio(part: float | None, whole: float | None) -> float | None:
    return None if part is None or not whole else part / whole


def table(run: Run) -> tuple[str, list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    lines = [
        f"{'case':<22}{'raw SQL/s':>10}{'ORM floor/s':>12}{'floor/raw':>10}{'engine/s':>10}"
        f"{'engine/raw':>11}{'HTTP/s':>9}{'HTTP/raw':>10}   aims met (engine>=50% / HTTP>=25%)",
    ]
    for case in run.args.cases:
        raw = rate_of(run.results, "raw", case)
        floor = rate_of(run.results, "orm", case)
        eng = rate_of(run.results, "engine", case)
        web = rate_of(run.results, "http", case)
        eng_ratio, web_ratio = ratio(eng, raw), ratio(web, raw)
        eng_met = None if eng_ratio is None else eng_ratio >= AIM_ENGINE
        web_met = None if web_ratio is None else web_ratio >= AIM_HTTP
        name = "one hot slot" if case == "hot" else f"spread over {run.args.slots} slots"

        def yes(met: bool | None) -> str:
            return "-" if met is None else ("yes" if met else "NO")

        lines.append(
            f"{name:<22}{fmt_rate(raw):>10}{fmt_rate(floor):>12}{fmt_pct(ratio(floor, raw)):>10}"
            f"{fmt_rate(eng):>10}{fmt_pct(eng_ratio):>11}"
            f"{fmt_rate(web):>9}{fmt_pct(web_ratio):>10}   {yes(eng_met)} / {yes(web_met)}"
        )
        rows.append(
            {
                "case": case,
                "raw_per_s": raw,
                "orm_floor_per_s": floor,
                "orm_floor_vs_raw": ratio(floor, raw),
                "engine_per_s": eng,
                "engine_vs_raw": eng_ratio,
                "http_per_s": web,
                "http_vs_raw": web_ratio,
                "engine_aim_met": eng_met,
                "http_aim_met": web_met,
            }
        )
    lines.append("")
    lines.append(
        f"{'CPU ms per booking':<22}{'app':>10}{'postgres':>10}{'pg shared':>11}{'load gen':>10}"
        f"{'other':>8}"
    )
    for result in run.results:
        if not result.ok:
            continue
        used = result.cpu.seconds
        app = used.get("uvicorn" if result.method == "http" else "bench", 0.0)

        def ms(seconds: float | None, ok: int = result.ok) -> str:
            return "-" if seconds is None else f"{seconds / ok * 1000:.2f}"

        lines.append(
            f"{result.method + ' ' + result.case:<22}{ms(app):>10}{ms(used.get('postgres')):>10}"
            f"{ms(used.get('postgres shared')):>11}{ms(used.get('load generators')):>10}"
            f"{ms(used.get('other')):>8}"
        )
    lines.append(
        "  ORM floor: the raw UPDATE through a new SQLAlchemy session per booking, as a request"
        " runs it:\n  what the stack itself costs before the engine does any work.\n"
        "  app: this process (raw SQL, ORM, engine) or uvicorn (HTTP); postgres: backends of the"
        " bench"
        " database;\n  pg shared: WAL writer, checkpointer…; other: everything else on the machine"
        " (other jobs, kernel)"
    )
    if run.sellouts:
        sold = ", ".join(
            f"{r.method} {r.ok}/{run.args.sellout_seats}" + ("" if not r.checks else " FAILED")
            for r in run.sellouts
        )
        lines.append(f"sell-out race ({run.args.clients} clients, one slot): sold {sold}")
    if run.availability is not None:
        a = run.availability
        avg = a.found / a.ok if a.ok else 0.0
        lines.append(
            f"availability: {a.rate:,.0f} queries/s through booking.service.availability() "
            f"({a.clients} clients, one random day each, limit 20, {avg:.1f} slots per answer)"
        )
    return "\n".join(lines), rows


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def write_json(run: Run, rows: list[dict[str, Any]], path: Path, pg_version: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgresql": pg_version,
        },
        "settings": {
            "clients": run.args.clients,
            "seconds": run.args.seconds,
            "slots": run.args.slots,
            "http_workers": run.args.http_workers,
            "sellout_seats": run.args.sellout_seats,
            "methods": run.args.methods,
            "cases": run.args.cases,
        },
        "aims": {"engine_vs_raw": AIM_ENGINE, "http_vs_raw": AIM_HTTP},
        "summary": rows,
        "phases": [
            {**dataclasses.asdict(r), "rate": r.rate}
            for r in [
                *run.results,
                *run.sellouts,
                *([run.availability] if run.availability else []),
            ]
        ],
        "invariants_ok": not run.failures,
        "failures": run.failures,
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_booking.py",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("MADOGUCHI_BENCH_DATABASE_URL", DEFAULT_ADMIN_URL),
        help="an existing PostgreSQL database to connect to as admin; the bench creates and "
        "drops its own database next to it (default: %(default)s, or "
        "MADOGUCHI_BENCH_DATABASE_URL)",
    )
    parser.add_argument(
        "--clients", type=int, default=8, help="concurrent clients per phase (default: 8)"
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="length of each timed phase (default: 5)"
    )
    parser.add_argument(
        "--slots",
        type=int,
        default=500,
        help=f"slots in the spread case, {SPREAD_SEATS:,} seats each (default: 500)",
    )
    parser.add_argument("--skip-http", action="store_true", help="leave out the HTTP API")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=list(METHODS),
        help="which ways of booking to run (default: all three)",
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=CASES,
        default=list(CASES),
        help="hot: every client books one slot; spread: random slots (default: both)",
    )
    parser.add_argument(
        "--no-availability", action="store_true", help="leave out the availability queries"
    )
    parser.add_argument(
        "--no-sellout", action="store_true", help="leave out the sell-out correctness check"
    )
    parser.add_argument(
        "--sellout-seats",
        type=int,
        default=200,
        help="capacity of the slot all clients race to sell out (default: 200)",
    )
    parser.add_argument(
        "--http-workers",
        type=int,
        default=2,
        help="uvicorn worker processes for the HTTP phase (default: 2)",
    )
    parser.add_argument(
        "--availability-service",
        default="pickup",
        help="service asked for in the availability phase (default: pickup, at every venue)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=RESULTS,
        help="where to write the results (default: %(default)s)",
    )
    parser.add_argument(
        "--keep-database", action="store_true", help="do not drop the bench database at the end"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few seconds with tiny numbers, as CI runs it: proves the bench still works (every "
        "check still fails it), not how fast anything is",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.clients, args.seconds, args.slots, args.sellout_seats = 2, 0.5, 20, 10
        args.http_workers = 1
        args.json = Path(tempfile.gettempdir()) / "madoguchi-bench-booking-smoke.json"
    if args.skip_http and "http" in args.methods:
        args.methods.remove("http")
    if args.clients < 1 or args.seconds <= 0 or not 1 <= args.slots <= 10_000:
        parser.error("--clients >= 1, --seconds > 0 and 1 <= --slots <= 10000, please")
    args.methods = [m for m in METHODS if m in args.methods]
    args.cases = [c for c in CASES if c in args.cases]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with throwaway_database(
        args.database_url, prefix="madoguchi_bench", keep=args.keep_database
    ) as url:
        vault = Vault.from_keys([Fernet.generate_key().decode()], secrets.token_urlsafe(32))
        ctx = BookingContext(vault=vault, rules=BookingRules(), clock=fixed_clock)
        pool = args.clients + 2
        engine = make_engine(url.render_as_string(hide_password=False), pool_size=pool)
        sessions = make_sessionmaker(engine, ctx)
        with engine.connect() as conn:
            pg_version = str(conn.execute(text("SHOW server_version")).scalar_one())
        print(
            f"PostgreSQL {pg_version} database {url.database}, {args.clients} clients, "
            f"{args.seconds:g} s a phase, {os.cpu_count()} CPUs; setting up…",
            file=sys.stderr,
        )
        slots = set_up(sessions, args.methods, args.slots, args.sellout_seats)
        run = Run(args=args, url=url, engine=engine, sessions=sessions, slots=slots)
        try:
            if "http" in args.methods:
                run.server = HttpServer(url, args.http_workers, pool=args.clients + 2)
            for case in args.cases:
                for method in args.methods:
                    run.results.append(run.phase(method, case))
            if not args.no_sellout:
                for method in args.methods:
                    run.sellouts.append(run.phase(method, "sell-out", sellout=True))
            if not args.no_availability:
                tallies, elapsed, cpu = run_threads(
                    "availability",
                    args.clients,
                    args.seconds,
                    availability_worker(sessions, args.availability_service),
                    run.watch,
                )
                run.availability = summarise("availability", "-", tallies, elapsed, cpu)
                if run.availability.errors:
                    run.availability.checks.append(
                        f"{run.availability.errors} errors; first: {run.availability.first_error}"
                    )
                run.report(run.availability)
        finally:
            if run.server is not None:
                run.server.stop()
            engine.dispose()
        text_table, rows = table(run)
        write_json(run, rows, args.json, pg_version)
    print()
    print(
        f"Bookings per second on PostgreSQL {pg_version}, {args.clients} clients, "
        f"{args.seconds:g} s per phase, {os.cpu_count()} CPUs shared by clients, app and database"
    )
    print(text_table)
    if run.failures:
        print("\nINVARIANTS BROKEN — overbooking or lost bookings:")
        for failure in run.failures:
            print(f"  {failure}")
        print(f"results: {args.json}")
        return 1
    print(
        "\nNo overbooking: booked + held <= capacity on every slot; the booked counters equal"
        " the bookings and the clients' counts."
    )
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
