"""A walk-in's ticket (整理券) in the browsers: the counter issues it with a mobile number and
shows it to print; the resident opens its status page on a phone with JavaScript off, leaves a
number there, and sees the call to the desk. axe-core's WCAG 2.1 A/AA checks on both pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from booking.pages import queue
from tests.e2e.conftest import Accessibility, AssertAccessible, LiveServer, Shot
from tests.e2e.test_console_pages import desk, make_person, sign_in  # noqa: F401 (fixture)


def test_a_ticket_is_printed_and_its_resident_follows_the_queue_without_javascript(
    live_server: LiveServer,
    desk: Page,  # noqa: F811 (the fixture imported above)
    page: Page,
    page_no_js: Page,
    screenshot: Shot,
    accessibility: Accessibility,
    assert_accessible: AssertAccessible,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(queue, "REFRESH_SECONDS", 600)  # no reload under the checks
    counter = desk
    sign_in(counter, live_server, make_person(live_server, "counter_manager"))
    counter.goto(live_server.url("/console/manage/counter?venue=main"))
    counter.get_by_label("この画面の窓口番号").fill("3")
    counter.get_by_role("button", name="表示").click()
    expect(counter).to_have_url(re.compile(r"desk=3"))
    counter.get_by_label("用件").select_option("application_help")
    counter.get_by_role("button", name="番号を発行").click()
    issued = counter.get_by_role("status").inner_text()
    found = re.search(r"番号は (\d+) 番", issued)
    assert found is not None, issued
    number = found.group(1)
    counter.get_by_role("link", name=f"{number}番の整理券を表示・印刷").click()
    ticket = counter.get_by_role("article", name=f"整理券 {number}番")
    expect(ticket.locator(".number")).to_have_text(f"{number}番")
    expect(ticket.locator("svg")).to_have_count(1)  # the QR code
    assert_accessible(counter)
    screenshot(counter, "walk-in-ticket")
    link = ticket.locator(".link").inner_text()
    token = link.rsplit("/queue/", 1)[1].strip()

    resident = page
    resident.goto(live_server.url(f"/queue/{token}"))
    expect(resident.get_by_role("heading", level=1)).to_have_text(f"整理券 {number}番")
    expect(resident.locator(".queue-number")).to_have_text(number)
    expect(resident.locator(".queue-wait")).not_to_be_empty()
    # A page that reloads itself is what axe's meta-refresh rule flags (WCAG 2.2.1): the
    # resident can turn it off, and the page without it passes every check.
    assert [v["id"] for v in accessibility(resident)] == ["meta-refresh"]
    monkeypatch.setattr(queue, "REFRESH_SECONDS", 30)  # as residents see it, for the picture
    resident.goto(live_server.url(f"/queue/{token}"))
    screenshot(resident, "queue-status")
    monkeypatch.setattr(queue, "REFRESH_SECONDS", 600)
    resident.get_by_role("link", name="自動更新を止める").click()
    assert resident.locator('meta[http-equiv="refresh"]').count() == 0
    assert_accessible(resident)

    # The same page with JavaScript off: a number left through its form, the call seen.
    resident = page_no_js
    resident.goto(live_server.url(f"/queue/{token}"))
    expect(resident.locator(".queue-number")).to_have_text(number)
    resident.get_by_label("携帯電話番号").fill("03-5273-4111")  # a landline: no texts
    resident.get_by_role("button", name="SMSで知らせる").click()
    expect(resident.get_by_role("alert")).to_contain_text("携帯電話")
    resident.get_by_label("携帯電話番号").fill("090-4444-0303")
    resident.get_by_role("button", name="SMSで知らせる").click()
    expect(resident.locator(".queue-phone")).to_contain_text("0303")

    # Without a click or a script: the page's own reload brings the call.
    monkeypatch.setattr(queue, "REFRESH_SECONDS", 2)
    resident.goto(live_server.url(f"/queue/{token}"))
    counter.goto(live_server.url("/console/manage/counter?venue=main&desk=3"))
    counter.get_by_role("button", name=f"{number}番を呼出").click()
    expect(counter.get_by_role("status")).to_contain_text(f"{number}番の方をお呼びしました")
    expect(resident.get_by_role("alert")).to_have_text(
        "お呼びしています。3番窓口へお越しください。", timeout=20_000
    )
    page.goto(live_server.url(f"/queue/{token}?still=1"))
    assert_accessible(page)
