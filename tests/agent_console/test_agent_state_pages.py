"""Agents' states over HTTP: the state switch and badge, the answer button only for a ready
agent (and the answer refused otherwise, saying why), who is on duty in which state, the
wrap-up countdown and its limit, signing out, the wallboard's agents and occupancy and the
monthly report's time per state. Callers come through the webhooks (the fake Twilio)."""

from __future__ import annotations

import re
from datetime import datetime

from fastapi.testclient import TestClient
from sqlalchemy import update

from agent_console import report
from agent_console.models import StaffUser
from booking.context import TOKYO
from ivr import service as calls
from ivr.caller import PhoneCall
from tests.agent_console.test_console import Console, ask_for_a_callback, csrf_of, events
from tests.ivr.conftest import PUBLIC, TOKEN, new_mobile


def queued_caller(console: Console) -> PhoneCall:
    """A resident who asked for a person and waits in the queue."""
    # The app's lifespan runs in the console fixture: this client stays usable for the call.
    http = TestClient(console.app)
    call = PhoneCall(http, public_base_url=PUBLIC, auth_token=TOKEN, from_number=new_mobile())
    call.dial()
    call.press("0")
    assert call.state == "queued"
    return call


def my_row(page: str, call: PhoneCall) -> str:
    rows: list[str] = re.findall(r'<tr class="waiting-call">(.*?)</tr>', page, re.S)
    [mine] = [r for r in rows if call.from_number[-4:] in r]
    return mine


def choose(browser: TestClient, state: str, reason: str = "") -> None:
    home = browser.get("/console/")
    moved = browser.post(
        "/console/me/state",
        data={"csrf": csrf_of(home.text), "state": state, "reason": reason},
        follow_redirects=False,
    )
    assert moved.status_code == 303


def named(console: Console, login: str) -> str:
    """Give the agent a name of their own (every test agent is "agent san"): the name."""
    name = f"係員 {login}"
    with console.app_sessions() as db:
        db.execute(update(StaffUser).where(StaffUser.login_id == login).values(display_name=name))
        db.commit()
    return name


def ready_count(page: str) -> int:
    found = re.search(r'id="agents-ready"[^>]*>(\d+)<', page)
    assert found, "no count of ready agents"
    return int(found.group(1))


def badge(page: str) -> str:
    found = re.search(r'id="my-state">([^<]*)<', page)
    assert found, "no state badge"
    return found.group(1)


def test_only_a_ready_agent_sees_the_answer_button_and_may_answer(console: Console) -> None:
    console.clock.set(datetime(2026, 12, 17, 10, 0, tzinfo=TOKYO))
    agent, login = console.signed_in("agent")
    name = named(console, login)
    call = queued_caller(console)
    home = agent.get("/console/")
    assert badge(home.text) == "受付可"  # signing in makes the agent ready
    assert "応答</button>" in my_row(home.text, call)

    choose(agent, "not_ready", "break")
    console.clock.set(datetime(2026, 12, 17, 10, 3, 5, tzinfo=TOKYO))
    away = agent.get("/console/")
    assert badge(away.text) == "離席（休憩）"
    assert "3分05秒" in away.text  # the time in the state
    assert "応答</button>" not in my_row(away.text, call)
    assert "「離席（休憩）」のため、応答できません" in away.text
    # Who is on duty, with the state and the time in it.
    assert f'class="agent agent-not_ready">{name}：離席（休憩）（3分05秒）' in away.text
    [event] = events(console, login_id=login, action="agent.state")
    assert event.detail == "not_ready break"

    # Pressing answer anyway (an old page) is refused, saying why; the caller keeps waiting.
    refused = agent.post(
        f"/console/calls/{call.call_sid}/answer",
        data={"csrf": csrf_of(away.text)},
        follow_redirects=False,
    )
    assert refused.headers["location"] == "/console/?refused=not_ready"
    said = agent.get(refused.headers["location"])
    assert "離席中のため応答できません。「受付可」にしてから応答してください。" in said.text
    assert "応答</button>" not in my_row(said.text, call)
    assert not events(console, login_id=login, action="call.answer")
    with console.app_sessions() as db:
        record = calls.get_call(db, call_sid=call.call_sid)
    assert record is not None and record.agent_staff_id is None

    choose(agent, "ready")
    back = agent.get("/console/")
    assert badge(back.text) == "受付可"
    assert "応答</button>" in my_row(back.text, call)
    taken = agent.post(
        f"/console/calls/{call.call_sid}/answer",
        data={"csrf": csrf_of(back.text)},
        follow_redirects=False,
    )
    assert taken.headers["location"] == f"/console/calls/{call.call_sid}?audio=no_phone"
    call.hang_up()


def test_a_callback_is_taken_on_only_by_a_ready_agent(console: Console) -> None:
    agent, _ = console.signed_in("agent")
    ask_for_a_callback(console)
    with console.app_sessions() as db:
        [callback] = [c for c in calls.open_callbacks(db) if c.claimed_by is None][-1:]
    claim = f"/console/callbacks/{callback.id}/claim"
    choose(agent, "not_ready", "meeting")
    away = agent.get("/console/")
    assert f'action="{claim}"' not in away.text  # no 担当する while away
    refused = agent.post(claim, data={"csrf": csrf_of(away.text)}, follow_redirects=False)
    assert refused.headers["location"] == "/console/?refused=not_ready"
    with console.app_sessions() as db:
        [still] = [c for c in calls.open_callbacks(db) if c.id == callback.id]
    assert still.claimed_by is None  # left on the list for a ready agent

    choose(agent, "ready")
    back = agent.get("/console/")
    assert f'action="{claim}"' in back.text
    taken = agent.post(claim, data={"csrf": csrf_of(back.text)}, follow_redirects=False)
    assert taken.headers["location"] == f"/console/callbacks/{callback.id}"


def test_a_reason_that_is_not_on_the_list_is_refused(console: Console) -> None:
    agent, _ = console.signed_in("agent")
    home = agent.get("/console/")
    refused = agent.post(
        "/console/me/state",
        data={"csrf": csrf_of(home.text), "state": "not_ready", "reason": "nap"},
        follow_redirects=False,
    )
    assert refused.headers["location"] == "/console/?refused=reason"
    said = agent.get(refused.headers["location"])
    assert "離席の理由（休憩・研修・会議）を選んでください。" in said.text
    assert badge(agent.get("/console/").text) == "受付可"
    expired = agent.post("/console/me/state", data={"csrf": "x", "state": "not_ready"})
    assert expired.status_code == 403


def test_the_wrap_up_counts_down_and_its_limit_makes_the_agent_ready(console: Console) -> None:
    console.clock.set(datetime(2026, 12, 17, 11, 0, tzinfo=TOKYO))
    agent, _ = console.signed_in("agent")
    call = queued_caller(console)
    home = agent.get("/console/")
    agent.post(f"/console/calls/{call.call_sid}/answer", data={"csrf": csrf_of(home.text)})
    screen = agent.get(f"/console/calls/{call.call_sid}")
    assert 'id="wrap-countdown"' not in screen.text  # still talking
    assert badge(agent.get("/console/").text) == "通話中"
    # A second call waits: the agent on a call is not offered it.
    other = queued_caller(console)
    assert "応答</button>" not in my_row(agent.get("/console/").text, other)

    console.clock.set(datetime(2026, 12, 17, 11, 4, tzinfo=TOKYO))
    call.hang_up()  # the talk ends: the wrap-up starts
    console.clock.set(datetime(2026, 12, 17, 11, 4, 30, tzinfo=TOKYO))
    screen = agent.get(f"/console/calls/{call.call_sid}")
    countdown = re.search(r'<p class="wrap-countdown".*?</p>', screen.text, re.S)
    assert countdown, "no wrap-up countdown"
    assert 'data-left="90"' in countdown.group(0)
    assert '後処理の期限は 11:06:00 です（あと<span class="wrap-left">1分30秒' in countdown.group(0)
    assert '<script src="/console/static/wrap_up.js">' in screen.text
    assert badge(agent.get("/console/").text) == "後処理"

    console.clock.set(datetime(2026, 12, 17, 11, 6, 1, tzinfo=TOKYO))  # the limit passed
    home = agent.get("/console/")
    assert badge(home.text) == "受付可"
    assert "対応中の電話があります" not in home.text
    assert "応答</button>" in my_row(home.text, other)
    with console.app_sessions() as db:
        record = calls.agent_call(db, call_sid=call.call_sid)
    assert record is not None and record.disposition == "timed_out"
    assert record.wrapped_at == datetime(2026, 12, 17, 11, 6, tzinfo=TOKYO)
    screen = agent.get(f"/console/calls/{call.call_sid}")
    assert "後処理は完了しています" in screen.text
    other.hang_up()


def test_signing_out_makes_the_agent_offline_and_the_wallboard_counts_them(
    console: Console,
) -> None:
    day = datetime(2026, 12, 18, 9, 0, tzinfo=TOKYO)
    console.clock.set(day)
    agent, login = console.signed_in("agent")
    name = named(console, login)
    supervisor, _ = console.signed_in("supervisor")
    board = supervisor.get("/console/wallboard")
    assert board.status_code == 200
    assert f'<tr class="agent-now agent-ready"><td>{name}</td><td>受付可</td>' in board.text
    ready_before = ready_count(board.text)

    call = queued_caller(console)
    console.clock.set(day.replace(minute=30))
    supervisor.get("/console/wallboard")
    home = agent.get("/console/")
    agent.post(f"/console/calls/{call.call_sid}/answer", data={"csrf": csrf_of(home.text)})
    console.clock.set(day.replace(minute=40))
    call.hang_up()
    console.clock.set(day.replace(minute=41))  # a minute's wrap-up (within the limit)
    supervisor.get("/console/wallboard")  # the supervisor's session stays alive
    screen = agent.get(f"/console/calls/{call.call_sid}")
    agent.post(
        f"/console/calls/{call.call_sid}/wrap-up",
        data={"csrf": csrf_of(screen.text), "disposition": "resolved"},
    )
    console.clock.set(day.replace(hour=10))
    board = supervisor.get("/console/wallboard")
    assert ready_count(board.text) == ready_before
    # Today: ready 9:00-9:30 and 9:41-10:00, on the call 10 minutes, wrap-up 1 minute.
    row = re.search(rf'<tr class="agent-time"><td>{name}</td>(.*?)</tr>', board.text, re.S)
    assert row, "no time per state for the agent"
    cells = re.findall(r"<td>(.*?)</td>", row.group(1))
    assert cells[:3] == ["49分00秒", "10分00秒", "1分00秒"]
    assert cells[-2:] == ["1", "18%"]  # 11 of 60 minutes

    home = agent.get("/console/")
    agent.post("/console/logout", data={"csrf": csrf_of(home.text)})
    board = supervisor.get("/console/wallboard")
    assert ready_count(board.text) == ready_before - 1
    assert f"<td>{name}</td>" not in board.text.split("今日の状態別の時間")[0]

    # The month's report: occupancy and the agent's time per state, on the page and in the CSV.
    with console.app_sessions() as db:
        made = report.monthly_report(db, month=day.date())
        [mine] = [t for t in made.agents if t.display_name == name]
        assert (mine.ready, mine.on_call, mine.wrap_up, mine.calls) == (2940, 600, 60, 1)
        rows = report.figures(made)
    assert ("agents", "occupancy", f"{made.occupancy:.3f}") in rows
    section = f"agent {mine.staff_id} {name}"
    assert (section, "ready (s)", "2940") in rows
    assert (section, "on a call (s)", "600") in rows
    assert (section, "occupancy", "0.183") in rows
    assert "7. オペレーターの稼働" in report.render_html(made)
    assert [e for e in events(console, login_id=login) if e.action == "staff.logout"]
