"""The resident pages before the form, in a real browser: the earliest times anywhere, styled
error pages and the icon, the calendar's booking window, the language switch on one line, and
English counts in the singular.

The live server is shared with the other browser tests (its clock at 2026-12-15 10:00 Tokyo); the
only write here is one hold, on the second page of the earliest card pickups (2026-12-16 8:30 at
the eleventh office), a time no other test uses.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from playwright.sync_api import Browser, Locator, Page, Response, expect

from booking.context import TOKYO
from tests.e2e.conftest import AssertAccessible, LiveServer, Shot, _new_page

WEEKDAYS_JA = "月火水木金土日"
EARLIEST_PAGE = 10
PHONE_HEIGHT_BUDGET = 3000  # px: a list a resident scrolls, not a wall of buttons
CLOSED = "休み（受付なし）"
NOT_OPEN_YET = "まだ予約を受け付けていません"
ENDED = "受付終了"


def heading(page: Page) -> Locator:
    return page.get_by_role("heading", level=1)


def navigate(page: Page, action: Any) -> Response:
    with page.expect_navigation() as navigation:
        action()
    response = navigation.value
    assert response is not None
    return response


def shown_times(page: Page) -> list[tuple[int, datetime, str]]:
    """(slot id, start, venue) of each time on an earliest-times page, top to bottom."""
    found = []
    for button in page.locator("button.time").all():
        clock = button.locator(".clock").inner_text()
        match = re.match(r"(\d{4})年(\d{1,2})月(\d{1,2})日\(.\) (\d{1,2}):(\d{2})–", clock)
        assert match, clock
        year, month, day, hour, minute = (int(g) for g in match.groups())
        starts = datetime(year, month, day, hour, minute, tzinfo=TOKYO)
        value = button.get_attribute("value")
        assert value is not None
        found.append((int(value), starts, button.locator(".where").inner_text()))
    return found


def ja_short(day: date) -> str:
    return f"{day.month}月{day.day}日({WEEKDAYS_JA[day.weekday()]})"


# --- the earliest time anywhere ---------------------------------------------------------------


def test_anywhere_lists_the_earliest_times_a_page_at_a_time(
    live_server: LiveServer, page: Page, screenshot: Shot, assert_accessible: AssertAccessible
) -> None:
    page.set_viewport_size({"width": 375, "height": 812})
    page.goto(live_server.url("/book/pickup"))
    page.get_by_role("link", name=re.compile("^どこでも最も早い日時")).click()
    expect(page).to_have_url(live_server.url("/book/pickup/any"))
    expect(heading(page)).to_have_text("いちばん早く空いている日時")
    first = shown_times(page)
    assert 2 <= len(first) <= EARLIEST_PAGE
    assert len({venue for _, _, venue in first}) >= 2  # across the offices
    starts = [when for _, when, _ in first]
    assert starts == sorted(starts)
    assert starts[0] == datetime(2026, 12, 16, 8, 30, tzinfo=TOKYO)  # the first bookable time
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < PHONE_HEIGHT_BUDGET, f"{height} px on a phone"
    expect(page.locator("button.time .left").first).to_have_text(re.compile(r"^残り\d+席$"))
    screenshot(page, "browse-earliest")
    assert_accessible(page)

    navigate(page, page.get_by_role("link", name="もっと見る").click)
    expect(page).to_have_url(re.compile(rf"[?&]after={first[-1][0]}(&|$)"))
    later = shown_times(page)
    assert 1 <= len(later) <= EARLIEST_PAGE
    assert not {slot for slot, _, _ in first} & {slot for slot, _, _ in later}
    assert later[0][1] >= starts[-1]
    assert [when for _, when, _ in later] == sorted(when for _, when, _ in later)
    assert_accessible(page)

    # One press holds it: the form, with that time and office.
    slot_id, when, venue = later[0]
    held = navigate(page, page.locator(f'button.time[value="{slot_id}"]').click)
    assert held.status == 200
    expect(heading(page)).to_have_text("お客様情報の入力")
    expect(page.locator("main")).to_contain_text(venue)
    expect(page.locator(".held")).to_contain_text(f"{when.hour}:{when.minute:02d}")


# --- styled error pages and the icon --------------------------------------------------------

BAD_ADDRESSES = [
    ("/book/pickup/main/2026-13-45", 422),  # no such date
    ("/book/pickup/main/2026-12-20?party=abc", 422),
    ("/book/pickup/main?party=0", 422),
    ("/book/pickup/any?after=later", 422),
    ("/no/such/page", 404),
]


@pytest.mark.parametrize(("language", "sorry"), [("ja", "申し訳ありません"), ("en", "Sorry")])
def test_a_bad_address_gets_a_styled_page_in_the_residents_language(
    live_server: LiveServer,
    page: Page,
    assert_accessible: AssertAccessible,
    language: str,
    sorry: str,
) -> None:
    for path, status in BAD_ADDRESSES:
        joiner = "&" if "?" in path else "?"
        answer = page.goto(live_server.url(f"{path}{joiner}lang={language}"))
        assert answer is not None
        assert answer.status == status, path
        assert answer.headers["content-type"].startswith("text/html"), path
        expect(page.locator("html")).to_have_attribute("lang", language)
        expect(heading(page)).to_have_text(sorry)
        # The stylesheet applies: the header's blue, not a browser's bare page.
        expect(page.locator("header.site")).to_have_css("background-color", "rgb(11, 83, 148)")
    assert_accessible(page)
    # The choice is remembered: the next bad address, without ?lang=, is in the same language.
    page.goto(live_server.url("/book/pickup/main/not-a-day"))
    expect(page.locator("html")).to_have_attribute("lang", language)
    refused = page.request.post(live_server.url("/book/pickup/main"))
    assert refused.status == 405
    assert refused.headers["content-type"].startswith("text/html")
    assert sorry in refused.text()


def test_every_page_has_an_icon_and_the_browser_finds_nothing_missing(
    live_server: LiveServer, page: Page
) -> None:
    missing: list[str] = []
    page.on(
        "response",
        lambda r: (
            missing.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.request.resource_type != "document"
            else None
        ),
    )
    errors: list[str] = []
    # The 404 page's own status is logged too: only what a page asked for counts.
    page.on(
        "console",
        lambda m: (
            errors.append(f"{m.text} {m.location.get('url')}")
            if m.type == "error" and "/no/such/page" not in str(m.location.get("url"))
            else None
        ),
    )
    for path in (
        "/",
        "/book/pickup",
        "/book/pickup/main",
        "/book/pickup/any",
        "/book/pickup/main/2027-01-12",
        "/no/such/page",
    ):
        page.goto(live_server.url(path))
        icon = page.locator('link[rel="icon"]')
        expect(icon).to_have_count(1)
        href = icon.get_attribute("href")
        assert href is not None
        # In the page itself, so the browser fetches nothing more for it.
        assert href.startswith("data:image/svg+xml,"), path
        assert unquote(href.removeprefix("data:image/svg+xml,")).startswith("<svg"), path
    ico = page.request.get(live_server.url("/favicon.ico"))
    assert ico.status == 200
    assert ico.headers["content-type"].startswith("image/")
    assert b"<svg" in ico.body()
    assert missing == []
    assert errors == []


# --- the calendar's booking window ------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "note"),
    [
        ("2020-01", "指定の月は過ぎています。"),
        ("2027-05", "指定の月はまだ予約を受け付けていません。"),
        ("2026-99", "アドレスの月を読み取れませんでした。"),
    ],
)
def test_a_month_outside_the_window_shows_this_month_with_a_note(
    live_server: LiveServer, page: Page, assert_accessible: AssertAccessible, month: str, note: str
) -> None:
    answer = page.goto(live_server.url(f"/book/pickup/main?month={month}"))
    assert answer is not None and answer.status == 200
    expect(page.get_by_role("heading", level=2)).to_have_text("2026年12月")
    expect(page.get_by_role("status")).to_contain_text(note)
    expect(page.get_by_role("status")).to_contain_text("今月のカレンダーを表示しています。")
    assert_accessible(page)


def day_mark(page: Page, day: int) -> Locator:
    cell = page.locator("table.calendar td.day").filter(
        has=page.locator(".date", has_text=re.compile(rf"^{day}$"))
    )
    expect(cell).to_have_count(1)
    return cell


def test_the_calendar_tells_closed_days_from_days_not_open_yet(
    live_server: LiveServer, page: Page, screenshot: Shot, assert_accessible: AssertAccessible
) -> None:
    rules = live_server.sessions.kw["info"]["booking"].rules
    today = date(2026, 12, 15)
    last = today + timedelta(days=rules.max_days_ahead)  # 2027-01-29 with the default 45
    page.goto(live_server.url("/book/pickup/main?month=2027-01"))
    expect(page.get_by_role("heading", level=2)).to_have_text("2027年1月")

    holiday = day_mark(page, 11)  # 成人の日: the office is closed
    expect(holiday.get_by_role("img")).to_have_accessible_name(CLOSED)
    beyond = day_mark(page, last.day + 1)  # the first day past the window
    expect(beyond.get_by_role("img")).to_have_accessible_name(NOT_OPEN_YET)
    assert holiday.locator(".mark").inner_text() != beyond.locator(".mark").inner_text()
    assert holiday.get_attribute("class") != beyond.get_attribute("class")
    expect(day_mark(page, last.day).get_by_role("link")).to_be_visible()  # the last day is open

    # The window in words, from the ward's settings.
    window = (
        f"ご予約は{rules.max_days_ahead}日先の{ja_short(last)}まで受け付けています。"
        f"{ja_short(last + timedelta(days=1))}の分は{ja_short(today + timedelta(days=1))}"
        "から受け付けます。"
    )
    expect(page.locator(".window-note")).to_have_text(window)

    # The legend says each mark in words, read out as a list.
    legend = page.get_by_role("list", name="記号の意味")
    for words in ("空きあり", "残りわずか", "満員", CLOSED, NOT_OPEN_YET, ENDED):
        expect(legend).to_contain_text(words)
    screenshot(page, "browse-calendar-window")
    assert_accessible(page)

    page.goto(live_server.url("/book/pickup/main?month=2026-12"))
    expect(day_mark(page, 14).get_by_role("img")).to_have_accessible_name(ENDED)  # yesterday
    expect(day_mark(page, 15).get_by_role("img")).to_have_accessible_name(ENDED)  # today
    assert_accessible(page)


# --- English: the switch on one line, counts in the singular ---------------------------------


@pytest.mark.parametrize("width", [375, 1280])
def test_the_japanese_switch_stays_on_one_line(
    live_server: LiveServer, browser: Browser, external_requests: list[str], width: int
) -> None:
    for page in _new_page(browser, external_requests, viewport={"width": width, "height": 800}):
        page.goto(live_server.url("/book/pickup?lang=en"))
        switch = page.get_by_role("navigation", name="Language").get_by_role(
            "link", name="日本語", exact=True
        )
        box = switch.evaluate(
            """el => {
              const s = getComputedStyle(el);
              const px = name => parseFloat(s[name]);
              return {height: el.getBoundingClientRect().height,
                      oneLine: px('lineHeight') + px('paddingTop') + px('paddingBottom')
                               + px('borderTopWidth') + px('borderBottomWidth')};
            }"""
        )
        assert box["height"] <= box["oneLine"] + 1, (width, box)


def test_english_counts_say_one_seat(
    live_server: LiveServer, page: Page, assert_accessible: AssertAccessible
) -> None:
    # 四谷 keeps one seat a time for PIN resets.
    page.goto(live_server.url("/book/pin_reset/yotsuya/2027-01-06?party=1&lang=en"))
    expect(page.locator("button.time .left").first).to_have_text("1 seat left")
    expect(page.locator("main")).not_to_contain_text("1 seats")
    assert_accessible(page)
    page.goto(live_server.url("/book/pickup/main/2027-01-06?party=1"))
    expect(page.locator("button.time .left").first).to_have_text("6 seats left")
    page.goto(live_server.url("/book/pickup/main?party=1&move=1&month=2027-01"))
    expect(page.locator(".hint")).to_contain_text("Seats for 1 person.")
    expect(page.locator(".window-note")).to_contain_text(
        f"{live_server.sessions.kw['info']['booking'].rules.max_days_ahead} days ahead"
    )
    page.goto(live_server.url("/book/pickup/main/2027-01-06?party=1&lang=ja"))
    expect(page.locator("button.time .left").first).to_have_text("残り6席")
