"""Key rotation for the encrypted personal fields, and a database dump with no resident's name
or phone number in clear. On a database of the test's own (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
import subprocess
from datetime import date
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from booking import service as booking
from booking.context import BookingContext, BookingRules
from booking.personal import Vault
from config.db import make_engine, make_sessionmaker
from config.rotate import rotate, under_old_keys
from ivr import service as calls
from reminders import service as reminders
from tests.cli import madoguchi
from tests.conftest import FakeClock
from tests.reminders.conftest import RULES

NAME = "ローテ ハナコ"
PHONE = "+819031415926"
NATIONAL = "09031415926"
LOOKUP = "l" * 32


def sessions_with(url: str, *keys: str):  # type: ignore[no-untyped-def]
    vault = Vault.from_keys(list(keys), LOOKUP)
    context = BookingContext(vault=vault, rules=BookingRules(), clock=FakeClock())
    return make_sessionmaker(make_engine(url), context), vault


def fill(url: str, key: str) -> int:
    """A booking with its messages, and a call with its caller: personal data in four tables."""
    sessions, _ = sessions_with(url, key)
    with sessions() as db:
        slot = booking.availability(db, service_id="application_help", limit=1)[0]
        made = booking.book(
            db,
            slot_id=slot.id,
            party=1,
            resident=booking.ResidentInput(NAME, PHONE, date(1950, 5, 5)),
            channel="web",
        )
        reminders.plan_from_outbox(db, RULES, limit=1000)
        calls.start_call(db, call_sid="CA" + "7" * 32, caller=calls.read_caller(PHONE))
        db.commit()
    return made.id


def dump(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with sqlite3.connect(str(parsed.database)) as conn:
            return "\n".join(conn.iterdump())
    done = subprocess.run(  # noqa: S603 (the test's own database)
        [
            "/usr/bin/pg_dump",
            "-h",
            parsed.host or "127.0.0.1",
            "-U",
            parsed.username or "postgres",
            "-p",
            str(parsed.port or 5432),
            str(parsed.database),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def test_a_dump_holds_no_name_or_phone_in_clear(fresh_database: str) -> None:
    fill(fresh_database, Fernet.generate_key().decode())
    text = dump(fresh_database)
    assert "INSERT INTO" in text or "COPY " in text  # a real dump, with the rows
    for clear in (NAME, "ローテ", PHONE, PHONE[1:], NATIONAL, "1950-05-05"):
        assert clear not in text, clear


def test_rotation_moves_every_field_to_the_new_key(fresh_database: str) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    booking_id = fill(fresh_database, old)
    sessions, vault = sessions_with(fresh_database, new, old)  # the new key first
    before = under_old_keys(sessions, new)
    assert before["booking.name_kana_enc"] == 1 and before["message.to_enc"] >= 1
    assert before["call.caller_enc"] == 1
    report = rotate(sessions, vault)
    assert sum(r.rewritten for r in report) == sum(before.values())
    assert set(under_old_keys(sessions, new).values()) == {0}
    # The old key can go: the new one alone reads everything.
    alone, _ = sessions_with(fresh_database, new)
    with alone() as db:
        found = booking.get_booking(db, booking_id=booking_id)
    assert (found.name_kana, found.phone) == (NAME, PHONE)
    assert rotate(sessions, vault)[0].values >= 0  # a second run is harmless
    # Values erased under the retention rule ("" in required columns) are nothing to rotate.
    with sessions() as db:
        reminders.erase_personal_data(db, before=FakeClock()(), everything=True)
        db.commit()
    rotate(sessions, vault)
    assert set(under_old_keys(sessions, new).values()) == {0}


def test_the_command_guides_and_rotates(fresh_database: str, tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    fill(fresh_database, old)

    def keys(data_keys: str) -> subprocess.CompletedProcess[str]:
        return madoguchi(
            "keys",
            "rotate",
            data_dir=tmp_path,
            database_url=fresh_database,
            data_keys=data_keys,
            lookup_key=LOOKUP,
        )

    alone = keys(old)
    assert alone.returncode == 2 and "put the new key first" in alone.stderr
    done = keys(f"{new},{old}")
    assert done.returncode == 0, done.stderr
    assert "booking.name_kana_enc: 1 re-encrypted" in done.stdout
    assert "the old keys can now be removed" in done.stdout
