"""Sending residents' messages: the real app and jobs, a local fake Twilio REST server, committed
data on SQLite and PostgreSQL. The clock reads real time (Twilio's records carry real times,
which reconciliation compares with our claims); the booking window is widened to reach the
tests' own slots."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from booking import service as booking
from booking.context import TOKYO, utc_now
from booking.service import ResidentInput
from booking.views import BookingView
from config.db import make_sessionmaker
from ivr.caller import PhoneCall
from ivr.fake_twilio import FakeTwilio
from ivr.telephony import TwilioApi
from reminders import jobs
from reminders import service as reminders
from reminders.jobs import Runtime
from reminders.models import Message
from reminders.service import MessageView, ReminderRules
from tests.conftest import SlotMaker, app_for, make_context

PUBLIC = "https://madoguchi.example.jp"
TOKEN = "0123456789abcdef0123456789abcdef"  # noqa: S105 (the test account's token)
WARD = "+81353334111"
# No quiet hours: the tests run at any hour (quiet hours have their own tests).
RULES = ReminderRules(
    day_before_at=time(18, 0), morning_at=None, quiet_from=time(0, 0), quiet_until=time(0, 0)
)
_numbers = itertools.count(random.SystemRandom().randrange(10_000_000, 90_000_000, 100_000))


def new_mobile() -> str:
    return f"+8180{next(_numbers):08d}"


def new_landline() -> str:
    return f"+8135{next(_numbers) % 10_000_000:07d}"


@dataclass
class ArmedJobs:
    """Jobs the code under test armed, kept for the test to look at (and run) by hand."""

    armed: list[tuple[datetime, str, tuple[object, ...], str]] = field(default_factory=list)

    def run_at(self, at: datetime, func: str, *args: object, job_id: str, queue: str) -> None:
        self.armed.append((at, func, args, job_id))

    def run_soon(self, func: str, *args: object, job_id: str, queue: str) -> None:
        self.armed.append((datetime.now(TOKYO), func, args, job_id))

    def wake(self, func: str, *, queue: str) -> None:
        self.armed.append((datetime.now(TOKYO), func, (), f"wake-{func}"))

    def sends(self, message_id: int) -> list[datetime]:
        """When a send of this message is armed: on its own, or in a batch due together."""
        return [at for at, _ in self._sending(message_id)]

    def send_job_ids(self, message_id: int) -> set[str]:
        """The job ids a send of this message is armed under (its own, or its batch's: other
        tests' messages left due in the database can make a batch of the backlog)."""
        return {job_id for _, job_id in self._sending(message_id)}

    def _sending(self, message_id: int) -> list[tuple[datetime, str]]:
        return [
            (at, job_id)
            for at, func, args, job_id in self.armed
            if (func == jobs.SEND and args == (message_id,))
            or (func == jobs.SEND_BATCH and message_id in args)
        ]


@dataclass
class Desk:
    """The app, its jobs' runtime and the fake Twilio it sends through."""

    http: TestClient
    twilio: FakeTwilio
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]
    armed: ArmedJobs
    runtime: Runtime

    def book(self, phone: str, *, language: str = "ja", party: int = 1) -> BookingView:
        with self.sessions() as db:
            slot = SlotMaker(db)(4)
            made = booking.book(
                db,
                slot_id=slot,
                party=party,
                resident=ResidentInput("ヨテイ ハナコ", phone, date(1970, 1, 1), language=language),
                channel="web",
            )
            db.commit()
            return made

    def plan(self) -> reminders.Planned:
        with self.sessions() as db:
            planned = reminders.plan_from_outbox(db, RULES, limit=100_000)
            db.commit()
            return planned

    def messages(self, booking_id: int) -> list[MessageView]:
        with self.sessions() as db:
            return reminders.messages_for(db, booking_id=booking_id)

    def message(self, booking_id: int, kind: str, channel: str = "sms") -> MessageView:
        """The booking's latest message of this kind (the one for its current version)."""
        found = [m for m in self.messages(booking_id) if m.kind == kind and m.channel == channel]
        assert found, f"no {kind} {channel} message"
        return found[-1]

    def due_now(self, message_id: int) -> None:
        """Bring a message's time forward (a reminder planned for the day before)."""
        with self.sessions() as db:
            db.execute(
                update(Message)
                .where(Message.id == message_id)
                .values(send_after=self.clock() - timedelta(seconds=1))
            )
            db.commit()

    def sms_to(self, phone: str) -> list[str]:
        return [m.body or "" for m in self.twilio.messages() if m.to == phone]

    def calls_to(self, phone: str) -> list[str]:
        return [c.url or "" for c in self.twilio.calls() if c.to == phone]

    def resident(self, phone: str) -> PhoneCall:
        """The resident's phone, ringing with the latest call the ward placed to it."""
        [*_, placed] = [c for c in self.twilio.calls() if c.to == phone]
        return PhoneCall(
            self.http,
            public_base_url=PUBLIC,
            auth_token=TOKEN,
            from_number=phone,
            to_number=WARD,
            call_sid=placed.sid,
        )


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(auth_token=TOKEN) as fake:
        yield fake


@pytest.fixture
def desk(engine: Engine, tmp_path: Path, twilio: FakeTwilio) -> Iterator[Desk]:
    clock = utc_now  # real time: Twilio's records carry real times
    app = app_for(engine, clock, tmp_path, twilio_auth_token=TOKEN, public_base_url=PUBLIC)
    app.state.reminder_rules = RULES
    # Slots the tests make are weeks ahead: widen the booking window to reach them.
    sessions = make_sessionmaker(engine, make_context(clock, max_days_ahead=120))
    app.state.sessions = sessions
    armed = ArmedJobs()
    api = TwilioApi(
        account_sid=twilio.account_sid,
        auth_token=TOKEN,
        from_number=WARD,
        base_url=twilio.base_url,
        timeout=0.5,
    )
    runtime = Runtime(
        sessions=sessions,
        rules=RULES,
        jobs=armed,
        phone=api,
        public_base_url=PUBLIC,
        claim_timeout=timedelta(0),
    )
    jobs.use(runtime)
    with TestClient(app, raise_server_exceptions=False) as http:
        yield Desk(http, twilio, sessions, clock, armed, runtime)
