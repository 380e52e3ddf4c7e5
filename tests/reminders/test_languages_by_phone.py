"""A booking made end to end on the phone in Chinese and in やさしい日本語, and the SMS it
sends: the Twilio-like caller chooses the language at the greeting (7, 6), walks the menus in
it, and the confirmation reaches the phone in the same language. Every <Say> carries the
language it is spoken in."""

from __future__ import annotations

import pytest

from booking import service as booking
from config.db import make_sessionmaker
from ivr import service as calls
from ivr.caller import PhoneCall
from ivr.flow import prompt
from ivr.speech import say_digits, say_when
from reminders import jobs
from reminders import service as reminders
from reminders.texts import when_text
from tests.conftest import SlotMaker, make_context
from tests.reminders.conftest import PUBLIC, TOKEN, Desk, new_landline, new_mobile

SAY = {"ja": "ja-JP", "en": "en-US", "ko": "ko-KR", "zh": "cmn-CN", "easy": "ja-JP"}


def heard(call: PhoneCall, text: str) -> bool:
    return any(text in line for line in call.turns[-1]) if call.turns else False


def book_pin_reset(desk: Desk, phone: str, key: str, language: str) -> PhoneCall:
    """Call, choose the language, book a PIN reset for one at the main office: the first time
    offered, the birth date, the caller ID as contact number."""
    call = PhoneCall(desk.http, public_base_url=PUBLIC, auth_token=TOKEN, from_number=phone)
    call.dial()
    assert heard(call, prompt(language, "english"))  # offered in its own language
    call.press(key)
    assert heard(call, prompt(language, "menu"))
    call.press("1")
    assert heard(call, prompt(language, "service_intro"))
    call.press("3")  # PIN reset
    assert heard(call, prompt(language, "party", max=ANY)[:4])
    call.press("1")
    call.press("1#")  # the main office
    assert heard(call, prompt(language, "offer_keys"))
    call.press("1")
    assert heard(call, prompt(language, "birth")[:10])
    call.press("19580401#")
    call.press("1")
    call.press("1")  # the caller ID
    assert heard(call, prompt(language, "confirm_keys"))
    call.press("1")
    assert heard(call, prompt(language, "booked"))
    return call


ANY = "\x00"


@pytest.mark.parametrize(
    ("key", "language"), [("7", "zh"), ("6", "easy")], ids=["chinese", "easy-japanese"]
)
def test_a_booking_by_phone_and_its_sms_in_the_callers_language(
    desk: Desk, key: str, language: str
) -> None:
    with desk.sessions() as db:
        SlotMaker(db)(1, service="pin_reset")  # a time of this test's own, weeks ahead
        db.commit()
    # The phone line searches the whole booking window, which may be at most 62 days (the
    # desk's 120 reach its tests' slots for the web only).
    engine = desk.sessions.kw["bind"]
    desk.http.app.state.sessions = make_sessionmaker(  # type: ignore[attr-defined]
        engine, make_context(desk.clock, max_days_ahead=60)
    )
    phone = new_mobile()
    call = book_pin_reset(desk, phone, key, language)
    with desk.sessions() as db:
        record = calls.get_call(db, call_sid=call.call_sid)
        assert record is not None and record.booking_id is not None
        made = booking.get_booking(db, booking_id=record.booking_id)
    assert (made.language, made.channel, made.party_size) == (language, "ivr", 1)
    # The time and the code as the language says them, the code twice.
    assert any(say_when(made.starts_at, language) in said for said in call.said)
    assert sum(say_digits(made.code, language, group=4) in said for said in call.said) == 2
    # Every <Say> of the call in a Twilio language: the caller's, or the greeting's offers.
    assert all(u.language in SAY.values() for u in call.utterances)
    after_choice = call.utterances[
        [u.text for u in call.utterances].index(prompt(language, "menu")) :
    ]
    assert {u.language for u in after_choice} == {SAY[language]}

    desk.plan()
    assert jobs.send(desk.message(made.id, "confirmation").id) == "sent"
    [body] = desk.sms_to(phone)
    assert made.code in body and when_text(made.starts_at, language) in body
    # The ward's own words in the language: written, やさしい日本語 keeps its readings.
    if language == "zh":
        assert body.startswith("【个人编号卡预约】") and "本厅舍 个人编号卡交付窗口 1人" in body
        assert "地点：新宿区歌舞伎町1-4-1 本厅舍1层" in body
    else:
        assert body.startswith("【マイナンバーカードの予約】")
        assert "本庁舎(ほんちょうしゃ) マイナンバーカードの まどぐち 1人" in body
    assert "Main Office" not in body
    # ...and on the phone, without them.
    venue = {"zh": "本厅舍 个人编号卡交付窗口", "easy": "本庁舎 マイナンバーカードの まどぐち"}
    assert any(venue[language] in said for said in call.said)
    assert not any("(ほんちょうしゃ)" in said for said in call.said)
    assert reminders.sms_segments(body) <= 4


@pytest.mark.parametrize("language", ["vi", "ne"])
def test_a_landline_reminder_in_a_language_the_line_cannot_speak_is_in_easy_japanese(
    desk: Desk, language: str
) -> None:
    """Twilio has no Vietnamese or Nepali voice: the reminder call speaks やさしい日本語."""
    phone = new_landline()
    made = desk.book(phone, language=language)
    desk.plan()
    reminder = desk.message(made.id, "reminder", "voice")
    desk.due_now(reminder.id)
    assert jobs.send(reminder.id) == "sent"
    [url] = desk.calls_to(phone)
    resident = desk.resident(phone)
    heard = " ".join(resident.pick_up(url))
    assert prompt("easy", "reminder_intro_ward", ward="新宿区") in heard
    assert prompt("easy", "reminder_keys") in heard
    # The ward's やさしい日本語 names, without the readings written for the eye (本庁舎(ほんちょうしゃ)).
    assert "本庁舎 マイナンバーカードの まどぐち" in heard and "(" not in heard
    assert {u.language for u in resident.utterances} == {"ja-JP"}


def test_a_chinese_landline_reminder_is_in_chinese_and_keeps_the_booking(desk: Desk) -> None:
    phone = new_landline()
    made = desk.book(phone, language="zh")
    desk.plan()
    reminder = desk.message(made.id, "reminder", "voice")
    desk.due_now(reminder.id)
    assert jobs.send(reminder.id) == "sent"
    [url] = desk.calls_to(phone)
    resident = desk.resident(phone)
    heard = " ".join(resident.pick_up(url))
    assert prompt("zh", "reminder_intro_ward", ward="新宿区") in heard
    assert "本厅舍 个人编号卡交付窗口" in heard and say_when(made.starts_at, "zh") in heard
    assert {u.language for u in resident.utterances} == {"cmn-CN"}
    assert prompt("zh", "reminder_kept") in " ".join(resident.press("1"))
