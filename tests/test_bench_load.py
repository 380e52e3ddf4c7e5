"""bench/bench_load.py's invariants can fail: read from a database where a slot is over capacity,
a booking the API answered 201 is missing, and a booking has no confirmation, each is reported
(and the bench then exits 1). A clean database passes."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from bench.bench_load import check_database
from bench.load_record import PHONE_LINE, Recorder, answer_kind, route_group
from booking import schedule, service
from booking.service import ResidentInput
from config.app import session_factory
from config.migrate import throwaway_database
from config.sample import sample_ward
from config.settings import Settings, normalise_database_url
from tests.conftest import DEFAULT_PG


@pytest.fixture
def database() -> Iterator[str]:
    admin = normalise_database_url(os.environ.get("MADOGUCHI_TEST_DATABASE_URL", DEFAULT_PG))
    try:
        with create_engine(admin).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    with throwaway_database(admin, prefix="madoguchi_load_check") as url:
        yield url.render_as_string(hide_password=False)


def _book(url: str) -> str:
    """One web booking of a PIN reset, as the API would make it: its code."""
    settings = Settings(
        database_url=url,
        environment="test",
        data_keys=Fernet.generate_key().decode(),
        lookup_key=secrets.token_urlsafe(32),
    )
    sessions = session_factory(settings)
    with sessions() as db:
        schedule.install_ward(db, sample_ward())
        schedule.extend_schedule(db)
        free = service.availability(db, service_id="pin_reset", venue_id=None, party=1, limit=1)
        made = service.book(
            db,
            slot_id=free[0].id,
            party=1,
            resident=ResidentInput(
                name_kana="ヤマダ タロウ", phone="090-1234-5678", birth_date=date(1960, 1, 2)
            ),
            channel="web",
        )
        db.commit()
    sessions.kw["bind"].dispose()
    return made.code


def _heard(url: str, code: str) -> Recorder:
    engine = create_engine(url)
    with engine.connect() as conn:
        slot_id, seats = conn.execute(
            text("SELECT slot_id, party_size FROM booking WHERE code = :c"), {"c": code}
        ).one()
    engine.dispose()
    heard = Recorder()
    heard.booked.append({"code": code, "slot_id": slot_id, "seats": seats, "birth": "1960-01-02"})
    return heard


def _sql(url: str, *statements: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def test_a_clean_run_passes_and_each_broken_invariant_is_reported(database: str) -> None:
    code = _book(database)
    heard = _heard(database, code)
    # No worker ran: the booking has no confirmation yet.
    problems, _ = check_database(database, heard)
    assert problems == ["1 bookings without exactly one confirmation (counts [(0, 1)])"]

    _sql(
        database,
        "INSERT INTO message (booking_id, booking_version, kind, channel, to_enc, to_hmac, "
        "language, send_after, status, copy, attempts, created_at, updated_at) "
        "SELECT id, 1, 'confirmation', 'sms', 'x', 'x', 'ja', now(), 'sent', 0, 1, now(), now() "
        "FROM booking",
    )
    problems, summary = check_database(database, heard)
    assert problems == []
    assert "1 bookings (1 web, 0 IVR)" in summary[0]

    # A 201 the database does not have, and a slot over capacity (past the CHECK, dropped here
    # to stand for a bug that got around it).
    heard.booked.append({"code": "99999999", "slot_id": 1, "seats": 1, "birth": "1960-01-02"})
    _sql(
        database,
        "DO $$ DECLARE c text; BEGIN FOR c IN SELECT conname FROM pg_constraint "
        "WHERE conrelid = 'slot'::regclass AND contype = 'c' LOOP "
        "EXECUTE 'ALTER TABLE slot DROP CONSTRAINT ' || quote_ident(c); END LOOP; END $$",
        "UPDATE slot SET booked = capacity + 1 WHERE id = (SELECT min(id) FROM slot "
        "WHERE booked = 0)",
    )
    problems, _ = check_database(database, heard)
    assert any("slots over capacity (1 seats too many)" in p for p in problems), problems
    assert any("differ from their bookings'" in p for p in problems), problems
    assert any("answered 201 are missing: ['99999999']" in p for p in problems), problems


def test_route_groups_and_answer_kinds() -> None:
    assert route_group("GET", "/book/pickup/main") == "calendar: month"
    assert route_group("GET", "/book/pickup/main/2026-12-03") == "calendar: day's times"
    assert route_group("GET", "/book/pickup/any") == "calendar: earliest times"
    assert route_group("POST", "/ivr/step/menu") == "phone line: webhooks"
    assert route_group("POST", "/api/v1/bookings") == "api: booking"
    assert answer_kind(429, busy_page=True) == "429 busy page (nginx)"
    assert answer_kind(503, busy_page=True) == "503 busy page (nginx)"
    assert answer_kind(503, busy_page=False) == "503 from the app"
    assert answer_kind(409, busy_page=False) == "409 refused (seats gone)"


def test_the_phone_lines_webhooks_are_picked_out_by_the_sign_in_bursts(tmp_path: Path) -> None:
    heard = Recorder()
    # Webhooks as (sent at, ms): before, across the start, inside, across the end, after.
    heard.phone_spans = [(10.0, 500.0), (19.5, 800.0), (20.5, 100.0), (21.9, 300.0), (23.0, 5.0)]
    heard.bursts = [(20.0, 22.0)]
    inside, outside = heard.phone_during(heard.bursts)
    assert inside == [800.0, 100.0, 300.0]
    assert outside == [500.0, 5.0]
    assert heard.phone_during([]) == ([], [500.0, 800.0, 100.0, 300.0, 5.0])

    # Each locust process writes its own; the driver merges them.
    other = Recorder()
    other.add(PHONE_LINE, 42.0, "ok")
    other.bursts.append((30.0, 31.0))
    other.dump(tmp_path / "other.json")
    heard.dump(tmp_path / "heard.json")
    merged = Recorder()
    merged.merge(tmp_path / "heard.json")
    merged.merge(tmp_path / "other.json")
    assert merged.bursts == [(20.0, 22.0), (30.0, 31.0)]
    assert len(merged.phone_spans) == 6
    assert merged.phone_spans[-1][1] == 42.0
    assert merged.ms[PHONE_LINE] == [42.0]
