"""A booked resident's place in the counter's queue: the link appears on their booking's page
once they checked in, and opens the same status page a walk-in's ticket links to."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from booking import service
from booking.context import TOKYO
from config.db import make_sessionmaker
from tests.booking.test_pages import book_through_pages, field
from tests.conftest import FakeClock, app_for, make_context


@pytest.fixture
def browser(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[TestClient]:
    """A resident's browser at an address of its own: the lookups other tests made from the
    test client's address count towards the same attempt limit in the shared database."""
    with TestClient(app_for(engine, clock, tmp_path), client=("192.0.2.47", 50000)) as http:
        yield http


def test_the_booking_page_links_to_the_queue_once_checked_in(
    browser: TestClient,
    engine: Engine,
    clock: FakeClock,
) -> None:
    code = book_through_pages(
        browser, "/book/cert_renewal/kashiwagi/2027-01-21?party=1", "07011113333"
    )
    start = browser.get("/manage")
    found = browser.post(
        "/manage",
        data={
            "csrf": field(start.text, "csrf"),
            "code": code,
            "birth_year": "1950",
            "birth_month": "4",
            "birth_day": "1",
        },
        follow_redirects=False,
    )
    assert found.headers.get("location") == "/manage/booking", found.text[-1500:]
    assert "/queue/" not in browser.get("/manage/booking").text  # not checked in yet
    sessions = make_sessionmaker(engine, make_context(clock))
    with sessions() as db:
        made = service.booking_by_code(db, code=code)
        clock.set(made.starts_at.astimezone(TOKYO) - timedelta(minutes=5))
        service.check_in(db, code=code, venue_id=made.venue_id)
        db.commit()
    page = browser.get("/manage/booking")
    link = re.search(r'href="(/queue/b\d+-[0-9a-f]{24})"', page.text)
    assert link is not None and "窓口の順番を見る" in page.text
    status = browser.get(link.group(1))
    assert status.status_code == 200
    assert "前に待っている方" in status.text and "整理券" not in status.text
    with sessions() as db:
        service.set_status(db, booking_id=made.id, status="completed")
        db.commit()
    assert "/queue/" not in browser.get("/manage/booking").text
    assert "お手続きは終わりました" in browser.get(link.group(1)).text


def test_the_queue_page_in_chinese_and_easy_japanese(
    browser: TestClient,
    engine: Engine,
    clock: FakeClock,
) -> None:
    code = book_through_pages(
        browser, "/book/cert_renewal/kashiwagi/2027-01-21?party=1", "07011114444"
    )
    sessions = make_sessionmaker(engine, make_context(clock))
    with sessions() as db:
        made = service.booking_by_code(db, code=code)
        clock.set(made.starts_at.astimezone(TOKYO) - timedelta(minutes=5))
        service.check_in(db, code=code, venue_id=made.venue_id)
        place = service.booking_queue_token(db, booking_id=made.id)
        db.commit()
    chinese = browser.get(f"/queue/{place}?lang=zh")
    assert chinese.status_code == 200
    assert '<html lang="zh-Hans">' in chinese.text
    assert "窗口排队顺序" in chinese.text and "在您前面等候的人" in chinese.text
    easy = browser.get(f"/queue/{place}?lang=easy").text
    assert "まどぐちの じゅんばん" in easy and "あなたの 前に 待っている 人" in easy
