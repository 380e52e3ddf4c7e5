"""Backups: a filled ward (bookings, calls, the audit log, erasure records) dumped and restored
into a fresh database comes back whole, on SQLite and PostgreSQL; the commands say what they
wrote, refuse a database that is not empty, and keep the password off the command line."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from agent_console import service as staff
from booking import service as booking
from booking.context import TOKYO
from booking.models import Booking
from config.backup import BackupError, backup, restore
from config.db import make_engine, make_sessionmaker
from config.retention import erase_expired
from tests.cli import madoguchi
from tests.conftest import FakeClock, _pg_admin_url, make_context
from tests.test_retention import NEW_NAME, NEW_PHONE, book, ward


@contextmanager
def empty_database(like: str, folder: Path) -> Iterator[str]:
    """A new, empty database of the same kind as ``like`` (no schema: a restore's target)."""
    if make_url(like).get_backend_name() == "sqlite":
        yield f"sqlite:///{folder / 'restored.db'}"
        return
    admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"madoguchi_restored_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(_pg_admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def state(url: str, upcoming: int, erased: int) -> dict[str, Any]:
    """What must survive a backup, read through the services (the vault decrypts)."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine, make_context(FakeClock()))() as db:
            kept = booking.get_booking(db, booking_id=upcoming)
            gone = booking.get_booking(db, booking_id=erased)
            chain = staff.check_chain(db)
            return {
                "bookings": db.execute(select(func.count()).select_from(Booking)).scalar_one(),
                "kept": (kept.name_kana, kept.phone, kept.status),
                "erased": (gone.name_kana, gone.phone, gone.status),
                "chain": (chain.intact, chain.events, chain.breaks),
                "erasures": [(e.id, e.job, e.scope, e.counts) for e in staff.erasures(db)],
            }
    finally:
        engine.dispose()


def test_a_filled_ward_comes_back_whole(fresh_database: str, tmp_path: Path) -> None:
    w = ward(fresh_database, tmp_path)  # bookings, a call, an inquiry, staff, an audit event
    with w.sessions() as db:
        for action, kind, subject in (
            ("booking.view", "booking", w.upcoming),
            ("staff.create", "staff", 1),
        ):
            staff.audit(
                db,
                staff=None,
                login_id="cli:test",
                action=action,
                subject_kind=kind,
                subject_id=subject,
                client="cli",
            )
        db.commit()
    w.clock.set(datetime.combine(date(2027, 1, 25), time(10), TOKYO))  # 40 days on
    record = erase_expired(w.sessions, w.settings)  # the Dec 16 visit and the cancellation
    assert record.counts["予約 bookings"] == 2
    before = state(fresh_database, w.upcoming, w.cancelled)
    assert before["kept"] == (NEW_NAME, NEW_PHONE, "booked")
    assert before["chain"][0] and before["chain"][1] == 3  # intact, with events to check
    out = tmp_path / "ward.backup"

    written = backup(fresh_database, out, timeout=120)

    assert written.size == out.stat().st_size > 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # staff hashes and the audit log are in it
    assert written.contents.tables["booking"] == 3
    assert written.contents.tables["erasure_record"] == 1
    assert written.contents.revision is not None
    assert not list(tmp_path.glob("*.partial"))
    with empty_database(fresh_database, tmp_path) as target:
        restored = restore(out, target, force=False, timeout=120)
        assert restored.contents.tables == written.contents.tables
        after = state(target, w.upcoming, w.cancelled)
        assert after == before
        assert after["erased"] == (None, None, "cancelled")
        # The restored database goes on working: sequences carry on past the restored rows,
        # and the audit log is still append-only (its triggers came back too).
        engine = make_engine(target)
        try:
            with make_sessionmaker(engine, make_context(w.clock))() as db:
                w.clock.set(datetime.combine(date(2027, 1, 25), time(10), TOKYO))
                again = book(db, date(2027, 1, 27), "モドリ ハナコ", "+819077778888")
                db.commit()
                assert again.id > max(w.visited, w.upcoming, w.cancelled)
            with make_sessionmaker(engine, make_context(w.clock))() as db:
                with pytest.raises(DBAPIError, match="append-only"):
                    db.execute(
                        text("DELETE FROM audit_event WHERE id = (SELECT max(id) FROM audit_event)")
                    )
        finally:
            engine.dispose()


def test_the_commands_say_what_they_wrote_and_refuse_a_full_target(
    fresh_database: str, tmp_path: Path
) -> None:
    out = tmp_path / "nightly.dump"

    def run(*args: str, database_url: str = fresh_database) -> subprocess.CompletedProcess[str]:
        return madoguchi(*args, data_dir=tmp_path, database_url=database_url)

    made = run("backup", str(out))
    assert made.returncode == 0, made.stderr
    assert f"Wrote {out}" in made.stdout and "MB" in made.stdout
    assert "tables" in made.stdout and "rows" in made.stdout and "slot " in made.stdout
    assert "MADOGUCHI_DATA_KEYS" in made.stdout  # the keys are not in the backup

    refused = run("restore", str(out), "--into", fresh_database)
    assert refused.returncode == 2
    assert "is not empty" in refused.stderr and "--force" in refused.stderr
    replaced = run("restore", str(out), "--into", fresh_database, "--force")
    assert replaced.returncode == 0, replaced.stderr
    with empty_database(fresh_database, tmp_path) as target:
        # The target from the settings, as on a new server with its MADOGUCHI_DATABASE_URL.
        done = run("restore", str(out), database_url=target)
        assert done.returncode == 0, done.stderr
        assert "Restored" in done.stdout and "tables" in done.stdout
        assert "db upgrade" not in done.stdout  # the schema is already this version's


def test_the_help_teaches_with_examples(tmp_path: Path) -> None:
    backup_help = madoguchi("backup", "--help", data_dir=tmp_path)
    restore_help = madoguchi("restore", "--help", data_dir=tmp_path)
    assert "examples:" in backup_help.stdout and "madoguchi backup " in backup_help.stdout
    assert "--into" in restore_help.stdout and "--force" in restore_help.stdout
    assert "PGPASSWORD" in restore_help.stdout
    assert "madoguchi backup" in madoguchi("--help", data_dir=tmp_path).stdout


def test_the_password_never_reaches_the_command_line(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "never-in-ps-" + secrets.token_hex(4)
    url = make_url(pg_url).set(password=password).render_as_string(hide_password=False)
    seen: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    def spy(argv: list[str], **kwargs: Any) -> subprocess.Popen[str]:
        seen.append((argv, kwargs["env"]))
        return real_popen(argv, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    backup(url, tmp_path / "db.dump", timeout=120)
    [(argv, env)] = seen
    assert not any(password in arg for arg in argv)
    assert env["PGPASSWORD"] == password
    assert env["PGDATABASE"] == make_url(pg_url).database


def test_missing_tools_a_timeout_and_a_wrong_kind_of_file_are_told_plainly(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "db.dump"
    with pytest.raises(BackupError, match="stopped after"):
        backup(pg_url, out, timeout=0.001)
    assert not out.exists() and not list(tmp_path.glob("*.partial"))
    (tmp_path / "notes.txt").write_text("not a backup")
    with pytest.raises(BackupError, match="not a backup made by"):
        restore(tmp_path / "notes.txt", pg_url, force=True, timeout=10)
    sqlite_copy = tmp_path / "embedded.db"
    sqlite_copy.write_bytes(b"SQLite format 3\x00" + bytes(100))
    with pytest.raises(BackupError, match="restores into sqlite only"):
        restore(sqlite_copy, pg_url, force=True, timeout=10)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackupError, match="pg_dump is not installed"):
        backup(pg_url, out, timeout=120)
    assert not out.exists()
