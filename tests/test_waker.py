"""A web process arms its jobs (the pump after a booking) from a thread of its own: a request
never waits on Redis, even a frozen one (``kill -STOP``), and armings are not queued twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from config.queue import Waker
from config.worker import wake_pump_after_commit
from tests.conftest import FakeClock, SlotMaker, app_for


class StuckRedis:
    """Jobs whose arming hangs until released, as on a frozen Redis; records what arrived."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.armed: list[str] = []

    def run_soon(self, func: str, *args: object, job_id: str, queue: str) -> None:
        self.entered.set()
        assert self.release.wait(30)
        self.armed.append(job_id)

    def run_at(self, at: datetime, func: str, *args: object, job_id: str, queue: str) -> None:
        self.run_soon(func, *args, job_id=job_id, queue=queue)

    def wake(self, func: str, *, queue: str) -> None:
        self.run_soon(func, job_id=f"wake:{func}", queue=queue)


def settle(waker: Waker, stuck: StuckRedis, expected: int) -> None:
    stuck.release.set()
    for _ in range(300):
        if len(stuck.armed) >= expected and waker.pending() == 0:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"armed {stuck.armed}, {waker.pending()} waiting")


def test_arming_returns_at_once_while_redis_hangs() -> None:
    stuck = StuckRedis()
    waker = Waker(stuck)  # type: ignore[arg-type]
    waker.run_soon("reminders.jobs.pump", job_id="pump-1", queue="outbox")
    assert stuck.entered.wait(5)  # the waker's thread is now held up...
    waker.run_soon("reminders.jobs.pump", job_id="pump-2", queue="outbox")  # ...and this returns
    waker.run_soon("reminders.jobs.pump", job_id="pump-2", queue="outbox")  # waiting already
    waker.run_at(datetime.now(UTC), "reminders.jobs.send", 7, job_id="send-7", queue="messages")
    assert waker.pending() == 2
    settle(waker, stuck, 3)
    assert stuck.armed == ["pump-1", "pump-2", "send-7"]


def test_past_its_limit_new_armings_are_dropped_not_waited_for() -> None:
    stuck = StuckRedis()
    waker = Waker(stuck, most=3)  # type: ignore[arg-type]
    waker.run_soon("f", job_id="first", queue="q")
    assert stuck.entered.wait(5)
    for n in range(10):
        waker.run_soon("f", job_id=f"j{n}", queue="q")
    assert (waker.pending(), waker.dropped) == (3, 7)
    settle(waker, stuck, 4)
    assert stuck.armed == ["first", "j0", "j1", "j2"]


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_a_booking_answers_while_redis_hangs(
    engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    """The real app with Redis configured: the booking's commit wakes the pump through the
    waker, and the answer comes while that arming is still stuck."""
    app = app_for(engine, clock, tmp_path, redis_url="redis://127.0.0.1:6379/15")
    waker: Waker = app.state.jobs
    stuck = StuckRedis()
    waker.jobs = stuck  # type: ignore[assignment]
    # app_for gives the app the test's sessions (its clock): wired as create_app wires its own.
    wake_pump_after_commit(app.state.sessions, waker)
    with app.state.sessions() as db:
        slot = SlotMaker(db)(2)
        db.commit()
    person = {"name_kana": "ヤマダ タロウ", "phone": "090-1234-5678", "birth_date": "1950-04-01"}
    with TestClient(app, client=("10.99.0.1", 50000)) as http:
        answer = http.post("/api/v1/bookings", json={"slot_id": slot, **person})
        assert answer.status_code == 201, answer.text
        assert stuck.entered.wait(5)
        assert stuck.armed == []  # the request was answered; the arming still hangs
        with app.state.sessions() as db:
            booked = db.execute(text("SELECT booked FROM slot WHERE id = :s"), {"s": slot})
            assert booked.scalar_one() == 1
        settle(waker, stuck, 1)
    assert stuck.armed == ["wake:reminders.jobs.pump"]


def test_the_embedded_queue_wakes_a_run_even_with_one_armed_for_later() -> None:
    """The pump arms its next round a minute ahead: a booking's wake must not wait for it."""
    from config.queue import InlineJobs

    inline = InlineJobs()  # not started: what waits in it is looked at by hand
    later = datetime.now(UTC).replace(year=datetime.now(UTC).year + 1)
    inline.run_at(later, "reminders.jobs.pump", job_id="pump-at-next", queue="outbox")
    inline.wake("reminders.jobs.pump", queue="outbox")
    inline.wake("reminders.jobs.pump", queue="outbox")  # one due now is enough
    waiting = sorted(at for at, _, _, _, _ in inline._heap)
    assert len(waiting) == 2
    assert waiting[0] <= datetime.now(UTC) < waiting[1]
