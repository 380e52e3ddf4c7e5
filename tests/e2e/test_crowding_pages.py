"""Crowding in public (混雑状況) and the counter's call screen (呼出表示) in a real browser: the
wait said in words beside its colour, the pages without JavaScript, the call screen on a TV-sized
screen changing its numbers by itself; axe-core's WCAG 2.1 A/AA on each. The shared live
server's day (2026-12-15 10:00), at Wakamatsucho, where no other browser test takes walk-ins.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from booking import service
from tests.e2e.conftest import AssertAccessible, LiveServer, Shot, _new_page

VENUE = "wakamatsucho"
SCREEN = {
    "viewport": {"width": 1280, "height": 720},
    "is_mobile": False,
    "has_touch": False,
    "locale": "ja-JP",
    "timezone_id": "Asia/Tokyo",
}
# "Numbers being called" in every language the ward offers on its pages (all, by default).
CALLING = (
    "お呼び出し中の番号",
    "Numbers being called",
    "호출 중인 번호",
    "正在叫号",
    "Số đang được gọi",
    "बोलाइँदै गरेका नम्बर",
    "今(いま) よんでいる 番号(ばんごう)",
)
# The call screen fetches every 3 seconds; the figures are kept up to 5 seconds per process.
LIVE_MS = 15_000


def walk_ins(server: LiveServer, count: int) -> list[int]:
    with server.sessions() as db:
        numbers = [
            service.walk_in(db, venue_id=VENUE, service_id="pickup", party=1).number
            for _ in range(count)
        ]
        db.commit()
    return numbers


def call(server: LiveServer, number: int) -> None:
    with server.sessions() as db:
        service.call_walk_in(db, venue_id=VENUE, number=number)
        db.commit()


@pytest.fixture(scope="module")
def queue(live_server: LiveServer) -> list[int]:
    """Four walk-ins at Wakamatsucho, the first called."""
    numbers = walk_ins(live_server, 4)
    call(live_server, numbers[0])
    return numbers


@pytest.fixture
def screen(browser: Browser, external_requests: list[str]) -> Iterator[Page]:
    """A TV-sized screen at the counter, with JavaScript."""
    yield from _new_page(browser, external_requests, **SCREEN)


def test_a_venues_crowding_in_words_and_colour(
    page: Page,
    live_server: LiveServer,
    queue: list[int],
    assert_accessible: AssertAccessible,
    screenshot: Shot,
) -> None:
    page.goto(live_server.url(f"/crowding/{VENUE}"))
    expect(page.locator("h1")).to_contain_text("若松町特別出張所")
    band = page.locator(".venue-crowding [data-field=band]")
    expect(band).to_have_class("band band-red")  # 3 waiting at 22.5 minutes each
    expect(band).to_have_text("混雑しています")  # the colour is never the only signal
    figures = page.locator(".venue-crowding .figures")
    expect(figures.locator("[data-field=waiting]")).to_have_text("3")
    expect(figures.locator("[data-field=now_calling]")).to_have_text(str(queue[0]))
    expect(page.locator(".updated")).to_contain_text("更新")
    assert_accessible(page)
    screenshot(page, "crowding")
    page.goto(live_server.url(f"/crowding/{VENUE}?lang=en"))
    expect(band).to_have_text("Crowded")
    expect(page.locator(".band-legend")).to_contain_text("20 minutes or less")
    assert_accessible(page)


def test_the_wards_crowding_lists_every_counter(
    page: Page, live_server: LiveServer, queue: list[int], assert_accessible: AssertAccessible
) -> None:
    page.goto(live_server.url("/crowding?lang=ja"))
    expect(page.locator(".venue-crowding")).to_have_count(11)
    venue = page.locator(f'[data-venue="{VENUE}"]')
    expect(venue.locator("[data-field=band_label]")).to_have_text("混雑しています")
    assert_accessible(page)
    venue.get_by_role("link").click()
    expect(page).to_have_url(live_server.url(f"/crowding/{VENUE}"))
    expect(page.locator("h1")).to_contain_text("窓口の混雑状況")


def test_the_crowding_page_without_javascript_reloads_itself(
    page_no_js: Page, live_server: LiveServer, queue: list[int]
) -> None:
    page_no_js.goto(live_server.url(f"/crowding/{VENUE}"))
    expect(page_no_js.locator("[data-field=waiting]")).to_have_text("3")
    refresh = page_no_js.locator('meta[http-equiv="refresh"]')
    expect(refresh).to_have_attribute("content", "60")
    # The resident may stop it (WCAG 2.2.1), and start it again.
    page_no_js.get_by_role("link", name="自動更新を止める").click()
    expect(page_no_js.locator("[data-field=waiting]")).to_have_text("3")
    expect(refresh).to_have_count(0)
    page_no_js.get_by_role("link", name="自動更新に戻す").click()
    expect(refresh).to_have_count(1)


def test_the_call_screen_shows_the_numbers_large_and_changes_by_itself(
    screen: Page,
    live_server: LiveServer,
    queue: list[int],
    assert_accessible: AssertAccessible,
    screenshot: Shot,
) -> None:
    screen.goto(live_server.url(f"/signage/{VENUE}"))
    latest = screen.locator(".signage-numbers li.latest")
    expect(latest).to_have_text(str(queue[0]))
    expect(screen.locator(".signage-none")).to_be_hidden()
    for words in CALLING:
        expect(screen.locator("#calling-title")).to_contain_text(words)
    # The screen's own language large, the ward's others smaller beneath it.
    first = screen.locator("#calling-title .signage-first")
    expect(first).to_have_text("お呼び出し中の番号")
    others = screen.locator("#calling-title .signage-others")
    expect(others.locator('[lang="zh-Hans"]')).to_have_text("正在叫号")
    big = first.evaluate("el => el.getBoundingClientRect()")
    small = others.evaluate("el => el.getBoundingClientRect()")
    assert small["top"] >= big["bottom"] - 1
    assert small["bottom"] <= 0.4 * 720  # the headings leave the numbers most of the screen
    # Readable from across a room: the latest number fills a good part of the screen's height.
    size = latest.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
    assert size >= 0.25 * 720
    assert_accessible(screen)
    call(live_server, queue[1])
    expect(latest).to_have_text(str(queue[1]), timeout=LIVE_MS)  # fetched, not reloaded
    expect(screen.locator(".signage-numbers li")).to_have_count(2)
    screenshot(screen, "signage")
    assert_accessible(screen)
