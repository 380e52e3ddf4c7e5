"""The lottery in the console: a manager keeps sessions for a lottery (first-come booking of
them stops at once), an agent applies for a caller (one application per notice number), and
once drawn the manager sees the record, which reproduces the draw and holds no personal data."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from booking import lottery
from booking import service as booking
from booking.context import TOKYO
from booking.errors import BookingError
from booking.models import Slot
from tests.agent_console.test_console import Console, csrf_of, events
from tests.booking.test_lottery import household, notice
from tests.conftest import SlotMaker


def local_field(at: datetime) -> str:
    return at.astimezone(TOKYO).strftime("%Y-%m-%dT%H:%M")


def test_a_manager_makes_a_lottery_an_agent_applies_and_the_record_is_shown(
    console: Console,
) -> None:
    with console.app_sessions() as db:
        slot = SlotMaker(db)(3)
        session_id, starts = db.execute(
            select(Slot.session_id, Slot.starts_at).where(Slot.id == slot)
        ).one()
        db.commit()
    manager, _ = console.signed_in("counter_manager")
    day = starts.astimezone(TOKYO).date().isoformat()
    page = manager.get("/console/manage/lotteries", params={"venue": "main", "first": day})
    assert page.status_code == 200
    assert f'name="session" value="{session_id}"' in page.text
    now = console.clock()
    made = manager.post(
        "/console/manage/lotteries",
        data={
            "csrf": csrf_of(page.text),
            "session": str(session_id),
            "applications_from": local_field(now - timedelta(hours=1)),
            "applications_until": local_field(now + timedelta(days=1)),
            "draw_at": local_field(now + timedelta(days=2)),
        },
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    lottery_id = int(re.search(r"/lotteries/(\d+)", made.headers["location"]).group(1))  # type: ignore[union-attr]
    assert [e.action for e in events(console, action="lottery.create")][-1] == "lottery.create"
    # First-come booking of the session stops at once, on every channel.
    with console.app_sessions() as db, pytest.raises(BookingError) as refused:
        booking.book(db, slot_id=slot, party=1, resident=household(1), channel="agent")
    assert refused.value.code == "slot_in_lottery"

    agent, _ = console.signed_in("agent")
    assert agent.get("/console/manage/lotteries").status_code == 403
    form = agent.get(f"/console/lotteries/{lottery_id}/apply")
    assert form.status_code == 200
    shared = notice()
    caller = {
        "csrf": csrf_of(form.text),
        "party": "2",
        "notice_number": [shared, notice()],
        "preference": [str(slot), ""],
        "name_kana": "デンワ タロウ",
        "phone": "090-2222-3333",
        "birth_date": "1960-05-05",
        "language": "ja",
    }
    applied = agent.post(f"/console/lotteries/{lottery_id}/apply", data=caller)
    assert applied.status_code == 200
    assert "申込番号" in applied.text
    again = agent.post(
        f"/console/lotteries/{lottery_id}/apply",
        data=caller | {"party": "1", "notice_number": [shared]},
    )
    assert "すでに申し込まれています" in again.text
    with console.app_sessions() as db:
        [application] = lottery.applications_of(db, lottery_id=lottery_id)
    assert (application.channel, application.party_size) == ("agent", 2)

    console.clock.advance(days=2, minutes=1)
    with console.app_sessions() as db:
        outcome = lottery.run_draw(db, lottery_id=lottery_id)
        db.commit()
    assert outcome is not None and list(outcome.won) == [application.id]
    manager, _ = console.signed_in("counter_manager")  # two days on: a new sign-in
    shown = manager.get(f"/console/manage/lotteries/{lottery_id}")
    assert shown.status_code == 200
    assert "検証済み" in shown.text and "当選" in shown.text
    download = manager.get(f"/console/manage/lotteries/{lottery_id}/record.json")
    assert download.headers["content-disposition"].startswith("attachment")
    record = json.loads(download.text)
    assert lottery.verify(record)
    assert "2222" not in download.text and shared not in download.text
    assert record["results"] == [[application.id, slot]]


def test_the_day_view_shows_a_lottery_slot_with_no_seat_free_to_any_channel(
    console: Console,
) -> None:
    with console.app_sessions() as db:
        slot = SlotMaker(db)(3)
        session_id, starts = db.execute(
            select(Slot.session_id, Slot.starts_at).where(Slot.id == slot)
        ).one()
        now = console.clock()
        made = lottery.create_lottery(
            db,
            session_ids=[session_id],
            applications_from=now,
            applications_until=now + timedelta(days=1),
            draw_at=now + timedelta(days=2),
        )
        db.commit()
    manager, _ = console.signed_in("counter_manager")
    day = starts.astimezone(TOKYO).date().isoformat()
    page = manager.get("/console/manage", params={"venue": "main", "day": day})
    row = next(r for r in page.text.split("<tr") if f'value="{slot}"' in r)
    assert f'href="/console/manage/lotteries/{made.id}"' in row
    assert "0／0／0" in row
    console.clock.advance(days=2, minutes=1)
    with console.app_sessions() as db:  # drawn: no later test finds it taking applications
        lottery.run_draw(db, lottery_id=made.id)
        db.commit()
