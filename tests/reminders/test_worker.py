"""`madoguchi worker` for real: RQ on Redis, PostgreSQL, a fake Twilio REST server. Messages go
out once even when a worker is killed mid-batch, and nothing is lost while Redis is down.

Each test gets a database of its own (the pump plans every pending booking event it finds)
and a Redis database of its own on the CI server, or a private redis-server it can stop."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from redis import Redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from booking import schedule
from booking import service as booking
from booking.service import ResidentInput
from config.app import create_app
from config.migrate import upgrade
from config.sample import sample_ward
from config.settings import Settings
from ivr.fake_twilio import FakeTwilio
from reminders import service as reminders
from tests.conftest import _pg_admin_url
from tests.reminders.conftest import TOKEN, WARD, new_mobile

CI_REDIS = os.environ.get("MADOGUCHI_TEST_REDIS_URL", "redis://127.0.0.1:6379")


@pytest.fixture
def database() -> Iterator[str]:
    admin_url = _pg_admin_url()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"madoguchi_worker_{secrets.token_hex(4)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Ward:
    """The web side (bookings committed through the app's sessions) and its workers."""

    env: dict[str, str]
    sessions: sessionmaker[Session]
    twilio: FakeTwilio
    workers: list[subprocess.Popen[bytes]]
    log_dir: Path

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"worker-{len(self.workers)}.log", "wb")
        worker = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from config.cli import main; raise SystemExit(main(['worker']))",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its RQ scheduler process goes down with it
        )
        self.workers.append(worker)
        return worker

    def kill(self, worker: subprocess.Popen[bytes]) -> None:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)

    def book(self, phones: list[str]) -> list[int]:
        ids = []
        with self.sessions() as db:
            for phone in phones:
                # Days ahead: the day-before reminder is still to come, whatever the hour the
                # tests run (the day's first free slot is tomorrow morning after 18:00 JST).
                later = db.info["booking"].today() + timedelta(days=3)
                [slot] = booking.availability(
                    db, service_id="application_help", start=later, limit=1
                )
                made = booking.book(
                    db,
                    slot_id=slot.id,
                    party=1,
                    resident=ResidentInput("ヨテイ ハナコ", phone, date(1970, 1, 1)),
                    channel="web",
                )
                db.commit()  # one booking, one commit: each wakes the pump on its own
                ids.append(made.id)
        return ids

    def statuses(self, booking_ids: list[int]) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self.sessions() as db:
            for booking_id in booking_ids:
                for m in reminders.messages_for(db, booking_id=booking_id):
                    if m.kind == "confirmation":
                        counts[m.status] = counts.get(m.status, 0) + 1
        return counts

    def wait_for(
        self,
        done: Callable[[], bool],
        seconds: float,
        what: str,
        state: Callable[[], object] = lambda: None,
    ) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if done():
                return
            time.sleep(0.2)
        logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in self.log_dir.glob("*.log"))
        raise AssertionError(f"timed out waiting for {what} ({state()}); worker logs:\n{logs}")


def _ward(database: str, redis_url: str, tmp_path: Path, twilio: FakeTwilio) -> Ward:
    env = {
        **os.environ,
        "MADOGUCHI_ENVIRONMENT": "test",
        "MADOGUCHI_DATABASE_URL": database,
        "MADOGUCHI_REDIS_URL": redis_url,
        "MADOGUCHI_DATA_DIR": str(tmp_path),
        "MADOGUCHI_DATA_KEYS": Fernet.generate_key().decode(),
        "MADOGUCHI_LOOKUP_KEY": secrets.token_urlsafe(32),
        "MADOGUCHI_PUBLIC_BASE_URL": "https://madoguchi.example.jp",
        "MADOGUCHI_TWILIO_ACCOUNT_SID": twilio.account_sid,
        "MADOGUCHI_TWILIO_AUTH_TOKEN": TOKEN,
        "MADOGUCHI_TWILIO_FROM_NUMBER": WARD,
        "MADOGUCHI_TWILIO_API_BASE": twilio.base_url,
        "MADOGUCHI_TWILIO_TIMEOUT_SECONDS": "2",
        "MADOGUCHI_QUIET_FROM": "00:00",  # no quiet hours: the test runs at any hour
        "MADOGUCHI_QUIET_UNTIL": "00:00",
        "MADOGUCHI_REMINDER_PUMP_SECONDS": "1",
        "MADOGUCHI_REMINDER_CLAIM_TIMEOUT_SECONDS": "3",
        # A batch goes to Twilio at once: the sending cap (shared through Redis) keeps a
        # worker busy for a while, so that a kill or an outage finds it mid-batch.
        "MADOGUCHI_TWILIO_SENDS_PER_SECOND": "4",
        "MADOGUCHI_LOG_LEVEL": "INFO",
    }
    settings = Settings.model_validate(
        {k[len("MADOGUCHI_") :].lower(): v for k, v in env.items() if k.startswith("MADOGUCHI_")}
    )
    app = create_app(settings)  # wires the hook that wakes the pump after each commit
    sessions: sessionmaker[Session] = app.state.sessions
    with sessions() as db:
        schedule.install_ward(db, sample_ward())
        schedule.extend_schedule(db)
        db.commit()
    return Ward(env, sessions, twilio, [], tmp_path)


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(auth_token=TOKEN) as fake:
        yield fake


@pytest.fixture
def ci_redis() -> Iterator[str]:
    """A Redis database of this test's own on the CI server, emptied before and after."""
    db = 9 + secrets.randbelow(6)
    url = f"{CI_REDIS}/{db}"
    redis = Redis.from_url(url)
    redis.flushdb()
    yield url
    redis.flushdb()


@pytest.fixture
def ward(database: str, ci_redis: str, tmp_path: Path, twilio: FakeTwilio) -> Iterator[Ward]:
    made = _ward(database, ci_redis, tmp_path, twilio)
    yield made
    for worker in made.workers:
        if worker.poll() is None:
            made.kill(worker)


def one_each(twilio: FakeTwilio, phones: list[str]) -> dict[str, int]:
    sent = [m.to for m in twilio.messages()]
    return {phone: sent.count(phone) for phone in phones}


def test_a_worker_sends_each_confirmation_once(ward: Ward) -> None:
    ward.start_worker()
    phones = [new_mobile() for _ in range(8)]
    ids = ward.book(phones)
    ward.wait_for(lambda: ward.statuses(ids).get("sent") == 8, 60, "8 confirmations sent")
    assert one_each(ward.twilio, phones) == dict.fromkeys(phones, 1)
    with ward.sessions() as db:  # each booking's reminder waits in RQ's scheduler
        kinds = [m.kind for m in reminders.messages_for(db, booking_id=ids[0])]
    assert kinds == ["confirmation", "reminder"]


def test_a_worker_killed_mid_batch_and_a_second_one_send_each_message_once(
    ward: Ward,
) -> None:
    # Twilio takes each message, then answers only after a while: a kill in that while leaves
    # a message sent whose answer never came back (the case that tempts a blind resend).
    ward.twilio.accept_then_hang = 0.4
    phones = [new_mobile() for _ in range(16)]
    ids = ward.book(phones)
    first = ward.start_worker()
    ward.wait_for(lambda: len(ward.twilio.messages()) >= 4, 60, "the first few messages")
    ward.kill(first)
    assert len(ward.twilio.messages()) < 16  # killed mid-batch
    ward.twilio.accept_then_hang = 0
    ward.start_worker()
    ward.start_worker()  # two workers after the crash: still once each
    ward.wait_for(
        lambda: ward.statuses(ids).get("sent") == 16,
        90,
        "all 16 sent",
        lambda: (ward.statuses(ids), one_each(ward.twilio, phones)),
    )
    assert one_each(ward.twilio, phones) == dict.fromkeys(phones, 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own, to stop and start (the CI server is shared)."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.process = subprocess.Popen(  # noqa: S603 (our own redis-server)
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if Redis.from_url(self.url).ping():
                    return
            except Exception:  # noqa: S110 (not up yet)
                pass
            time.sleep(0.1)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def test_redis_stopped_and_started_loses_nothing(
    database: str, tmp_path: Path, twilio: FakeTwilio
) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    ward = _ward(database, redis.url, tmp_path, twilio)
    try:
        ward.start_worker()
        before = [new_mobile() for _ in range(3)]
        ids = ward.book(before)
        ward.wait_for(lambda: ward.statuses(ids).get("sent") == 3, 60, "3 sent before")
        redis.stop()
        during = [new_mobile() for _ in range(5)]
        started = time.monotonic()
        ids_during = ward.book(during)  # bookings still succeed; their messages wait
        assert time.monotonic() - started < 15
        assert ward.statuses(ids_during) == {"scheduled": 5} or ward.statuses(ids_during) == {}
        assert one_each(twilio, during) == dict.fromkeys(during, 0)
        redis.start()  # back, and empty: every job it held is gone
        ward.wait_for(lambda: ward.statuses(ids_during).get("sent") == 5, 90, "5 sent after")
        assert one_each(twilio, before + during) == dict.fromkeys(before + during, 1)
    finally:
        for worker in ward.workers:
            if worker.poll() is None:
                ward.kill(worker)
        redis.stop()


def test_workers_keep_house_one_at_a_time(ward: Ward) -> None:
    """With web processes and workers (no `serve`), the workers do the periodic upkeep: one
    of them at a time (a lock in Redis), at once on start; here seen by the daily erasure
    run's record (the retention rule runs in production, not only under `serve`)."""
    from agent_console import service as staff

    def runs() -> int:
        with ward.sessions() as db:
            return len(staff.erasures(db))

    ward.start_worker()
    ward.start_worker()
    ward.wait_for(lambda: runs() >= 1, 30, "the workers' housekeeping", runs)
    time.sleep(3)
    assert runs() == 1  # one worker took the lock; the other skipped this round


def test_a_busy_worker_rides_out_redis_stopped_for_ten_seconds(
    database: str, tmp_path: Path, twilio: FakeTwilio
) -> None:
    """Redis goes away while the worker is in the middle of its sends (RQ's heartbeat then
    fails inside a job) and comes back empty ten seconds later: the same worker carries on, and
    every message goes out exactly once."""
    twilio.delay = 0.25  # each send takes a while: the worker is busy when Redis goes
    redis = PrivateRedis(tmp_path)
    redis.start()
    ward = _ward(database, redis.url, tmp_path, twilio)
    try:
        worker = ward.start_worker()
        phones = [new_mobile() for _ in range(24)]
        ids = ward.book(phones)
        ward.wait_for(lambda: len(twilio.messages()) >= 2, 60, "the first sends")
        redis.stop()
        time.sleep(10)
        assert worker.poll() is None, "the worker exited while Redis was away"
        assert len(twilio.messages()) < 24  # it was cut off mid-batch
        redis.start()  # back, and empty: every job it held is gone
        ward.wait_for(
            lambda: ward.statuses(ids).get("sent") == 24,
            120,
            "all 24 sent after Redis came back",
            lambda: ward.statuses(ids),
        )
        assert worker.poll() is None  # the same worker, never restarted
        assert one_each(twilio, phones) == dict.fromkeys(phones, 1)
    finally:
        for worker in ward.workers:
            if worker.poll() is None:
                ward.kill(worker)
        redis.stop()


def _processes_in_group(group: int) -> list[int]:
    """Every live process whose process group is ``group`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            found.append(int(entry.name))
    return found


def test_a_worker_killed_with_minus_nine_leaves_no_process_behind(ward: Ward) -> None:
    """RQ forks its scheduler into a child process that outlives a worker killed with -9; the
    worker runs it on a thread instead, so nothing of it is left."""
    worker = ward.start_worker()
    phones = [new_mobile() for _ in range(2)]
    ids = ward.book(phones)
    ward.wait_for(lambda: ward.statuses(ids).get("sent") == 2, 60, "2 sent")
    os.kill(worker.pid, signal.SIGKILL)  # the worker alone, not its process group
    worker.wait(timeout=10)
    deadline = time.monotonic() + 5
    while _processes_in_group(worker.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_in_group(worker.pid) == []


def test_a_worker_stops_on_sigterm_idle_or_while_redis_is_away(
    database: str, tmp_path: Path, twilio: FakeTwilio
) -> None:
    """systemd stops a worker with SIGTERM: it ends, idle (RQ's loop says nothing of a stop
    asked for while idle) and while Redis is away, rather than starting its loop again."""
    redis = PrivateRedis(tmp_path)
    redis.start()
    ward = _ward(database, redis.url, tmp_path, twilio)
    try:
        idle = ward.start_worker()
        ids = ward.book([new_mobile()])
        ward.wait_for(lambda: ward.statuses(ids).get("sent") == 1, 60, "1 sent")
        time.sleep(4)  # idle a while: waiting on its queues is no timeout to log
        logged = (ward.log_dir / "worker-0.log").read_text(errors="replace")
        assert "timeout" not in logged.lower(), logged[-2000:]
        idle.send_signal(signal.SIGTERM)
        # Within seconds: RQ's command channel thread is waited for on the way out, and with
        # RQ's own minute between its wakes a stop could wait up to a minute.
        assert idle.wait(timeout=10) == 0
        waiting = ward.start_worker()
        started = ward.log_dir / "worker-1.log"
        # It has started: RQ says so once its loop listens (a fixed sleep was too short on a
        # loaded machine, and a worker started while Redis is away is another matter).
        ward.wait_for(
            lambda: "listening on" in started.read_text(errors="replace").lower(),
            60,
            "the second worker listening",
        )
        redis.stop()
        time.sleep(3)  # its loop ended on the outage; it waits for Redis
        waiting.send_signal(signal.SIGTERM)
        assert waiting.wait(timeout=30) == 0
    finally:
        for worker in ward.workers:
            if worker.poll() is None:
                ward.kill(worker)
        redis.stop()
