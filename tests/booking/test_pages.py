"""The resident pages (server-rendered): month marks, language switch, errors as pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from booking import schedule, service
from booking.errors import BookingError
from booking.service import ResidentInput
from config.db import make_sessionmaker
from tests.conftest import FakeClock, app_for, make_context

PERSON = ResidentInput(name_kana="テスト", phone="09012345678", birth_date=date(1960, 1, 1))
POPUP = {
    "services": [],
    "venues": [
        {
            "id": "popup_mall",
            "name_ja": "出張会場 ショッピングモール",
            "name_en": "Pop-up venue, shopping mall",
            "kind": "popup",
            "address_ja": "新宿区西新宿1-1",
            "address_en": "1-1 Nishi-Shinjuku",
            "services": ["application_help"],
        }
    ],
    "weekly_templates": [],
}


@pytest.fixture
def popup(db: Session) -> int:
    """A pop-up venue open one day (2027-01-14) with one slot of 5 seats."""
    schedule.install_ward(db, POPUP)
    session = schedule.open_extra_session(
        db,
        venue_id="popup_mall",
        service_id="application_help",
        day=date(2027, 1, 14),
        opens=time(10),
        closes=time(11),
        slot_minutes=60,
        seats=5,
        kind="popup",
    )
    return service.availability(
        db, service_id="application_help", venue_id="popup_mall", start=session.day, end=session.day
    )[0].id


def marks(db: Session, party: int = 1) -> dict[date, str]:
    found = service.month_marks(
        db,
        service_id="application_help",
        venue_id="popup_mall",
        month=date(2027, 1, 1),
        party=party,
    )
    return {m.day: m.mark for m in found}


def test_month_marks_follow_the_seats(db: Session, popup: int) -> None:
    day = date(2027, 1, 14)
    shown = marks(db)
    assert len(shown) == 31
    assert shown[day] == "open"
    assert {m for d, m in shown.items() if d != day} == {"closed"}
    service.book(db, slot_id=popup, party=4, resident=PERSON, channel="web")
    assert marks(db)[day] == "few"  # 1 of 5 seats left
    assert marks(db, party=2)[day] == "full"  # a pair no longer fits
    service.book(db, slot_id=popup, party=1, resident=PERSON, channel="web")
    assert marks(db)[day] == "full"


def test_month_marks_count_live_holds_only(db: Session, popup: int, clock: FakeClock) -> None:
    service.create_hold(db, slot_id=popup, seats=5, channel="web")
    assert marks(db)[date(2027, 1, 14)] == "full"
    clock.advance(minutes=11)
    assert marks(db)[date(2027, 1, 14)] == "open"


def test_month_marks_agree_with_availability(db: Session) -> None:
    month = service.month_marks(db, service_id="pickup", venue_id="main", month=date(2027, 1, 1))
    for mark in month:
        free = service.availability(
            db, service_id="pickup", venue_id="main", start=mark.day, end=mark.day, limit=500
        )
        assert (mark.mark in ("open", "few")) == bool(free), mark
        assert mark.free == sum(s.remaining for s in free)
    closed = {m.day for m in month if m.mark == "closed"}
    assert date(2027, 1, 1) in closed  # year-end
    assert date(2027, 1, 11) in closed  # 成人の日
    assert date(2027, 1, 10) not in closed  # 2nd Sunday: holiday session at the main office


def test_an_unknown_venue_is_refused(db: Session) -> None:
    with pytest.raises(BookingError) as refused:
        service.month_marks(db, service_id="pickup", venue_id="nowhere", month=date(2027, 1, 1))
    assert refused.value.code == "unknown_venue"


@pytest.fixture
def browser(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(app_for(engine, clock, tmp_path)) as http:
        yield http


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_start_page_in_japanese_then_english(browser: TestClient) -> None:
    first = browser.get("/")
    assert first.status_code == 200
    assert '<html lang="ja">' in first.text
    shown = text_of(first.text)
    assert "マイナンバーカードの受け取り（交付）" in shown
    assert "交付通知書（はがき）" in shown
    english = browser.get("/?lang=en")
    assert '<html lang="en">' in english.text
    assert "Card pickup" in text_of(english.text)
    assert english.cookies.get("lang") == "en" or browser.cookies.get("lang") == "en"
    # The choice is remembered on the next page without ?lang=
    assert '<html lang="en">' in browser.get("/book/pickup").text
    assert '<html lang="ja">' in browser.get("/book/pickup?lang=ja").text


def test_calendar_page_marks_days(browser: TestClient) -> None:
    page = browser.get("/book/pickup/main?month=2027-01&party=2")
    assert page.status_code == 200
    shown = text_of(page.text)
    assert "2027年1月" in shown
    # Bookable days link to their times; closed days do not.
    assert 'href="/book/pickup/main/2027-01-12?party=2"' in page.text
    assert "/book/pickup/main/2027-01-11?" not in page.text
    assert "/book/pickup/main/2027-01-01?" not in page.text
    for label in ("空きあり", "受付なし"):
        assert label in page.text


def test_times_page_lists_free_times(browser: TestClient) -> None:
    page = browser.get("/book/pickup/any/2027-01-12?party=1")
    assert page.status_code == 200
    shown = text_of(page.text)
    assert "2027年1月12日(火)" in shown
    assert "8:30–8:45" in shown
    assert "残り6席" in shown
    assert "四谷特別出張所" in shown  # "anywhere" names each time's venue
    assert page.text.count('action="/hold"') == 1  # one form, a button per time
    assert page.text.count('<button type="submit" class="time" name="slot_id"') >= 10


def test_unknown_pages_are_friendly(browser: TestClient) -> None:
    for url in ("/book/nothing", "/book/pickup/nowhere", "/book/nothing/any/2027-01-12"):
        page = browser.get(url)
        assert page.status_code == 404, url
        assert "申し訳ありません" in page.text
        assert "<html" in page.text


def test_static_styles_are_served(browser: TestClient) -> None:
    css = browser.get("/static/site.css")
    assert css.status_code == 200
    assert "calendar" in css.text


# --- The booking flow ---------------------------------------------------------------------

FORM = {
    "name_kana": "やまだ はなこ",
    "birth_year": "1950",
    "birth_month": "4",
    "birth_day": "1",
    "phone": "090-1234-5678",
    "language": "ja",
}


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} in the page"
    return found.group(1)


def hold_first_time(browser: TestClient, url: str) -> tuple[str, str]:
    """Open a day's times, press the first one: (the details page URL, its HTML)."""
    times = browser.get(url)
    assert times.status_code == 200
    party = re.search(r"party=(\d+)", url)
    held = browser.post(
        "/hold",
        data={
            "csrf": field(times.text, "csrf"),
            "slot_id": field(times.text, "slot_id"),
            "party": party.group(1) if party else "1",
            "service": field(times.text, "service"),
            "place": field(times.text, "place"),
            "day": field(times.text, "day"),
        },
        follow_redirects=False,
    )
    assert held.status_code == 303, held.text
    details = browser.get(held.headers["location"])
    assert details.status_code == 200
    return held.headers["location"], details.text


def test_a_family_books_a_pickup(browser: TestClient) -> None:
    where, details = hold_first_time(browser, "/book/pickup/main/2027-01-13?party=3")
    assert details.count('name="notice_') == 3
    assert "までお取り置きしています" in details
    form = {**FORM, "csrf": field(details, "csrf")}
    form |= {"party": field(details, "party"), "service": field(details, "service")}
    form |= {"notice_0": "AB1-734567", "notice_1": "AB1-734568", "notice_2": "bad"}
    wrong = browser.post(where, data=form, follow_redirects=False)
    assert wrong.status_code == 422
    assert "英数字3桁・ハイフン・数字6桁" in wrong.text
    assert 'aria-invalid="true"' in wrong.text
    assert 'value="やまだ はなこ"' in wrong.text  # nothing typed is lost
    assert 'value="AB1-734568"' in wrong.text
    form |= {"notice_2": "ab1-734569", "csrf": field(wrong.text, "csrf")}
    booked = browser.post(where, data=form, follow_redirects=False)
    assert booked.status_code == 303
    assert booked.headers["location"] == "/booking/done"
    done = browser.get("/booking/done")
    code = re.search(r'class="code"[^>]*>(\d{4}) (\d{4})<', done.text)
    assert code, done.text
    assert "<svg" in done.text  # the QR code
    assert "本庁舎" in done.text
    assert "3人" in done.text
    ics = browser.get("/booking/done.ics")
    assert ics.headers["content-type"].startswith("text/calendar")
    assert b"DTSTART:20270112T233000Z" in ics.content  # 8:30 in Tokyo
    assert b"BEGIN:VALARM" in ics.content
    again = browser.post(where, data=form, follow_redirects=False)  # a second press
    assert again.headers.get("location") == "/booking/done"


def test_forms_without_their_token_are_refused(browser: TestClient) -> None:
    refused = browser.post("/hold", data={"slot_id": "1", "party": "1", "day": "2027-01-13"})
    assert refused.status_code == 403
    assert "予約はされていません" in refused.text


def test_a_lapsed_hold_offers_the_next_times(browser: TestClient, clock: FakeClock) -> None:
    where, _ = hold_first_time(browser, "/book/pin_reset/okubo/2027-01-14?party=1")
    clock.advance(minutes=11)
    late = browser.get(where)
    assert late.status_code == 409
    assert "お取り置きの10分間が過ぎました" in late.text
    assert 'action="/hold"' in late.text  # the next free times, each one press away
    assert 'class="time" name="slot_id"' in late.text


def test_the_last_seat_taken_meanwhile_offers_the_next_times(
    browser: TestClient, engine: Engine, clock: FakeClock
) -> None:
    url = "/book/cert_renewal/ochiai_daini/2027-01-15?party=1"
    times = browser.get(url)
    slot_id = int(field(times.text, "slot_id"))
    sessions = make_sessionmaker(engine, make_context(clock))
    with sessions() as db:  # someone else takes the only seat first
        service.book(db, slot_id=slot_id, party=1, resident=PERSON, channel="ivr")
        db.commit()
    taken = browser.post(
        "/hold",
        data={
            "csrf": field(times.text, "csrf"),
            "slot_id": str(slot_id),
            "party": "1",
            "service": "cert_renewal",
            "place": "ochiai_daini",
            "day": "2027-01-15",
        },
    )
    assert taken.status_code == 409
    assert "直前にほかの方が最後の席を予約しました" in taken.text
    assert f'name="slot_id" value="{slot_id}"' not in taken.text
    assert 'action="/hold"' in taken.text and 'class="time" name="slot_id"' in taken.text


# --- Managing a booking -------------------------------------------------------------------


def book_through_pages(browser: TestClient, url: str, phone: str) -> str:
    """Book the first time on a day's page with the given phone; returns the code."""
    where, details = hold_first_time(browser, url)
    form = {**FORM, "phone": phone, "csrf": field(details, "csrf")}
    form |= {"party": field(details, "party"), "service": field(details, "service")}
    booked = browser.post(where, data=form, follow_redirects=False)
    assert booked.status_code == 303, booked.text
    done = browser.get("/booking/done")
    found = re.search(r'class="code"[^>]*>(\d{4}) (\d{4})<', done.text)
    assert found
    return found.group(1) + found.group(2)


def test_find_move_and_cancel_a_booking(browser: TestClient) -> None:
    code = book_through_pages(
        browser, "/book/pin_reset/tsunohazu/2027-01-19?party=1", "08033334444"
    )
    form_page = browser.get("/manage")
    wrong = browser.post(
        "/manage",
        data={"csrf": field(form_page.text, "csrf"), "code": code, "phone": "08099998888"},
    )
    assert wrong.status_code == 404
    assert "予約が見つかりません" in wrong.text
    assert f'value="{code}"' in wrong.text
    found = browser.post(
        "/manage",
        data={"csrf": field(wrong.text, "csrf"), "code": code, "phone": "080-3333-4444"},
        follow_redirects=False,
    )
    assert found.headers["location"] == "/manage/booking"
    shown = browser.get("/manage/booking")
    assert "2027年1月19日(火)" in text_of(shown.text)
    assert "move=1" in shown.text
    # Move: the calendar and times pages in move mode post to /manage/move
    times = browser.get("/book/pin_reset/tsunohazu/2027-01-20?party=1&move=1")
    assert 'action="/manage/move"' in times.text
    kept = browser.post(
        "/manage/move",
        data={"csrf": field(times.text, "csrf"), "slot_id": field(times.text, "slot_id")},
        follow_redirects=False,
    )
    asked_move = browser.get(kept.headers["location"])  # asked first, the new time kept
    assert "この日時に変更しますか？" in asked_move.text
    assert "2027年1月19日(火)" in text_of(browser.get("/manage/booking").text)  # not yet moved
    moved = browser.post(
        kept.headers["location"],
        data={"csrf": field(asked_move.text, "csrf")},
        follow_redirects=False,
    )
    assert moved.headers["location"] == "/manage/booking?moved=1"
    after = browser.get("/manage/booking?moved=1")
    assert "新しい日時に変更しました" in after.text
    assert "2027年1月20日(水)" in text_of(after.text)
    asked = browser.get("/manage/cancel")  # asked first: a cancel cannot be taken back
    assert "この予約を取り消しますか？" in asked.text
    assert "2027年1月20日(水)" in text_of(asked.text)
    assert "予約済み" in browser.get("/manage/booking").text  # asking changed nothing
    cancelled = browser.post("/manage/cancel", data={"csrf": field(asked.text, "csrf")})
    assert "予約を取り消しました" in cancelled.text
    assert "取消済み" in cancelled.text
    assert 'href="/manage/cancel"' not in cancelled.text  # nothing more to cancel
    again = browser.get("/manage/cancel", follow_redirects=False)
    assert again.headers["location"] == "/manage/booking"


def test_moving_to_a_taken_time_keeps_the_booking(
    browser: TestClient, engine: Engine, clock: FakeClock
) -> None:
    code = book_through_pages(
        browser, "/book/cert_renewal/kashiwagi/2027-01-21?party=1", "07011112222"
    )
    start = browser.get("/manage")
    browser.post(
        "/manage",
        data={
            "csrf": field(start.text, "csrf"),
            "code": code,
            "birth_year": "1950",
            "birth_month": "4",
            "birth_day": "1",
        },
    )
    times = browser.get("/book/cert_renewal/kashiwagi/2027-01-22?party=1&move=1")
    target = int(field(times.text, "slot_id"))
    with make_sessionmaker(engine, make_context(clock))() as db:
        service.book(db, slot_id=target, party=1, resident=PERSON, channel="agent")
        db.commit()
    refused = browser.post(
        "/manage/move",
        data={
            "csrf": field(times.text, "csrf"),
            "slot_id": str(target),
            "day": "2027-01-22",
            "place": "kashiwagi",
        },
    )
    assert refused.status_code == 409
    assert 'action="/manage/move"' in refused.text  # the next times, still in move mode
    kept = browser.get("/manage/booking")
    assert "2027年1月21日(木)" in text_of(kept.text)


def test_too_many_lookups_get_a_clear_message(browser: TestClient, clock: FakeClock) -> None:
    clock.advance(hours=1)  # other tests' lookups (same test address) fall out of the window
    page = browser.get("/manage")
    answers = []
    for _ in range(11):
        answer = browser.post(
            "/manage",
            data={"csrf": field(page.text, "csrf"), "code": "12345678", "phone": "0312345678"},
        )
        answers.append(answer.status_code)
        page = answer
    assert answers[-1] == 429
    assert "操作が多すぎます" in page.text
    assert 429 not in answers[:9]
