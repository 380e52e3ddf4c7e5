"""Agents' phones: a queued caller put through to the answering agent's desk phone (Twilio's
REST API redirects the live call to TwiML that joins a conference the desk phone is called
into), a callback dialled from the console,
who is on duty; with a local fake of Twilio's REST API that can fail."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from ivr import service as calls
from ivr.caller import PhoneCall
from ivr.fake_twilio import FakeTwilio
from ivr.telephony import TwilioApi
from tests.agent_console.test_console import Console, ask_for_a_callback, csrf_of
from tests.ivr.conftest import PUBLIC, TOKEN, new_mobile

DESK = "+81352734999"


@pytest.fixture
def twilio(console: Console) -> Iterator[FakeTwilio]:
    with FakeTwilio(auth_token=TOKEN) as fake:
        console.app.state.phone_api = TwilioApi(
            account_sid=fake.account_sid,
            auth_token=TOKEN,
            from_number="+81353334111",
            base_url=fake.base_url,
            timeout=2,
        )
        yield fake


def twilio_fetches(http: TestClient, url: str, form: dict[str, str]) -> ET.Element:
    """What Twilio does with a URL the console handed it: a signed POST; the TwiML parsed."""
    path = url.removeprefix(PUBLIC)
    signature = RequestValidator(TOKEN).compute_signature(url, form)
    answer = http.post(path, data=form, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200, answer.text
    return ET.fromstring(answer.text)  # noqa: S314 (our own TwiML)


def a_caller_waiting(console: Console, http: TestClient, twilio: FakeTwilio) -> PhoneCall:
    call = PhoneCall(http, public_base_url=PUBLIC, auth_token=TOKEN, from_number=new_mobile())
    call.dial()
    twilio.inbound(call.call_sid, call.from_number, call.to_number)
    call.press("0")
    assert call.state == "queued"
    return call


def agent_with_desk_phone(console: Console) -> tuple[TestClient, str]:
    agent, login = console.signed_in("agent")
    home = agent.get("/console/")
    agent.post("/console/me/phone", data={"csrf": csrf_of(home.text), "phone": "03-5273-4999"})
    assert 'value="+81352734999"' in agent.get("/console/").text
    return agent, login


def answer(agent: TestClient, call: PhoneCall) -> httpx.Response:
    home = agent.get("/console/")
    response: httpx.Response = agent.post(
        f"/console/calls/{call.call_sid}/answer",
        data={"csrf": csrf_of(home.text)},
        follow_redirects=False,
    )
    return response


def test_answering_puts_the_caller_through_to_the_agents_desk_phone(
    console: Console, twilio: FakeTwilio
) -> None:
    agent, _ = agent_with_desk_phone(console)
    with TestClient(console.app) as http:
        call = a_caller_waiting(console, http, twilio)
        answered = answer(agent, call)
        assert answered.headers["location"].endswith("?audio=connected")
        screen = agent.get(answered.headers["location"])
        assert "お客様の電話を、あなたのデスク電話に転送" in screen.text
        [(sid, url)] = twilio.redirects
        assert sid == call.call_sid
        assert parse_qs(urlsplit(url).query) == {"lang": ["ja"]}  # no number in the URL
        twiml = twilio_fetches(http, url, {"CallSid": call.call_sid})
        [conference] = twiml.iter("Conference")  # the call's conference (test_conference.py)
        assert conference.text == f"madoguchi-{call.call_sid}"
        [agent_leg] = twilio.calls()  # the desk phone, called into it
        assert agent_leg.to == DESK
        assert "担当者におつなぎします" in "".join(s.text or "" for s in twiml.iter("Say"))
        # The conference never took place: the caller goes back in the queue for the next agent.
        dial = next(twiml.iter("Dial"))
        again = twilio_fetches(
            http, dial.attrib["action"], {"CallSid": call.call_sid, "DialCallStatus": "no-answer"}
        )
        assert next(again.iter("Enqueue")).text == "madoguchi-ja"
        with console.app_sessions() as db:
            waiting = [c.call_sid for c in calls.waiting_calls(db)]
        assert call.call_sid in waiting
        # No longer this agent's call: the next agent answers it.
        assert agent.get(f"/console/calls/{call.call_sid}").status_code == 403


def test_twilio_failing_leaves_the_caller_waiting_and_says_so(
    console: Console, twilio: FakeTwilio
) -> None:
    agent, _ = agent_with_desk_phone(console)
    with TestClient(console.app) as http:
        call = a_caller_waiting(console, http, twilio)
        twilio.fail_next(1, status=503, code=20503, message="Service unavailable")
        answered = answer(agent, call)
        assert answered.headers["location"].endswith("?audio=failed")
        screen = agent.get(answered.headers["location"])
        assert "音声の転送に失敗しました" in screen.text
        assert twilio.redirects == []


def test_an_agent_without_a_desk_phone_cannot_take_a_caller_out_of_line(
    console: Console, twilio: FakeTwilio
) -> None:
    agent, _ = console.signed_in("agent")
    with TestClient(console.app) as http:
        call = a_caller_waiting(console, http, twilio)
        refused = answer(agent, call)
        assert refused.headers["location"] == "/console/?refused=no_phone"
        said = agent.get(refused.headers["location"])
        assert "応答する電話（デスク電話・内線の番号）を設定してから応答してください。" in said.text
        assert twilio.redirects == []
        # Still in line, for every agent to see and answer.
        with console.app_sessions() as db:
            assert call.call_sid in [c.call_sid for c in calls.waiting_calls(db)]


def test_a_wrong_desk_number_is_explained(console: Console) -> None:
    agent, _ = console.signed_in("agent")
    home = agent.get("/console/")
    refused = agent.post("/console/me/phone", data={"csrf": csrf_of(home.text), "phone": "12"})
    assert "電話番号" in refused.text and 'role="alert"' in refused.text


def test_a_callback_rings_the_agent_then_dials_the_resident(
    console: Console, twilio: FakeTwilio
) -> None:
    agent, _ = agent_with_desk_phone(console)
    call = ask_for_a_callback(console)
    with console.app_sessions() as db:
        [mine] = [c for c in calls.open_callbacks(db) if c.phone == call.from_number]
    page = agent.get("/console/")
    screen = agent.post(f"/console/callbacks/{mine.id}/claim", data={"csrf": csrf_of(page.text)})
    dialled = agent.post(f"/console/callbacks/{mine.id}/dial", data={"csrf": csrf_of(screen.text)})
    assert "デスク電話を呼び出しています" in dialled.text
    [placed] = twilio.calls()
    assert placed.to == DESK  # the agent first: the resident is dialled once they pick up
    with TestClient(console.app) as http:
        twiml = twilio_fetches(http, str(placed.url), {"CallSid": placed.sid})
    [number] = twiml.iter("Number")
    assert number.text == call.from_number
    assert call.from_number not in str(placed.url)  # the number stays out of URLs
    twilio.fail_next(1, status=500)
    failed = agent.post(f"/console/callbacks/{mine.id}/dial", data={"csrf": csrf_of(screen.text)})
    assert "発信に失敗しました" in failed.text


def test_the_queue_shows_who_is_on_duty_and_who_is_busy(
    console: Console, twilio: FakeTwilio
) -> None:
    agent, _ = agent_with_desk_phone(console)
    watcher, _ = console.signed_in("agent")
    before = watcher.get("/console/").text
    assert "対応できる職員" in before
    with TestClient(console.app) as http:
        call = a_caller_waiting(console, http, twilio)
        answer(agent, call)
    after = watcher.get("/console/").text
    busy = re.findall(r'<li class="agent agent-on_call">(.*?)</li>', after)
    ready = re.findall(r'<li class="agent agent-ready">(.*?)</li>', after)
    assert any("：通話中（" in r for r in busy)  # the state, and the time in it
    assert any("：受付可（" in r and "電話未設定" in r for r in ready)  # the watcher itself
