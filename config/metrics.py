"""The operators' metrics: ``GET /metrics`` in Prometheus' text format.

Two kinds of figure:

- **Counted as they happen**, in every process: requests by route group and status class, their
  latency, 5xx answers by kind, requests in flight, and holds taken and lapsed (the engine's
  tally, added up only once its transaction committed). With ``MADOGUCHI_METRICS_DIR`` (or
  ``PROMETHEUS_MULTIPROC_DIR``) every process writes them into that directory
  (prometheus-client's multiprocess mode) and whichever process answers a scrape reports the
  sum of all; without it each process reports its own.
- **Read at the scrape** from the services, so every process tells the same truth: today's
  bookings and cancellations by channel, seats still free today per venue, holds live, calls
  waiting and the longest wait, residents' messages by state, and RQ's queue depths. They are
  read in the route's worker thread (a plain ``def`` route, never on the event loop), with a
  statement timeout on PostgreSQL, and reused for ``MADOGUCHI_METRICS_CACHE_SECONDS``.

Labels are bounded: a route group from the path's first segment (never the path, never an id),
a status class, a channel, a venue id, a message state, a queue name.

/metrics answers only to the addresses in ``MADOGUCHI_METRICS_ALLOW`` (loopback by default);
anyone else, and any request a proxy forwarded for someone else, gets the ordinary 404.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network, ip_address
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import event, text
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from booking import service as booking
from booking.context import context
from config.errors import database_unavailable
from config.settings import Settings
from ivr import service as calls
from reminders import service as reminders

log = logging.getLogger(__name__)

CHANNELS = ("ivr", "web", "agent", "line")
GROUPS = ("resident", "api", "console", "ivr", "stream", "static", "other")
# The route group of a path, by its first segment (the residents' pages live at the root).
_BY_SEGMENT = {
    "": "resident",
    "book": "resident",
    "booking": "resident",
    "hold": "resident",
    "manage": "resident",
    "privacy": "resident",
    "static": "static",
    "favicon.ico": "static",
    "api": "api",
    "console": "console",
    "ivr": "ivr",
}
# A scrape's database reads give up after this long rather than queue behind the bookings.
STATEMENT_TIMEOUT_MS = 2000
# Latency buckets (seconds): pages and API answers in tens of milliseconds, the phone line's
# webhooks must stay well under Twilio's 15 s.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)


def route_group(path: str) -> str:
    """The group a path belongs to: one of GROUPS, whatever the path holds."""
    parts = path.split("/", 3)
    first = parts[1] if len(parts) > 1 else ""
    second = parts[2] if len(parts) > 2 else ""
    if first == "console" and second == "static":
        return "static"
    if first == "ivr" and second == "stream":
        return "stream"
    return _BY_SEGMENT.get(first, "other")


# --- Counted as it happens: one set of meters per process ---------------------------------


class Meters:
    """This process's counters; in multiprocess mode their values live in the shared folder."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.latency = Histogram(
            "madoguchi_http_request_duration_seconds",
            "Time to answer a request (to the WebSocket's accept for the media stream), "
            "by route group.",
            ["group"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.requests = Counter(
            "madoguchi_http_requests",
            "Requests answered, by route group and status class.",
            ["group", "status"],
            registry=registry,
        )
        self.errors = Counter(
            "madoguchi_http_errors",
            "5xx answers by route group and kind: unhandled (a fault here), "
            "database_unavailable (answered 503), answered (a route chose a 5xx).",
            ["group", "kind"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "madoguchi_http_requests_in_flight",
            "Requests being answered now, by route group (live processes only).",
            ["group"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.holds_taken = Counter(
            "madoguchi_holds_taken",
            "Holds (seats kept while someone decides) taken and committed, by channel.",
            ["channel"],
            registry=registry,
        )
        self.holds_lapsed = Counter(
            "madoguchi_holds_lapsed",
            "Holds that lapsed unused and went back to sale (committed), by channel.",
            ["channel"],
            registry=registry,
        )
        # Every series exists from the start (0), so a rate is defined before the first event.
        for channel in CHANNELS:
            self.holds_taken.labels(channel)
            self.holds_lapsed.labels(channel)
        for group in GROUPS:
            self.latency.labels(group)
            for kind in ("unhandled", "database_unavailable", "answered"):
                self.errors.labels(group, kind)

    def add_tally(self, tally: dict[tuple[str, str], int]) -> None:
        for (what, channel), n in tally.items():
            if channel not in CHANNELS:
                continue
            if what == "hold_taken":
                self.holds_taken.labels(channel).inc(n)
            elif what == "hold_lapsed":
                self.holds_lapsed.labels(channel).inc(n)


@dataclass
class _Process:
    """The process-wide state: prometheus-client's values are process-wide too."""

    meters: Meters | None = None
    registry: CollectorRegistry | None = None
    directory: Path | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_process = _Process()


def _use_directory(directory: Path) -> None:
    """Switch this process to multiprocess mode, before any meter exists. prometheus-client
    reads the variable when each value is made; the units set it themselves, this covers
    MADOGUCHI_METRICS_DIR alone."""
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    if not values.ValueClass.__name__.startswith("MmapedValue"):
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    pid = os.getpid()
    # A process that ends cleanly takes its live gauges (requests in flight) with it.
    atexit.register(multiprocess.mark_process_dead, pid, str(directory))


def meters(settings: Settings) -> Meters:
    """This process's meters, made on first use in the mode the settings ask for."""
    with _process.lock:
        if _process.meters is not None:
            if settings.metrics_dir != _process.directory:
                raise RuntimeError("a process keeps the metrics mode it started with")
            return _process.meters
        if settings.metrics_dir is not None:
            _use_directory(settings.metrics_dir)
            _process.meters = Meters(None)
        else:
            _process.registry = CollectorRegistry(auto_describe=True)
            _process.meters = Meters(_process.registry)
        _process.directory = settings.metrics_dir
        event.listen(Session, "after_commit", _count_committed)
        event.listen(Session, "after_transaction_end", _drop_uncommitted)
        return _process.meters


def _count_committed(session: Session) -> None:
    tally = booking.take_tally(session)
    if tally and _process.meters is not None:
        _process.meters.add_tally(tally)


def _drop_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended without a commit
        booking.take_tally(session)


class RequestMeters:
    """Times and counts every request by route group. Sits inside the error answers, so it sees
    an unexpected error as the exception it is (and counts the 500 or 503 that follows)."""

    def __init__(self, app: ASGIApp, meters: Meters) -> None:
        self.app = app
        self.meters = meters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        group = route_group(str(scope.get("path", "")))
        started = time.perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start":
                status = int(message["status"])
            elif kind == "websocket.accept":
                status = 101
            elif kind in ("websocket.close", "websocket.http.response.start") and not status:
                status = int(message.get("status", 403))
            await send(message)

        in_flight = self.meters.in_flight.labels(group)
        in_flight.inc()
        try:
            await self.app(scope, receive, sending)
        except Exception as error:
            unavailable = database_unavailable(error)
            self._count(group, 503 if unavailable else 500, started)
            kind = "database_unavailable" if unavailable else "unhandled"
            self.meters.errors.labels(group, kind).inc()
            raise
        else:
            if status >= 500:
                self.meters.errors.labels(group, "answered").inc()
            self._count(group, status, started)
        finally:
            in_flight.dec()

    def _count(self, group: str, status: int, started: float) -> None:
        self.meters.latency.labels(group).observe(time.perf_counter() - started)
        self.meters.requests.labels(group, f"{status // 100}xx" if status else "none").inc()


# --- Read at the scrape -----------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """What the services say now; None where a source could not be read."""

    today: booking.Today | None
    waiting: int | None
    longest_wait: float | None
    messages: dict[str, int] | None
    queues: dict[str, int] | None


def _statement_timeout(db: Session) -> None:
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))


def read_figures(sessions: sessionmaker[Session], redis_url: str | None) -> Figures:
    """Every scrape-time figure, each source on its own: one that fails leaves the others."""
    today: booking.Today | None = None
    waiting: int | None = None
    longest: float | None = None
    messages: dict[str, int] | None = None
    try:
        with sessions() as db:
            _statement_timeout(db)
            now: datetime = context(db).now()
            today = booking.today_figures(db, now=now)
            queue = calls.waiting_calls(db)
            waiting = len(queue)
            longest = max(((now - c.enqueued_at).total_seconds() for c in queue), default=0.0)
            messages = reminders.count_by_status(db)
            db.rollback()  # read only
    except Exception:  # the metrics say the database was unreadable; the log says why
        log.warning("metrics: the database could not be read", exc_info=True)
    return Figures(today, waiting, longest, messages, _queue_depths(redis_url))


def _queue_depths(redis_url: str | None) -> dict[str, int] | None:
    if not redis_url:
        return {}
    from rq import Queue

    from config.queue import redis_connection
    from config.worker import QUEUES

    try:
        redis = redis_connection(redis_url)
        return {name: int(Queue(name, connection=redis).count) for name in QUEUES}
    except Exception:  # Redis down or frozen: say so in the figures, not with an error
        log.warning("metrics: Redis could not be read", exc_info=True)
        return None


class FiguresCollector(Collector):
    """The scrape-time families, from figures reused for a few seconds."""

    def __init__(
        self, sessions: sessionmaker[Session], redis_url: str | None, seconds: float
    ) -> None:
        self.sessions = sessions
        self.redis_url = redis_url
        self.seconds = seconds
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._figures: Figures | None = None

    def figures(self) -> Figures:
        # One reader at a time: scrapers arriving together share the one read.
        with self._lock:
            if self._figures is None or time.monotonic() - self._read_at >= self.seconds:
                self._figures = read_figures(self.sessions, self.redis_url)
                self._read_at = time.monotonic()
            return self._figures

    def collect(self) -> Iterator[Metric]:
        found = self.figures()
        up = GaugeMetricFamily(
            "madoguchi_metrics_source_up",
            "1 when the scrape could read this source (database, redis).",
            labels=["source"],
        )
        up.add_metric(["database"], 0 if found.today is None else 1)
        if self.redis_url:
            up.add_metric(["redis"], 0 if found.queues is None else 1)
        yield up
        if found.today is not None:
            yield _by(
                "madoguchi_bookings_today",
                "Bookings made today (Tokyo), by the channel they were made through.",
                "channel",
                {c: found.today.booked.get(c, 0) for c in CHANNELS},
            )
            yield _by(
                "madoguchi_cancellations_today",
                "Bookings cancelled today (Tokyo), by the channel they were made through.",
                "channel",
                {c: found.today.cancelled.get(c, 0) for c in CHANNELS},
            )
            yield _by(
                "madoguchi_seats_free_today",
                "Seats still free in today's open slots not yet begun, by venue.",
                "venue",
                found.today.seats_free,
            )
            yield GaugeMetricFamily(
                "madoguchi_holds_live", "Holds keeping seats now.", value=found.today.holds_live
            )
        if found.waiting is not None and found.longest_wait is not None:
            yield GaugeMetricFamily(
                "madoguchi_calls_waiting",
                "Callers waiting in the agents' queue now.",
                value=found.waiting,
            )
            yield GaugeMetricFamily(
                "madoguchi_calls_longest_wait_seconds",
                "How long the longest-waiting caller has waited (0: nobody waits).",
                value=found.longest_wait,
            )
        if found.messages is not None:
            yield _by(
                "madoguchi_messages",
                "Residents' messages (confirmations, reminders, notices) by state now.",
                "state",
                found.messages,
            )
        if found.queues:
            yield _by(
                "madoguchi_rq_queue_depth", "Jobs waiting in each RQ queue.", "queue", found.queues
            )


def _by(name: str, documentation: str, label: str, counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key in sorted(counts):
        family.add_metric([key], counts[key])
    return family


class _ProcessMeters(Collector):
    """This process's own registry, for a single-process scrape."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


# --- Who may read -----------------------------------------------------------------------


def _allowed(address: str, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    try:
        ip = ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def may_read(request: Request, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    """The client is in the allow-list, and so is everyone a proxy says it forwarded for: a
    public request nginx passed on arrives from loopback, but names its sender."""
    client = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for", "")
    senders = [part for part in forwarded.split(",") if part.strip()]
    if request.headers.get("forwarded"):
        return False  # RFC 7239 headers are not parsed here: refuse rather than guess
    return _allowed(client, networks) and all(_allowed(s, networks) for s in senders)


def install(app: FastAPI, settings: Settings) -> None:
    """The request meters and the /metrics route; call before the error answers are installed
    (so the meters sit inside them)."""
    process_meters = meters(settings)
    app.add_middleware(RequestMeters, meters=process_meters)
    networks = settings.metrics_networks
    figures_for: dict[int, FiguresCollector] = {}

    def collector(sessions: sessionmaker[Session]) -> FiguresCollector:
        # Keyed by the session factory the app uses now (tests swap it after start-up).
        found = figures_for.get(id(sessions))
        if found is None or found.sessions is not sessions:
            found = FiguresCollector(sessions, settings.redis_url, settings.metrics_cache_seconds)
            figures_for.clear()
            figures_for[id(sessions)] = found
        return found

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        """Prometheus' text format; 404 to anyone not allowed."""
        if not may_read(request, networks):
            raise HTTPException(status_code=404)
        registry = CollectorRegistry(auto_describe=False)
        if settings.metrics_dir is not None:
            multiprocess.MultiProcessCollector(registry, path=str(settings.metrics_dir))  # type: ignore[no-untyped-call]
        elif _process.registry is not None:
            registry.register(_ProcessMeters(_process.registry))
        registry.register(collector(request.app.state.sessions))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


__all__ = ["Meters", "RequestMeters", "install", "meters", "route_group"]
