"""The waiting room and the proof of work in a real browser: the waiting page reloads itself
without JavaScript and lets the resident in when their turn comes; pressing a time while the line
is in force asks for a proof, solved by the page's script, or without it a short wait; the
managers' controls on the console. A server of this module's own, its line on real Redis under a
prefix of its own."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect
from redis import Redis

from booking import schedule
from booking.pages import waiting
from booking.proof_of_work import ProofOfWork
from booking.waiting_room import WaitingRoom, waiting_room
from config.app import create_app
from config.db import make_engine, make_sessionmaker
from config.migrate import upgrade
from config.sample import sample_ward
from config.settings import Settings
from tests.booking.test_waiting_room import REDIS_URL, Tick
from tests.conftest import FakeClock, make_context
from tests.e2e.conftest import (
    Accessibility,
    AssertAccessible,
    LiveServer,
    Shot,
    _new_page,
    _wait_healthy,
)
from tests.e2e.test_booking_pages import heading, navigate, press_time, times_path
from tests.e2e.test_console_pages import DESKTOP, make_person, sign_in
from tests.live import listening_socket, serving

DAY = date(2027, 1, 14)


@dataclass(frozen=True)
class LineServer:
    live: LiveServer
    app: FastAPI
    room: WaitingRoom
    tick: Tick

    def url(self, path: str) -> str:
        return self.live.url(path)

    def let_everyone_in(self) -> None:
        self.tick.now += 3600


@pytest.fixture(scope="module")
def line_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LineServer]:
    try:
        Redis.from_url(REDIS_URL).ping()
    except Exception as exc:
        pytest.skip(f"Redis not reachable: {exc}")
    data_dir: Path = tmp_path_factory.mktemp("line")
    url = f"sqlite:///{data_dir / 'madoguchi.db'}"
    upgrade(url)
    engine = make_engine(url)
    clock = FakeClock()
    sessions = make_sessionmaker(engine, make_context(clock))
    with sessions() as db:
        schedule.install_ward(db, sample_ward())
        schedule.extend_schedule(db)
        db.commit()
    settings = Settings(
        database_url=url,
        environment="test",
        data_dir=data_dir,
        data_keys=Fernet.generate_key().decode(),
        lookup_key=secrets.token_hex(16),
        twilio_auth_token="line" * 8,
        public_base_url="http://madoguchi.test",
        redis_url=REDIS_URL,
    )
    app = create_app(settings)
    app.state.sessions = sessions
    prefix = f"madoguchi:test-e2e-wr:{secrets.token_hex(4)}:"
    tick = Tick()
    room = waiting_room(REDIS_URL, mode="off", per_minute=60, prefix=prefix)
    room.clock = tick
    app.state.waiting_room = room
    proof: ProofOfWork = app.state.proof_of_work
    app.state.proof_of_work = ProofOfWork(
        key=proof.key,
        redis=room.redis,
        room=room,
        max_number=20_000,
        wait_seconds=2,
        after_attempts=5,
        prefix=prefix,
    )
    sock, base_url = listening_socket()
    try:
        with serving(app, sock, name="line-uvicorn"):
            _wait_healthy(base_url + "/healthz")
            live = LiveServer(base_url, clock, sessions, twilio=cast(Any, None))
            yield LineServer(live, app, room, tick)
    finally:
        for key in room.redis.scan_iter(match=prefix + "*"):
            room.redis.delete(key)
        engine.dispose()


def test_the_waiting_page_says_ones_place_and_the_wait(
    line_server: LineServer,
    page: Page,
    screenshot: Shot,
    accessibility: Accessibility,
    assert_accessible: AssertAccessible,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page.goto(line_server.url("/privacy"))  # the process has read the ward's name
    monkeypatch.setattr(waiting, "REFRESH_MOST", 600)  # no reload under the checks
    line_server.room.set_line(mode="on", per_minute=30)
    for n in range(40):  # others were here first
        line_server.room.enter_sync(f"earlier-{n}")
    page.goto(line_server.url("/"))
    expect(heading(page)).to_have_text("順番待ちをしています")
    expect(page.locator(".line-position")).to_have_text("41")
    expect(page.locator("main")).to_contain_text("約2分")
    screenshot(page, "waiting-room")
    # A page that reloads itself is what axe's meta-refresh rule flags (WCAG 2.2.1): the
    # resident can turn it off, and the page without it passes every check.
    assert [v["id"] for v in accessibility(page)] == ["meta-refresh"]
    navigate(page, page.get_by_role("link", name="自動更新を止める").click)
    expect(page.locator(".line-position")).to_have_text("41")
    assert page.locator('meta[http-equiv="refresh"]').count() == 0
    assert_accessible(page)
    navigate(page, page.get_by_role("link", name="今すぐ確認する").click)
    assert page.locator('meta[http-equiv="refresh"]').count() == 0  # still still
    navigate(page, page.get_by_role("link", name="自動更新に戻す").click)
    assert page.locator('meta[http-equiv="refresh"]').count() == 1
    line_server.room.set_line(mode="off", per_minute=30)


def test_without_javascript_the_waiting_page_reloads_itself_into_the_booking(
    line_server: LineServer, page_no_js: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = page_no_js
    monkeypatch.setattr(waiting, "REFRESH_MOST", 3)
    line_server.room.set_line(mode="on", per_minute=30)
    for n in range(10):
        line_server.room.enter_sync(f"before-{n}")
    page.goto(line_server.url("/"))
    expect(page.locator(".line-position")).to_have_text("11")
    page.reload()
    expect(page.locator(".line-position")).to_have_text("11")  # a reload keeps the place
    line_server.let_everyone_in()
    # Without a click or a script: the page's own refresh brings the start page.
    expect(heading(page)).not_to_have_text("順番待ちをしています", timeout=20_000)
    expect(page).to_have_url(line_server.url("/"))
    line_server.room.set_line(mode="off", per_minute=30)


def test_pressing_a_time_while_the_line_is_on_asks_for_a_proof(
    line_server: LineServer,
    page: Page,
    browser: Browser,
    external_requests: list[str],
    screenshot: Shot,
) -> None:
    line_server.room.set_line(mode="on", per_minute=600, start_at=line_server.tick.now)
    page.goto(line_server.url("/"))
    line_server.let_everyone_in()
    page.goto(line_server.url(times_path("pin_reset", "main", DAY)))
    # With JavaScript the check page solves its challenge and goes on by itself.
    press_time(page, "9:00")
    expect(heading(page)).to_have_text("お客様情報の入力", timeout=20_000)

    for plain in _new_page(browser, external_requests, java_script_enabled=False):
        plain.goto(line_server.url("/"))
        line_server.let_everyone_in()
        plain.goto(line_server.url(times_path("pin_reset", "main", DAY)))
        press_time(plain, "9:15")
        expect(heading(plain)).to_have_text("少々お待ちください")
        screenshot(plain, "proof-of-work-check")
        plain.wait_for_timeout(2_200)
        navigate(plain, plain.get_by_role("button", name="続ける").click)
        expect(heading(plain)).to_have_text("お客様情報の入力")
    line_server.room.set_line(mode="off", per_minute=600)


def test_managers_turn_the_line_on_for_a_release_time(
    line_server: LineServer, browser: Browser, external_requests: list[str], screenshot: Shot
) -> None:
    line_server.room.set_line(mode="auto", per_minute=300)
    for n in range(25):
        line_server.room.enter_sync(f"flood-{n}")
    # At the scale of a desk screen: the README shows it as it is.
    for desk in _new_page(browser, external_requests, **DESKTOP, device_scale_factor=1):
        sign_in(desk, line_server.live, make_person(line_server.live, "counter_manager"))
        desk.goto(line_server.url("/console/manage/waiting"))
        expect(heading(desk)).to_have_text("Web予約の待合室")
        desk.get_by_label("全員に列に並んでもらう（公開時刻の前から）").check()
        desk.get_by_label("入場の速さ（1分あたりの人数）").fill("600")
        desk.locator("#start").fill("2027-01-20T10:00")
        desk.get_by_role("button", name="変更する").click()
        expect(desk.get_by_role("status")).to_contain_text("1分あたり600人にしました")
        for n in range(12):
            line_server.room.enter_sync(f"early-{n}")
        desk.reload()
        expect(desk.locator("main")).to_contain_text("2027-01-20 10:00 から入場開始")
        screenshot(desk, "console-waiting-room")
    line_server.room.set_line(mode="off", per_minute=300)
