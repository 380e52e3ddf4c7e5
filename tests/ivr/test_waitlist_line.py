"""The waitlist on the phone line: a caller whose chosen day is full presses 6 to join its list.
(A landline's offer, a call we place, is in tests/reminders/test_waitlist_offers.py.)"""

from __future__ import annotations

import itertools
from datetime import date, time

from sqlalchemy import select

from booking import schedule
from booking import service as booking
from booking.models import Slot
from booking.service import ResidentInput
from ivr.flow import prompt
from ivr.speech import say_date
from tests.ivr.conftest import Line
from tests.ivr.test_line import heard

# A Saturday: only the sessions these tests open (at a branch no other test uses then).
FULL_DAY = date(2027, 1, 9)
_hours = itertools.count(8)


def full_day(line: Line) -> int:
    """The day's one PIN-reset seat at Okubo, booked; the slot."""
    hour = next(_hours)
    with line.sessions() as db:
        opened = schedule.open_extra_session(
            db,
            venue_id="okubo",
            service_id="pin_reset",
            day=FULL_DAY,
            opens=time(hour),
            closes=time(hour, 30),
            slot_minutes=30,
            seats=1,
        )
        slot = db.execute(select(Slot.id).where(Slot.session_id == opened.id)).scalar_one()
        booking.book(
            db,
            slot_id=slot,
            party=1,
            resident=ResidentInput(None, "09055556666", date(1960, 1, 1)),
            channel="web",
        )
        db.commit()
    return int(slot)


def test_a_caller_on_a_full_day_joins_its_waitlist_with_6(line: Line) -> None:
    full_day(line)
    with line.sessions() as db:
        venues = [v.id for v in booking.list_venues(db, service_id="pin_reset")]
    call = line.call()
    call.dial()
    call.press("1")  # a new booking
    call.press("3")  # PIN reset
    call.press("1")  # one person
    call.press(f"{venues.index('okubo') + 1}#")
    call.press("5")  # choose a date
    call.press(f"{FULL_DAY:%m%d}#")
    assert heard(call, prompt("ja", "waitlist_join_key", day=say_date(FULL_DAY, "ja")))
    call.press("6")
    assert heard(call, prompt("ja", "waitlist_joined", count=0))
    assert heard(call, prompt("ja", "waitlist_sms"))
    with line.sessions() as db:
        [entry] = booking.waitlist_for_phone(db, phone=call.from_number)
    assert (entry.venue_id, entry.day, entry.channel, entry.status) == (
        "okubo",
        FULL_DAY,
        "ivr",
        "waiting",
    )
    assert line.state(call).hold is None  # the time offered before went back
