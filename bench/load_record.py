"""What the load test's clients heard, per route group: latencies and answers by kind.

Shared by bench/locustfile.py (which records, inside locust's gevent process) and
bench/bench_load.py (which merges what every locust process wrote and prints the report).
Nothing here imports locust or gevent, so the driver stays an ordinary Python process."""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# Route groups, in the report's order. A request's group comes from its path (and, for the
# flood's clients, from who sent it: see TimedTransport's ``group``).
GROUPS = (
    "pages: start, venues",
    "calendar: month",
    "calendar: day's times",
    "calendar: earliest times",
    "api: availability",
    "api: hold",
    "api: booking",
    "console: sign-in",
    "console: sign-in burst",
    "console: queue page",
    "console: queue stream (first event)",
    "phone line: webhooks",
    "flood: resident pages",
)
PHONE_LINE = "phone line: webhooks"
BOOKING = "api: booking"
SIGN_IN_BURST = "console: sign-in burst"
# nginx's busy page (deploy/nginx/madoguchi-busy.html) says so in both languages; an answer of the
# app never carries it.
BUSY_MARK = "しばらく"
_MONTH = re.compile(r"^/book/[^/]+/[^/]+$")
_DAY = re.compile(r"^/book/[^/]+/[^/]+/\d{4}-\d{2}-\d{2}$")


def route_group(method: str, path: str) -> str:
    """The report's group for a request the scenario sends."""
    if path.startswith("/ivr/"):
        return PHONE_LINE
    if path.startswith("/console/login"):
        return "console: sign-in"
    if path.startswith("/console/"):
        return "console: queue page"
    if path.startswith("/api/v1/availability"):
        return "api: availability"
    if path.startswith("/api/v1/holds"):
        return "api: hold"
    if path.startswith("/api/v1/bookings"):
        return BOOKING
    if path.startswith("/book/") and path.split("/")[3:4] == ["any"]:
        return "calendar: earliest times"
    if _DAY.match(path):
        return "calendar: day's times"
    if _MONTH.match(path):
        return "calendar: month"
    return "pages: start, venues"


def answer_kind(status: int, busy_page: bool) -> str:
    """How an answer counts: served, refused by the rules, or turned away, and by whom."""
    if status < 400:
        return "ok"
    if status == 409:
        return "409 refused (seats gone)"
    if status == 429:
        return "429 busy page (nginx)" if busy_page else "429 app's own limit"
    if status in (502, 503, 504) and busy_page:
        return f"{status} busy page (nginx)"
    if status >= 500:
        return f"{status} from the app"
    return f"{status}"


def percentile(ordered: list[float], q: float) -> float:
    """Nearest rank: the smallest sample with at least q of the samples at or below it."""
    if not ordered:
        return math.nan
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@dataclass
class Recorder:
    """Every request's time and answer, and the bookings the clients were told about."""

    ms: dict[str, list[float]] = field(default_factory=dict)
    answers: dict[str, Counter[str]] = field(default_factory=dict)
    booked: list[dict[str, object]] = field(default_factory=list)  # API 201s: code, slot, seats
    tallies: Counter[str] = field(default_factory=Counter)  # IVR outcomes, refusals, errors
    errors: list[str] = field(default_factory=list)
    first: float = math.inf
    last: float = 0.0
    # The phone line's webhooks as (sent at, ms), wall clock: which were under way when.
    phone_spans: list[tuple[float, float]] = field(default_factory=list)
    # The sign-in bursts as (first sent, last answered), wall clock.
    bursts: list[tuple[float, float]] = field(default_factory=list)

    def add(self, group: str, ms: float, kind: str) -> None:
        now = time.time()
        self.first, self.last = min(self.first, now - ms / 1000), max(self.last, now)
        self.ms.setdefault(group, []).append(ms)
        self.answers.setdefault(group, Counter())[kind] += 1
        if group == PHONE_LINE:
            self.phone_spans.append((now - ms / 1000, ms))

    def phone_during(self, windows: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
        """The phone line's webhook times (ms) under way during any of ``windows`` (sent before
        one ended and answered after it began), and the others."""
        inside: list[float] = []
        outside: list[float] = []
        for sent, ms in self.phone_spans:
            answered = sent + ms / 1000
            hit = any(sent < end and answered > begin for begin, end in windows)
            (inside if hit else outside).append(ms)
        return inside, outside

    def error(self, message: str) -> None:
        self.tallies["errors"] += 1
        if len(self.errors) < 50:
            self.errors.append(message[:400])

    def dump(self, path: Path) -> None:
        body = {
            "ms": self.ms,
            "answers": {g: dict(c) for g, c in self.answers.items()},
            "booked": self.booked,
            "tallies": dict(self.tallies),
            "errors": self.errors,
            "first": self.first if self.ms else None,
            "last": self.last if self.ms else None,
            "phone_spans": self.phone_spans,
            "bursts": self.bursts,
        }
        path.write_text(json.dumps(body), encoding="utf-8")

    def merge(self, path: Path) -> None:
        body = json.loads(path.read_text(encoding="utf-8"))
        for group, values in body["ms"].items():
            self.ms.setdefault(group, []).extend(values)
        for group, counts in body["answers"].items():
            self.answers.setdefault(group, Counter()).update(counts)
        self.booked.extend(body["booked"])
        self.tallies.update(body["tallies"])
        self.errors.extend(body["errors"])
        if body["first"] is not None:
            self.first = min(self.first, body["first"])
            self.last = max(self.last, body["last"])
        self.phone_spans.extend((sent, ms) for sent, ms in body["phone_spans"])
        self.bursts.extend((begin, end) for begin, end in body["bursts"])


class TimedTransport(httpx.BaseTransport):
    """An HTTPS transport from one loopback address, with a stopwatch from the request sent to
    the answer's last byte; every answer (and every transport failure) is recorded."""

    def __init__(
        self,
        recorder: Recorder,
        *,
        source: str,
        verify: object,
        on_request: Callable[[str, str, float, int, BaseException | None], None] | None = None,
        group: str | None = None,
    ) -> None:
        self._inner = httpx.HTTPTransport(local_address=source, verify=verify)  # type: ignore[arg-type]
        self._recorder = recorder
        self._on_request = on_request
        self._group = group

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/queue/stream"):
            return self._inner.handle_request(request)  # read and timed by its reader
        group = self._group or route_group(request.method, request.url.path)
        started = time.perf_counter()
        try:
            response = self._inner.handle_request(request)
            body = response.read()
        except httpx.TransportError as failed:
            ms = (time.perf_counter() - started) * 1000
            kind = "timeout" if isinstance(failed, httpx.TimeoutException) else "no connection"
            self._recorder.add(group, ms, kind)
            if self._on_request is not None:
                self._on_request(request.method, group, ms, 0, failed)
            raise
        ms = (time.perf_counter() - started) * 1000
        busy = response.status_code >= 400 and BUSY_MARK.encode() in body
        kind = answer_kind(response.status_code, busy)
        self._recorder.add(group, ms, kind)
        if kind != "ok" and not busy and response.status_code != 409:
            excerpt = body[:300].decode(errors="replace")
            self._recorder.error(f"{request.method} {request.url.path}: {kind}: {excerpt}")
        if self._on_request is not None:
            self._on_request(request.method, group, ms, len(body), None)
        return response

    def close(self) -> None:
        self._inner.close()
