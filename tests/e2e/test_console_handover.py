"""The day's handover sheet of application help (申請補助) in a real browser: two help visits
completed at the counter with their ticks, the sheet with its count and list (no names), its
print layout (the sheet alone), and the two-person confirmation on the same screen; axe on the
sheet before and after it is confirmed."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from agent_console import service as staff
from booking import service as booking
from booking.context import TOKYO
from tests.e2e.conftest import AssertAccessible, LiveServer, Shot, _new_page

PASSWORD = "handover sheet password"  # noqa: S105 (a test password)
DESKTOP = {"viewport": {"width": 1280, "height": 800}, "is_mobile": False, "has_touch": False}
_people = itertools.count(1)


@pytest.fixture
def desk(browser: Browser, external_requests: list[str]) -> Iterator[Page]:
    """A desktop browser (1280x800): the counter's screen."""
    yield from _new_page(browser, external_requests, **DESKTOP)


def person(server: LiveServer, name: str) -> str:
    login = f"e2e-handover-{next(_people)}"
    with server.sessions() as db:
        staff.create_staff(
            db, login_id=login, display_name=name, role="counter_manager", password=PASSWORD
        )
        db.commit()
    return login


def help_visits_checked_in(server: LiveServer) -> list[booking.BookingView]:
    """Two application-help bookings (two people, then one) in one slot, checked in at its
    time (the live server's clock moved there)."""
    with server.sessions() as db:
        free = booking.availability(
            db,
            service_id="application_help",
            start=date(2026, 12, 17),
            end=date(2026, 12, 24),
            party=3,
            limit=50,
        )
        slot = free[-1]
        made = [
            booking.book(
                db,
                slot_id=slot.id,
                party=party,
                channel="web",
                resident=booking.ResidentInput(
                    "シンセイ ハナコ", "090-5555-0101", date(1980, 1, 1)
                ),
            )
            for party in (2, 1)
        ]
        db.commit()
    server.clock.set(made[0].starts_at.astimezone(TOKYO) + timedelta(minutes=1))
    with server.sessions() as db:
        for b in made:
            booking.check_in(db, code=b.code, venue_id=b.venue_id)
        db.commit()
    return made


def test_the_handover_sheet_prints_and_is_confirmed_by_two_people(
    desk: Page, live_server: LiveServer, assert_accessible: AssertAccessible, screenshot: Shot
) -> None:
    page = desk
    made = help_visits_checked_in(live_server)
    clerk, ward = person(live_server, "窓口 太郎"), person(live_server, "区役所 花子")
    page.goto(live_server.url("/console/login"))
    page.get_by_label("ログインID").fill(clerk)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.goto(live_server.url("/console/manage/counter?venue=main"))
    first = page.locator("tr.counter-booking", has_text=made[0].code)
    first.get_by_role("button", name=f"予約番号 {made[0].code}を完了").click()
    expect(page.get_by_role("status")).to_contain_text("申請を送信、控えを申請者に手渡し")
    second = page.locator("tr.counter-booking", has_text=made[1].code)
    second.get_by_label("控え1通を申請者に手渡した").uncheck()
    second.get_by_role("button", name=f"予約番号 {made[1].code}を完了").click()
    expect(page.get_by_role("status")).to_contain_text("控えは申請者に渡さず")
    page.get_by_role("link", name="申請補助の控えの引渡票（本日）").click()
    sheet = page.locator(f'section[data-staff="{clerk}"][data-sheet="open"]')
    expect(sheet.locator(".count")).to_have_text("3枚")
    expect(sheet.locator("tr.help-visit")).to_have_count(2)
    expect(sheet).not_to_contain_text("シンセイ")
    assert_accessible(page)
    # Printed: the sheet alone, without the console's menu or the confirmation form.
    page.emulate_media(media="print")
    expect(page.locator("header")).to_be_hidden()
    expect(sheet.get_by_role("button", name="引渡しを確認")).to_be_hidden()
    expect(sheet.locator(".count")).to_be_visible()
    page.emulate_media(media="screen")
    # The same person cannot receive; then the ward's receiver signs with their own ID.
    sheet.get_by_label("受け取る職員のログインID").fill(clerk)
    sheet.get_by_label("受け取る職員のパスワード").fill(PASSWORD)
    sheet.get_by_role("button", name="引渡しを確認").click()
    expect(page.get_by_role("alert")).to_contain_text("別の人でなければなりません")
    sheet.get_by_label("受け取る職員のログインID").fill(ward)
    sheet.get_by_label("受け取る職員のパスワード").fill(PASSWORD)
    sheet.get_by_role("button", name="引渡しを確認").click()
    expect(page.get_by_role("status")).to_contain_text(
        "控え 3枚の引渡しを確認しました（受領：区役所 花子）"
    )
    confirmed = page.locator(f'section[data-staff="{clerk}"]:not([data-sheet="open"])')
    expect(confirmed.locator(".frozen")).to_contain_text("受領：区役所 花子")
    expect(confirmed.get_by_role("button")).to_have_count(0)  # frozen: nothing to change
    assert_accessible(page)
    screenshot(page, "handover-sheet")  # docs/screenshots/handover-sheet.png is a copy
