"""The resident pages in Korean, in a real browser: a resident switches to 한국어 on the start
page and books a card pickup at the 四谷 branch, every page in Korean, with the ward's Korean
names, and the booking keeps Korean as its language.

The live server is shared with the other browser tests; this one books pickup / yotsuya on
2026-12-22 8:30 (no other test uses that venue for pickups), with its own phone number.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from importlib.resources import files

from babel.messages.pofile import read_po
from playwright.sync_api import Page, expect

from booking import service
from booking.context import TOKYO
from tests.e2e.conftest import AssertAccessible, LiveServer, Shot
from tests.e2e.test_booking_pages import (
    code_on,
    heading,
    navigate,
    press_time,
    time_button,
    times_path,
)

WEEKDAYS_KO = "월화수목금토일"
DAY = date(2026, 12, 22)
PICKUP = "마이넘버카드 수령(교부)"  # the ward's Korean words (config/sample_ward.json)
YOTSUYA = "요쓰야 특별출장소"
YOTSUYA_ADDRESS = "신주쿠구 나이토마치 87"
NOTICE = "AB7-220822"
PHONE = "080-6262-2022"
BIRTH = date(1979, 6, 9)
NAME = "KIM MINJI"


def ko_date(day: date) -> str:
    """A day as the Korean pages write it: 2026년 12월 22일 (화)."""
    return f"{day.year}년 {day.month}월 {day.day}일 ({WEEKDAYS_KO[day.weekday()]})"


def english_words() -> list[str]:
    """Every English message of the pages, cut at its placeholders: none may show on a Korean
    page. Fragments of a word or two ('For', 'Show') are left out: too short to mean much."""
    source = files("booking.pages").joinpath("locale/en/LC_MESSAGES/messages.po")
    with source.open("rb") as handle:
        catalog = read_po(handle, locale="en")
    words: set[str] = set()
    for message in catalog:
        if not message.id:
            continue
        string = message.string
        texts = [string] if isinstance(string, str) else list(string or ())
        for text in texts:
            for part in re.split(r"%\(\w+\)s|\{\w+\}", text):
                part = part.strip(" .,:;()–·")
                if len(re.findall(r"[A-Za-z]+", part)) >= 2:
                    words.add(part)
    return sorted(words)


def assert_all_korean(page: Page) -> None:
    shown = page.locator("main").inner_text()
    left = [words for words in english_words() if words in shown]
    assert left == [], f"English on a Korean page ({page.url}): {left}"


def test_a_resident_books_in_korean(
    live_server: LiveServer,
    page: Page,
    assert_accessible: AssertAccessible,
    screenshot: Shot,
) -> None:
    page.goto(live_server.url("/"))
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    switch = page.get_by_role("navigation", name="言語")
    expect(switch.get_by_role("link")).to_have_count(6)  # English, 한국어 and the others
    switch.get_by_role("link", name="한국어").click()
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(heading(page)).to_have_text("방문 예약")
    others = page.get_by_role("navigation", name="언어").get_by_role("link")
    # and the ways back
    expect(others).to_have_text(
        ["日本語", "English", "简体中文", "Tiếng Việt", "नेपाली", "やさしい日本語"]
    )
    assert_all_korean(page)
    assert_accessible(page)

    # The choice is remembered: the next addresses carry no ?lang=.
    page.get_by_role("link", name=re.compile("^" + re.escape(PICKUP))).click()
    expect(page).to_have_url(live_server.url("/book/pickup"))
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(heading(page)).to_have_text("장소 선택")
    yotsuya = page.get_by_role("link", name=re.compile("^" + YOTSUYA))
    expect(yotsuya).to_contain_text(YOTSUYA_ADDRESS)
    expect(page.locator("main")).not_to_contain_text("四谷")
    assert_all_korean(page)
    assert_accessible(page)

    yotsuya.click()
    expect(page).to_have_url(live_server.url("/book/pickup/yotsuya"))
    expect(heading(page)).to_have_text("날짜 선택")
    expect(page.get_by_role("heading", name="2026년 12월")).to_be_visible()
    expect(page.locator(".steps")).to_have_text(f"{PICKUP} › {YOTSUYA}")
    assert_all_korean(page)
    assert_accessible(page)

    day = page.get_by_role("link", name=f"{ko_date(DAY)} 예약 가능")
    expect(day).to_have_attribute("href", times_path("pickup", "yotsuya", DAY))
    day.click()
    expect(heading(page)).to_have_text(ko_date(DAY))
    expect(time_button(page, "8:30")).to_have_text(re.compile(r"8:30–9:00\s+잔여 2석"))
    assert_all_korean(page)
    assert_accessible(page)

    assert press_time(page, "8:30").status == 200
    expect(heading(page)).to_have_text("예약자 정보 입력")
    expect(page.locator(".held .when")).to_have_text(f"{ko_date(DAY)} 8:30–9:00 · 1명")
    expect(page.locator(".held")).to_contain_text("이 시간은 10:10까지")
    language = page.get_by_label("안내받으실 언어")
    expect(language).to_have_value("ko")  # the page's language, preselected
    page.get_by_label("교부통지서 번호(交付通知書 엽서에 적힌 번호)").fill(NOTICE)
    page.get_by_label("성명(가타카나 또는 로마자, 예약하시는 분)").fill(NAME)
    page.get_by_label("년", exact=True).fill(str(BIRTH.year))
    page.get_by_label("월", exact=True).fill(str(BIRTH.month))
    page.get_by_label("일", exact=True).fill(str(BIRTH.day))
    page.get_by_label("전화번호").fill(PHONE)
    # As Korean reads a date: the box, then its label (1979 년).
    year_first = page.locator("#birth_year").evaluate(
        "el => el.nextElementSibling && el.nextElementSibling.tagName"
    )
    assert year_first == "LABEL"
    assert_all_korean(page)
    assert_accessible(page)
    screenshot(page, "resident-korean-details")

    done = navigate(page, page.get_by_role("button", name="이 내용으로 예약하기").click)
    assert done.status == 200
    expect(page).to_have_url(live_server.url("/booking/done"))
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(heading(page)).to_have_text("예약이 완료되었습니다")
    code = code_on(page)
    visit = page.locator("dl.visit")
    expect(visit).to_contain_text(f"{ko_date(DAY)} 8:30–9:00")
    expect(visit.locator(".venue-address")).to_have_text(YOTSUYA_ADDRESS)
    expect(visit).to_contain_text(YOTSUYA)
    expect(visit).to_contain_text(f"{PICKUP} · 1명")
    expect(visit.locator(".bring")).to_contain_text("교부통지서(엽서)")
    expect(page.get_by_role("link", name="캘린더에 추가")).to_be_visible()
    assert visit.evaluate("el => getComputedStyle(el).wordBreak") == "keep-all"
    assert_all_korean(page)
    assert_accessible(page)
    screenshot(page, "resident-korean-done")

    with live_server.sessions() as db:
        booked = service.find_booking(db, code=code, phone=PHONE)
    assert booked.language == "ko"
    assert (booked.service_id, booked.venue_id, booked.party_size) == ("pickup", "yotsuya", 1)
    assert booked.starts_at == datetime(2026, 12, 22, 8, 30, tzinfo=TOKYO)
    assert booked.name_kana == NAME
    assert [m.notice_number for m in booked.members] == [NOTICE]


def test_the_english_words_are_found_where_they_are(live_server: LiveServer, page: Page) -> None:
    """The check above can fail: on an English page it finds the English."""
    page.goto(live_server.url("/book/pickup?lang=en"))
    shown = page.locator("main").inner_text()
    assert "Earliest time anywhere" in [w for w in english_words() if w in shown]
