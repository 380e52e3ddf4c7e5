"""A walk-in's ticket alerts: an SMS when the venue's number of residents (3) are ahead, and one
when called, each born in the transaction of the counter's call, claimed before it goes and
never sent twice; the numbers erased once the day is over. Committed data on SQLite and
PostgreSQL, real time, through the local fake of Twilio."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from booking import schedule
from booking import service as booking
from booking.context import TOKYO
from booking.models import Venue, WalkIn
from config.housekeeping import housekeep
from reminders import jobs
from reminders import service as reminders
from reminders.models import Message
from tests.reminders.conftest import PUBLIC, RULES, Desk, new_mobile

_venues = itertools.count()


@pytest.fixture(autouse=True)
def venues_closed_after(desk: Desk) -> Iterator[None]:
    """The pop-up venues a test opens are committed: closed after it, so that other tests
    counting the ward's venues do not see them."""
    yield
    with desk.sessions() as db:
        db.execute(update(Venue).where(Venue.id.like("alerts_%")).values(active=False))
        db.commit()


def open_today(desk: Desk) -> str:
    """A pop-up venue of the test's own, open all of today (Tokyo) with seats to spare."""
    venue = f"alerts_{datetime.now().microsecond}_{next(_venues)}"[:40]  # noqa: DTZ005
    today = desk.clock().astimezone(TOKYO).date()
    with desk.sessions() as db:
        schedule.add_popup_venue(db, venue_id=venue, name_ja="臨時窓口", name_en="", address_ja="")
        schedule.open_extra_session(
            db,
            venue_id=venue,
            service_id="application_help",
            day=today,
            opens=time(0, 0),
            closes=time(23, 30),
            slot_minutes=30,
            seats=20,
            kind="popup",
        )
        db.commit()
    return venue


def issue(desk: Desk, venue: str, count: int) -> list[booking.WalkInView]:
    with desk.sessions() as db:
        made = [
            booking.walk_in(db, venue_id=venue, service_id="application_help", party=1)
            for _ in range(count)
        ]
        db.commit()
    return made


def call(desk: Desk, venue: str, number: int, desk_name: str | None = None) -> list[int]:
    """The counter's call and the alerts it makes due, in one transaction (as the console)."""
    with desk.sessions() as db:
        booking.call_walk_in(db, venue_id=venue, number=number, desk=desk_name)
        made = reminders.plan_queue_alerts(db, venue_id=venue)
        db.commit()
    return made


def alerts(db: Session, walk_in_id: int) -> list[Message]:
    return list(
        db.execute(
            select(Message).where(Message.walk_in_id == walk_in_id).order_by(Message.id)
        ).scalars()
    )


def test_a_ticket_is_texted_when_three_are_ahead_and_when_called_once_each(desk: Desk) -> None:
    jobs.use(replace(desk.runtime, rules=replace(RULES, site_url=PUBLIC)))
    venue = open_today(desk)
    tickets = issue(desk, venue, 6)
    last = tickets[-1]
    phone = new_mobile()
    with desk.sessions() as db:
        booking.leave_ticket_phone(db, token=str(last.token), phone=phone, language="en")
        db.commit()

    assert call(desk, venue, tickets[0].number) == []  # four ahead of the last: not yet
    [near] = call(desk, venue, tickets[1].number)  # three ahead now
    assert call(desk, venue, tickets[2].number) == []  # two ahead: told already
    assert jobs.send(near) == "sent"
    assert jobs.send(near) == "nothing to send"  # claimed and sent: never again
    [body] = desk.sms_to(phone)
    assert f"Ticket {last.number}" in body and f"{PUBLIC}/queue/{last.token}" in body
    assert "(2 ahead)" in body  # as the queue is when the text goes

    [called] = call(desk, venue, last.number, desk_name="4")
    assert call(desk, venue, last.number) == []  # calling again: no second text
    assert jobs.send(called) == "sent"
    assert jobs.send(called) == "nothing to send"
    texts = desk.sms_to(phone)
    assert len(texts) == 2 and "desk 4" in texts[1], texts
    with desk.sessions() as db:
        ticket = booking.ticket(db, token=str(last.token))
        kinds = [(m.kind, m.status) for m in alerts(db, ticket.walk_in_id)]
    assert kinds == [("queue_near", "sent"), ("queue_called", "sent")]


def test_a_near_text_for_a_ticket_called_meanwhile_is_dropped(desk: Desk) -> None:
    venue = open_today(desk)
    first, second = issue(desk, venue, 2)
    phone = new_mobile()
    with desk.sessions() as db:
        booking.leave_ticket_phone(db, token=str(second.token), phone=phone)
        db.commit()
    [near] = call(desk, venue, first.number)  # one ahead
    [called] = call(desk, venue, second.number)  # called before the near text went
    assert jobs.send(near) == "nothing to send"
    assert jobs.send(called) == "sent"
    [body] = desk.sms_to(phone)
    assert f"整理券{second.number}番" in body and "お呼びしています" in body


def test_the_pump_arms_the_alerts_born_with_a_call(desk: Desk) -> None:
    venue = open_today(desk)
    [only] = issue(desk, venue, 1)
    with desk.sessions() as db:
        booking.leave_ticket_phone(db, token=str(only.token), phone=new_mobile())
        db.commit()
    [called] = call(desk, venue, only.number)
    jobs.pump()
    assert desk.armed.sends(called)


def test_the_numbers_are_erased_once_the_day_is_over(desk: Desk) -> None:
    venue = open_today(desk)
    first, second = issue(desk, venue, 2)
    phone = new_mobile()
    with desk.sessions() as db:
        booking.leave_ticket_phone(db, token=str(second.token), phone=phone)
        db.commit()
    [near] = call(desk, venue, first.number)
    assert jobs.send(near) == "sent"
    today = desk.clock().astimezone(TOKYO).date()
    with desk.sessions() as db:
        # Today is not over: nothing goes.
        booking.erase_ticket_phones(db, before=today)
        reminders.erase_queue_alert_numbers(db)
        assert booking.ticket(db, token=str(second.token)).phone == phone
        tomorrow = desk.clock() + timedelta(days=1)
        assert booking.erase_ticket_phones(db, before=today + timedelta(days=1)) >= 1
        assert reminders.erase_queue_alert_numbers(db, today=tomorrow) >= 1
        db.commit()
    with desk.sessions() as db:
        ticket = booking.ticket(db, token=str(second.token))
        assert ticket.phone is None
        [message] = alerts(db, ticket.walk_in_id)
        assert (message.to_enc, message.to_hmac, message.status) == ("", "", "sent")


def test_housekeeping_erases_the_numbers_of_past_days(desk: Desk) -> None:
    venue = open_today(desk)
    first, second = issue(desk, venue, 2)
    phone = new_mobile()
    with desk.sessions() as db:
        booking.leave_ticket_phone(db, token=str(second.token), phone=phone)
        db.commit()
    [near] = call(desk, venue, first.number)
    housekeep(desk.sessions)
    with desk.sessions() as db:  # today's: kept for the day's texts
        assert booking.ticket(db, token=str(second.token)).phone == phone
        walk_in_id = booking.ticket(db, token=str(second.token)).walk_in_id
        # The day is over (as if it were tomorrow): the ticket and its text are a day old.
        yesterday = desk.clock() - timedelta(days=1)
        db.execute(
            update(WalkIn)
            .where(WalkIn.id == walk_in_id)
            .values(day=yesterday.astimezone(TOKYO).date())
        )
        db.execute(update(Message).where(Message.id == near).values(send_after=yesterday))
        db.commit()
    housekeep(desk.sessions)
    with desk.sessions() as db:
        assert booking.ticket(db, token=str(second.token)).phone is None
        [message] = alerts(db, walk_in_id)
        assert (message.to_enc, message.to_hmac) == ("", "")
