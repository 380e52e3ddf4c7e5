"""The phone line when the ward holds pickups to its list of cards that have arrived
(MADOGUCHI_READY_CARDS=refuse): a number not on the list is said back with a re-prompt, the
time still held; keyed right, the booking goes in; refused twice, the caller hears why."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from booking import service as booking
from booking.errors import BookingError
from config.db import make_sessionmaker
from ivr.caller import PhoneCall
from ivr.flow import prompt
from ivr.speech import say_digits
from tests.conftest import FakeClock, app_for, make_context
from tests.ivr.conftest import PUBLIC, TOKEN, Line


@pytest.fixture
def line(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[Line]:
    app = app_for(engine, clock, tmp_path, twilio_auth_token=TOKEN, public_base_url=PUBLIC)
    context = dataclasses.replace(make_context(clock), ready_cards="refuse")
    app.state.sessions = make_sessionmaker(engine, context)
    address = (f"10.251.{secrets.randbelow(256)}.{secrets.randbelow(256)}", 50000)
    with TestClient(app, raise_server_exceptions=False, client=address) as http:
        yield Line(http, clock, sessions=app.state.sessions)


def a_tail() -> str:
    return f"{900000 + secrets.randbelow(100000):06d}"


def arrived(line: Line, tail: str) -> None:
    with line.sessions() as db:
        _found, done = booking.import_cards_file(
            db, data=f"notice_number,venue\nAB1-{tail},main\n".encode()
        )
        assert done is not None
        db.commit()


def heard(call: PhoneCall, text: str) -> bool:
    return any(text in said for said in call.turns[-1]) if call.turns else False


def key_notice(call: PhoneCall, tail: str) -> None:
    call.press("212210")  # A B 1, two keys a character
    call.press(tail)
    assert heard(call, f"エー、ビー、いち、の、{say_digits(tail, 'ja')}、ですね。")
    call.press("1")


def up_to_confirm(line: Line, call: PhoneCall, tail: str) -> None:
    """Menu 1, card pickup, one person, the main office, the first time offered, the notice
    number, the birth date, the caller ID: at the read-back."""
    call.dial()
    call.press("1")
    call.press("1")  # card pickup
    call.press("1")  # one person
    call.press("1#")  # the main office
    call.press("1")  # take the time offered
    key_notice(call, tail)
    call.press("19580401#")
    call.press("1")
    call.press("1")  # the caller ID is the contact number
    assert heard(call, "ご予約の内容を確認します。")


def test_a_card_not_arrived_is_said_and_the_number_asked_again(line: Line) -> None:
    call = line.call()
    up_to_confirm(line, call, a_tail())
    hold = line.state(call).hold
    call.press("1")  # book
    said = prompt("ja", "card_not_ready", n=1)
    assert heard(call, said), call.turns[-1]
    assert heard(call, prompt("ja", "notice_head_first", n=1))
    assert line.record(call).booking_id is None
    assert line.state(call).hold == hold  # the time is still held
    good = a_tail()
    arrived(line, good)
    key_notice(call, good)
    assert heard(call, "ご予約の内容を確認します。")  # birth date and number kept
    call.press("1")
    made = line.booking_of(call)
    assert [m.notice_number for m in made.members] == [f"AB1-{good}"]


def test_a_second_refusal_says_why_and_ends_the_booking(line: Line) -> None:
    call = line.call()
    up_to_confirm(line, call, a_tail())
    call.press("1")
    key_notice(call, a_tail())
    call.press("1")
    reason = BookingError("card_not_ready", n=1).message("ja")
    assert heard(call, prompt("ja", "booking_refused", reason=reason)), call.turns[-1]
    assert "コールセンター" in reason
    assert line.record(call).booking_id is None
