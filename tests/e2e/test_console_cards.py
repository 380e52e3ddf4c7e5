"""The cards that have arrived in a real browser: a counter manager uploads the card
management system's CSV; a bad line is named by its number and nothing goes in; mended, the
counts per venue show. axe checks each page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, FilePayload, Page, expect

from booking import service
from tests.e2e.conftest import AssertAccessible, LiveServer, Shot, _new_page
from tests.e2e.test_console_pages import DESKTOP, make_person, sign_in


@pytest.fixture
def desk(browser: Browser, external_requests: list[str]) -> Iterator[Page]:
    yield from _new_page(browser, external_requests, **DESKTOP)


def upload(page: Page, body: str) -> None:
    csv_file: FilePayload = {
        "name": "arrived.csv",
        "mimeType": "text/csv",
        "buffer": body.encode("cp932"),
    }
    page.get_by_label("CSVファイル（UTF-8 または Shift_JIS）").set_input_files(files=[csv_file])
    page.get_by_role("button", name="取り込む").click()


def test_a_manager_uploads_the_cards_that_have_arrived(
    live_server: LiveServer, desk: Page, screenshot: Shot, assert_accessible: AssertAccessible
) -> None:
    sign_in(desk, live_server, make_person(live_server, "counter_manager"))
    desk.get_by_role("link", name="届いたカード").click()
    expect(desk.get_by_role("heading", level=1)).to_contain_text("届いたカード")
    with live_server.sessions() as db:
        before = service.ready_cards_by_venue(db)
    upload(desk, "交付通知書番号,交付場所\nEF3-500001,main\nEF3-5001,main\nEF3-500003,どこか\n")
    problems = desk.get_by_role("alert")
    expect(problems).to_contain_text("取り込んでいません")
    expect(problems).to_contain_text("3行目 line 3")
    expect(problems).to_contain_text("4行目 line 4")
    assert_accessible(desk)
    screenshot(desk, "console-cards-problems")
    with live_server.sessions() as db:
        assert service.ready_cards_by_venue(db) == before

    upload(desk, "交付通知書番号,交付場所\nEF3-500001,main\nEF3-500002,四谷特別出張所\n")
    expect(desk.get_by_role("status")).to_contain_text("2件を取り込みました")
    assert_accessible(desk)
    screenshot(desk, "console-cards")
    with live_server.sessions() as db:
        after = service.ready_cards_by_venue(db)
    assert after.get("main", 0) == before.get("main", 0) + 1
