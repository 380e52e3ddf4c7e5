"""Retention: residents' personal data erased after the visit or the cancellation, with an
erasure record and a certificate; the audit log purged past its own retention with its chain
still checkable; the contract's end (export, then erase --all). On a database of the test's
own (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import subprocess
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from agent_console import service as staff
from booking import service as booking
from booking.context import TOKYO
from config.db import make_engine, make_sessionmaker
from config.export import export
from config.retention import erase_all, erase_expired, erase_expired_daily
from config.settings import Settings
from ivr import service as calls
from reminders import service as reminders
from tests.cli import madoguchi
from tests.conftest import TEST_VAULT, FakeClock, make_context
from tests.reminders.conftest import RULES
from tests.test_key_rotation import dump

OLD_NAME, OLD_PHONE = "カコ ハナコ", "+819011112222"
NEW_NAME, NEW_PHONE = "ミライ タロウ", "+819033334444"
GONE_NAME, GONE_PHONE = "トリケシ ジロウ", "+819055556666"


@dataclass
class Ward:
    sessions: sessionmaker[Session]
    clock: FakeClock
    settings: Settings
    visited: int
    upcoming: int
    cancelled: int


def book(db: Session, day: date, name: str, phone: str) -> booking.BookingView:
    [slot] = booking.availability(
        db, service_id="pickup", venue_id="main", start=day, end=day, limit=1
    )
    return booking.book(
        db,
        slot_id=slot.id,
        party=1,
        resident=booking.ResidentInput(
            # A notice number of each resident's own: one active pickup per notice number.
            name,
            phone,
            date(1961, 6, 6),
            members=[booking.MemberInput(f"AB1-{phone[-6:]}")],
        ),
        channel="web",
    )


def ward(url: str, tmp: Path) -> Ward:
    clock = FakeClock()
    sessions = make_sessionmaker(make_engine(url), make_context(clock))
    settings = Settings(
        database_url=url,
        environment="test",
        data_dir=tmp,
        retention_days=30,
        audit_retention_days=60,
    )
    with sessions() as db:
        visited = book(db, date(2026, 12, 16), OLD_NAME, OLD_PHONE)
        upcoming = book(db, date(2027, 1, 28), NEW_NAME, NEW_PHONE)
        cancelled = book(db, date(2027, 1, 27), GONE_NAME, GONE_PHONE)
        booking.cancel_booking(db, booking_id=cancelled.id)
        reminders.plan_from_outbox(db, RULES, limit=1000)
        call = calls.start_call(db, call_sid="CA" + "1" * 32, caller=calls.read_caller(OLD_PHONE))
        calls.end_call(db, call_sid=call.call_sid, status="completed", duration=60)
        agent = staff.create_staff(
            db,
            login_id="keeper",
            display_name="保存",
            role="agent",
            password="long enough pw 1",  # noqa: S106 (a test account)
        )
        staff.log_inquiry(
            db,
            staff=agent,
            category="pin",
            note="暗証番号を忘れた",
            resolution="resolved",
            phone=OLD_PHONE,
        )
        staff.audit(
            db,
            staff=agent,
            action="booking.view",
            subject_kind="booking",
            subject_id=visited.id,
            client="test",
        )
        db.commit()
    return Ward(sessions, clock, settings, visited.id, upcoming.id, cancelled.id)


def test_personal_data_is_erased_after_its_retention_with_a_record(
    fresh_database: str, tmp_path: Path
) -> None:
    w = ward(fresh_database, tmp_path)
    first = erase_expired(w.sessions, w.settings)  # nothing is 30 days old yet
    assert first.total == 0 and first.scope == "retention"

    # 40 days on: the visit of Dec 16 and the cancellation are past; the Jan 28 visit is not.
    w.clock.set(datetime.combine(date(2027, 1, 25), time(10), TOKYO))
    record = erase_expired(w.sessions, w.settings)
    assert record.counts["予約 bookings"] == 2
    assert record.counts["通話 calls"] == 1
    assert record.counts["問い合わせ記録 inquiry notes"] == 1
    assert record.counts["通知 messages"] >= 2
    with w.sessions() as db:
        old = booking.get_booking(db, booking_id=w.visited)
        gone = booking.get_booking(db, booking_id=w.cancelled)
        kept = booking.get_booking(db, booking_id=w.upcoming)
        members = (
            db.execute(
                text("SELECT notice_number_enc FROM booking_member WHERE booking_id = :b"),
                {"b": w.visited},
            )
            .scalars()
            .all()
        )
    assert (old.name_kana, old.phone, old.birth_date) == (None, None, None)
    assert members == [None]
    assert (old.party_size, old.service_id, old.channel) == (1, "pickup", "web")  # statistics
    assert gone.name_kana is None and gone.status == "cancelled"
    assert (kept.name_kana, kept.phone) == (NEW_NAME, NEW_PHONE)
    with w.sessions() as db:
        messages = reminders.messages_for(db, booking_id=w.upcoming)
    assert messages  # the upcoming visit's reminders still know where to go
    text_dump = dump(fresh_database)
    for clear in (OLD_NAME, GONE_NAME, "暗証番号を忘れた"):
        assert clear not in text_dump
    # The certificate says what, how many, when and by which job.
    certificate = staff.certificate_text(record)
    assert "消去証明書" in certificate and "予約 bookings: 2" in certificate
    assert "retention (daily)" in certificate and "2026-12-26" in certificate
    again = erase_expired(w.sessions, w.settings)
    assert again.total == 0  # erased once
    with w.sessions() as db:
        assert [e.id for e in staff.erasures(db)] == [again.id, record.id, first.id]


def test_the_daily_job_runs_once_a_day(fresh_database: str, tmp_path: Path) -> None:
    w = ward(fresh_database, tmp_path)
    erase_expired_daily(w.sessions, w.settings)
    erase_expired_daily(w.sessions, w.settings)
    w.clock.advance(hours=12)
    erase_expired_daily(w.sessions, w.settings)
    with w.sessions() as db:
        assert len(staff.erasures(db)) == 1
    w.clock.advance(hours=12)
    erase_expired_daily(w.sessions, w.settings)
    with w.sessions() as db:
        assert len(staff.erasures(db)) == 2


def test_the_audit_log_is_purged_past_its_retention_and_still_checks(
    fresh_database: str, tmp_path: Path
) -> None:
    w = ward(fresh_database, tmp_path)
    w.clock.set(datetime.combine(date(2027, 3, 1), time(9), TOKYO))  # 76 days on
    with w.sessions() as db:
        agent = staff.get_staff(db, db.execute(text("SELECT id FROM staff_user")).scalar_one())
        staff.audit(
            db,
            staff=agent,
            action="booking.view",
            subject_kind="booking",
            subject_id=w.upcoming,
            client="test",
        )
        db.commit()
        before = staff.check_chain(db).events
    record = erase_expired(w.sessions, w.settings)
    assert record.counts["操作ログ audit events past their retention"] >= 1
    with w.sessions() as db:
        report = staff.check_chain(db)
        assert report.intact, report.breaks
        assert report.events == before - record.counts["操作ログ audit events past their retention"]
    # Newer events still cannot be deleted (the trigger lets go only of those past the cutoff).
    with w.sessions() as db, pytest.raises(DBAPIError, match="append-only"):
        db.execute(text("DELETE FROM audit_event WHERE id = (SELECT max(id) FROM audit_event)"))


def test_the_contracts_end_export_then_erase_everything(
    fresh_database: str, tmp_path: Path
) -> None:
    w = ward(fresh_database, tmp_path)
    out = tmp_path / "export.zip"
    written = export(w.sessions, TEST_VAULT, out)
    assert written["booking"] == 3
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        rows = list(csv.DictReader(io.StringIO(archive.read("booking.csv").decode("utf-8-sig"))))
        staff_csv = archive.read("staff_user.csv").decode("utf-8-sig")
    assert {"README.txt", "booking.csv", "booking_member.csv", "call.csv"} <= names
    assert {r["name_kana"] for r in rows} == {OLD_NAME, NEW_NAME, GONE_NAME}
    assert "password_hash" not in staff_csv
    record = erase_all(w.sessions, job="test")
    assert record.scope == "everything" and record.counts["予約 bookings"] == 3
    assert "全データ" in staff.certificate_text(record)
    text_dump = dump(fresh_database)
    for clear in (OLD_NAME, NEW_NAME, GONE_NAME, NEW_PHONE, NEW_PHONE[1:]):
        assert clear not in text_dump


def test_the_erase_command_asks_before_erasing_everything(
    fresh_database: str, tmp_path: Path
) -> None:
    ward(fresh_database, tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return madoguchi(*args, data_dir=tmp_path, database_url=fresh_database)

    refused = run("erase", "--all")
    assert refused.returncode == 2 and "Export first" in refused.stderr
    done = run("erase", "--all", "--yes")
    assert done.returncode == 0, done.stderr
    assert "消去証明書" in done.stdout and "予約 bookings: 3" in done.stdout
    listed = run("erase", "--list")
    assert "everything" in listed.stdout
    record_id = listed.stdout.split()[0]
    again = run("erase", "--certificate", record_id)
    assert again.stdout == done.stdout
    with make_sessionmaker(make_engine(fresh_database), make_context(FakeClock()))() as db:
        names = db.execute(
            select(text("count(*)"))
            .select_from(text("booking"))
            .where(text("name_kana_enc IS NOT NULL"))
        ).scalar_one()
    assert names == 0


def test_waitlist_numbers_are_erased_like_bookings(fresh_database: str, tmp_path: Path) -> None:
    w = ward(fresh_database, tmp_path)
    with w.sessions() as db:
        for day, phone in ((date(2026, 12, 16), OLD_PHONE), (date(2027, 1, 28), NEW_PHONE)):
            booking.join_waitlist(
                db,
                venue_id="main",
                service_id="pickup",
                day=day,
                party=1,
                phone=phone,
                language="ja",
                channel="ivr",
                only_when_full=False,
            )
        db.commit()
    w.clock.set(datetime.combine(date(2027, 1, 25), time(10), TOKYO))
    record = erase_expired(w.sessions, w.settings)
    assert record.counts["キャンセル待ち waitlist entries"] == 1
    with w.sessions() as db:
        old, new = (
            booking.waitlist_of_day(db, venue_id="main", day=date(2026, 12, 16)),
            (booking.waitlist_of_day(db, venue_id="main", day=date(2027, 1, 28))),
        )
    assert [e.phone for e in old] == [None]
    assert [e.phone for e in new] == [NEW_PHONE]
    erase_all(w.sessions, job="test")
    assert NEW_PHONE not in dump(fresh_database)


def test_the_cards_that_have_arrived_leave_the_list_under_retention(
    fresh_database: str, tmp_path: Path
) -> None:
    w = ward(fresh_database, tmp_path)
    with w.sessions() as db:
        _found, done = booking.import_cards_file(
            db, data=b"notice_number,venue\nCD2-100001,main\nCD2-100002,yotsuya\n"
        )
        assert done is not None
        db.commit()
    w.clock.set(datetime.combine(date(2027, 1, 10), time(10), TOKYO))
    with w.sessions() as db:  # listed again by a later import: kept
        booking.import_cards_file(db, data=b"notice_number,venue\nCD2-100002,yotsuya\n")
        db.commit()
    w.clock.set(datetime.combine(date(2027, 1, 25), time(10), TOKYO))
    record = erase_expired(w.sessions, w.settings)
    assert record.counts["届いたカード ready cards"] == 1
    with w.sessions() as db:
        assert booking.ready_cards_by_venue(db) == {"yotsuya": 1}
    everything = erase_all(w.sessions, job="test")
    assert everything.counts["届いたカード ready cards"] == 1
    with w.sessions() as db:
        assert booking.ready_cards_by_venue(db) == {}
