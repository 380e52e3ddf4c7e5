"""Shared fixtures: real PostgreSQL and SQLite databases built by the Alembic migrations.

PostgreSQL: each test run creates its own database next to MADOGUCHI_TEST_DATABASE_URL
(default: the CI server's ``test`` database) and drops it afterwards. Without a reachable server
the PostgreSQL tests are skipped on a developer's machine and fail under CI.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from booking import schedule
from booking.context import TOKYO, BookingContext, BookingRules
from booking.errors import BookingError
from booking.personal import Vault
from config.app import create_app
from config.db import make_engine, make_sessionmaker
from config.migrate import upgrade
from config.sample import sample_ward
from config.settings import Settings, normalise_database_url

# No resident's data in the logs of the whole run (tests/log_audit.py); nothing blocking on the
# event loop in any test (tests/loop_guard.py).
pytest_plugins = ["tests.log_audit", "tests.loop_guard"]

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
# Tuesday 2026-12-15, 10:00 in Tokyo: the booking window (to 2027-01-29) spans the year-end
# closure, 成人の日 (2027-01-11) and the main office's 2nd/4th-Sunday holiday sessions.
START = datetime(2026, 12, 15, 10, 0, tzinfo=TOKYO)


@dataclass
class FakeClock:
    """A clock the tests move by hand (holds lapse, cut-offs pass)."""

    now: datetime = START
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> datetime:
        with self._lock:
            return self.now.astimezone(UTC)

    def set(self, when: datetime) -> None:
        with self._lock:
            self.now = when

    def advance(self, **kwargs: float) -> None:
        with self._lock:
            self.now = self.now + timedelta(**kwargs)


TEST_VAULT = Vault.from_keys([Fernet.generate_key().decode()], secrets.token_urlsafe(32))


def make_context(clock: Callable[[], datetime], **rules: int) -> BookingContext:
    # Tests book many times with one phone number on shared data: the per-phone limit has its
    # own test (test_one_phone_holds_only_so_many_bookings).
    rules.setdefault("max_active_per_phone", 10_000)
    rules.setdefault("max_cancels_per_month", 10_000)  # its own test: test_fairness.py
    return BookingContext(vault=TEST_VAULT, rules=BookingRules(**rules), clock=clock)


def _pg_admin_url() -> str:
    return normalise_database_url(os.environ.get("MADOGUCHI_TEST_DATABASE_URL", DEFAULT_PG))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, migrated to head."""
    admin_url = _pg_admin_url()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        message = f"PostgreSQL not reachable at {make_url(admin_url).render_as_string()}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    name = f"madoguchi_test_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "madoguchi.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    return url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Both databases the engine must be correct on; the sample ward loaded and committed."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    eng = make_engine(url)
    with Session(eng, info={"booking": make_context(FakeClock())}) as db:
        schedule.install_ward(db, sample_ward())
        schedule.extend_schedule(db)
        db.commit()
    yield eng
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of the test's own, migrated, with the sample ward: for whole-database work
    (key rotation, erasing everything, dumps) that must not touch the shared test data."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'own.db'}"
        name = None
    else:
        request.getfixturevalue("pg_url")  # skips (or fails under CI) without a server
        admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
        name = f"madoguchi_own_{os.getpid()}_{secrets.token_hex(3)}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = make_url(_pg_admin_url()).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        eng = make_engine(url)
        with Session(eng, info={"booking": make_context(FakeClock())}) as db:
            schedule.install_ward(db, sample_ward())
            schedule.extend_schedule(db)
            db.commit()
        eng.dispose()
        yield url
    finally:
        if name is not None:
            admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    eng = make_engine(pg_url)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(engine: Engine, clock: FakeClock) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test; service savepoints
    nest inside it."""
    with engine.connect() as conn:
        outer = conn.begin()
        session = Session(
            bind=conn,
            join_transaction_mode="create_savepoint",
            info={"booking": make_context(clock)},
            expire_on_commit=False,
        )
        try:
            yield session
        finally:
            session.close()
            outer.rollback()


@pytest.fixture
def committed(engine: Engine, clock: FakeClock) -> sessionmaker[Session]:
    """Sessions that really commit, for races between connections (data stays in the test db)."""
    return make_sessionmaker(engine, make_context(clock))


def app_for(
    engine: Engine, clock: Callable[[], datetime], data_dir: Path, **settings_: object
) -> FastAPI:
    """The real app on a test database, using the test's clock and vault for its sessions."""
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        environment="test",
        data_dir=data_dir,
        data_keys=Fernet.generate_key().decode(),
        lookup_key="x" * 32,
        **settings_,  # type: ignore[arg-type]
    )
    app = create_app(settings)
    app.state.sessions = make_sessionmaker(engine, make_context(clock))
    return app


_slot_counter = iter(range(1_000_000))
# Start times outside the sample ward's regular hours (8:30-17:00), 28 a day.
FREE_TIMES = [time(h, m) for h in range(23) for m in (0, 30) if not 8 <= h < 17]


@dataclass(frozen=True)
class SlotMaker:
    """Makes a slot owned by one test: an extra session at a time no other test uses."""

    db: Session

    def __call__(self, seats: int, *, service: str = "application_help") -> int:
        while True:
            n = next(_slot_counter)
            day = date(2027, 1, 12) + timedelta(days=(n // len(FREE_TIMES)) % 14)
            opens = datetime.combine(day, FREE_TIMES[n % len(FREE_TIMES)])
            try:
                with self.db.begin_nested():
                    session = schedule.open_extra_session(
                        self.db,
                        venue_id="main",
                        service_id=service,
                        day=day,
                        opens=opens.time(),
                        closes=(opens + timedelta(minutes=30)).time(),
                        slot_minutes=30,
                        seats=seats,
                        kind="extra",
                    )
            except BookingError as exc:  # a time taken by a slot another test committed
                if exc.code != "session_overlaps":
                    raise
                continue
            slot_id = self.db.execute(
                text("SELECT id FROM slot WHERE session_id = :s"), {"s": session.id}
            ).scalar_one()
            return int(slot_id)


@pytest.fixture
def make_slot(db: Session) -> SlotMaker:
    return SlotMaker(db)
