"""The waiting room on real Redis: arrival order kept, one place per visitor, the API refused
without a pass, the waiting page without PostgreSQL, and the proof of work on holds.

Each test's line lives under a prefix of its own (other runs share the Redis server), on a clock
the test moves by hand.
"""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from altcha.v1 import Challenge, Payload, solve_challenge
from fastapi import FastAPI
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from booking.proof_of_work import ProofOfWork
from booking.waiting_room import WaitingRoom, waiting_room
from tests.conftest import FakeClock, SlotMaker, app_for

REDIS_URL = os.environ.get("MADOGUCHI_TEST_REDIS_URL", "redis://127.0.0.1:6379")
POSITION = re.compile(r'class="line-position">(\d+)<')


@dataclass
class Tick:
    """The line's clock (seconds), moved by hand."""

    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis() -> Iterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except Exception as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis not reachable: {exc}")
    yield client
    client.close()


@pytest.fixture
def prefix(redis: Redis) -> Iterator[str]:
    mine = f"madoguchi:test-wr:{secrets.token_hex(4)}:"
    yield mine
    for key in redis.scan_iter(match=mine + "*"):
        redis.delete(key)


def room_of(prefix: str, tick: Tick, *, mode: str = "on", per_minute: int = 60) -> WaitingRoom:
    room = waiting_room(REDIS_URL, mode="off", per_minute=per_minute, prefix=prefix)
    room.clock = tick
    room.set_line(mode=mode, per_minute=per_minute)  # type: ignore[arg-type]
    return room


# --- The line itself ----------------------------------------------------------------------------


def test_visitors_are_let_in_in_arrival_order_at_the_rate(prefix: str, redis: Redis) -> None:
    tick = Tick()
    room = room_of(prefix, tick, per_minute=60)
    arrivals = [f"visitor-{n}" for n in range(30)]
    places = [room.enter_sync(v) for v in arrivals]
    assert [p.number for p in places] == list(range(1, 31))
    assert not any(p.admitted for p in places)
    assert [p.position for p in places] == list(range(1, 31))
    assert places[-1].wait_seconds == 30  # 30 ahead at one a second

    let_in: list[str] = []
    for _ in range(40):  # 40 seconds at one a second: all 30 in, in arrival order
        tick.now += 1
        # Everyone still waiting asks, the last arrivals first: order must not depend on it.
        for visitor in reversed([v for v in arrivals if v not in let_in]):
            if room.enter_sync(visitor).admitted:
                let_in.append(visitor)
        assert let_in == arrivals[: len(let_in)]
        assert len(let_in) <= int(tick.now - Tick().now)  # never faster than the rate
    assert let_in == arrivals


def test_one_place_per_visitor_however_often_and_however_many_at_once(
    prefix: str, redis: Redis
) -> None:
    tick = Tick()
    room = room_of(prefix, tick)
    first = room.enter_sync("me")
    assert [room.enter_sync("me").number for _ in range(5)] == [first.number] * 5

    # 200 visitors, each with two tabs, all at once: 200 places, each number given once.
    barrier = threading.Barrier(40)
    numbers: dict[str, set[int]] = {}
    lock = threading.Lock()

    def tabs(worker: int) -> None:
        barrier.wait()
        for n in range(5):
            visitor = f"v{worker}-{n}"
            for _ in range(2):
                got = room.enter_sync(visitor).number
                with lock:
                    numbers.setdefault(visitor, set()).add(got)

    threads = [threading.Thread(target=tabs, args=(w,)) for w in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(got) == 1 for got in numbers.values())
    given = sorted(next(iter(got)) for got in numbers.values())
    assert given == list(range(2, 202))
    assert room.line().waiting == 201


def test_auto_mode_lets_a_quiet_evening_in_and_lines_up_a_flood(prefix: str, redis: Redis) -> None:
    tick = Tick()
    room = room_of(prefix, tick, mode="auto", per_minute=60)
    # Quiet: one visitor every two seconds is under the rate, nobody waits.
    for n in range(10):
        tick.now += 2
        assert room.enter_sync(f"quiet-{n}").admitted
    assert not room.line().waiting
    # A flood after a pause: 100 at once; ten seconds of the rate go straight in, the rest
    # line up.
    tick.now += 20
    flood = [room.enter_sync(f"flood-{n}") for n in range(100)]
    assert sum(p.admitted for p in flood) == 10
    assert room.line().waiting == 90
    assert room.line().admitted_last_minute >= 10


def test_a_release_time_holds_everyone_until_then(prefix: str, redis: Redis) -> None:
    tick = Tick()
    room = room_of(prefix, tick)
    room.set_line(mode="on", per_minute=120, start_at=tick.now + 300)
    early = room.enter_sync("early")
    assert not early.admitted
    assert early.wait_seconds == 300 + 1  # the release, then half a second rounded up
    tick.now += 299
    assert not room.enter_sync("early").admitted
    assert room.line().start_at == pytest.approx(tick.now + 1)
    tick.now += 2
    assert room.enter_sync("early").admitted
    room.set_line(mode="off", per_minute=120)
    assert room.enter_sync("anyone").admitted


# --- Through the app ---------------------------------------------------------------------------


@dataclass
class Ward:
    app: FastAPI
    room: WaitingRoom
    tick: Tick
    sessions: sessionmaker[Session]

    def client(self) -> TestClient:
        address = f"10.77.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
        return TestClient(self.app, raise_server_exceptions=False, client=(address, 50000))

    def slot(self, seats: int = 4) -> int:
        with self.sessions() as db:
            made = SlotMaker(db)(seats)
            db.commit()
        return made

    def held(self, slot_id: int) -> int:
        with self.sessions() as db:
            return int(
                db.execute(text("SELECT held FROM slot WHERE id = :s"), {"s": slot_id}).scalar_one()
            )


@pytest.fixture
def ward(
    engine: Engine, clock: FakeClock, tmp_path: Path, prefix: str, committed: sessionmaker[Session]
) -> Ward:
    app = app_for(engine, clock, tmp_path, redis_url=REDIS_URL, waiting_room_pow_wait_seconds=1)
    tick = Tick()
    room = room_of(prefix, tick, per_minute=60)
    app.state.waiting_room = room
    proof: ProofOfWork = app.state.proof_of_work
    app.state.proof_of_work = ProofOfWork(
        key=proof.key,
        redis=room.redis,
        room=room,
        max_number=2_000,
        wait_seconds=1,
        after_attempts=5,
        prefix=prefix,
    )
    return Ward(app, room, tick, committed)


def position(page: str) -> int:
    found = POSITION.search(page)
    assert found, page[:500]
    return int(found.group(1))


def test_the_waiting_page_keeps_ones_place_and_a_second_tab_shares_it(ward: Ward) -> None:
    with ward.client() as first, ward.client() as second:
        page = first.get("/")
        assert page.status_code == 200
        assert "順番待ち" in page.text
        assert re.search(r'<meta http-equiv="refresh" content="\d+;url=/">', page.text)
        mine = position(page.text)
        assert position(first.get("/").text) == mine  # a reload
        assert position(first.get("/book/pickup").text) == mine  # another tab, same cookies
        assert position(second.get("/?lang=en").text) == mine + 1
        assert "You are in line" in second.get("/?lang=en").text
        assert "대기 중입니다" in second.get("/?lang=ko").text
        ward.tick.now += 3
        assert "順番待ち" not in first.get("/").text  # let in: the start page
        assert "wr_pass" in first.cookies
        ward.tick.now -= 3  # the line stands still; the pass is enough
        assert "順番待ち" not in first.get("/book/pickup").text


def test_the_waiting_page_never_touches_postgresql(ward: Ward) -> None:
    def no_database(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the waiting page asked the database")

    ward.app.state.sessions = no_database
    ward.app.state.read_sessions = no_database
    with ward.client() as http:
        answer = http.get("/book/pickup/main")
    assert answer.status_code == 200
    assert position(answer.text) >= 1


def test_the_api_is_refused_without_a_pass(ward: Ward) -> None:
    slot_id = ward.slot()
    body = {"slot_id": slot_id, "party_size": 1}
    with ward.client() as http:
        refused = http.post("/api/v1/holds", json=body)
        assert refused.status_code == 503
        error = refused.json()["error"]
        assert error["code"] == "waiting_room"
        assert error["position"] >= 1
        assert 3 <= int(refused.headers["retry-after"]) <= 30
        assert ward.held(slot_id) == 0
        # The API's own other door is no way round: availability and direct bookings wait too.
        assert http.get("/api/v1/availability", params={"service": "pickup"}).status_code == 503
        assert http.post("/api/v1/bookings", json=body).status_code == 503
        ward.tick.now += error["wait_seconds"] + 1
        # Let in, it must still prove work while the line is in force.
        assert http.post("/api/v1/holds", json=body).status_code == 428
        payload = solved(http.get("/api/v1/challenge").json())
        made = http.post("/api/v1/holds", json=body, headers={"Altcha": payload})
        assert made.status_code == 201, made.text
        assert ward.held(slot_id) == 1
        # A solution is good once.
        again = http.post("/api/v1/holds", json=body, headers={"Altcha": payload})
        assert again.status_code == 428
    # Another client copying nothing but the solution has no pass: back of the line.
    with ward.client() as other:
        assert (
            other.post("/api/v1/holds", json=body, headers={"Altcha": payload}).status_code == 503
        )


def solved(challenge: dict[str, Any]) -> str:
    made = Challenge(
        challenge["algorithm"],
        challenge["challenge"],
        challenge["maxNumber"],
        challenge["salt"],
        challenge["signature"],
    )
    answer = solve_challenge(made)
    assert answer is not None
    return Payload(
        made.algorithm, made.challenge, answer.number, made.salt, made.signature
    ).to_base64()


def test_phone_line_console_static_and_health_never_wait(ward: Ward) -> None:
    with ward.client() as http:
        assert "順番待ち" in http.get("/").text
        assert http.get("/healthz").status_code == 200
        assert http.get("/static/site.css").status_code == 200
        assert http.get("/console/login").status_code == 200
        assert http.get("/privacy").status_code == 200
        # The phone line answers (a refusal of the unsigned webhook, not the waiting page).
        ivr = http.post("/ivr/voice")
        assert "順番待ち" not in ivr.text and ivr.status_code != 503


def test_a_line_redis_cannot_reach_lets_residents_through(
    engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    app = app_for(engine, clock, tmp_path, redis_url="redis://127.0.0.1:1/0")
    app.state.waiting_room.mode = "on"
    with TestClient(app) as http:
        answer = http.get("/")
    assert answer.status_code == 200
    assert "順番待ち" not in answer.text


def test_the_web_hold_asks_for_a_proof_and_takes_a_wait_without_javascript(ward: Ward) -> None:
    slot_id = ward.slot()
    ward.room.set_line(mode="off", per_minute=60)
    ward.room.set_line(mode="on", per_minute=60, start_at=ward.tick.now)  # in force, nobody waits
    with ward.client() as http:
        assert "順番待ち" in http.get("/").text  # in line, then let in two seconds on
        ward.tick.now += 2
        page = http.get("/book/application_help/main/2027-01-12")
        assert page.status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf
        form = {
            "csrf": csrf.group(1),
            "slot_id": str(slot_id),
            "party": "1",
            "day": "2027-01-12",
            "service": "application_help",
            "place": "main",
        }
        asked = http.post("/hold", data=form, follow_redirects=False)
        assert asked.status_code == 200
        assert "pow-form" in asked.text and ward.held(slot_id) == 0
        token = re.search(r'name="pow_wait" value="([^"]+)"', asked.text)
        assert token
        too_soon = http.post("/hold", data={**form, "pow_wait": token.group(1)})
        assert "pow-form" in too_soon.text and ward.held(slot_id) == 0
        time.sleep(1.1)
        held = http.post("/hold", data={**form, "pow_wait": token.group(1)}, follow_redirects=False)
        assert held.status_code == 303, held.text[:300]
        assert ward.held(slot_id) == 1
        # The same token again is no good: it was spent.
        spent = http.post("/hold", data={**form, "pow_wait": token.group(1)})
        assert "pow-form" in spent.text and ward.held(slot_id) == 1
        # With JavaScript: the page's challenge, solved, holds at once.
        challenge = re.search(r'data-challenge="([^"]+)"', spent.text)
        assert challenge
        payload = solved(json.loads(html.unescape(challenge.group(1))))
        fast = http.post("/hold", data={**form, "altcha": payload}, follow_redirects=False)
        assert fast.status_code == 303
        assert ward.held(slot_id) == 2


def test_an_address_past_the_threshold_must_prove_work(ward: Ward) -> None:
    ward.room.set_line(mode="off", per_minute=60)
    slot_id = ward.slot(seats=10)
    body = {"slot_id": slot_id, "party_size": 1}
    with ward.client() as http:
        answers = [http.post("/api/v1/holds", json=body).status_code for _ in range(7)]
    assert answers == [201] * 5 + [428] * 2
    assert ward.held(slot_id) == 5
