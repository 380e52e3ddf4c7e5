"""The phone line under test: the real app, called by the Twilio-like test caller.

The app believes it is published at PUBLIC (``MADOGUCHI_PUBLIC_BASE_URL``), as behind the
ward's proxy; the test caller signs for that URL and sends through the TestClient.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from booking import service as booking
from booking.views import BookingView
from ivr import service as calls
from ivr.caller import PhoneCall
from ivr.service import CallState
from ivr.service import CallView as CallRecord
from tests.conftest import FakeClock, app_for

PUBLIC = "https://ivr.example.jp"
TOKEN = "f0e1d2c3b4a5968778695a4b3c2d1e0f"  # noqa: S105 (the test line's token)

# From a random start: numbers stay distinct even if this module is imported twice (as a
# conftest and from a test module), and between runs on a kept database.
_numbers = itertools.count(random.SystemRandom().randrange(10_000_000, 90_000_000, 100_000))
_clients = itertools.count(1)


def new_mobile() -> str:
    """A mobile number no other test calls from (limits are counted per calling number)."""
    return f"+8190{next(_numbers):08d}"


@dataclass
class Line:
    """The IVR app, its clock, and committed sessions to look at what the calls did."""

    http: TestClient
    clock: FakeClock
    sessions: sessionmaker[Session]

    def call(self, from_number: str | None = None) -> PhoneCall:
        return PhoneCall(
            self.http,
            public_base_url=PUBLIC,
            auth_token=TOKEN,
            from_number=from_number or new_mobile(),
        )

    def record(self, call: PhoneCall) -> CallRecord:
        with self.sessions() as db:
            found = calls.get_call(db, call_sid=call.call_sid)
        assert found is not None, "the call was not recorded"
        return found

    def state(self, call: PhoneCall) -> CallState:
        with self.sessions() as db:
            row = calls.lock_call(db, call.call_sid)
            assert row is not None
            return calls.load_state(db, row)

    def booking_of(self, call: PhoneCall) -> BookingView:
        booking_id = self.record(call).booking_id
        assert booking_id is not None, "the call booked nothing"
        with self.sessions() as db:
            return booking.get_booking(db, booking_id=booking_id)


@pytest.fixture
def line(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[Line]:
    app = app_for(engine, clock, tmp_path, twilio_auth_token=TOKEN, public_base_url=PUBLIC)
    # A client address of its own: the API's attempt limits count per address, shared data.
    n = next(_clients)
    address = (f"10.250.{n >> 8 & 255}.{n & 255}", 50000)
    with TestClient(app, raise_server_exceptions=False, client=address) as http:
        yield Line(http, clock, sessions=app.state.sessions)
