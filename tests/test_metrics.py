"""/metrics: Prometheus' text format, read by the addresses allowed, from the real app.

Bookings, a cancel, a hold and a lapsed hold go through the API; the scrape must show them
(figures read from the database, and the holds counted once committed). Two processes that
share a metrics directory are summed in one scrape. Route groups never carry a path's ids.
Counters are process-wide and other tests' apps add to them: the tests compare before and after.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from booking.context import TOKYO
from booking.models import Hold, Slot
from config.metrics import GROUPS, route_group
from ivr import service as calls
from tests.conftest import FakeClock, SlotMaker, app_for

API = "/api/v1"
LOOPBACK = ("127.0.0.1", 40000)
WORKTREE = Path(__file__).resolve().parent.parent

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(app: FastAPI, client: tuple[str, int] = LOOPBACK, **headers: str) -> Any:
    return TestClient(app, client=client).get("/metrics", headers=headers)


def parse(exposition: str) -> tuple[set[str], Samples]:
    """The families named and every sample, keyed by name and sorted labels."""
    families: set[str] = set()
    samples: Samples = {}
    for family in text_string_to_metric_families(exposition):
        families.add(family.name)
        for sample in family.samples:
            assert isinstance(sample, Sample)
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return families, samples


def read(app: FastAPI) -> tuple[set[str], Samples]:
    response = scrape(app)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def person(**fields: Any) -> dict[str, Any]:
    phone = f"090-{secrets.randbelow(9000) + 1000}-{secrets.randbelow(9000) + 1000}"
    return {"name_kana": "やまだ たろう", "phone": phone, "birth_date": "1950-04-01", **fields}


@pytest.fixture
def app(engine: Engine, clock: FakeClock, tmp_path: Path) -> FastAPI:
    return app_for(engine, clock, tmp_path, metrics_cache_seconds=0)


@pytest.fixture
def http(app: FastAPI) -> Iterator[TestClient]:
    # An address of its own: the per-client attempt limits are counted in the shared database.
    address = (f"10.77.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}", 50000)
    with TestClient(app, raise_server_exceptions=False, client=address) as client:
        yield client


def slots(committed: sessionmaker[Session], *seats: int) -> list[int]:
    with committed() as db:
        made = [SlotMaker(db)(n) for n in seats]
        db.commit()
    return made


def free_today(committed: sessionmaker[Session], clock: FakeClock) -> dict[str, int]:
    """Seats free in today's open slots not yet begun, per venue, counted here in Python."""
    now = clock()
    found: dict[str, int] = {}
    with committed() as db:
        rows = db.execute(
            select(Slot.venue_id, Slot.starts_at, Slot.capacity, Slot.booked, Slot.held).where(
                Slot.is_open.is_(True), Slot.starts_at >= now
            )
        )
        for venue, starts_at, capacity, booked, held in rows:
            if starts_at.astimezone(TOKYO).date() == now.astimezone(TOKYO).date():
                found[venue] = found.get(venue, 0) + max(capacity - booked - held, 0)
    return found


def test_the_scrape_shows_bookings_cancels_holds_and_lapsed_holds(
    app: FastAPI, http: TestClient, committed: sessionmaker[Session], clock: FakeClock
) -> None:
    _, before = read(app)
    one, two, full = slots(committed, 3, 3, 1)
    booked = http.post(f"{API}/bookings", json=person(slot_id=one))
    assert booked.status_code == 201, booked.text
    code = booked.json()["code"]
    assert http.post(f"{API}/bookings", json=person(slot_id=two)).status_code == 201
    cancel = http.post(f"{API}/bookings/{code}/cancel", json={"birth_date": "1950-04-01"})
    assert cancel.status_code == 200, cancel.text
    # A hold on the last seat lapses; the next booking there takes the seat back to sale.
    held = http.post(f"{API}/holds", json={"slot_id": full, "party_size": 1})
    assert held.status_code == 201, held.text
    clock.advance(minutes=11)
    assert http.post(f"{API}/bookings", json=person(slot_id=full)).status_code == 201
    # A hold refused (the slot is full now) is not counted.
    assert http.post(f"{API}/holds", json={"slot_id": full, "party_size": 1}).status_code == 409

    families, after = read(app)
    assert {
        "madoguchi_http_request_duration_seconds",
        "madoguchi_http_requests",
        "madoguchi_http_errors",
        "madoguchi_http_requests_in_flight",
        "madoguchi_holds_taken",
        "madoguchi_holds_lapsed",
        "madoguchi_bookings_today",
        "madoguchi_cancellations_today",
        "madoguchi_seats_free_today",
        "madoguchi_holds_live",
        "madoguchi_calls_waiting",
        "madoguchi_calls_longest_wait_seconds",
        "madoguchi_messages",
        "madoguchi_metrics_source_up",
    } <= families

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("madoguchi_bookings_today", channel="web") == 3
    assert grew("madoguchi_cancellations_today", channel="web") == 1
    assert grew("madoguchi_bookings_today", channel="ivr") == 0
    assert grew("madoguchi_holds_taken_total", channel="web") == 1
    assert grew("madoguchi_holds_lapsed_total", channel="web") == 1
    assert value(after, "madoguchi_metrics_source_up", source="database") == 1
    # Seats kept for people deciding now: the lapsed hold is not among them (the shared test
    # database may hold other tests' live holds, at times later than this test's clock).
    with committed() as db:
        live = db.scalar(
            select(func.count())
            .select_from(Hold)
            .where(Hold.kind == "offer", Hold.expires_at > clock.now)
        )
        ours = db.get(Hold, held.json()["id"])
        assert ours is None or ours.expires_at <= clock.now
    assert value(after, "madoguchi_holds_live") == live
    # The queue as the agents see it (the shared test database holds other tests' calls).
    with committed() as db:
        waiting = len(calls.waiting_calls(db))
    assert value(after, "madoguchi_calls_waiting") == waiting
    assert value(after, "madoguchi_messages", state="scheduled") >= 0
    assert ("madoguchi_messages", (("state", "dropped"),)) in after
    today = free_today(committed, clock)
    assert today and all(
        value(after, "madoguchi_seats_free_today", venue=v) == n for v, n in today.items()
    )
    # The API's answers, timed and counted by group and status class.
    assert grew("madoguchi_http_requests_total", group="api", status="2xx") == 5
    assert grew("madoguchi_http_requests_total", group="api", status="4xx") == 1
    assert grew("madoguchi_http_request_duration_seconds_count", group="api") == 6


def test_an_unexpected_error_is_counted_by_kind(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from booking import service

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a fault here")

    monkeypatch.setattr(service, "list_services", broken)
    _, before = read(app)
    answer = TestClient(app, raise_server_exceptions=False).get(f"{API}/services")
    assert answer.status_code == 500
    _, after = read(app)
    for name, labels in (
        ("madoguchi_http_errors_total", {"group": "api", "kind": "unhandled"}),
        ("madoguchi_http_requests_total", {"group": "api", "status": "5xx"}),
    ):
        assert value(after, name, **labels) - value(before, name, **labels) == 1


def test_only_allowed_addresses_read_the_metrics(
    engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    app = app_for(engine, clock, tmp_path, metrics_allow="192.0.2.0/24")
    assert scrape(app, ("192.0.2.7", 1234)).status_code == 200
    assert "madoguchi_http_requests" in scrape(app, ("192.0.2.7", 1234)).text
    for client, headers in (
        (("203.0.113.5", 1234), {}),  # not in the list
        (LOOPBACK, {}),  # loopback is not in this list
        (("192.0.2.7", 1234), {"X-Forwarded-For": "203.0.113.5"}),  # forwarded for outside
        (("192.0.2.7", 1234), {"X-Forwarded-For": "192.0.2.8, 203.0.113.5"}),
        (("192.0.2.7", 1234), {"Forwarded": "for=192.0.2.8"}),
    ):
        refused = scrape(app, client, **headers)
        assert refused.status_code == 404, (client, headers)
        assert "madoguchi_" not in refused.text
    # The default: loopback only.
    default = app_for(engine, clock, tmp_path)
    assert scrape(default).status_code == 200
    assert scrape(default, ("::1", 1)).status_code == 200
    assert scrape(default, ("10.0.0.1", 1)).status_code == 404


IDS = ("4b1d2c3e4f5a6b7c8d9e0f1a2b3c4d5e", "K7Q2M9X4", "CA0123456789abcdef", "98765")


def test_route_groups_never_carry_ids(app: FastAPI) -> None:
    client = TestClient(app, raise_server_exceptions=False, client=("10.88.0.1", 1))
    for path in (
        f"/manage/move/{IDS[0]}",
        f"/hold/{IDS[0]}",
        f"{API}/bookings/{IDS[1]}",
        f"/console/calls/{IDS[2]}",
        f"/ivr/voice/{IDS[2]}",
        f"/static/{IDS[3]}.css",
        f"/console/static/{IDS[3]}.js",
        f"/wp-admin/{IDS[3]}.php",
        f"/book/application_help/main/{IDS[3]}",
    ):
        client.get(path)
    text = scrape(app).text
    # Names and labels only: a value or a timestamp may hold the digits of an id by chance.
    named = [
        line[: line.rindex("}") + 1] if "}" in line else line.split(" ")[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    ]
    comments = [line for line in text.splitlines() if line.startswith("#")]
    for found in IDS:
        assert not [line for line in named + comments if found in line]
    _, samples = parse(text)
    for _name, labels in samples:
        for label, given in labels:
            if label == "group":
                assert given in GROUPS
    assert route_group(f"/manage/move/{IDS[0]}") == "resident"
    assert route_group("/") == "resident"
    assert route_group(f"{API}/bookings/{IDS[1]}") == "api"
    assert route_group("/console/static/app.js") == "static"
    assert route_group("/console/calls") == "console"
    assert route_group("/ivr/stream") == "stream"
    assert route_group("/ivr/voice") == "ivr"
    assert route_group("/bookings-and-more") == "other"
    assert route_group("/healthz") == "other"


# One process of the pool: serves some requests through the real app, then, if asked, scrapes.
_PROCESS = textwrap.dedent(
    """
    import sys
    from fastapi.testclient import TestClient
    from config.app import create_app
    from config.settings import Settings

    data, paths, scrape = sys.argv[1], sys.argv[2].split(","), sys.argv[3] == "scrape"
    app = create_app(Settings(environment="test", data_dir=data))
    client = TestClient(app, raise_server_exceptions=False, client=("127.0.0.1", 1))
    for path in paths:
        client.get(path)
    if scrape:
        sys.stdout.write(client.get("/metrics").text)
    """
)


def _run(env: dict[str, str], data: Path, paths: list[str], scrape: bool) -> str:
    done = subprocess.run(  # noqa: S603 (our own script, our own interpreter)
        [sys.executable, "-c", _PROCESS, str(data), ",".join(paths), "scrape" if scrape else ""],
        env=env,
        cwd=WORKTREE,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_processes_sharing_a_directory_are_summed(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MADOGUCHI_", "PROMETHEUS"))}
    env["MADOGUCHI_METRICS_DIR"] = str(shared)
    env["PYTHONPATH"] = str(WORKTREE)
    data = tmp_path / "data"
    _run(env, data, ["/healthz"] * 3, scrape=False)
    exposition = _run(env, data, ["/static/none.css", "/static/none.js"], scrape=True)
    families, samples = parse(exposition)
    assert "madoguchi_http_requests" in families
    # The first process's three health checks and the second's two misses, in one scrape.
    assert value(samples, "madoguchi_http_requests_total", group="other", status="2xx") == 3
    assert value(samples, "madoguchi_http_requests_total", group="static", status="4xx") == 2
    assert value(samples, "madoguchi_http_request_duration_seconds_count", group="other") == 3
    # Both processes wrote their own files; the first, ended, left no live gauge behind.
    counters = list(shared.glob("counter_*.db"))
    assert len(counters) == 2
    assert len(list(shared.glob("gauge_livesum_*.db"))) <= 1
    assert value(samples, "madoguchi_holds_taken_total", channel="web") == 0
    assert ("madoguchi_holds_taken_total", (("channel", "web"),)) in samples


def test_holds_count_only_once_committed(app: FastAPI, committed: sessionmaker[Session]) -> None:
    from booking import service

    [slot] = slots(committed, 3)
    _, before = read(app)
    with committed() as db:  # taken, then rolled back: never happened
        service.create_hold(db, slot_id=slot, seats=1, channel="ivr")
        db.rollback()
        db.commit()  # a later commit of the same session does not bring it back
    with committed() as db:  # taken, and the session closed without a commit
        service.create_hold(db, slot_id=slot, seats=1, channel="ivr")
    _, between = read(app)
    with committed() as db:
        service.create_hold(db, slot_id=slot, seats=1, channel="ivr")
        db.commit()
    _, after = read(app)
    taken = "madoguchi_holds_taken_total"
    assert value(between, taken, channel="ivr") == value(before, taken, channel="ivr")
    assert value(after, taken, channel="ivr") == value(before, taken, channel="ivr") + 1
