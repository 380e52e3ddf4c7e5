"""Notices by LINE push: a booking made in the chat is linked to its LINE user, and its
confirmation and reminders go by push through the fake Messaging API; refused (a blocked
account), not pushed (an unfollow) or never taken (LINE down), the same message goes by SMS
through the fake Twilio, once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import time, timedelta

import pytest
from sqlalchemy import select, update

from booking.models import Booking
from ivr.fake_twilio import FakeTwilio
from ivr.line_api import PUSH_TRIES, LineApi
from ivr.telephony import TwilioApi
from reminders import jobs
from reminders import service as reminders
from reminders.jobs import Runtime
from reminders.models import Message
from reminders.sending import MAX_ATTEMPTS
from reminders.service import MessageView, ReminderRules
from tests.ivr.conftest import new_mobile
from tests.ivr.line_resident import TOKEN, LineApp, Resident, line_app
from tests.ivr.test_line_booking import book_in_chinese, book_pickup_for_two
from tests.reminders.conftest import ArmedJobs

__all__ = ["line_app"]
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"  # noqa: S105
WARD = "+81353334111"
RULES = ReminderRules(
    day_before_at=time(18, 0), morning_at=None, quiet_from=time(0, 0), quiet_until=time(0, 0)
)


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(auth_token=TWILIO_TOKEN) as fake:
        yield fake


@pytest.fixture
def runtime(line_app: LineApp, twilio: FakeTwilio) -> Runtime:
    rt = Runtime(
        sessions=line_app.sessions,
        rules=RULES,
        jobs=ArmedJobs(),
        phone=TwilioApi(
            account_sid=twilio.account_sid,
            auth_token=TWILIO_TOKEN,
            from_number=WARD,
            base_url=twilio.base_url,
            timeout=0.5,
        ),
        public_base_url="https://madoguchi.example.jp",
        claim_timeout=timedelta(0),
        line=LineApi(access_token=TOKEN, base_url=line_app.fake.base_url, timeout_seconds=2),
    )
    jobs.use(rt)
    return rt


def _booked_in_line(line_app: LineApp) -> tuple[Resident, str, int, str]:
    """A booking made in the chat and its notices planned: the resident, the phone, the
    booking's id and code."""
    resident = line_app.resident()
    phone = new_mobile()
    code, _ = book_pickup_for_two(resident, phone)
    with line_app.sessions() as db:
        booking_id = db.execute(select(Booking.id).where(Booking.code == code)).scalar_one()
        reminders.plan_from_outbox(db, RULES, limit=100_000)
        db.commit()
    return resident, phone, booking_id, code


def _messages(line_app: LineApp, booking_id: int) -> list[MessageView]:
    with line_app.sessions() as db:
        return reminders.messages_for(db, booking_id=booking_id)


def _one(line_app: LineApp, booking_id: int, kind: str, channel: str) -> MessageView:
    found = [m for m in _messages(line_app, booking_id) if (m.kind, m.channel) == (kind, channel)]
    assert len(found) == 1, _messages(line_app, booking_id)
    return found[0]


def _due_now(line_app: LineApp, message_id: int) -> None:
    with line_app.sessions() as db:
        db.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(send_after=line_app.clock() - timedelta(seconds=1))
        )
        db.commit()


def test_a_linked_booking_is_confirmed_and_reminded_by_line_push(
    line_app: LineApp, twilio: FakeTwilio, runtime: Runtime
) -> None:
    resident, phone, booking_id, code = _booked_in_line(line_app)
    planned = {(m.kind, m.channel) for m in _messages(line_app, booking_id)}
    assert planned == {("confirmation", "line"), ("reminder", "line")}  # no SMS planned
    confirmation = _one(line_app, booking_id, "confirmation", "line")
    assert confirmation.to == resident.user_id
    assert jobs.send(confirmation.id) == "sent"
    (push,) = line_app.fake.pushes(resident.user_id)
    assert code in push.texts[0]
    reminder = _one(line_app, booking_id, "reminder", "line")
    _due_now(line_app, reminder.id)
    assert jobs.send(reminder.id) == "sent"
    assert len(line_app.fake.pushes(resident.user_id)) == 2
    assert [m for m in twilio.messages() if m.to == phone] == []


def test_a_blocked_account_falls_back_to_sms_once(
    line_app: LineApp, twilio: FakeTwilio, runtime: Runtime
) -> None:
    resident, phone, booking_id, code = _booked_in_line(line_app)
    line_app.fake.blocked.add(resident.user_id)
    confirmation = _one(line_app, booking_id, "confirmation", "line")
    jobs.send(confirmation.id)
    assert _one(line_app, booking_id, "confirmation", "line").status == "failed"
    sms = _one(line_app, booking_id, "confirmation", "sms")
    assert jobs.send(sms.id) == "sent"
    texts = [m.body or "" for m in twilio.messages() if m.to == phone]
    assert len(texts) == 1 and code in texts[0]
    assert line_app.fake.pushes(resident.user_id) == []
    # Sent again (a stray job): neither channel sends twice.
    jobs.send(confirmation.id)
    jobs.send(sms.id)
    assert len([m for m in twilio.messages() if m.to == phone]) == 1


def test_an_unfollow_stops_line_messages_at_once(
    line_app: LineApp, twilio: FakeTwilio, runtime: Runtime
) -> None:
    resident, phone, booking_id, code = _booked_in_line(line_app)
    resident.unfollow()
    confirmation = _one(line_app, booking_id, "confirmation", "line")
    jobs.send(confirmation.id)
    assert line_app.fake.pushes(resident.user_id) == []
    failed = _one(line_app, booking_id, "confirmation", "line")
    assert failed.status == "failed" and "unfollowed" in str(failed.last_error)
    jobs.send(_one(line_app, booking_id, "confirmation", "sms").id)
    assert any(code in (m.body or "") for m in twilio.messages() if m.to == phone)


def test_a_push_that_fails_is_retried_under_its_key_and_delivered_once(
    line_app: LineApp, twilio: FakeTwilio, runtime: Runtime
) -> None:
    resident, _, booking_id, _ = _booked_in_line(line_app)
    confirmation = _one(line_app, booking_id, "confirmation", "line")
    line_app.fake.fail_next = PUSH_TRIES  # LINE down for every try of this attempt
    assert jobs.send(confirmation.id) == "retry"
    assert _one(line_app, booking_id, "confirmation", "line").status == "scheduled"
    _due_now(line_app, confirmation.id)
    line_app.fake.fail_next = 1  # one 500 more: retried at once, with the same key
    assert jobs.send(confirmation.id) == "sent"
    assert len(line_app.fake.pushes(resident.user_id)) == 1
    # A reconciliation pushing it again under its key: LINE answers 409, nothing twice.
    assert runtime.line is not None
    runtime.line.push(
        resident.user_id, [{"type": "text", "text": "x"}], retry_key=jobs.push_key(confirmation.id)
    )
    assert len(line_app.fake.pushes(resident.user_id)) == 1


def test_a_line_that_never_comes_back_falls_back_to_sms(
    line_app: LineApp, twilio: FakeTwilio, runtime: Runtime
) -> None:
    _, phone, booking_id, code = _booked_in_line(line_app)
    confirmation = _one(line_app, booking_id, "confirmation", "line")
    for _ in range(MAX_ATTEMPTS):
        line_app.fake.fail_next = PUSH_TRIES
        _due_now(line_app, confirmation.id)
        jobs.send(confirmation.id)
    assert _one(line_app, booking_id, "confirmation", "line").status == "failed"
    jobs.send(_one(line_app, booking_id, "confirmation", "sms").id)
    assert any(code in (m.body or "") for m in twilio.messages() if m.to == phone)


def test_a_booking_made_in_chinese_is_confirmed_in_chinese(
    line_app: LineApp, twilio: FakeTwilio, runtime: Runtime
) -> None:
    resident = line_app.resident()
    code = book_in_chinese(resident, new_mobile())
    with line_app.sessions() as db:
        booking_id = db.execute(select(Booking.id).where(Booking.code == code)).scalar_one()
        reminders.plan_from_outbox(db, RULES, limit=100_000)
        db.commit()
    confirmation = _one(line_app, booking_id, "confirmation", "line")
    assert jobs.send(confirmation.id) == "sent"
    (push,) = line_app.fake.pushes(resident.user_id)
    assert "【个人编号卡预约】" in push.texts[0] and code in push.texts[0]
