"""The waitlist's pages: a full day's times page asks to be told when seats free up; the offer's
page (the SMS's link) shows the offer on a GET and books only on its form's POST."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import date, time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from booking import schedule, service
from booking.models import Slot
from booking.service import ResidentInput
from tests.booking.test_pages import FORM, field
from tests.conftest import FakeClock, app_for

# A Saturday at a branch with no sessions of its own: only the one this test opens.
DAY = date(2027, 1, 23)
FULL = f"/book/pin_reset/tsunohazu/{DAY.isoformat()}"
# Each test's own hour of that day (the data is committed).
_hours = itertools.count(8)


@pytest.fixture
def browser(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(app_for(engine, clock, tmp_path)) as http:
        yield http


def sessions(browser: TestClient) -> sessionmaker[Session]:
    made: sessionmaker[Session] = browser.app.state.sessions  # type: ignore[attr-defined]
    return made


@pytest.fixture
def full_day(browser: TestClient) -> service.BookingView:
    """The day's one seat, booked."""
    hour = next(_hours)
    with sessions(browser)() as db:
        opened = schedule.open_extra_session(
            db,
            venue_id="tsunohazu",
            service_id="pin_reset",
            day=DAY,
            opens=time(hour),
            closes=time(hour, 30),
            slot_minutes=30,
            seats=1,
        )
        slot = db.execute(select(Slot.id).where(Slot.session_id == opened.id)).scalar_one()
        made = service.book(
            db,
            slot_id=slot,
            party=1,
            resident=ResidentInput("ウメ タロウ", "09011112222", date(1960, 1, 1)),
            channel="web",
        )
        db.commit()
    return made


def join(browser: TestClient, phone: str) -> str:
    """Ask on the full day's page; the URL of the resident's waitlist page."""
    times = browser.get(FULL)
    assert "空きが出たら知らせてほしい" in times.text
    joined = browser.post(
        "/waitlist",
        data={
            "csrf": field(times.text, "csrf"),
            "service": field(times.text, "service"),
            "place": field(times.text, "place"),
            "day": field(times.text, "day"),
            "party": field(times.text, "party"),
            "language": "ja",
            "phone": phone,
        },
        follow_redirects=False,
    )
    assert joined.status_code == 303, joined.text
    return str(joined.headers["location"])


def test_a_resident_waits_is_offered_a_seat_and_books_it_on_the_form(
    browser: TestClient, full_day: service.BookingView
) -> None:
    mine = join(browser, "080-2222-3333")
    assert re.fullmatch(r"/w/[0-9a-f]{32}", mine)
    waiting = browser.get(mine)
    assert "あなたの前に0人お待ちです。" in waiting.text
    token = mine.removeprefix("/w/")

    with sessions(browser)() as db:
        service.cancel_booking(db, booking_id=full_day.id)
        db.commit()

    offer = browser.get(mine)  # what a link preview or a scanner sees: nothing changes
    assert offer.status_code == 200
    assert f'action="{mine}"' in offer.text
    assert 'value="080-2222-3333"' in offer.text  # their number, as they would write it
    with sessions(browser)() as db:
        assert service.waitlist_entry(db, token=token).status == "offered"

    form = {**FORM, "phone": "080-2222-3333", "csrf": field(offer.text, "csrf")}
    booked = browser.post(mine, data=form, follow_redirects=False)
    assert booked.status_code == 303, booked.text
    assert booked.headers["location"] == "/booking/done"
    with sessions(browser)() as db:
        entry = service.waitlist_entry(db, token=token)
        assert entry.status == "booked" and entry.booking_id is not None
        assert service.get_booking(db, booking_id=entry.booking_id).slot_id == full_day.slot_id
    again = browser.post(mine, data=form, follow_redirects=False)  # a second press
    assert again.headers.get("location") == "/booking/done"


def test_a_form_without_its_token_changes_nothing(
    browser: TestClient, full_day: service.BookingView
) -> None:
    mine = join(browser, "080-4444-5555")
    refused = browser.post(mine + "/leave", data={})
    assert refused.status_code == 403
    page = browser.get(mine)
    left = browser.post(mine + "/leave", data={"csrf": field(page.text, "csrf")})
    assert "キャンセル待ちの登録を取り消しました。" in left.text


def test_a_day_with_free_seats_asks_to_book_instead(browser: TestClient) -> None:
    times = browser.get("/book/pickup/main/2027-01-13")
    assert "空きが出たら知らせてほしい" not in times.text
    asked = browser.post(
        "/waitlist",
        data={
            "csrf": field(times.text, "csrf"),
            "service": "pickup",
            "place": "main",
            "day": "2027-01-13",
            "party": "1",
            "phone": "080-6666-7777",
        },
    )
    assert asked.status_code == 409
    assert "まだ空きがあります" in asked.text
