"""A resident stops their own reminders from the booking they manage on the web (after its code
and second factor): for the booking, or for every booking of their number."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from booking import service as booking
from config.db import make_sessionmaker
from reminders import service as reminders
from tests.booking.test_pages import field
from tests.conftest import FakeClock, SlotMaker, app_for, make_context
from tests.ivr.conftest import new_mobile
from tests.reminders.conftest import RULES

_addresses = itertools.count(1)


@pytest.fixture
def browser(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[TestClient]:
    # An address of its own: booking lookups are limited per address, and other tests look up.
    n = next(_addresses)
    address = (f"10.251.{n >> 8 & 255}.{n & 255}", 50000)
    with TestClient(app_for(engine, clock, tmp_path), client=address) as http:
        yield http


def two_bookings(engine: Engine, clock: FakeClock) -> tuple[booking.BookingView, ...]:
    phone = new_mobile()
    with make_sessionmaker(engine, make_context(clock))() as db:
        made = tuple(
            booking.book(
                db,
                slot_id=SlotMaker(db)(2),
                party=1,
                resident=booking.ResidentInput("テイシ ハナコ", phone, date(1966, 6, 6)),
                channel="web",
            )
            for _ in range(2)
        )
        reminders.plan_from_outbox(db, RULES, limit=100_000)
        db.commit()
    return made


def manage(browser: TestClient, made: booking.BookingView) -> str:
    """Prove the booking (code and phone): the managed page's HTML."""
    start = browser.get("/manage")
    national = "0" + (made.phone or "")[3:]
    browser.post(
        "/manage", data={"csrf": field(start.text, "csrf"), "code": made.code, "phone": national}
    )
    shown: str = browser.get("/manage/booking").text
    return shown


def statuses(engine: Engine, clock: FakeClock, booking_id: int) -> set[str]:
    with make_sessionmaker(engine, make_context(clock))() as db:
        return {m.status for m in reminders.messages_for(db, booking_id=booking_id)}


def test_a_resident_stops_this_bookings_messages(
    browser: TestClient, engine: Engine, clock: FakeClock
) -> None:
    first, second = two_bookings(engine, clock)
    page = manage(browser, first)
    assert "お知らせを停止する" in page
    stopped = browser.post("/manage/messages/stop", data={"csrf": field(page, "csrf")})
    assert "お知らせを停止しました" in stopped.text
    assert statuses(engine, clock, first.id) == {"dropped"}
    assert "scheduled" in statuses(engine, clock, second.id)  # the other booking is untouched
    with make_sessionmaker(engine, make_context(clock))() as db:
        assert reminders.opted_out(db, booking_id=first.id)
        assert not reminders.opted_out(db, booking_id=second.id)


def test_a_resident_stops_every_message_to_their_number(
    browser: TestClient, engine: Engine, clock: FakeClock
) -> None:
    first, second = two_bookings(engine, clock)
    page = manage(browser, first)
    browser.post("/manage/messages/stop", data={"csrf": field(page, "csrf"), "scope": "number"})
    assert statuses(engine, clock, second.id) == {"dropped"}


def test_stopping_needs_the_proved_booking_and_the_form(
    browser: TestClient, engine: Engine, clock: FakeClock
) -> None:
    first, _ = two_bookings(engine, clock)
    refused = browser.post("/manage/messages/stop", data={"csrf": "x"}, follow_redirects=False)
    assert refused.headers["location"] == "/manage"  # no booking proved in this browser
    manage(browser, first)
    forged = browser.post("/manage/messages/stop", data={"csrf": "x"}, follow_redirects=False)
    assert forged.headers["location"] == "/manage"
    assert "scheduled" in statuses(engine, clock, first.id)
