"""Staged release (段階的公開) in a real browser: a counter manager sets when late January opens,
the over-70s a day before everyone; the list shows both as not open yet; the residents' start
page announces them; and a release is removed again. axe checks each page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from booking import service
from tests.e2e.conftest import AssertAccessible, LiveServer, Shot, _new_page
from tests.e2e.test_console_pages import DESKTOP, make_person, sign_in


@pytest.fixture
def desk(browser: Browser, external_requests: list[str]) -> Iterator[Page]:
    yield from _new_page(browser, external_requests, **DESKTOP)


def add_release(page: Page, opens_day: str, born_to: str = "") -> None:
    page.get_by_label("対象の初日").fill("2027-01-25")
    page.get_by_label("対象の最終日").fill("2027-01-29")
    page.get_by_label("受付開始の日", exact=True).fill(opens_day)
    page.get_by_label("受付開始の時刻").fill("09:00")
    page.get_by_label("用件").select_option("pickup")
    page.get_by_label("この年までに生まれた方").fill(born_to)
    page.get_by_role("button", name="設定する").click()


def test_a_manager_stages_the_release_of_late_january(
    live_server: LiveServer,
    desk: Page,
    page: Page,
    screenshot: Shot,
    assert_accessible: AssertAccessible,
) -> None:
    sign_in(desk, live_server, make_person(live_server, "counter_manager"))
    desk.get_by_role("link", name="段階的公開").click()
    expect(desk.get_by_role("heading", level=1)).to_contain_text("段階的公開")
    add_release(desk, "2026-12-17", born_to="1956")
    expect(desk.get_by_role("status")).to_contain_text("受付開始を 12/17 09:00 に設定しました")
    add_release(desk, "2026-12-18")
    rows = desk.locator("table.releases tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("1956年以前に生まれた方")
    expect(rows.nth(1)).to_contain_text("どなたでも")
    expect(rows.nth(1)).to_contain_text("公開前")
    assert_accessible(desk)
    screenshot(desk, "console-releases")

    # The residents' start page says when, in their language.
    page.goto(live_server.url("/"))
    announced = page.locator("section.releases")
    expect(announced).to_contain_text("受付開始のお知らせ")
    expect(announced).to_contain_text("12月17日(木) 9:00 受付開始です")
    expect(announced).to_contain_text("1956年以前に生まれた方が対象です")
    assert_accessible(page)
    screenshot(page, "start-releases")

    # Removed again: the days are open as before for the tests after this one.
    for _ in range(2):
        desk.locator("table.releases tbody tr").first.get_by_role("button", name="削除").click()
        expect(desk.get_by_role("status")).to_contain_text("削除しました")
    with live_server.sessions() as db:
        assert service.list_releases(db) == []
