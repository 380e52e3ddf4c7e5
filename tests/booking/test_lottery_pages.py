"""The lottery on the resident pages: the form in every language, an application with its
number, mistakes shown with what was typed kept, one application per notice number; the
draw's record published without personal data."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from booking import lottery
from tests.booking.test_lottery import close, new_lottery, notice
from tests.booking.test_pages import text_of
from tests.conftest import FakeClock, SlotMaker, app_for


@dataclass
class Site:
    browser: TestClient
    sessions: sessionmaker[Session]


@pytest.fixture
def site(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[Site]:
    app = app_for(engine, clock, tmp_path)
    with TestClient(app) as http:
        yield Site(http, app.state.sessions)


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_a_household_applies_on_the_web_and_the_record_is_published(
    site: Site, clock: FakeClock
) -> None:
    browser, sessions = site.browser, site.sessions
    with sessions() as db:
        made = new_lottery(db, clock, [SlotMaker(db)(2), SlotMaker(db)(2)])
        db.commit()
    listed = browser.get("/lottery")
    assert f'href="/lottery/{made.id}"' in listed.text
    for language, words in (
        ("ja", "抽選に申し込む"),
        ("en", "Apply for the lottery"),
        ("ko", "추첨 신청하기"),
    ):
        assert words in text_of(browser.get(f"/lottery/{made.id}?lang={language}").text)
    form = browser.get(f"/lottery/{made.id}?lang=ja")
    first, second = made.slots[0].id, made.slots[1].id
    numbers = [notice(), notice()]
    filled = {
        "csrf": csrf(form.text),
        "party": "2",
        "notice_0": numbers[0],
        "notice_1": numbers[1],
        "preference_0": str(second),
        "preference_1": str(first),
        "preference_2": "",
        "name_kana": "ウェブ ハナコ",
        "birth_date": "1975-06-01",
        "phone": "090-4444-5555",
        "language": "en",
    }
    # A mistake comes back with what was typed kept.
    wrong = browser.post(f"/lottery/{made.id}", data=filled | {"phone": "12"})
    assert wrong.status_code == 422
    assert "電話番号が正しくありません" in text_of(wrong.text) and numbers[0] in wrong.text
    done = browser.post(f"/lottery/{made.id}", data=filled | {"csrf": csrf(wrong.text)})
    assert done.status_code == 200, text_of(done.text)
    number = re.search(r'<p class="code">(\d+)</p>', done.text)
    assert number and "申込番号" in done.text
    with sessions() as db:
        [application] = lottery.applications_of(db, lottery_id=made.id)
    assert application.id == int(number.group(1))
    assert (application.channel, application.preferences) == ("web", [second, first])
    # The same person again, in another household: refused.
    again = browser.post(
        f"/lottery/{made.id}",
        data=filled | {"party": "1", "notice_0": numbers[1], "notice_1": ""},
    )
    assert again.status_code == 409
    assert "すでに申し込まれています" in text_of(again.text)
    # No record before the draw; after it, one anyone can check, with nothing personal.
    assert browser.get(f"/lottery/{made.id}/record.json").status_code == 409
    clock.set(made.draw_at)
    with sessions() as db:
        assert lottery.run_draw(db, lottery_id=made.id) is not None
        db.commit()
    published = browser.get(f"/lottery/{made.id}/record.json")
    assert published.status_code == 200
    record = json.loads(published.text)
    assert lottery.verify(record)
    assert record["results"] == [[application.id, second]]
    assert "4444" not in published.text and numbers[0] not in published.text
    assert "ウェブ" not in published.text
    assert f'href="/lottery/{made.id}/record.json"' in browser.get("/lottery").text


def test_a_form_from_elsewhere_is_refused(site: Site, clock: FakeClock) -> None:
    browser, sessions = site.browser, site.sessions
    with sessions() as db:
        made = new_lottery(db, clock, [SlotMaker(db)(2)])
        db.commit()
    forged = browser.post(f"/lottery/{made.id}", data={"csrf": "x", "party": "1"})
    assert forged.status_code == 403
    with sessions() as db:
        assert lottery.applications_of(db, lottery_id=made.id) == []
    close(sessions, clock, made)


def test_the_api_refuses_a_lottery_slot_with_its_reason(site: Site, clock: FakeClock) -> None:
    browser, sessions = site.browser, site.sessions
    with sessions() as db:
        made = new_lottery(db, clock, [SlotMaker(db)(2)])
        db.commit()
    slot = made.slots[0].id
    person = {"name_kana": "ヤマダ タロウ", "phone": "09012345678", "birth_date": "1950-04-01"}
    asked = (
        ("/api/v1/bookings", {"slot_id": slot, "party_size": 1} | person),
        ("/api/v1/holds", {"slot_id": slot, "party_size": 1}),
    )
    for path, body in asked:
        answer = browser.post(path, json=body)
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["code"] == "slot_in_lottery"
    close(sessions, clock, made)
