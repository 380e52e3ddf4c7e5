"""PostgreSQL connections: each process's pool sized from settings, a statement timeout set as
the connection opens, and a pool that rides out a restart of the server (pre-ping).

The restart runs on a private PostgreSQL server of the test's own (initdb into a temporary
folder, a free port), never on the shared one; as root it runs as the ``postgres`` user, since
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import QueuePool

from config.app import create_app
from config.db import engine_for
from config.migrate import upgrade
from config.settings import Settings


def settings_for(url: str, data_dir: Path, **given: object) -> Settings:
    return Settings(
        database_url=url,
        environment="test",
        data_dir=data_dir,
        data_keys=Fernet.generate_key().decode(),
        lookup_key="x" * 32,
        **given,  # type: ignore[arg-type]
    )


def pool_of(engine: Engine) -> QueuePool:
    assert isinstance(engine.pool, QueuePool)
    return engine.pool


def test_pool_sizes_and_timeout_come_from_settings(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defaults = settings_for(pg_url, tmp_path)
    assert (defaults.db_pool_size, defaults.db_max_overflow) == (5, 5)
    assert defaults.db_statement_timeout_ms == 5000
    engine = engine_for(defaults)
    try:
        assert pool_of(engine).size() == 5
        assert pool_of(engine)._max_overflow == 5
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "5s"
    finally:
        engine.dispose()

    monkeypatch.setenv("MADOGUCHI_DB_POOL_SIZE", "3")
    monkeypatch.setenv("MADOGUCHI_DB_MAX_OVERFLOW", "2")
    monkeypatch.setenv("MADOGUCHI_DB_STATEMENT_TIMEOUT_MS", "1500")
    engine = engine_for(settings_for(pg_url, tmp_path))
    try:
        assert pool_of(engine).size() == 3
        assert pool_of(engine)._max_overflow == 2
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "1500ms"
    finally:
        engine.dispose()


def test_the_apps_sessions_use_the_settings_pool(pg_url: str, tmp_path: Path) -> None:
    app = create_app(settings_for(pg_url, tmp_path, db_pool_size=2, db_max_overflow=1))
    engine = app.state.sessions.kw["bind"]
    try:
        assert pool_of(engine).size() == 2
        assert pool_of(engine)._max_overflow == 1
    finally:
        engine.dispose()


def test_a_statement_past_the_timeout_is_cancelled(pg_url: str, tmp_path: Path) -> None:
    engine = engine_for(settings_for(pg_url, tmp_path, db_statement_timeout_ms=200))
    try:
        started = time.monotonic()
        with engine.connect() as conn, pytest.raises(OperationalError) as cancelled:
            conn.execute(text("SELECT pg_sleep(10)"))
        assert time.monotonic() - started < 3
        assert "canceling statement due to statement timeout" in str(cancelled.value)
        with engine.connect() as conn:  # the connection is still good for the next request
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


# A private PostgreSQL server, to restart -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateServer:
    """A PostgreSQL server in a temporary folder, run by pg_ctl (as ``postgres`` under root)."""

    def __init__(self, bindir: Path, folder: Path, as_user: list[str]) -> None:
        self.bindir, self.folder, self.as_user = bindir, folder, as_user
        self.data = folder / "data"
        self.port = _free_port()

    def run(self, tool: str, *args: str) -> None:
        subprocess.run(  # noqa: S603 (PostgreSQL's own tools, our arguments)
            [*self.as_user, str(self.bindir / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def pg_ctl(self, action: str, *args: str) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", action, *args)

    def start(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self.pg_ctl("start", "-o", options, "-l", str(self.folder / "server.log"))

    def restart(self) -> None:
        # The log file again: without it the server would write to (and hold open) our pipe.
        self.pg_ctl("restart", "-m", "fast", "-l", str(self.folder / "server.log"))

    def stop(self) -> None:
        self.pg_ctl("stop", "-m", "immediate")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def private_server() -> Iterator[PrivateServer]:
    initdb = shutil.which("initdb") or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None
    )
    if initdb is None:
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    bindir = Path(os.path.realpath(initdb)).parent
    folder = Path(tempfile.mkdtemp(prefix="madoguchi-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres user to run a private server")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    server = PrivateServer(bindir, folder, as_user)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        except subprocess.CalledProcessError:
            pass  # it never started
        shutil.rmtree(folder, ignore_errors=True)


def test_the_pool_rides_out_a_server_restart(private_server: PrivateServer, tmp_path: Path) -> None:
    upgrade(private_server.url)
    app = create_app(settings_for(private_server.url, tmp_path))
    engine: Engine = app.state.sessions.kw["bind"]
    try:
        with TestClient(app) as client:
            assert client.get("/api/v1/services").status_code == 200
            assert pool_of(engine).checkedin() >= 1  # a connection kept for the next request
            private_server.restart()
            # The kept connection is dead; the pool finds out before the request uses it.
            after = client.get("/api/v1/services")
            assert after.status_code == 200, after.text
            assert client.get("/api/v1/venues").status_code == 200
    finally:
        engine.dispose()
