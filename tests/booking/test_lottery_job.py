"""The lottery's draw job on RQ with a real Redis and PostgreSQL: enqueued twice (or run by
racing workers), it draws once and books each winner once."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from booking import lottery, lottery_jobs
from booking import service as booking
from booking.models import Booking, Lottery, LotteryApplication, WaitlistEntry
from config.queue import RqJobs
from reminders import service as reminders
from reminders.models import Message
from tests.booking.test_lottery import household, leave_losers, new_lottery
from tests.booking.test_race import race
from tests.conftest import FakeClock, SlotMaker
from tests.reminders.conftest import RULES
from tests.reminders.test_worker import CI_REDIS

pytestmark = pytest.mark.parametrize("engine", ["postgresql"], indirect=True)


@pytest.fixture
def redis() -> Iterator[Redis]:
    """A Redis database of this test's own, emptied before and after."""
    conn = Redis.from_url(f"{CI_REDIS}/{9 + secrets.randbelow(6)}")
    try:
        conn.ping()
    except Exception as exc:
        pytest.skip(f"Redis not reachable: {exc}")
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture(autouse=True)
def losers_leave(committed: sessionmaker[Session]) -> Iterator[None]:
    """The committed draws' losers off the waitlist after each test: their whole-day entries
    would stand before later tests' entries on the same days."""
    yield
    with committed() as db:
        drawn = list(db.execute(select(Lottery.id).where(Lottery.status == "drawn")).scalars())
    for lottery_id in drawn:
        leave_losers(committed, lottery_id)


def drawable(committed: sessionmaker[Session], clock: FakeClock, applications: int) -> int:
    """A lottery with more households than seats, its draw time come: its id."""
    with committed() as db:
        made = new_lottery(db, clock, [SlotMaker(db)(3), SlotMaker(db)(2)])
        ids = [s.id for s in made.slots]
        for i in range(applications):
            lottery.apply(
                db,
                lottery_id=made.id,
                party=1 + i % 2,
                resident=household(1 + i % 2),
                preferences=ids if i % 3 else ids[::-1],
                channel="web",
            )
        db.commit()
    clock.set(made.draw_at + timedelta(seconds=1))
    return made.id


def bookings_of(committed: sessionmaker[Session], lottery_id: int) -> int:
    with committed() as db:
        slots = [s.id for s in lottery.get_lottery(db, lottery_id=lottery_id).slots]
        return int(
            db.execute(
                select(func.count()).select_from(Booking).where(Booking.slot_id.in_(slots))
            ).scalar_one()
        )


def test_the_draw_job_enqueued_twice_draws_once(
    committed: sessionmaker[Session], clock: FakeClock, redis: Redis
) -> None:
    lottery_id = drawable(committed, clock, 8)
    lottery_jobs.use(committed)
    queue_name = f"lottery-{secrets.token_hex(4)}"
    queue = Queue(queue_name, connection=redis)
    # Twice under two job ids (a manager's arming and the housekeeping's, say), and the
    # arming itself twice under its own id (RqJobs keeps one while it waits).
    first = queue.enqueue(lottery_jobs.DRAW, lottery_id, job_id=f"draw-a-{lottery_id}")
    second = queue.enqueue(lottery_jobs.DRAW, lottery_id, job_id=f"draw-b-{lottery_id}")
    jobs = RqJobs(redis)
    for _ in range(2):
        jobs.run_soon(
            lottery_jobs.DRAW, lottery_id, job_id=f"draw-c-{lottery_id}", queue=queue_name
        )
    assert queue.count == 3
    SimpleWorker([queue], connection=redis).work(burst=True)
    results = [j.latest_result() for j in (first, second)]
    returned = [str(r.return_value) for r in results if r is not None]
    assert returned[0].startswith("drawn: ")
    assert returned[1] == "nothing to draw"
    with committed() as db:
        outcomes = lottery.applications_of(db, lottery_id=lottery_id)
        record = lottery.public_record(db, lottery_id=lottery_id)
    won = [a for a in outcomes if a.outcome == "won"]
    assert len(won) == bookings_of(committed, lottery_id)  # one booking per winner, no more
    assert sum(a.party_size for a in won) <= 5
    assert record is not None and lottery.verify(record)


def test_racing_draws_draw_once(committed: sessionmaker[Session], clock: FakeClock) -> None:
    lottery_id = drawable(committed, clock, 10)

    def work(db: Session, _i: int) -> object:
        return lottery.run_draw(db, lottery_id=lottery_id)

    outcomes = race(committed, 6, work)
    assert [o.error for o in outcomes] == [None] * 6
    drawn = [o.value for o in outcomes if o.value is not None]
    assert len(drawn) == 1
    assert isinstance(drawn[0], lottery.DrawOutcome)
    assert bookings_of(committed, lottery_id) == len(drawn[0].won)
    with committed() as db:
        seed = db.execute(select(Lottery.seed).where(Lottery.id == lottery_id)).scalar_one()
    assert seed is not None


def test_the_housekeeping_draws_a_lottery_whose_job_was_lost(
    committed: sessionmaker[Session], clock: FakeClock
) -> None:
    lottery_id = drawable(committed, clock, 3)
    assert lottery_jobs.draw_due(committed) >= 1
    with committed() as db:
        assert lottery.get_lottery(db, lottery_id=lottery_id).status == "drawn"
    assert lottery_jobs.draw_due(committed) == 0


def test_the_race_harness_catches_a_draw_without_its_claim(
    committed: sessionmaker[Session], clock: FakeClock
) -> None:
    """The harness above can fail: a draw that looks at the status and then books (no
    conditional claim) books the winners once per racing run."""
    lottery_id = drawable(committed, clock, 2)

    def naive(db: Session, _i: int) -> object:
        status = db.execute(select(Lottery.status).where(Lottery.id == lottery_id)).scalar_one()
        if status != "open":
            return None
        for application in db.execute(
            select(LotteryApplication).where(LotteryApplication.lottery_id == lottery_id)
        ).scalars():
            booking.book_drawn(
                db,
                lottery_id=lottery_id,
                slot_id=application.preferences[0],
                party=1,
                channel="web",
                sealed=lottery._sealed(db, application),
            )
        db.execute(update(Lottery).where(Lottery.id == lottery_id).values(status="drawn"))
        return True

    race(committed, 6, naive)
    assert bookings_of(committed, lottery_id) > 2  # the two winners, booked more than once


def test_the_losers_of_a_draw_job_run_twice_wait_once_and_are_told_once(
    committed: sessionmaker[Session], clock: FakeClock, redis: Redis
) -> None:
    lottery_id = drawable(committed, clock, 9)
    lottery_jobs.use(committed)
    queue = Queue(f"lottery-{secrets.token_hex(4)}", connection=redis)
    for name in ("a", "b"):
        queue.enqueue(lottery_jobs.DRAW, lottery_id, job_id=f"draw-{name}-{lottery_id}")
    SimpleWorker([queue], connection=redis).work(burst=True)
    with committed() as db:
        lost = [
            a.id for a in lottery.applications_of(db, lottery_id=lottery_id) if a.outcome == "lost"
        ]
        entries = list(
            db.execute(
                select(WaitlistEntry.id).where(WaitlistEntry.lottery_id == lottery_id)
            ).scalars()
        )
    assert lost and len(entries) == len(lost)  # one entry per loser, not two
    for _ in range(2):  # the planner, twice (two pump runs)
        with committed() as db:
            reminders.plan_from_outbox(db, RULES, limit=100_000)
            db.commit()
    with committed() as db:
        told = db.execute(
            select(Message.waitlist_entry_id, func.count())
            .where(Message.waitlist_entry_id.in_(entries), Message.kind == "lottery_lost")
            .group_by(Message.waitlist_entry_id)
        ).all()
    assert sorted(told) == sorted((e, 1) for e in entries)
