"""`madoguchi check`: each check alone with its peer answering and failing, the exit status and
the --json report. Peers are real: SQLite files, PostgreSQL, a private redis-server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from cryptography.fernet import Fernet
from redis import Redis
from rq import Queue, Worker

from config import doctor
from config.cli import main
from config.migrate import alembic_config, upgrade
from config.replica import replica_state
from config.settings import Settings
from tests.reminders.test_worker import PrivateRedis
from tests.test_read_replica import Pair, pair  # noqa: F401 (the fixture)

DATA_KEY = Fernet.generate_key().decode()
LOOKUP_KEY = "l" * 32
CLOSED_PORT_PG = "postgresql://postgres:secret-pw@127.0.0.1:1/nothing"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: no MADOGUCHI_* of the machine running the tests."""
    for name in list(os.environ):
        if name.startswith("MADOGUCHI_") or name == "FORWARDED_ALLOW_IPS":
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def migrated_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("migrated") / "madoguchi.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def ready_dir(migrated_file: Path, tmp_path: Path) -> Path:
    """A data folder holding a database at head."""
    shutil.copy(migrated_file, tmp_path / "madoguchi.db")
    return tmp_path


def settings_for(data_dir: Path, **given: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "data_dir": data_dir,
        "data_keys": DATA_KEY,
        "lookup_key": LOOKUP_KEY,
        "public_base_url": "https://yoyaku.city.example.jp",
        "twilio_auth_token": "t" * 32,
        "twilio_account_sid": "AC" + "0" * 32,
        "twilio_from_number": "+81312345678",
    }
    values.update(given)
    return Settings(**values)


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of this module's own: no other test's workers are registered in it."""
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never answers (a frozen peer)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- keys -----------------------------------------------------------------------------------


def test_keys_set_are_ok(tmp_path: Path) -> None:
    found = doctor.check_keys(settings_for(tmp_path))
    assert found.status == "ok"
    assert "1 key" in found.message


@pytest.mark.parametrize(
    ("given", "named", "not_named"),
    [
        ({"data_keys": "", "lookup_key": ""}, ["DATA_KEYS", "LOOKUP_KEY"], []),
        ({"lookup_key": ""}, ["LOOKUP_KEY"], ["DATA_KEYS"]),
        ({"data_keys": " "}, ["DATA_KEYS"], ["LOOKUP_KEY"]),
    ],
)
def test_missing_keys_are_an_error_naming_which(
    tmp_path: Path, given: dict[str, str], named: list[str], not_named: list[str]
) -> None:
    found = doctor.check_keys(settings_for(tmp_path, **given))
    assert found.status == "error"
    for name in named:
        assert f"MADOGUCHI_{name}" in found.message
    for name in not_named:
        assert f"MADOGUCHI_{name}" not in found.message
    assert "madoguchi keys new" in found.fix


def test_a_malformed_data_key_is_an_error(tmp_path: Path) -> None:
    found = doctor.check_keys(settings_for(tmp_path, data_keys=f"{DATA_KEY},not-a-key"))
    assert (found.status, found.summary) == ("error", "invalid")


# --- the database and its migrations --------------------------------------------------------


def test_a_database_at_head_is_ok(ready_dir: Path) -> None:
    settings = settings_for(ready_dir)
    assert doctor.check_database(settings).status == "ok"
    migrations = doctor.check_migrations(settings)
    assert migrations.status == "ok", migrations.message


def test_an_unreachable_database_is_an_error_quickly() -> None:
    settings = settings_for(Path("unused"), database_url=CLOSED_PORT_PG)
    started = time.monotonic()
    found = doctor.check_database(settings)
    assert found.status == "error"
    assert "OperationalError" in found.message
    assert "127.0.0.1:1" in found.message
    assert "secret-pw" not in found.message
    assert "MADOGUCHI_DATABASE_URL" in found.fix
    assert doctor.check_migrations(settings).status == "error"
    assert time.monotonic() - started < 5


def test_a_frozen_database_server_cannot_hang_the_check(silent_port: int) -> None:
    settings = settings_for(
        Path("unused"), database_url=f"postgresql://postgres@127.0.0.1:{silent_port}/x"
    )
    started = time.monotonic()
    assert doctor.check_database(settings).status == "error"
    assert time.monotonic() - started < doctor.TIMEOUT_SECONDS + 2


def test_an_sqlite_file_in_a_missing_folder_is_an_error_and_not_created(tmp_path: Path) -> None:
    where = tmp_path / "no" / "such" / "dir"
    found = doctor.check_database(settings_for(where))
    assert found.status == "error"
    assert "madoguchi db upgrade" in found.fix
    assert not where.exists()


def test_a_fresh_database_without_migrations_is_an_error(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "madoguchi.db").close()  # a database nobody upgraded
    settings = settings_for(tmp_path)
    assert doctor.check_database(settings).status == "ok"
    found = doctor.check_migrations(settings)
    assert (found.status, found.summary) == ("error", "not migrated")
    assert "madoguchi db upgrade" in found.fix


def test_a_database_behind_the_code_is_an_error(tmp_path: Path) -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = scripts.get_revision("head")
    assert head is not None and isinstance(head.down_revision, str)
    upgrade(f"sqlite:///{tmp_path}/madoguchi.db", head.down_revision)
    found = doctor.check_migrations(settings_for(tmp_path))
    assert (found.status, found.summary) == ("error", "not at head")
    assert head.down_revision in found.message and head.revision in found.message


# --- the read replica -----------------------------------------------------------------------


def test_no_replica_is_fine(tmp_path: Path) -> None:
    found = doctor.check_replica(settings_for(tmp_path))
    assert (found.status, found.summary) == ("ok", "not set")


def test_a_replica_on_a_closed_port_is_a_warning_quickly(pg_url: str, tmp_path: Path) -> None:
    nowhere = f"postgresql://postgres:secret-pw@127.0.0.1:{_closed_port()}/replica"
    started = time.monotonic()
    found = doctor.check_replica(
        settings_for(tmp_path, database_url=pg_url, database_read_url=nowhere)
    )
    assert time.monotonic() - started < doctor.TIMEOUT_SECONDS + 2
    # A warning, not an error: shown reads go to the primary meanwhile.
    assert (found.status, found.summary) == ("warn", "OperationalError")
    assert "read from the primary" in found.message
    assert "secret-pw" not in found.message
    assert "MADOGUCHI_DATABASE_READ_URL" in found.fix


def test_a_frozen_replica_cannot_hang_the_check(
    pg_url: str, tmp_path: Path, silent_port: int
) -> None:
    frozen = f"postgresql://postgres@127.0.0.1:{silent_port}/replica"
    started = time.monotonic()
    found = doctor.check_replica(
        settings_for(tmp_path, database_url=pg_url, database_read_url=frozen)
    )
    assert found.status == "warn"
    assert time.monotonic() - started < doctor.TIMEOUT_SECONDS + 2


def test_a_replica_url_naming_a_writable_server_is_a_warning(pg_url: str, tmp_path: Path) -> None:
    found = doctor.check_replica(
        settings_for(tmp_path, database_url=pg_url, database_read_url=pg_url)
    )
    assert (found.status, found.summary) == ("warn", "not a standby")


def test_a_streaming_replica_is_ok_with_its_lag_and_a_paused_one_is_a_warning(
    pair: Pair,  # noqa: F811
    tmp_path: Path,
) -> None:
    settings = settings_for(
        tmp_path, database_url=pair.primary.url, database_read_url=pair.standby.url
    )
    committed = "SELECT lo_create(0)::text"  # a write (a large object) in one statement
    pair.sql(pair.primary, committed)
    pair.caught_up()
    found = doctor.check_replica(settings)
    assert found.status == "ok", found.message
    assert "replaying the primary, 0.0 s behind" in found.message

    pair.sql(pair.standby, "SELECT pg_wal_replay_pause()")
    pair.sql(pair.primary, committed)
    time.sleep(1.2)
    paused = doctor.check_replica(settings)
    assert (paused.status, paused.summary) == ("warn", "replay paused")
    assert "pg_wal_replay_resume()" in paused.fix
    # Behind by what it has received and not replayed: at least the time since it paused.
    engine = doctor.probe_engine(settings.sqlalchemy_read_url or "")
    try:
        with engine.connect() as conn:
            state = replica_state(conn)
    finally:
        engine.dispose()
    assert state.in_recovery and state.paused
    assert state.lag_seconds is not None and state.lag_seconds >= 1

    pair.sql(pair.standby, "SELECT pg_wal_replay_resume()")
    pair.caught_up()
    assert doctor.check_replica(settings).status == "ok"

    pair.standby.stop()
    down = doctor.check_replica(settings)
    assert (down.status, down.summary) == ("warn", "OperationalError")


# --- Redis and the workers ------------------------------------------------------------------


def test_no_redis_is_a_warning_and_needs_no_worker(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    redis = doctor.check_redis(settings)
    assert redis.status == "warn"
    assert "MADOGUCHI_REDIS_URL" in redis.message
    assert doctor.check_worker(settings).status == "ok"


def test_redis_answering_is_ok(tmp_path: Path, private_redis: str) -> None:
    assert doctor.check_redis(settings_for(tmp_path, redis_url=private_redis)).status == "ok"


def test_redis_on_a_closed_port_is_an_error(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    found = doctor.check_redis(settings)
    assert found.status == "error"
    assert "ConnectionError" in found.message
    assert doctor.check_worker(settings).status == "error"


def test_a_frozen_redis_cannot_hang_the_check(tmp_path: Path, silent_port: int) -> None:
    settings = settings_for(tmp_path, redis_url=f"redis://127.0.0.1:{silent_port}/0")
    started = time.monotonic()
    assert doctor.check_redis(settings).status == "error"
    assert doctor.check_worker(settings).status == "error"
    assert time.monotonic() - started < 2 * doctor.TIMEOUT_SECONDS + 2


def test_redis_without_a_worker_is_an_error(tmp_path: Path, private_redis: str) -> None:
    Redis.from_url(private_redis).flushdb()
    found = doctor.check_worker(settings_for(tmp_path, redis_url=private_redis))
    assert (found.status, found.summary) == ("error", "no worker")
    assert "madoguchi-worker@" in found.fix


def test_a_worker_with_a_recent_heartbeat_is_ok_and_a_stale_one_is_not(
    tmp_path: Path, private_redis: str
) -> None:
    redis = Redis.from_url(private_redis)
    redis.flushdb()
    worker = Worker([Queue("messages", connection=redis)], connection=redis, name="web-1-worker")
    worker.register_birth()  # type: ignore[no-untyped-call]
    settings = settings_for(tmp_path, redis_url=private_redis)
    try:
        alive = doctor.check_worker(settings)
        assert alive.status == "ok"
        assert "web-1-worker" in alive.message
        later = datetime.now(UTC) + doctor.WORKER_HEARTBEAT_WITHIN + timedelta(minutes=1)
        stale = doctor.check_worker(settings, now=later)
        assert stale.status == "error"
        assert "1 registered" in stale.message
    finally:
        worker.register_death()  # type: ignore[no-untyped-call]


# --- Twilio, the public address, speech, the proxy -------------------------------------------


def test_twilio_token_missing_is_an_error(tmp_path: Path) -> None:
    found = doctor.check_twilio(settings_for(tmp_path, twilio_auth_token=None))
    assert found.status == "error"
    assert "MADOGUCHI_TWILIO_AUTH_TOKEN" in found.message


def test_twilio_token_without_a_sending_account_is_a_warning(tmp_path: Path) -> None:
    assert doctor.check_twilio(settings_for(tmp_path, twilio_account_sid="")).status == "warn"
    assert doctor.check_twilio(settings_for(tmp_path)).status == "ok"


@pytest.mark.parametrize(
    ("url", "summary"),
    [
        ("http://yoyaku.city.example.jp", "not https"),
        ("http://localhost:8000", "not https"),
        ("https://localhost", "local"),
        ("https://127.0.0.1:8443", "local"),
        ("https://[::1]/", "local"),
    ],
)
def test_a_public_url_not_https_or_local_is_an_error(
    tmp_path: Path, url: str, summary: str
) -> None:
    found = doctor.check_public_url(settings_for(tmp_path, public_base_url=url))
    assert (found.status, found.summary) == ("error", summary)
    assert "MADOGUCHI_PUBLIC_BASE_URL" in found.fix


def test_an_https_public_url_is_ok(tmp_path: Path) -> None:
    assert doctor.check_public_url(settings_for(tmp_path)).status == "ok"


def _fake_model(folder: Path) -> Path:
    (folder / "am").mkdir(parents=True)
    (folder / "conf").mkdir()
    (folder / "am" / "final.mdl").write_bytes(b"model")
    (folder / "conf" / "mfcc.conf").write_text("--sample-frequency=8000\n")
    return folder


def test_speech_models_present_missing_or_none(tmp_path: Path) -> None:
    none = doctor.check_speech(settings_for(tmp_path))
    assert (none.status, none.summary) == ("ok", "keys only")
    present = _fake_model(tmp_path / "vosk-ja")
    assert doctor.check_speech(settings_for(tmp_path, vosk_model_ja=str(present))).status == "ok"
    missing = doctor.check_speech(
        settings_for(tmp_path, vosk_model_ja=str(present), vosk_model_en=str(tmp_path / "gone"))
    )
    assert missing.status == "error"
    assert "MADOGUCHI_VOSK_MODEL_EN" in missing.message and "no such folder" in missing.message


def test_forwarded_headers_trusted_from_anyone_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert doctor.check_proxy_trust(settings_for(tmp_path)).status == "ok"
    assert (
        doctor.check_proxy_trust(settings_for(tmp_path, forwarded_allow_ips="10.0.0.5")).status
        == "ok"
    )
    found = doctor.check_proxy_trust(settings_for(tmp_path, forwarded_allow_ips="10.0.0.5, *"))
    assert found.status == "error"
    # uvicorn's own variable, the one the web processes read.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    assert doctor.check_proxy_trust(settings_for(tmp_path)).status == "error"


# --- the command ----------------------------------------------------------------------------


def _production_like(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    for name, value in {
        "MADOGUCHI_DATA_DIR": str(data_dir),
        "MADOGUCHI_DATA_KEYS": DATA_KEY,
        "MADOGUCHI_LOOKUP_KEY": LOOKUP_KEY,
        "MADOGUCHI_PUBLIC_BASE_URL": "https://yoyaku.city.example.jp",
        "MADOGUCHI_TWILIO_AUTH_TOKEN": "t" * 32,
        "MADOGUCHI_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "MADOGUCHI_TWILIO_FROM_NUMBER": "+81312345678",
    }.items():
        monkeypatch.setenv(name, value)


def test_check_exits_0_when_nothing_is_an_error(
    ready_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _production_like(monkeypatch, ready_dir)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(line.startswith("! WARN") and "redis" in line for line in lines)
    assert not any("ERROR" in line for line in lines)
    assert sum(line.startswith("✔ OK") for line in lines) == len(doctor.CHECKS) - 1
    assert lines[-1] == "0 error(s), 1 warning(s): ready."


def test_check_exits_1_on_any_error_and_says_what_to_do(
    ready_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _production_like(monkeypatch, ready_dir)
    monkeypatch.setenv("MADOGUCHI_PUBLIC_BASE_URL", "http://yoyaku.city.example.jp")
    assert main(["doctor"]) == 1
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("✘ ERROR"))
    assert "public url" in lines[at] and "not https" in lines[at]
    assert lines[at + 1].strip().startswith("→ set MADOGUCHI_PUBLIC_BASE_URL")
    assert lines[-1].startswith("1 error(s)")


def test_check_json_lists_every_check(
    ready_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _production_like(monkeypatch, ready_dir)
    monkeypatch.delenv("MADOGUCHI_LOOKUP_KEY")
    assert main(["check", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    by_check = {item["check"]: item for item in report}
    assert list(by_check) == [
        "keys",
        "database",
        "migrations",
        "replica",
        "redis",
        "worker",
        "twilio",
        "line",
        "public url",
        "speech",
        "proxy trust",
    ]
    assert by_check["keys"]["status"] == "error"
    assert "MADOGUCHI_LOOKUP_KEY" in by_check["keys"]["message"]
    assert by_check["database"]["status"] == "ok"
    assert set(by_check["keys"]) == {"check", "status", "summary", "message", "fix"}


def test_settings_that_do_not_validate_are_a_finding_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MADOGUCHI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MADOGUCHI_ENVIRONMENT", "production")
    assert main(["check", "--json"]) == 1
    (only,) = json.loads(capsys.readouterr().out)
    assert only["check"] == "settings"
    assert "MADOGUCHI_DATA_KEYS" in only["message"]


def test_check_help_teaches_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = capsys.readouterr().out
    assert "madoguchi check --json" in text
    assert "Exit status" in text
    assert "/readyz" in text
