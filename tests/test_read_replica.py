"""Availability shown from a read replica (MADOGUCHI_DATABASE_READ_URL): the calendar, the times,
the earliest times, the API's availability and the free-times feed read there; holds, bookings
and everything that decides a write stay on the primary; the replica's sessions are read-only.

The replica is a real one: a private primary (initdb into a temporary folder, as the
``postgres`` user when run as root, like tests/test_pool.py's) and a hot standby made from it by
``pg_basebackup -R``, streaming on another port. Pausing the standby's replay shows which
server a page was read from; stopping it shows the pages fall back to the primary.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from starlette.requests import Request

from booking import schedule
from booking.web import read_only_unit
from config.app import create_app
from config.migrate import upgrade
from config.sample import sample_ward
from config.settings import normalise_database_url
from tests.test_pool import PrivateServer, settings_for

PERSON = {"name_kana": "ヤマダ タロウ", "phone": "090-1234-5678", "birth_date": "1950-04-01"}


def request_to(app: FastAPI) -> Request:
    return Request({"type": "http", "app": app})


def refuses_writes(app: FastAPI) -> str:
    """The error a shown-reads session answers an UPDATE with."""
    with read_only_unit(request_to(app)) as db, pytest.raises(DBAPIError) as refused:
        db.execute(text("UPDATE slot SET capacity = capacity WHERE id = 0"))
    return str(refused.value)


# Without a replica, and with a replica URL that names a writable server ---------------------


def test_without_a_replica_shown_reads_come_from_the_primary_read_only(
    pg_url: str, tmp_path: Path
) -> None:
    app = create_app(settings_for(pg_url, tmp_path))
    primary: Engine = app.state.sessions.kw["bind"]
    try:
        assert app.state.read_sessions is None
        with read_only_unit(request_to(app)) as db:
            assert db.get_bind() is primary
            assert db.execute(text("SHOW transaction_read_only")).scalar_one() == "on"
        # A write put in a shown read fails in development as it would on the replica.
        assert "read-only transaction" in refuses_writes(app)
        # The primary's own sessions still write, and the pool hands its connection on as such.
        with app.state.sessions() as db:
            assert db.execute(text("SHOW transaction_read_only")).scalar_one() == "off"
    finally:
        primary.dispose()


def test_the_replica_sessions_refuse_writes_even_on_a_writable_server(
    pg_url: str, tmp_path: Path
) -> None:
    # A replica promoted after a failover, or the primary's URL given by mistake, still takes
    # no write through these sessions.
    app = create_app(settings_for(pg_url, tmp_path, database_read_url=pg_url))
    replica: Engine = app.state.read_sessions.kw["bind"]
    try:
        assert replica is not app.state.sessions.kw["bind"]
        with app.state.read_sessions() as db:
            assert db.execute(text("SHOW default_transaction_read_only")).scalar_one() == "on"
            assert db.execute(text("SHOW statement_timeout")).scalar_one() == "5s"
        assert "read-only transaction" in refuses_writes(app)
        # Sized like the primary's pool (every process opens one of each).
        assert replica.pool.size() == app.state.settings.db_pool_size  # type: ignore[attr-defined]
    finally:
        replica.dispose()
        app.state.sessions.kw["bind"].dispose()


def test_a_read_url_needs_postgresql_on_both_sides(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="MADOGUCHI_DATABASE_READ_URL"):
        settings_for("", tmp_path, database_read_url="postgresql://replica/madoguchi")
    with pytest.raises(ValidationError, match="MADOGUCHI_DATABASE_READ_URL"):
        settings_for(
            "postgresql://primary/madoguchi", tmp_path, database_read_url=f"sqlite:///{tmp_path}/r"
        )
    given = settings_for(
        "postgresql://primary/madoguchi", tmp_path, database_read_url="postgres://replica/m"
    )
    assert given.sqlalchemy_read_url == "postgresql+psycopg://replica/m"
    assert settings_for("", tmp_path).sqlalchemy_read_url is None


# A real streaming replica -------------------------------------------------------------------


@dataclass
class Pair:
    primary: PrivateServer
    standby: PrivateServer

    def sql(self, server: PrivateServer, statement: str, **params: object) -> object:
        engine = create_engine(normalise_database_url(server.url), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                return conn.execute(text(statement), params).scalar()
        finally:
            engine.dispose()

    def start_standby(self) -> None:
        standby = self.standby
        options = f"-p {standby.port} -k {standby.folder} -c listen_addresses=127.0.0.1"
        standby.pg_ctl("start", "-o", options, "-l", str(standby.folder / "server.log"))

    def caught_up(self) -> None:
        """Wait until the standby has replayed everything the primary has written."""
        lsn = self.sql(self.primary, "SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + 20
        while not self.sql(
            self.standby, "SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)", lsn=lsn
        ):
            assert time.monotonic() < deadline, "the standby did not catch up"
            time.sleep(0.05)


@pytest.fixture
def pair() -> Iterator[Pair]:
    initdb = shutil.which("initdb") or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None
    )
    bindir = Path(os.path.realpath(initdb)).parent if initdb else None
    if bindir is None or not (bindir / "pg_basebackup").exists():
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl, pg_basebackup) are missing")
    folder = Path(tempfile.mkdtemp(prefix="madoguchi-replica-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres user to run a private server")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    primary = PrivateServer(bindir, folder, as_user)
    standby = PrivateServer(bindir, folder / "standby", as_user)
    started: list[PrivateServer] = []
    try:
        # initdb's defaults stream already: wal_level=replica, max_wal_senders=10, and its
        # pg_hba.conf (-A trust) lets 127.0.0.1 connect for replication.
        primary.start()
        started.append(primary)
        assert Pair(primary, standby).sql(primary, "SHOW wal_level") == "replica"
        # The base backup, with -R: standby.signal and primary_conninfo, so it starts streaming.
        primary.run(
            "pg_basebackup",
            *("-D", str(standby.data), "-R", "-X", "stream", "-c", "fast"),
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
        )
        Pair(primary, standby).start_standby()
        started.append(standby)
        assert Pair(primary, standby).sql(standby, "SELECT pg_is_in_recovery()") is True
        yield Pair(primary, standby)
    finally:
        for server in reversed(started):
            with contextlib.suppress(subprocess.CalledProcessError):  # a test stopped it
                server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_availability_is_read_from_the_replica_and_bookings_go_to_the_primary(
    pair: Pair, tmp_path: Path
) -> None:
    upgrade(pair.primary.url)
    app = create_app(settings_for(pair.primary.url, tmp_path, database_read_url=pair.standby.url))
    primary: Engine = app.state.sessions.kw["bind"]
    replica: Engine = app.state.read_sessions.kw["bind"]
    try:
        with app.state.sessions() as db:
            schedule.install_ward(db, sample_ward())
            schedule.extend_schedule(db)
            db.commit()
        pair.caught_up()
        with TestClient(app) as http:
            _shown_from_the_replica(pair, app, http)
    finally:
        replica.dispose()
        primary.dispose()


def _free(
    http: TestClient, service: str, venue: str | None = None, day: date | None = None
) -> list[dict[str, Any]]:
    """The API's free slots (earliest first; without a venue, across every venue)."""
    asked = {"service": service, "limit": "500"}
    if venue:
        asked["venue"] = venue
    if day:
        asked |= {"from": day.isoformat(), "to": day.isoformat()}
    answer = http.get("/api/v1/availability", params=asked)
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def _shown_from_the_replica(pair: Pair, app: FastAPI, http: TestClient) -> None:
    service = "application_help"  # booked without notice numbers
    # The earliest free time anywhere: first on the earliest-times page too.
    earliest = _free(http, service)[0]
    taken, venue, day = (
        earliest["id"],
        earliest["venue"],
        date.fromisoformat(earliest["start"][:10]),
    )
    other = next(s for s in _free(http, service, venue) if s["start"][:10] != day.isoformat())
    calendar = f"/book/{service}/{venue}?month={day:%Y-%m}"
    link = f'href="/book/{service}/{venue}/{day.isoformat()}?party=1"'
    times = f"/book/{service}/{venue}/{day.isoformat()}"
    feed = f"/calendar/venues/{venue}/free.ics"
    assert link in http.get(calendar).text
    assert f'name="slot_id" value="{taken}"' in http.get(times).text
    assert f'name="slot_id" value="{taken}"' in http.get(f"/book/{service}/any").text
    assert f"slot-{taken}@" in http.get(feed).text

    # Replay paused: the standby shows the ward as it was. The day sells out on the primary.
    pair.sql(pair.standby, "SELECT pg_wal_replay_pause()")
    full = pair.sql(
        pair.primary,
        "WITH cut AS (UPDATE slot SET capacity = booked + held WHERE service_id = :s "
        "AND venue_id = :v AND (starts_at AT TIME ZONE 'Asia/Tokyo')::date = :d RETURNING 1) "
        "SELECT count(*) FROM cut",
        s=service,
        v=venue,
        d=day,
    )
    assert full
    with app.state.sessions() as db:  # the primary has none left that day
        assert not db.execute(
            text(
                "SELECT count(*) FROM slot WHERE id = :id AND booked + held < capacity",
            ),
            {"id": taken},
        ).scalar_one()
    # Every shown read still has the old figures: they come from the replica.
    assert taken in [s["id"] for s in _free(http, service, venue, day)]
    assert link in http.get(calendar).text
    stale = http.get(times).text
    assert f'name="slot_id" value="{taken}"' in stale
    assert f'name="slot_id" value="{taken}"' in http.get(f"/book/{service}/any").text
    assert f"slot-{taken}@" in http.get(feed).text

    # The seat the replica still shows is refused by the primary's guard: the usual "taken"
    # page (its next free times read from the primary), and the API's 409.
    csrf = re.search(r'name="csrf" value="([^"]+)"', stale)
    assert csrf is not None
    pressed = http.post(
        "/hold",
        data={"csrf": csrf[1], "service": service, "place": venue, "day": day.isoformat()}
        | {"party": "1", "slot_id": str(taken)},
        follow_redirects=False,
    )
    assert pressed.status_code == 409, pressed.text
    assert "選んだ時間は予約できなくなりました" in pressed.text
    assert f'name="slot_id" value="{taken}"' not in pressed.text
    refused = http.post("/api/v1/bookings", json={"slot_id": taken, **PERSON})
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "slot_full"), (
        refused.text
    )
    # A booking lands on the primary (replay still paused) and succeeds.
    booked = http.post("/api/v1/bookings", json={"slot_id": other["id"], **PERSON})
    assert booked.status_code == 201, booked.text
    with app.state.sessions() as db:
        seats = db.execute(text("SELECT booked FROM slot WHERE id = :id"), {"id": other["id"]})
        assert seats.scalar_one() == 1
    shown = _free(http, service, venue, date.fromisoformat(other["start"][:10]))
    assert next(s for s in shown if s["id"] == other["id"])["remaining"] == other["remaining"]

    # Replay resumed: the replica catches up and every page shows the new figures.
    pair.sql(pair.standby, "SELECT pg_wal_replay_resume()")
    pair.caught_up()
    assert taken not in [s["id"] for s in _free(http, service, venue, day)]
    assert f'name="slot_id" value="{taken}"' not in http.get(f"/book/{service}/any").text
    assert link not in http.get(calendar).text
    assert f'name="slot_id" value="{taken}"' not in http.get(times).text
    assert f"slot-{taken}@" not in http.get(feed).text
    shown = _free(http, service, venue, date.fromisoformat(other["start"][:10]))
    assert next(s for s in shown if s["id"] == other["id"])["remaining"] == other["remaining"] - 1

    # The replica's sessions take no write (a hot standby refuses it too; ours say so first).
    with app.state.read_sessions() as db:
        assert db.execute(text("SHOW default_transaction_read_only")).scalar_one() == "on"
    assert "read-only transaction" in refuses_writes(app)


# The replica down: shown reads fall back to the primary ---------------------------------------


def _calendar_renders(http: TestClient) -> int:
    """The earliest free time's calendar, day and feed render with it; its slot id."""
    service = "application_help"
    earliest = _free(http, service)[0]
    venue, day = earliest["venue"], date.fromisoformat(earliest["start"][:10])
    calendar = http.get(f"/book/{service}/{venue}?month={day:%Y-%m}")
    assert calendar.status_code == 200, calendar.text
    assert f'href="/book/{service}/{venue}/{day.isoformat()}?party=1"' in calendar.text
    times = http.get(f"/book/{service}/{venue}/{day.isoformat()}")
    assert f'name="slot_id" value="{earliest["id"]}"' in times.text
    assert f"slot-{earliest['id']}@" in http.get(f"/calendar/venues/{venue}/free.ics").text
    return int(earliest["id"])


def _fallbacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "config.replica"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("fresh_database", ["postgresql"], indirect=True)
def test_a_replica_on_a_closed_port_leaves_the_calendar_to_the_primary(
    fresh_database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{_closed_port()}/madoguchi"
    app = create_app(settings_for(fresh_database, tmp_path, database_read_url=nowhere))
    primary: Engine = app.state.sessions.kw["bind"]
    replica: Engine = app.state.read_sessions.kw["bind"]
    with app.state.sessions() as db:  # the schedule from today, by the app's own clock
        schedule.extend_schedule(db)
        db.commit()
    caplog.set_level(logging.INFO, logger="config.replica")
    try:
        with TestClient(app) as http:
            for _ in range(3):  # every page of a resident's visit, three times over
                _calendar_renders(http)
        assert app.state.shown_reads.replica_down
        # Logged once for the outage, not once per request (12 shown reads above).
        (warned,) = _fallbacks(caplog)
        assert "the read replica does not answer (OperationalError" in warned
        assert "shown reads go to the primary" in warned
        # Read from the primary, still read-only.
        with read_only_unit(request_to(app)) as db:
            assert db.get_bind() is primary
        assert "read-only transaction" in refuses_writes(app)
    finally:
        replica.dispose()
        primary.dispose()


def test_a_replica_stopped_and_started_again(
    pair: Pair, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    upgrade(pair.primary.url)
    app = create_app(settings_for(pair.primary.url, tmp_path, database_read_url=pair.standby.url))
    primary: Engine = app.state.sessions.kw["bind"]
    replica: Engine = app.state.read_sessions.kw["bind"]
    caplog.set_level(logging.INFO, logger="config.replica")
    app.state.shown_reads.retry_seconds = 0.5  # the replica tried again soon after it is back
    try:
        with app.state.sessions() as db:
            schedule.install_ward(db, sample_ward())
            schedule.extend_schedule(db)
            db.commit()
        pair.caught_up()
        with TestClient(app) as http:
            _calendar_renders(http)
            with read_only_unit(request_to(app)) as db:
                assert db.get_bind() is replica
            assert replica.pool.checkedin() >= 1  # type: ignore[attr-defined]
            assert _fallbacks(caplog) == []

            # The standby goes down with connections still in the replica's pool: the pool's
            # pre-ping finds them dead, the new connect is refused, the primary answers.
            pair.standby.stop()
            for _ in range(3):
                _calendar_renders(http)
            (warned,) = _fallbacks(caplog)
            assert "shown reads go to the primary" in warned
            with read_only_unit(request_to(app)) as db:
                assert db.get_bind() is primary

            # Started again: the next try (after retry_seconds) finds it, and says so once.
            pair.start_standby()
            pair.caught_up()
            time.sleep(0.6)
            _calendar_renders(http)
            with read_only_unit(request_to(app)) as db:
                assert db.get_bind() is replica
            assert not app.state.shown_reads.replica_down
            assert len(_fallbacks(caplog)) == 2
            assert "answers again" in _fallbacks(caplog)[1]
    finally:
        replica.dispose()
        primary.dispose()
