"""Managers see the web waiting room's line on the console and change it; agents cannot, a
forged form changes nothing, and each change is in the audit log."""

from __future__ import annotations

from tests.agent_console.test_console import Console, csrf_of, events
from tests.booking.test_waiting_room import Tick, prefix, redis, room_of

__all__ = ["prefix", "redis"]  # the fixtures, from the line's own tests


def test_managers_see_the_line_and_change_its_mode_and_rate(console: Console, prefix: str) -> None:
    tick = Tick()
    room = room_of(prefix, tick, mode="off", per_minute=300)
    console.app.state.waiting_room = room

    agent, _ = console.signed_in("agent")
    assert agent.get("/console/manage/waiting").status_code == 403
    manager, login = console.signed_in("counter_manager")
    page = manager.get("/console/manage/waiting")
    assert page.status_code == 200
    assert "使わない" in page.text and "待っている人</th><td>0人" in page.text

    forged = manager.post(
        "/console/manage/waiting", data={"csrf": "x", "mode": "on", "per_minute": "5"}
    )
    assert forged.status_code == 403
    assert room.line().mode == "off"

    done = manager.post(
        "/console/manage/waiting",
        data={
            "csrf": csrf_of(page.text),
            "mode": "on",
            "per_minute": "120",
            "start": "2027-01-20T10:00",
        },
    )
    assert done.status_code == 200
    assert "1分あたり120人にしました" in done.text
    line = room.line()
    assert (line.mode, line.per_minute) == ("on", 120)
    for n in range(3):
        room.enter_sync(f"resident-{n}")
    page = manager.get("/console/manage/waiting")
    assert "待っている人</th><td>3人" in page.text
    assert "2027-01-20 10:00 から入場開始" in page.text
    [event] = events(console, login_id=login, action="manage.waiting_room")
    assert event.detail == "on, 120/min, release 2027-01-20T10:00"

    wrong = manager.post(
        "/console/manage/waiting",
        data={"csrf": csrf_of(page.text), "mode": "auto", "per_minute": "0"},
    )
    assert "入場の速さ" in wrong.text
    assert room.line().mode == "on"
