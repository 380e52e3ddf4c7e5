"""/readyz takes a web process out of the proxy's rotation while its database, schema or Redis
is not there (503 naming what), and /healthz keeps answering, so nothing restarts it."""

from __future__ import annotations

import inspect
import shutil
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from config.app import create_app
from config.migrate import upgrade
from config.settings import Settings
from tests.test_read_replica import Pair, pair  # noqa: F401 (the fixture)

SPEECH = {
    "ja": "keys only (no vosk model)",
    "en": "keys only (no vosk model)",
    "ko": "keys only (no vosk model)",
    "zh": "keys only (no vosk model)",
}


@pytest.fixture(scope="module")
def migrated_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("migrated") / "madoguchi.db"
    upgrade(f"sqlite:///{path}")
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_on(data_dir: Path, **given: Any) -> FastAPI:
    return create_app(
        Settings(
            environment="test",
            data_dir=data_dir,
            data_keys=Fernet.generate_key().decode(),
            lookup_key="l" * 32,
            **given,
        )
    )


def probe(app: FastAPI) -> tuple[int, dict[str, Any], dict[str, Any]]:
    with TestClient(app, raise_server_exceptions=False) as http:
        ready = http.get("/readyz")
        alive = http.get("/healthz")
    assert alive.status_code == 200
    return ready.status_code, ready.json(), alive.json()


def test_ready_when_the_database_is_at_head(migrated_file: Path, tmp_path: Path) -> None:
    shutil.copy(migrated_file, tmp_path / "madoguchi.db")
    status, body, alive = probe(app_on(tmp_path))
    assert status == 200
    assert body == {
        "status": "ready",
        "database": "ok",
        "migrations": "ok",
        "redis": "not configured",
    }
    assert alive == {"status": "ok", "speech": SPEECH}


def test_not_ready_while_the_schema_is_not_migrated(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "madoguchi.db").close()
    status, body, _ = probe(app_on(tmp_path))
    assert status == 503
    assert body["status"] == "not ready"
    assert body["failing"] == ["migrations"]
    assert body["migrations"] == "not migrated"


def test_not_ready_while_the_database_is_away_but_still_alive(tmp_path: Path) -> None:
    status, body, alive = probe(
        app_on(tmp_path / "gone", database_url=f"sqlite:///{tmp_path}/x/y/z.db")
    )
    assert status == 503
    assert body["failing"] == ["database", "migrations"]
    assert body["database"] == "OperationalError"
    # Liveness never asks the database: the process is not restarted for an outage of it.
    assert alive["status"] == "ok"


def test_not_ready_while_postgresql_refuses(tmp_path: Path) -> None:
    url = f"postgresql://postgres:pw@127.0.0.1:{_closed_port()}/madoguchi"
    status, body, _ = probe(app_on(tmp_path, database_url=url))
    assert status == 503
    assert body["database"] == "OperationalError"
    assert "pw" not in str(body)


def test_not_ready_while_redis_is_away(migrated_file: Path, tmp_path: Path) -> None:
    shutil.copy(migrated_file, tmp_path / "madoguchi.db")
    app = app_on(tmp_path, redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    status, body, _ = probe(app)
    assert status == 503
    assert body["failing"] == ["redis"]
    assert body["redis"] == "ConnectionError"
    assert (body["database"], body["migrations"]) == ("ok", "ok")


def test_ready_with_redis_answering(migrated_file: Path, tmp_path: Path) -> None:
    from tests.reminders.test_worker import PrivateRedis

    shutil.copy(migrated_file, tmp_path / "madoguchi.db")
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        status, body, _ = probe(app_on(tmp_path, redis_url=redis.url))
    finally:
        redis.stop()
    assert (status, body["redis"]) == (200, "ok")


def test_a_replica_down_is_reported_and_the_process_stays_ready(
    pg_url: str, tmp_path: Path
) -> None:
    nowhere = f"postgresql://postgres:pw@127.0.0.1:{_closed_port()}/replica"
    status, body, _ = probe(app_on(tmp_path, database_url=pg_url, database_read_url=nowhere))
    # Ready all the same: shown reads go to the primary while the replica is away, and every
    # process shares the replica, so failing here would take them all out of rotation at once.
    assert status == 200
    assert body == {
        "status": "ready",
        "database": "ok",
        "migrations": "ok",
        "replica": "OperationalError",
        "redis": "not configured",
        "degraded": ["replica"],
    }
    assert "pw" not in str(body)


def test_a_replica_url_naming_a_writable_server_is_reported(pg_url: str, tmp_path: Path) -> None:
    status, body, _ = probe(app_on(tmp_path, database_url=pg_url, database_read_url=pg_url))
    assert (status, body["replica"], body["degraded"]) == (200, "not a standby", ["replica"])


def test_a_streaming_replica_is_ok_and_its_outage_leaves_the_process_ready(
    pair: Pair,  # noqa: F811
    tmp_path: Path,
) -> None:
    upgrade(pair.primary.url)
    pair.caught_up()
    app = app_on(tmp_path, database_url=pair.primary.url, database_read_url=pair.standby.url)
    try:
        status, body, _ = probe(app)
        assert (status, body["replica"]) == (200, "ok"), body
        assert "degraded" not in body
        pair.standby.stop()
        status, body, _ = probe(app)
        assert (status, body["replica"], body["degraded"]) == (200, "OperationalError", ["replica"])
        assert (body["database"], body["migrations"]) == ("ok", "ok")
    finally:
        app.state.read_sessions.kw["bind"].dispose()
        app.state.sessions.kw["bind"].dispose()


def test_the_probes_run_off_the_event_loop(tmp_path: Path) -> None:
    app = app_on(tmp_path)
    routes = {r.path: r for r in app.routes if isinstance(r, APIRoute)}
    for path in ("/readyz", "/healthz"):
        assert not inspect.iscoroutinefunction(routes[path].endpoint), path
