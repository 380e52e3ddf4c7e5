"""Agents' states in a real browser: an agent switches ready / not ready (the answer button
comes and goes in the live queue), answers a call (on a call), the caller hangs up (the wrap-up
counts down) and the agent wraps up (ready again)."""

from __future__ import annotations

import itertools

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.conftest import AssertAccessible, LiveServer, Shot
from tests.e2e.test_console_pages import (
    caller_asks_for_a_person,
    desk,
    give_desk_phone,
    make_person,
    sign_in,
)

__all__ = ["desk"]  # the desktop browser fixture, shared with the console's other pages

_numbers = itertools.count(5_000)


def test_an_agent_goes_not_ready_and_ready_answers_and_wraps_up(
    live_server: LiveServer, desk: Page, screenshot: Shot, assert_accessible: AssertAccessible
) -> None:
    page = desk
    agent = make_person(live_server, "agent")
    give_desk_phone(live_server, agent)
    sign_in(page, live_server, agent)
    badge = page.locator("#my-state")
    expect(badge).to_have_text("受付可")  # signing in makes the agent ready

    number = f"+81901{next(_numbers):07d}"
    with httpx.Client(base_url=live_server.base_url, timeout=10) as http:
        call = caller_asks_for_a_person(live_server, http, number)
        row = page.locator(".waiting-call").filter(has_text=number[-4:])
        expect(row.get_by_role("button", name="応答")).to_have_count(1)

        # Not ready (training): the answer button goes, and the page says why.
        page.get_by_label("離席の理由").select_option("training")
        page.get_by_role("button", name="離席にする").click()
        expect(badge).to_have_text("離席（研修）")
        expect(row).to_have_count(1)
        expect(row.get_by_role("button", name="応答")).to_have_count(0)
        expect(page.locator(".not-ready-note")).to_contain_text(
            "「離席（研修）」のため、応答できません"
        )
        assert_accessible(page)
        screenshot(page, "console-states-01-not-ready")

        # Ready again: the button is back.
        page.get_by_role("button", name="受付可にする").click()
        expect(badge).to_have_text("受付可")
        expect(row.get_by_role("button", name="応答")).to_have_count(1)

        # On a call: the screen pops and says so.
        row.get_by_role("button", name="応答").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("対応中の電話")
        expect(page.locator("#call-state")).to_contain_text("通話中です")
        expect(page.locator("#wrap-countdown")).to_have_count(0)

        # The caller hangs up: the wrap-up counts down from the limit (2 minutes here).
        call.hang_up()
    page.reload()
    countdown = page.locator("#wrap-countdown")
    expect(countdown).to_contain_text("後処理の期限は 10:02:00 です")
    expect(countdown).to_contain_text("期限を過ぎると自動で終了し")
    left = countdown.locator(".wrap-left")
    expect(left).to_have_text("1分59秒", timeout=5000)  # the script counts down
    assert_accessible(page)
    screenshot(page, "console-states-02-wrap-up")

    # Wrapped up: ready again.
    page.get_by_label("この電話の対応結果").select_option("resolved")
    page.get_by_role("button", name="後処理を終えて次の電話へ").click()
    expect(page).to_have_url(live_server.url("/console/"))
    expect(badge).to_have_text("受付可")
    expect(page.locator("#my-state-time")).to_have_text("0分00秒")
