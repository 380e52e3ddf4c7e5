"""An opening day on every channel: a day not released yet is refused on the web, the API, the
phone line and the console alike, and each says when it opens; the start page announces it;
the managers set it on their page (audited); a resident's own cancellations are limited on the
web, the API and the phone line, an agent's are not; and a GET changes no booking."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from agent_console.models import AuditEvent
from booking import service
from booking.context import TOKYO
from booking.errors import BookingError
from booking.models import Slot
from booking.service import ResidentInput
from config.db import make_sessionmaker
from ivr.caller import PhoneCall
from reminders.texts import texts
from tests.agent_console.test_console import Console, console, csrf_of  # noqa: F401 (fixture)
from tests.conftest import FakeClock, SlotMaker, app_for, make_context
from tests.ivr.conftest import PUBLIC, TOKEN, new_mobile

API = "/api/v1"
# The days released later: the last days of the window, PIN resets, every venue.
FIRST, LAST = date(2027, 1, 25), date(2027, 1, 29)
OPENS_JA = "12月17日(木) 10:00"  # two days after the tests' clock


@dataclass(frozen=True)
class Unreleased:
    slot_id: int  # a PIN reset at the main office on 26 January
    release_id: int


@pytest.fixture
def unreleased(committed: sessionmaker[Session], clock: FakeClock) -> Iterator[Unreleased]:
    with committed() as db:
        made = service.add_release(
            db,
            first_day=FIRST,
            last_day=LAST,
            opens_at=clock.now + timedelta(days=2),
            service_id="pin_reset",
        )
        slot = service.availability(
            db, service_id="pin_reset", venue_id="main", start=date(2027, 1, 26), limit=1
        )[0]
        db.commit()
    try:
        yield Unreleased(slot.id, made.id)
    finally:
        with committed() as db:  # the days are open again for the tests after this one
            service.remove_release(db, release_id=made.id)
            db.commit()


def seats(sessions: sessionmaker[Session], slot_id: int) -> tuple[int, int]:
    with sessions() as db:
        row = db.execute(select(Slot.booked, Slot.held).where(Slot.id == slot_id)).one()
    return int(row[0]), int(row[1])


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def browser(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[TestClient]:
    app = app_for(engine, clock, tmp_path, twilio_auth_token=TOKEN, public_base_url=PUBLIC)
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} in the page"
    return found.group(1)


# --- Staged release on every channel ------------------------------------------------------------


def test_the_start_page_announces_the_days_not_open_yet(
    browser: TestClient, unreleased: Unreleased
) -> None:
    ja = text_of(browser.get("/").text)
    assert "受付開始のお知らせ" in ja
    assert f"1月25日(月)〜1月29日(金)のご予約は、{OPENS_JA} 受付開始です。" in ja
    assert "暗証番号" in ja.split("受付開始のお知らせ")[1]  # the service it is for
    en = text_of(browser.get("/?lang=en").text)
    assert "Bookings for Mon 25 Jan to Fri 29 Jan open Thu 17 Dec 10:00 AM." in en
    ko = text_of(browser.get("/?lang=ko").text)
    assert "12월 17일 (목) 10:00에 접수를 시작합니다" in ko


def test_the_web_refuses_the_day_and_says_when_it_opens(
    browser: TestClient, unreleased: Unreleased, committed: sessionmaker[Session]
) -> None:
    times = browser.get("/book/pin_reset/main/2027-01-26")
    assert times.status_code == 200
    held = browser.post(
        "/hold",
        data={
            "csrf": field(times.text, "csrf"),
            "slot_id": str(unreleased.slot_id),
            "party": "1",
            "service": "pin_reset",
            "place": "main",
            "day": "2027-01-26",
        },
        follow_redirects=False,
    )
    assert held.status_code == 409
    assert f"受付開始は{OPENS_JA}です" in text_of(held.text)
    assert seats(committed, unreleased.slot_id) == (0, 0)


def test_the_web_form_tells_a_resident_outside_the_early_group_when_their_day_opens(
    browser: TestClient, committed: sessionmaker[Session], clock: FakeClock
) -> None:
    day = date(2027, 1, 22)
    with committed() as db:
        early = service.add_release(
            db,
            first_day=day,
            last_day=day,
            opens_at=clock.now - timedelta(hours=1),
            service_id="pin_reset",
            born_to=1956,
        )
        later = service.add_release(
            db, first_day=day, last_day=day, opens_at=clock.now + timedelta(days=2)
        )
        db.commit()
    try:
        times = browser.get("/book/pin_reset/main/2027-01-22")
        held = browser.post(
            "/hold",
            data={
                "csrf": field(times.text, "csrf"),
                "slot_id": field(times.text, "slot_id"),
                "party": "1",
                "service": "pin_reset",
                "place": "main",
                "day": "2027-01-22",
            },
            follow_redirects=False,
        )
        assert held.status_code == 303  # the day is open to someone: the time is kept
        where = held.headers["location"]
        details = browser.get(where)
        form = {
            "csrf": field(details.text, "csrf"),
            "party": field(details.text, "party"),
            "service": field(details.text, "service"),
            "name_kana": "わかい はなこ",
            "birth_year": "1990",
            "birth_month": "4",
            "birth_day": "1",
            "phone": new_mobile(),
            "language": "ja",
        }
        refused = browser.post(where, data=form, follow_redirects=False)
        assert refused.status_code == 409
        assert f"受付開始は{OPENS_JA}です" in text_of(refused.text)
        form |= {"birth_year": "1950", "csrf": field(refused.text, "csrf")}
        booked = browser.post(where, data=form, follow_redirects=False)
        assert booked.status_code == 303, text_of(booked.text)
    finally:
        with committed() as db:
            service.remove_release(db, release_id=early.id)
            service.remove_release(db, release_id=later.id)
            db.commit()


def test_the_api_refuses_holds_and_bookings_before_the_release(
    browser: TestClient, unreleased: Unreleased, committed: sessionmaker[Session]
) -> None:
    hold = browser.post(f"{API}/holds", json={"slot_id": unreleased.slot_id, "party_size": 1})
    assert hold.status_code == 409
    assert hold.json()["error"]["code"] == "not_yet_open"
    assert OPENS_JA in hold.json()["error"]["message"]["ja"]
    person = {"name_kana": "やまだ たろう", "phone": new_mobile(), "birth_date": "1950-04-01"}
    made = browser.post(
        f"{API}/bookings", json={"slot_id": unreleased.slot_id, "party_size": 1, **person}
    )
    assert made.status_code == 409
    assert made.json()["error"]["code"] == "not_yet_open"
    assert "Thu 17 Dec 10:00" in made.json()["error"]["message"]["en"]
    assert seats(committed, unreleased.slot_id) == (0, 0)


def test_the_phone_line_says_when_the_days_asked_for_open(
    browser: TestClient, unreleased: Unreleased, committed: sessionmaker[Session]
) -> None:
    call = PhoneCall(browser, public_base_url=PUBLIC, auth_token=TOKEN, from_number=new_mobile())
    call.dial()
    for key in ("1", "3", "1", "1#"):  # a booking, PIN reset, one person, the main office
        call.press(key)
    call.press("5")  # a date of my own
    call.press("0126#")
    said = " ".join(call.turns[-1])
    assert f"受付開始は{OPENS_JA}です" in said, said
    assert seats(committed, unreleased.slot_id) == (0, 0)
    call.hang_up()


def test_an_agent_cannot_hold_the_day_for_a_caller_either(
    console: Console,  # noqa: F811 (the fixture)
    unreleased: Unreleased,
) -> None:
    agent, _ = console.signed_in("agent")
    with TestClient(console.app) as http:
        call = PhoneCall(http, public_base_url=PUBLIC, auth_token=TOKEN, from_number=new_mobile())
        call.dial()
        call.press("0")
    home = agent.get("/console/")
    agent.post(f"/console/calls/{call.call_sid}/answer", data={"csrf": csrf_of(home.text)})
    screen = agent.get(f"/console/calls/{call.call_sid}")
    held = agent.post(
        f"/console/calls/{call.call_sid}/book/hold",
        data={"csrf": csrf_of(screen.text), "slot_id": str(unreleased.slot_id), "party": "1"},
    )
    assert f"受付開始は{OPENS_JA}です" in text_of(held.text)
    with console.app_sessions() as db:
        direct = ResidentInput(name_kana="ダイリ", phone=new_mobile(), birth_date=date(1960, 1, 1))
        with pytest.raises(BookingError) as refused:
            service.book(db, slot_id=unreleased.slot_id, party=1, resident=direct, channel="agent")
        assert refused.value.code == "not_yet_open"


def test_managers_set_and_remove_a_release_and_each_change_is_audited(
    console: Console,  # noqa: F811 (the fixture)
) -> None:
    agent, _ = console.signed_in("agent")
    assert agent.get("/console/manage/releases").status_code == 403
    manager, login = console.signed_in("counter_manager")
    page = manager.get("/console/manage/releases")
    assert page.status_code == 200 and "段階的公開" in page.text
    form = {
        "first": "2027-01-20",
        "last": "2027-01-22",
        "opens_day": "2026-12-16",
        "opens_time": "09:00",
        "venue": "yotsuya",
        "service": "",
        "born_from": "",
        "born_to": "1956",
    }
    refused = manager.post("/console/manage/releases", data={**form, "csrf": "forged"})
    assert refused.status_code == 403
    added = manager.post("/console/manage/releases", data={**form, "csrf": csrf_of(page.text)})
    assert "受付開始を 12/16 09:00 に設定しました" in added.text
    assert "1956年以前に生まれた方" in text_of(added.text) and "公開前" in added.text
    with console.app_sessions() as db:
        [made] = [
            r for r in service.list_releases(db) if r.venue_id == "yotsuya" and r.born_to == 1956
        ]
        assert (made.first_day, made.last_day) == (date(2027, 1, 20), date(2027, 1, 22))
        assert made.opens_at.astimezone(TOKYO).hour == 9
    wrong = manager.post(
        "/console/manage/releases",
        data={**form, "last": "2027-01-19", "csrf": csrf_of(page.text)},
    )
    assert "終わりの日が、始まりの日より前" in wrong.text
    removed = manager.post(
        f"/console/manage/releases/{made.id}/remove", data={"csrf": csrf_of(page.text)}
    )
    assert "削除しました" in removed.text
    with console.app_sessions() as db:
        assert made.id not in {r.id for r in service.list_releases(db)}
        actions = db.execute(
            select(AuditEvent.action, AuditEvent.detail)
            .where(AuditEvent.subject_kind == "release", AuditEvent.subject_id == str(made.id))
            .order_by(AuditEvent.id)
        ).all()
    assert [a for a, _ in actions] == ["manage.release.add", "manage.release.remove"]
    assert "venue=yotsuya" in actions[0][1] and "born -1956" in actions[0][1]
    assert login


# --- A resident's own cancellations -------------------------------------------------------------


@pytest.fixture
def strict(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[TestClient]:
    """The app with a limit of one cancellation a month per phone number."""
    app = app_for(engine, clock, tmp_path, twilio_auth_token=TOKEN, public_base_url=PUBLIC)
    app.state.sessions = make_sessionmaker(engine, make_context(clock, max_cancels_per_month=1))
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http


def booked(engine: Engine, clock: FakeClock, phone: str, count: int) -> list[str]:
    sessions = make_sessionmaker(engine, make_context(clock))
    resident = ResidentInput(name_kana="ゲンド ハナコ", phone=phone, birth_date=date(1970, 7, 7))
    with sessions() as db:
        codes = [
            service.book(
                db, slot_id=SlotMaker(db)(2), party=1, resident=resident, channel="web"
            ).code
            for _ in range(count)
        ]
        db.commit()
    return codes


def manage(http: TestClient, code: str, phone: str) -> None:
    form = http.get("/manage")
    found = http.post(
        "/manage",
        data={"csrf": field(form.text, "csrf"), "code": code, "phone": phone},
        follow_redirects=False,
    )
    assert found.status_code == 303, found.text


def web_cancel(http: TestClient, code: str, phone: str) -> str:
    manage(http, code, phone)
    confirm = http.get("/manage/cancel")
    assert 'method="post"' in confirm.text
    done = http.post("/manage/cancel", data={"csrf": field(confirm.text, "csrf")})
    return text_of(done.text)


def status_of(engine: Engine, clock: FakeClock, code: str) -> str:
    with make_sessionmaker(engine, make_context(clock))() as db:
        return service.booking_by_code(db, code=code).status


def test_the_web_and_the_api_stop_a_number_at_its_monthly_cancellations(
    strict: TestClient, engine: Engine, clock: FakeClock
) -> None:
    phone = new_mobile()
    first, second, third = booked(engine, clock, phone, 3)
    web_cancel(strict, first, phone)
    assert status_of(engine, clock, first) == "cancelled"
    said = web_cancel(strict, second, phone)
    assert "今月の取り消しは1回までです" in said
    assert status_of(engine, clock, second) == "booked"
    api = strict.post(f"{API}/bookings/{third}/cancel", json={"phone": phone})
    assert api.status_code == 429
    assert api.json()["error"]["code"] == "too_many_cancels"
    assert status_of(engine, clock, third) == "booked"


def test_the_phone_line_stops_a_number_at_its_monthly_cancellations(
    strict: TestClient, engine: Engine, clock: FakeClock
) -> None:
    phone = new_mobile()
    first, second = booked(engine, clock, phone, 2)
    for code, cancelled in ((first, True), (second, False)):
        call = PhoneCall(strict, public_base_url=PUBLIC, auth_token=TOKEN, from_number=phone)
        call.dial()
        call.press("2")  # a booking of mine
        call.press(code)  # found by the caller ID
        call.press("2")  # cancel it
        call.press("1")  # yes
        said = " ".join(call.turns[-1])
        assert ("今月の取り消しは1回までです" in said) is not cancelled, said
        call.hang_up()
        assert status_of(engine, clock, code) == ("cancelled" if cancelled else "booked")


# --- A GET changes no booking -------------------------------------------------------------------


def test_no_get_changes_a_booking(browser: TestClient, engine: Engine, clock: FakeClock) -> None:
    """The pages a text or an e-mail may link to show a page, and act only on a POST. Today's
    texts carry no link at all (only the call center's number); should one come, it must lead
    to pages like these."""
    assert not any("://" in text for kind in texts().values() for text in kind.values())
    phone = new_mobile()
    [code] = booked(engine, clock, phone, 1)
    manage(browser, code, phone)
    for url in (
        "/manage/cancel",
        "/manage/cancel?csrf=x",
        "/manage/move",
        "/manage/booking",
        "/manage/messages/stop",
        "/hold",
    ):
        page = browser.get(url)
        assert page.status_code in (200, 303, 404, 405), url
        assert status_of(engine, clock, code) == "booked", url
    confirm = browser.get("/manage/cancel")
    assert re.search(r'<form method="post" action="/manage/cancel"', confirm.text)
