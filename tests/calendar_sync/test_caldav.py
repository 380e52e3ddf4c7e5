"""Pushing satellite counters' calendars to a real CalDAV server (Radicale, run locally): the
calendar ends up holding exactly the sessions and bookings it should, by UID; a change bumps
SEQUENCE, a cancellation deletes; a push cut short by the server stopping converges when it
returns, with nothing duplicated or lost. SQLite and PostgreSQL."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from booking import service as booking
from booking.service import ResidentInput
from calendar_sync import jobs
from calendar_sync import service as calendar
from calendar_sync.caldav_target import CalDavTarget, CalendarUnavailable
from tests.reminders.conftest import ArmedJobs

VENUE = "kashiwagi"
PASSWORD = "radicale-accepts-any"  # noqa: S105 (Radicale runs with auth type none)
DAYS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Radicale:
    """A Radicale server of the test's own (no auth; storage in a temporary folder), which the
    test can stop and start again on the same port and storage."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.config = folder / "radicale.conf"
        self.config.write_text(
            f"[server]\nhosts = 127.0.0.1:{self.port}\n[auth]\ntype = none\n"
            f"[storage]\nfilesystem_folder = {folder / 'collections'}\n[logging]\nlevel = warning\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/madoguchi/"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 (our own server)
            [sys.executable, "-m", "radicale", "--config", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("Radicale did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[Radicale]:
    server = Radicale(tmp_path)
    server.start()
    yield server
    server.stop()


@dataclass
class StopsMidway:
    """The real target, with the server stopped after ``after`` events have landed."""

    target: CalDavTarget
    server: Radicale
    after: int
    landed: int = 0

    def put(self, venue_id: str, name: str, ical: bytes) -> None:
        if self.landed == self.after:
            self.server.stop()
        self.target.put(venue_id, name, ical)
        self.landed += 1

    def delete(self, venue_id: str, name: str, uid: str) -> None:
        self.target.delete(venue_id, name, uid)


def book_two(sessions: sessionmaker[Session]) -> list[booking.BookingView]:
    with sessions() as db:
        today = db.info["booking"].today()
        free = booking.availability(
            db,
            service_id="pin_reset",
            venue_id=VENUE,
            start=today + timedelta(days=1),
            end=today + timedelta(days=DAYS),
            limit=2,
        )
        made = [
            booking.book(
                db,
                slot_id=slot.id,
                party=1,
                resident=ResidentInput("カレン ダー", "090-7777-8888", date(1990, 3, 3)),
                channel="web",
            )
            for slot in free
        ]
        db.commit()
    return made


def wanted(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as db:
        return set(calendar.wanted_events(db, venue_id=VENUE, days=DAYS))


def forget_pushes(sessions: sessionmaker[Session]) -> None:
    """This test's server starts empty: so must the record of what was put on it."""
    with sessions() as db:
        db.execute(text("DELETE FROM calendar_pushed_event WHERE venue_id = :v"), {"v": VENUE})
        db.commit()


def runtime(sessions: sessionmaker[Session], target: jobs.Target, armed: ArmedJobs) -> jobs.Runtime:
    return jobs.Runtime(sessions=sessions, jobs=armed, target=target, venues=(VENUE,), days=DAYS)


def test_a_counters_calendar_holds_exactly_its_sessions_and_bookings(
    committed: sessionmaker[Session], radicale: Radicale
) -> None:
    forget_pushes(committed)
    target = CalDavTarget(url=radicale.url, username="madoguchi", password=PASSWORD, timeout=5)
    armed = ArmedJobs()
    jobs.use(runtime(committed, target, armed))
    first, second = book_two(committed)
    assert "+" in jobs.push()
    on_server = target.uids(VENUE, "柏木")
    assert set(on_server) == wanted(committed)
    assert f"booking-{first.id}@madoguchi" in on_server
    assert set(on_server.values()) == {0}
    assert any(f == jobs.PUSH for _, f, _, _ in armed.armed)  # the next run is armed

    with committed() as db:  # one cancelled, one moved: deleted, and bumped
        booking.cancel_booking(db, booking_id=first.id)
        today = db.info["booking"].today()
        [elsewhere, *_] = [
            slot
            for slot in booking.availability(
                db,
                service_id="pin_reset",
                venue_id=VENUE,
                start=today + timedelta(days=1),
                end=today + timedelta(days=DAYS),
                limit=10,
            )
            if slot.id != second.slot_id
        ]
        booking.reschedule_booking(db, booking_id=second.id, slot_id=elsewhere.id)
        db.commit()
    jobs.push()
    again = target.uids(VENUE, "柏木")
    assert f"booking-{first.id}@madoguchi" not in again
    assert again[f"booking-{second.id}@madoguchi"] == 1  # SEQUENCE bumped by the move
    assert set(again) == wanted(committed)
    jobs.push()  # nothing to do: nothing put twice
    assert target.uids(VENUE, "柏木") == again
    jobs.use(None)


def test_a_push_cut_short_by_the_server_converges_when_it_returns(
    committed: sessionmaker[Session], radicale: Radicale
) -> None:
    forget_pushes(committed)
    book_two(committed)
    target = CalDavTarget(url=radicale.url, username="madoguchi", password=PASSWORD, timeout=3)
    armed = ArmedJobs()
    jobs.use(runtime(committed, StopsMidway(target, radicale, after=2), armed))
    answer = jobs.push()
    assert answer.startswith("unavailable")
    assert any(j.startswith("caldav-retry-") for _, _, _, j in armed.armed)  # tried again soon
    with committed() as db:
        recorded = calendar.pushed_uids(db, venue_id=VENUE)
    assert len(recorded) == 2  # what landed is remembered, nothing more
    with pytest.raises(CalendarUnavailable):
        target.uids(VENUE, "柏木")
    radicale.start()
    fresh = CalDavTarget(url=radicale.url, username="madoguchi", password=PASSWORD, timeout=5)
    jobs.use(runtime(committed, fresh, armed))
    jobs.push()
    on_server = fresh.uids(VENUE, "柏木")
    assert set(on_server) == wanted(committed)  # converged: nothing lost
    with committed() as db:
        assert set(calendar.pushed_uids(db, venue_id=VENUE)) == set(on_server)
    jobs.use(None)
