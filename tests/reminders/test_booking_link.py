"""Text-a-link: a caller on a mobile presses 4 at the main menu, or 2 while waiting in the
queue, and gets the web booking's link by SMS, then the line hangs up; the call is counted as
deflected. The SMS goes as every SMS does: an outbox row in the call's own transaction, planned
by the pump, claimed before it is sent through (the fake) Twilio, never twice. One link per
number an hour, said kindly when refused. A landline caller is not offered it. Through the
webhooks, on SQLite and PostgreSQL, at 10:00 on a weekday (the call center is open)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from booking.context import TOKYO
from config.db import make_sessionmaker
from ivr import service as calls
from ivr.caller import PhoneCall
from ivr.fake_twilio import FakeTwilio
from ivr.flow import prompt
from ivr.models import CallEvent, LinkRequest
from ivr.telephony import TwilioApi
from reminders import jobs
from reminders import service as reminders
from reminders.jobs import Runtime
from reminders.models import Message
from reminders.texts import compose_booking_link
from tests.conftest import FakeClock, app_for, make_context
from tests.reminders.conftest import (
    PUBLIC,
    RULES,
    TOKEN,
    WARD,
    ArmedJobs,
    new_landline,
    new_mobile,
)

RULES_WITH_SITE = replace(RULES, site_url=PUBLIC)


@dataclass
class Phones:
    """The phone line and the reminders' jobs on one clock, sending through a fake Twilio."""

    http: TestClient
    twilio: FakeTwilio
    sessions: sessionmaker[Session]
    clock: FakeClock
    armed: ArmedJobs

    def call(self, number: str) -> PhoneCall:
        return PhoneCall(self.http, public_base_url=PUBLIC, auth_token=TOKEN, from_number=number)

    def sms_to(self, number: str) -> list[str]:
        return [m.body or "" for m in self.twilio.messages() if m.to == number]

    def links_of(self, call: PhoneCall) -> list[Message]:
        record = calls_record(self, call)
        with self.sessions() as db:
            return list(db.execute(select(Message).where(Message.call_id == record)).scalars())

    def send_due_links(self, call: PhoneCall) -> list[str]:
        """The worker's way: plan the link requests (the pump's step for them), then the send
        job of each new message of this call (claim, Twilio, record). The rest of the pump is
        left alone, and other tests' messages are not sent here: they share the database, and
        this clock is not theirs."""
        with self.sessions() as db:
            reminders.plan_link_texts(db)
            db.commit()
        due = [m.id for m in self.links_of(call) if m.status == "scheduled"]
        return [jobs.send(message_id) for message_id in due]


def calls_record(phones: Phones, call: PhoneCall) -> int:
    with phones.sessions() as db:
        found = calls.get_call(db, call_sid=call.call_sid)
    assert found is not None
    return found.id


@pytest.fixture
def phones(engine: Engine, tmp_path: Path, clock: FakeClock) -> Iterator[Phones]:
    app = app_for(engine, clock, tmp_path, twilio_auth_token=TOKEN, public_base_url=PUBLIC)
    sessions = make_sessionmaker(engine, make_context(clock))
    app.state.sessions = sessions
    armed = ArmedJobs()
    with FakeTwilio(auth_token=TOKEN) as twilio:
        api = TwilioApi(
            account_sid=twilio.account_sid,
            auth_token=TOKEN,
            from_number=WARD,
            base_url=twilio.base_url,
            timeout=0.5,
        )
        jobs.use(
            Runtime(
                sessions=sessions,
                rules=RULES_WITH_SITE,
                jobs=armed,
                phone=api,
                public_base_url=PUBLIC,
                claim_timeout=timedelta(minutes=2),
            )
        )
        with TestClient(app, raise_server_exceptions=False) as http:
            yield Phones(http, twilio, sessions, clock, armed)


def said(call: PhoneCall, key: str, lang: str = "ja") -> bool:
    return any(prompt(lang, key) in line for line in call.turns[-1])


def events(phones: Phones, call: PhoneCall) -> list[str]:
    record = calls_record(phones, call)
    with phones.sessions() as db:
        return list(db.execute(select(CallEvent.kind).where(CallEvent.call_id == record)).scalars())


def test_a_mobile_caller_presses_4_at_the_menu_and_gets_the_link(phones: Phones) -> None:
    number = new_mobile()
    call = phones.call(number)
    call.dial()
    assert said(call, "menu_link")
    call.press("4")
    assert said(call, "link_sent")
    assert call.state == "ended"
    with phones.sessions() as db:
        record = calls.get_call(db, call_sid=call.call_sid)
    assert record is not None and record.outcome == "deflected"
    assert events(phones, call).count("deflected") == 1
    # Nothing sent by the webhook itself: the outbox row waits for the pump.
    assert phones.sms_to(number) == []
    assert phones.send_due_links(call) == ["sent"]
    [body] = phones.sms_to(number)
    assert f"{PUBLIC}/" in body and "?lang=" not in body  # the Japanese pages
    assert body.startswith("【マイナンバーカード予約】")
    [message] = phones.links_of(call)
    assert (message.kind, message.channel, message.status) == ("booking_link", "sms", "sent")
    assert message.attempts == 1
    # Never twice: the pump again plans nothing, a second send job finds nothing to send.
    assert phones.send_due_links(call) == []
    assert jobs.send(message.id) == "nothing to send"
    assert len(phones.sms_to(number)) == 1
    assert len(phones.links_of(call)) == 1


def test_a_landline_caller_does_not_hear_the_choice_and_4_is_a_miss(phones: Phones) -> None:
    call = phones.call(new_landline())
    call.dial()
    assert said(call, "menu") and not said(call, "menu_link")
    call.press("4")
    assert said(call, "wrong_key")
    assert call.state == "gathering"  # the menu again
    record = calls_record(phones, call)
    with phones.sessions() as db:
        found = calls.get_call(db, call_sid=call.call_sid)
        asked = db.execute(
            select(func.count()).select_from(LinkRequest).where(LinkRequest.call_id == record)
        ).scalar_one()
    assert found is not None and "menu!" in found.path and found.outcome == "in_progress"
    assert asked == 0


def test_key_2_in_the_queue_leaves_it_for_the_link_in_english(phones: Phones) -> None:
    number = new_mobile()
    call = phones.call(number)
    call.dial()
    call.press("9")
    assert said(call, "menu_link", "en")
    call.press("0")
    assert call.queue == "madoguchi-en"
    assert said(call, "queue_link_keys", "en")  # the wait loop tells mobile callers
    call.press("2")
    assert said(call, "link_sent", "en")
    assert call.state == "ended"
    with phones.sessions() as db:
        record = calls.get_call(db, call_sid=call.call_sid)
    assert record is not None
    assert (record.outcome, record.queue_result) == ("deflected", "leave")
    assert "deflected" in events(phones, call)
    assert phones.send_due_links(call) == ["sent"]
    [body] = phones.sms_to(number)
    assert f"{PUBLIC}/?lang=en" in body and body.startswith("My Number Card bookings")


def test_a_landline_caller_in_the_queue_is_not_offered_the_link(phones: Phones) -> None:
    call = phones.call(new_landline())
    call.dial()
    call.press("0")
    assert call.queue == "madoguchi-ja"
    heard = " ".join(call.turns[-1])
    assert prompt("ja", "queue_position", position=1) in heard  # the wait loop, heard
    assert prompt("ja", "queue_link_keys") not in heard
    call.press("2")
    assert call.state == "queued"  # still waiting, in their place


def test_one_link_per_number_an_hour(phones: Phones) -> None:
    number = new_mobile()
    first = phones.call(number)
    first.dial()
    first.press("4")
    assert said(first, "link_sent")
    # The same number again (a spoofed caller ID, or the same resident): said kindly, no text.
    again = phones.call(number)
    again.dial()
    again.press("4")
    assert said(again, "link_refused")
    assert again.prompt is not None and said(again, "menu")  # the menu goes on
    # ...nor from the queue: the caller keeps their place.
    again.press("0")
    again.press("2")
    assert said(again, "link_refused")
    assert again.state == "queued"
    with phones.sessions() as db:
        record = calls.get_call(db, call_sid=again.call_sid)
    assert record is not None and record.outcome != "deflected"
    assert "deflected" not in events(phones, again)
    again.hang_up()
    assert phones.send_due_links(again) == []  # nothing for the refused call
    assert phones.send_due_links(first) == ["sent"]
    assert len(phones.sms_to(number)) == 1
    # An hour later it may go again.
    phones.clock.advance(minutes=61)
    later = phones.call(number)
    later.dial()
    later.press("4")
    assert said(later, "link_sent")
    assert phones.send_due_links(later) == ["sent"]
    assert len(phones.sms_to(number)) == 2
    phones.clock.advance(minutes=-61)


def test_the_pump_plans_the_link_and_arms_its_send(
    phones: Phones, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pump wakes after the call's commit and arms the link's send with the others'."""
    # Only the link's part of the pump: other tests' messages share the database.
    monkeypatch.setattr(reminders, "pass_on_lapsed_offers", lambda db: None)
    monkeypatch.setattr(reminders, "plan_from_outbox", lambda db, rules: reminders.Planned(0, 0, 0))
    monkeypatch.setattr(jobs, "reconcile", lambda rt: 0)
    number = new_mobile()
    call = phones.call(number)
    call.dial()
    call.press("4")
    jobs.pump()
    [message] = phones.links_of(call)
    assert phones.armed.sends(message.id)
    assert jobs.send(message.id) == "sent"
    assert len(phones.sms_to(number)) == 1
    jobs.pump()  # planned once: no second message
    assert len(phones.links_of(call)) == 1


def test_a_link_asked_for_at_night_goes_at_once(phones: Phones) -> None:
    """Quiet hours hold back the ward's own messages until morning, not a link the caller
    asked for just now (self-service answers at any hour)."""
    night = datetime(2026, 12, 15, 23, 30, tzinfo=TOKYO)
    phones.clock.set(night)
    quiet = replace(RULES_WITH_SITE, quiet_from=time(21, 0), quiet_until=time(8, 0))
    jobs.use(replace(jobs.runtime(), rules=quiet))
    number = new_mobile()
    call = phones.call(number)
    call.dial()
    call.press("4")
    assert said(call, "link_sent")
    assert phones.send_due_links(call) == ["sent"]
    assert len(phones.sms_to(number)) == 1


@pytest.mark.parametrize("language", ["ja", "en", "ko", "zh", "vi", "ne", "easy"])
def test_the_link_text_fits_two_segments_in_every_language(language: str) -> None:
    site = "https://madoguchi.city.shinjuku.example.lg.jp"  # a long address of the ward's
    page = reminders.booking_page(site, language)
    text = compose_booking_link(language, link=page)
    assert page in text
    assert page.endswith("/") if language == "ja" else page.endswith(f"/?lang={language}")
    assert reminders.sms_segments(text) <= 2, (len(text), text)
