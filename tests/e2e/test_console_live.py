"""A call put through by a conference, in real browsers on the live server: the agent raises a
hand and holds the caller from the call screen; a supervisor sees the raised hand first on the
live page and listens, whispers, joins and leaves, each changing their one leg in the fake
Twilio's conference as Twilio's REST API would."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from twilio.request_validator import RequestValidator

from ivr.fake_conferences import Conference, Participant
from tests.e2e.conftest import AssertAccessible, LiveServer, Shot, _new_page
from tests.e2e.test_console_pages import DESKTOP, caller_asks_for_a_person, make_person, sign_in

SUPERVISOR_DESK = "+81352734888"


@pytest.fixture
def desk(browser: Browser, external_requests: list[str]) -> Iterator[Page]:
    """The agent's desktop browser."""
    yield from _new_page(browser, external_requests, **DESKTOP)


@pytest.fixture
def supervisor_desk(browser: Browser, external_requests: list[str]) -> Iterator[Page]:
    """The supervisor's, in a browser context of its own (another session)."""
    yield from _new_page(browser, external_requests, **DESKTOP)


def eventually(found: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if found():
            return
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


def set_desk_phone(page: Page, number: str) -> None:
    page.get_by_label("応答する電話").fill(number)
    page.get_by_role("button", name="保存").click()


def caller_joins(server: LiveServer, http: httpx.Client, call_sid: str) -> Conference:
    """Twilio runs the TwiML the console redirected the caller to: into the conference."""
    eventually(lambda: [u for s, u in server.twilio.redirects if s == call_sid], "a redirect")
    [url] = [u for s, u in server.twilio.redirects if s == call_sid]
    form = {"CallSid": call_sid}
    signature = RequestValidator(server.twilio_token).compute_signature(url, form)
    twiml = http.post(
        url.removeprefix(server.public_base_url),
        data=form,
        headers={"X-Twilio-Signature": signature},
    )
    return server.twilio.join(call_sid, twiml.text)


def leg_of(room: Conference, label: str) -> Participant:
    return next(p for p in room.everyone if p.label is not None and p.label.startswith(label))


def test_a_supervisor_listens_whispers_joins_and_leaves_a_raised_hand(
    live_server: LiveServer,
    desk: Page,
    supervisor_desk: Page,
    screenshot: Shot,
    assert_accessible: AssertAccessible,
) -> None:
    agent = desk
    sign_in(agent, live_server, make_person(live_server, "agent"))
    set_desk_phone(agent, "03-5273-4999")
    number = "+819055501234"
    with httpx.Client(base_url=live_server.base_url, timeout=10) as http:
        call = caller_asks_for_a_person(live_server, http, number)
        agent.locator(".waiting-call").filter(has_text=number[-4:]).get_by_role(
            "button", name="応答"
        ).click()
        expect(agent.get_by_role("heading", level=1)).to_have_text("対応中の電話")
        room = caller_joins(live_server, http, call.call_sid)
        eventually(lambda: any(p.label == "agent" for p in room.everyone), "the agent's leg")
        agent_leg = leg_of(room, "agent")
        live_server.twilio.answer(agent_leg.call_sid)

        # The agent asks for help.
        agent.reload()
        agent.get_by_role("button", name="手を挙げる").click()
        expect(agent.get_by_role("button", name="手を下ろす")).to_be_visible()
        expect(agent.locator(".talk-controls")).to_contain_text("手を挙げています")

        supervisor = supervisor_desk
        sign_in(supervisor, live_server, make_person(live_server, "supervisor"))
        set_desk_phone(supervisor, "03-5273-4888")
        expect(supervisor.locator(".hands")).to_contain_text("手を挙げているオペレーター")
        supervisor.get_by_role("link", name="通話モニター").first.click()
        row = supervisor.locator(f'.live-call[data-call="{call.call_sid}"]')
        expect(row).to_have_class("live-call hand-raised")
        expect(row).to_contain_text("手を挙げています")
        expect(supervisor.locator(".live-call").first).to_have_attribute(
            "data-call", call.call_sid
        )  # raised hands first
        assert_accessible(supervisor)
        screenshot(supervisor, "console-live-hand-raised")

        row.get_by_role("button", name="聞く").click()
        expect(supervisor.get_by_role("status").first).to_contain_text("通話を聞いています")
        mine = leg_of(room, "supervisor")
        assert (mine.to, mine.muted, mine.coaching) == (SUPERVISOR_DESK, True, False)
        live_server.twilio.answer(mine.call_sid)
        expect(row.locator(".my-mode")).to_have_text("聞く")

        row.get_by_role("button", name="ささやく").click()
        expect(row.locator(".my-mode")).to_have_text("ささやく")
        assert (mine.muted, mine.coaching, mine.call_sid_to_coach) == (
            False,
            True,
            agent_leg.call_sid,
        )
        expect(row).to_have_class("live-call hand-raised")  # whispering does not lower it

        row.get_by_role("button", name="参加").click()
        expect(row.locator(".my-mode")).to_have_text("参加")
        assert (mine.muted, mine.coaching) == (False, False)
        assert len([p for p in room.everyone if p.to == SUPERVISOR_DESK]) == 1
        screenshot(supervisor, "console-live-joined")

        row.get_by_role("button", name="退出").click()
        expect(supervisor.get_by_role("status").first).to_contain_text("通話から退出しました")
        assert mine.call_sid not in room.participants
        assert room.status == "in-progress"

        # The agent holds the caller, then lowers the hand.
        agent.get_by_role("button", name="保留", exact=True).click()
        expect(agent.get_by_role("button", name="保留解除")).to_be_visible()
        assert room.participants[call.call_sid].hold
        agent.get_by_role("button", name="保留解除").click()
        expect(agent.get_by_role("button", name="保留", exact=True)).to_be_visible()
        assert not room.participants[call.call_sid].hold
        agent.get_by_role("button", name="手を下ろす").click()
        expect(agent.get_by_role("button", name="手を挙げる")).to_be_visible()
        supervisor.reload()
        expect(row).to_have_class("live-call")
        assert_accessible(agent)
        screenshot(agent, "console-call-talk-controls")
