"""The phone line speaks the ward's own words: it names the ward when it answers, says what a
caller's details are for before asking the first of them, names venues and services in the
caller's language (Korean too), and ends a booking with what to bring and where to go."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from booking import codes
from ivr.caller import PhoneCall
from ivr.flow import prompt
from tests.conftest import FakeClock, app_for
from tests.ivr.conftest import PUBLIC, TOKEN, Line
from tests.ivr.test_line import book_pickup_for_two, heard

RETENTION_DAYS = 45  # not the default (30): what the caller hears comes from the settings
PURPOSE_JA = (
    "お伺いする内容は、ご予約とご用件のためにだけ使い、新宿区が管理します。"
    "ご来庁、またはご用件が済んでから、45日後に消去します。"
)


@pytest.fixture
def ward_line(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[Line]:
    """The phone line of a ward that keeps personal data 45 days after the visit."""
    app = app_for(
        engine,
        clock,
        tmp_path,
        twilio_auth_token=TOKEN,
        public_base_url=PUBLIC,
        retention_days=RETENTION_DAYS,
    )
    with TestClient(app, raise_server_exceptions=False, client=("10.251.0.1", 50000)) as http:
        yield Line(http, clock, sessions=app.state.sessions)


def said_in(call: PhoneCall, text: str) -> int:
    return sum(text in line for line in call.said)


def first_said(call: PhoneCall, text: str) -> int:
    """Where in the call ``text`` was first said (a large number if never)."""
    return next((i for i, line in enumerate(call.said) if text in line), len(call.said) + 1)


# --- who answers --------------------------------------------------------------------------------


def test_the_greeting_names_the_ward(line: Line) -> None:
    call = line.call()
    call.dial()
    assert heard(call, "お電話ありがとうございます。新宿区、マイナンバーカード予約センターです。")


# --- what the details are for -------------------------------------------------------------------


def test_the_purpose_is_said_once_before_the_first_personal_question(ward_line: Line) -> None:
    call = ward_line.call()
    book_pickup_for_two(ward_line, call)
    assert said_in(call, PURPOSE_JA) == 1
    # Before the notice number, the first thing the caller keys about themselves.
    assert first_said(call, PURPOSE_JA) < first_said(call, "交付通知書番号")
    assert first_said(call, PURPOSE_JA) > first_said(call, prompt("ja", "offer_keys"))
    # A second booking in the same call asks for everything again, without the purpose.
    call.press("2")  # after the booking: something else
    call.press("1")  # a new booking
    call.press("3")  # PIN reset
    call.press("1")
    call.press("0#")
    call.press("1")
    assert heard(call, prompt("ja", "birth"))
    assert said_in(call, PURPOSE_JA) == 1


def test_a_withheld_number_hears_the_purpose_before_its_birth_date(ward_line: Line) -> None:
    call = ward_line.call(from_number="anonymous")
    call.dial()
    call.press("2")  # check a booking
    assert said_in(call, PURPOSE_JA) == 0  # the code is not personal
    call.press(codes.new_code())
    assert heard(call, PURPOSE_JA) and heard(call, prompt("ja", "manage_birth"))
    call.press("19580401#")  # no such booking: asked again
    assert heard(call, prompt("ja", "manage_birth"))
    assert said_in(call, PURPOSE_JA) == 1


def test_the_purpose_in_english_names_the_ward_and_the_days(ward_line: Line) -> None:
    call = ward_line.call(from_number="anonymous")
    call.dial()
    call.press("9")
    call.press("2")
    call.press(codes.new_code())
    assert heard(call, "is handled by Shinjuku City. It is erased 45 days after your visit")


# --- after a booking: what to bring, where to go ------------------------------------------------


def test_a_booking_ends_with_what_to_bring_and_where_to_go(line: Line) -> None:
    call = line.call()
    book_pickup_for_two(line, call)
    assert heard(call, "予約番号は")
    assert heard(call, "お持ちいただくものは、交付通知書（はがき）、本人確認書類")
    assert heard(
        call, "会場は、本庁舎 マイナンバーカード交付窓口、新宿区歌舞伎町1-4-1 本庁舎1階、です。"
    )
    assert heard(call, "交通は、西武新宿線「西武新宿駅」徒歩3分")
    # Said after the code, which comes first.
    assert first_said(call, "予約番号は") < first_said(call, "お持ちいただくものは")
    call.press("3")  # hear it again
    assert heard(call, "お持ちいただくものは、交付通知書（はがき）")
    assert heard(call, "西武新宿駅")
    assert heard(call, prompt("ja", "after_booking"))


def test_an_english_booking_ends_with_what_to_bring_and_where_to_go(line: Line) -> None:
    call = line.call()
    call.dial()
    call.press("9")
    call.press("1")
    call.press("3")  # PIN reset
    call.press("1")
    call.press("2#")  # the Yotsuya branch office
    call.press("1")
    call.press("19901231#")
    call.press("1")
    call.press("1")  # the caller ID
    call.press("1")  # book
    assert heard(call, "Your booking code is")
    assert heard(call, "Please bring: Your My Number card and proof of identity.")
    assert heard(call, "The place is Yotsuya Branch Office, 87 Naito-machi, Shinjuku.")
    assert heard(call, "Getting there: 5 min walk from Yotsuya-sanchome Station")


# --- Korean names --------------------------------------------------------------------------------


def test_a_korean_caller_hears_korean_names(line: Line) -> None:
    config = line.http.app.state.phone_line.config  # type: ignore[attr-defined]
    line.http.app.state.phone_line = replace(  # type: ignore[attr-defined]
        line.http.app.state.phone_line,  # type: ignore[attr-defined]
        config=replace(config, speech=frozenset({"ko"})),
    )
    call = line.call()
    call.dial()
    call.press("8")
    assert heard(call, prompt("ko", "menu"))
    call.press("1")
    assert heard(call, "비밀번호 재설정의 경우, 3번을 눌러 주십시오.")
    assert not heard(call, "PIN reset")
    call.press("3")
    call.press("1")
    assert heard(call, "요쓰야 특별출장소, 2번.")
    assert not heard(call, "Yotsuya")
    # Venues may be said by name: the names the recogniser listens for are the Korean ones.
    stream = call.stream
    assert stream is not None and stream.parameters["step"] == "book_venue"
    assert "요쓰야 특별출장소" in stream.parameters["choices"].split("|")
    assert "Yotsuya" not in stream.parameters["choices"]
    call.press("2#")
    assert heard(call, "요쓰야 특별출장소에 빈자리가 있습니다.")
    call.press("1")
    call.press("19901231#")
    call.press("1")
    call.press("1")
    assert heard(call, "요쓰야 특별출장소, 비밀번호 재설정, 1명.")
    call.press("1")
    assert heard(call, "준비물은 다음과 같습니다. 마이넘버카드와 신분증.")
    assert heard(call, "장소는 요쓰야 특별출장소, 신주쿠구 나이토마치 87입니다.")
    assert heard(call, "요쓰야산초메역(마루노우치선)에서 도보 5분")
    assert not any("Yotsuya" in s or "PIN reset" in s for s in call.said)
