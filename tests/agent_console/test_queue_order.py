"""The agents' one order (callers waiting on the line and callbacks that kept their place, by
when each first called), the wallboard's callbacks waiting by age, and the monthly report's
callbacks kept. Each test on a day of its own in 2028 (no other test's calls on it)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from fastapi.testclient import TestClient

from agent_console.report import figures, monthly_report, render_html
from booking.context import TOKYO
from ivr import service as calls
from ivr.caller import PhoneCall
from tests.agent_console.test_console import Console
from tests.ivr.conftest import PUBLIC, TOKEN, new_mobile

AGENT = 990_002  # a staff id: callbacks keep the id, no account is looked up

ROW = re.compile(r'<tr class="(waiting-call|callback)">(.*?)</tr>', re.S)
TURN = re.compile(r'<td class="turn">(\d+)</td>')


def queued(http: TestClient) -> PhoneCall:
    call = PhoneCall(http, public_base_url=PUBLIC, auth_token=TOKEN, from_number=new_mobile())
    call.dial()
    call.press("0")
    assert call.state == "queued"
    return call


def callback_from_the_queue(http: TestClient) -> PhoneCall:
    call = queued(http)
    call.press("1")  # a callback instead of waiting
    call.press("1")  # to this phone's number
    assert call.state == "ended"
    return call


def test_waiting_callers_and_kept_callbacks_in_one_order(console: Console) -> None:
    clock = console.clock

    def at(minute: int) -> None:
        clock.set(datetime(2028, 3, 6, 10, minute, tzinfo=TOKYO))

    ward_number = new_mobile()
    with TestClient(console.app) as http:
        at(0)
        first = queued(http)
        at(1)
        second = queued(http)
        at(2)
        with console.app_sessions() as db:  # the ward's own callback: its place is now
            calls.ask_agents_to_call(db, phone=ward_number, language="ja", reason="after_hours")
            db.commit()
        at(3)
        first.press("1")  # the first caller leaves the line for a callback: keeps 10:00
        first.press("1")
        at(4)
        third = queued(http)
    at(5)
    agent, _ = console.signed_in("agent")
    page = agent.get("/console/").text
    numbers = {
        first.from_number[-4:]: "first",
        second.from_number[-4:]: "second",
        ward_number[-4:]: "ward",
        third.from_number[-4:]: "third",
    }
    mine = [
        (numbers[tail], kind, row)
        for kind, row in ROW.findall(page)
        for tail in numbers
        if tail in row
    ]
    assert [(who, kind) for who, kind, _row in mine] == [
        ("first", "callback"),
        ("second", "waiting-call"),
        ("ward", "callback"),
        ("third", "waiting-call"),
    ]
    assert "最初の着信 10:00（待ち順を保持）" in mine[0][2]
    assert "待ち時間" in mine[0][2]  # the reason: waited too long
    assert "受付 10:02" in mine[2][2] and "待ち順を保持" not in mine[2][2]
    turns = [int(TURN.findall(row)[0]) for *_, row in mine]
    assert turns == sorted(turns)
    assert "順番（お待ちの電話" in page


def test_the_wallboard_counts_callbacks_waiting_by_age(console: Console) -> None:
    now = datetime(2028, 3, 7, 12, 0, tzinfo=TOKYO)
    console.clock.set(now)
    with console.app_sessions() as db:
        before = dict(calls.callbacks_by_age(db).bands)
    for ago in (timedelta(hours=2), timedelta(minutes=30), timedelta(minutes=5)):
        console.clock.set(now - ago)
        with console.app_sessions() as db:
            calls.ask_agents_to_call(db, phone=new_mobile(), language="ja", reason="after_hours")
            db.commit()
    console.clock.set(now)
    with console.app_sessions() as db:
        ages = calls.callbacks_by_age(db)
    after = dict(ages.bands)
    assert list(after) == ["15分未満", "15〜60分", "1〜4時間", "4時間以上"]
    assert {band: after[band] - before[band] for band in after} == {
        "15分未満": 1,
        "15〜60分": 1,
        "1〜4時間": 1,
        "4時間以上": 0,
    }
    assert ages.oldest_seconds is not None and ages.oldest_seconds >= 2 * 3600
    supervisor, _ = console.signed_in("supervisor")
    page = supervisor.get("/console/wallboard").text
    assert "折り返し待ち（経過時間別）" in page
    assert f'data-band="1〜4時間">{after["1〜4時間"]}</td>' in page
    assert f'data-band="15分未満">{after["15分未満"]}</td>' in page


def test_the_monthly_report_counts_the_callbacks_kept(console: Console) -> None:
    clock = console.clock

    def at(minute: int) -> None:
        clock.set(datetime(2028, 4, 3, 10, 0, tzinfo=TOKYO) + timedelta(minutes=minute))

    with TestClient(console.app) as http:
        asked = []
        for minute in range(4):
            at(minute)
            asked.append(callback_from_the_queue(http))
    with console.app_sessions() as db:
        calls.ask_agents_to_call(db, phone=new_mobile(), language="ja", reason="after_hours")
        ids = {c.phone: c.id for c in calls.open_callbacks(db)}
        db.commit()
    first, second, third, _fourth = (ids[c.from_number] for c in asked)

    def call_back(callback_id: int, minute: int, outcome: str) -> None:
        at(minute)
        with console.app_sessions() as db:
            assert calls.claim_callback(db, callback_id=callback_id, staff_id=AGENT)
            assert calls.finish_callback(
                db, callback_id=callback_id, staff_id=AGENT, outcome=outcome
            )
            db.commit()

    call_back(first, 20, "reached")  # 20 minutes after the request
    call_back(second, 41, "reached")  # 40 minutes after
    call_back(third, 50, "no_answer")  # tried; still open for another try
    with console.app_sessions() as db:
        report = monthly_report(db, month=date(2028, 4, 1))
    kept = {item: value for section, item, value in figures(report) if section == "callbacks kept"}
    assert kept == {
        "asked for from the queue": "4",  # the ward's own callback is not one of them
        "reached": "2",
        "not reached": "1",
        "still waiting": "1",
        "median time to call back (s)": "1800.000",
    }
    html = render_html(report)
    assert "待ち順を保持した折り返し" in html
    assert "<th>依頼から折り返しまで（中央値）</th><td>30分</td>" in html
