"""The waitlist in the console: an agent puts a caller on a full day's list, sees the day's list
and books the offer for them when a seat frees up; each view and change audited, with IDs only."""

from __future__ import annotations

import itertools
import re
from datetime import date, time

from fastapi.testclient import TestClient
from sqlalchemy import select

from booking import schedule
from booking import service as booking
from booking.models import Slot
from booking.service import ResidentInput
from ivr.caller import PhoneCall
from tests.agent_console.test_console import Console, csrf_of, events
from tests.ivr.conftest import PUBLIC, TOKEN, new_mobile

# A Saturday at a branch with no sessions of its own: only those these tests open.
DAY = date(2027, 1, 16)
_hours = itertools.count(8)


def full_day(console: Console) -> booking.BookingView:
    hour = next(_hours)
    with console.app_sessions() as db:
        opened = schedule.open_extra_session(
            db,
            venue_id="wakamatsucho",
            service_id="pin_reset",
            day=DAY,
            opens=time(hour),
            closes=time(hour, 30),
            slot_minutes=30,
            seats=1,
        )
        slot = db.execute(select(Slot.id).where(Slot.session_id == opened.id)).scalar_one()
        made = booking.book(
            db,
            slot_id=slot,
            party=1,
            resident=ResidentInput("ハヤ タロウ", "09033334444", date(1960, 1, 1)),
            channel="web",
        )
        db.commit()
    return made


def answered(console: Console, agent: TestClient) -> tuple[PhoneCall, str]:
    """A caller who asked for a person, answered by the agent: the call and its screen."""
    with TestClient(console.app) as http:
        call = PhoneCall(http, public_base_url=PUBLIC, auth_token=TOKEN, from_number=new_mobile())
        call.dial()
        call.press("0")
    home = agent.get("/console/")
    agent.post(f"/console/calls/{call.call_sid}/answer", data={"csrf": csrf_of(home.text)})
    return call, agent.get(f"/console/calls/{call.call_sid}").text


def test_an_agent_puts_a_caller_on_the_list_and_books_the_offer_for_them(
    console: Console,
) -> None:
    taken = full_day(console)
    agent, login = console.signed_in("agent")
    call, screen = answered(console, agent)
    assert "キャンセル待ちに登録" in screen

    added = agent.post(
        f"/console/calls/{call.call_sid}/waitlist",
        data={
            "csrf": csrf_of(screen),
            "venue": "wakamatsucho",
            "service": "pin_reset",
            "day": DAY.isoformat(),
            "party": "1",
        },
    )
    assert added.status_code == 200
    assert "キャンセル待ちに登録しました（前に0人）。" in added.text
    assert call.from_number[-4:] in added.text and call.from_number not in added.text
    assert "待機中" in added.text

    with console.app_sessions() as db:
        booking.cancel_booking(db, booking_id=taken.id)
        db.commit()
    listed = agent.get("/console/waitlist", params={"venue": "wakamatsucho", "day": "2027-01-16"})
    link = re.search(r'href="(/console/waitlist/\d+/take)"', listed.text)
    assert link, listed.text
    form = agent.get(link.group(1))
    assert "お伺いする前に読み上げてください" in form.text
    booked = agent.post(
        link.group(1),
        data={
            "csrf": csrf_of(form.text),
            "name_kana": "マツ ハナコ",
            "birth_date": "1975-05-05",
            "phone": call.from_number,
            "language": "ja",
        },
    )
    assert booked.status_code == 200
    with console.app_sessions() as db:
        assert booking.waitlist_for_phone(db, phone=call.from_number) == []  # booked: done
        [mine] = booking.bookings_for_phone(db, phone=call.from_number)
    assert (mine.slot_id, mine.channel) == (taken.slot_id, "agent")

    actions = [e.action for e in events(console, login_id=login)]
    for expected in ("waitlist.join", "waitlist.view", "booking.create"):
        assert expected in actions, (expected, actions)
    for event in events(console, login_id=login):
        written = " ".join((event.subject_id, event.detail))
        assert call.from_number not in written and call.from_number[1:] not in written


def test_a_number_is_looked_up_by_a_post_and_audited(console: Console) -> None:
    full_day(console)
    agent, login = console.signed_in("agent")
    phone = new_mobile()
    with console.app_sessions() as db:
        entry = booking.join_waitlist(
            db,
            venue_id="wakamatsucho",
            service_id="pin_reset",
            day=DAY,
            party=2,
            phone=phone,
            language="en",
            channel="ivr",
        )
        db.commit()
    page = agent.get("/console/waitlist")
    assert agent.post("/console/waitlist", data={"phone": phone}).status_code == 403
    found = agent.post("/console/waitlist", data={"csrf": csrf_of(page.text), "phone": phone})
    assert phone[-4:] in found.text and "電話（自動）" in found.text
    viewed = [e for e in events(console, login_id=login) if e.action == "waitlist.view"]
    assert str(entry.id) in viewed[-1].detail
