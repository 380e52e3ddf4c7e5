"""The phone line end to end: a Twilio-like caller walks the menus of the real app, on SQLite
and PostgreSQL, and the bookings, calls and callbacks it leaves are checked in the database and
through the web API.

The sample ward's slots are shared with other tests, so no test here assumes which time is
offered first: each reads what it was offered (the call's hold) and checks against that.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from booking import service as booking
from booking.context import TOKYO
from booking.models import Booking, Slot
from ivr import service as calls
from ivr.caller import PhoneCall
from ivr.flow import people, prompt, read_birth_date, read_keypad_letters, read_month_day
from ivr.speech import say_date, say_digits, say_phone, say_when
from tests.conftest import START
from tests.ivr.conftest import PUBLIC, TOKEN, Line, new_mobile

API = "/api/v1"
ANY = "\x00"  # a placeholder value, to compare the fixed start of a prompt
MENU_JA = prompt("ja", "menu")
MENU_EN = prompt("en", "menu")


LANGUAGES = pytest.mark.parametrize("lang", ["ja", "en"])


def start(call: PhoneCall, lang: str) -> None:
    """Dial; for English, press 9 at the greeting."""
    call.dial()
    if lang == "en":
        call.press("9")
        assert heard(call, MENU_EN)


def heard(call: PhoneCall, text: str) -> bool:
    return any(text in line for line in call.turns[-1]) if call.turns else False


def offered_slot(line: Line, call: PhoneCall) -> int:
    state = line.state(call)
    assert state.offered is not None and state.hold is not None, "nothing is on offer"
    return state.offered


def seats(line: Line, slot_id: int) -> tuple[int, int, int]:
    with line.sessions() as db:
        row = db.execute(
            select(Slot.capacity, Slot.booked, Slot.held).where(Slot.id == slot_id)
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


# Each call's own notice numbers (AB1-610001 and AB1-610002 first): one active pickup booking
# per notice number, and the tests of a run share one database.
NOTICE_TAILS = itertools.count(610001, 2)


def book_pickup_for_two(line: Line, call: PhoneCall) -> int:
    """Menu 1, card pickup, two people, the main office; take the first time offered, key in
    both notice numbers and the birth date, use the caller ID. The slot booked."""
    call.dial()
    call.press("1")  # a new booking
    assert heard(call, "マイナンバーカードの受け取り（交付）は、1を。")
    call.press("1")  # card pickup
    call.press("2")  # two people
    assert heard(call, "本庁舎 マイナンバーカード交付窓口は、1を。")
    call.press("1#")  # the main office
    slot_id = offered_slot(line, call)
    assert heard(call, prompt("ja", "offer_keys"))
    call.press("1")  # take the time offered
    first = next(NOTICE_TAILS)
    for tail in (f"{first:06d}", f"{first + 1:06d}"):
        call.press("212210")  # A B 1, two keys a character
        call.press(tail)
        assert heard(call, f"エー、ビー、いち、の、{say_digits(tail, 'ja')}、ですね。")
        call.press("1")
    call.press("19580401#")
    assert heard(call, "1958年4月1日、ですね。")
    call.press("1")
    assert heard(call, "今おかけの電話番号")
    call.press("1")  # the caller ID is the contact number
    assert heard(call, "ご予約の内容を確認します。")
    call.press("1")  # book
    return slot_id


# --- booking by itself -----------------------------------------------------------------------


def test_a_caller_books_a_card_pickup_for_two_by_itself(line: Line) -> None:
    call = line.call()
    slot_id = book_pickup_for_two(line, call)
    made = line.booking_of(call)
    assert (made.slot_id, made.party_size, made.channel) == (slot_id, 2, "ivr")
    assert made.phone == call.from_number
    assert made.birth_date == date(1958, 4, 1)
    first = int(str(made.members[0].notice_number)[4:])
    assert [m.notice_number for m in made.members] == [f"AB1-{first}", f"AB1-{first + 1}"]
    assert made.name_kana is None  # no kana by keypad
    # The code, digit by digit in two groups, said twice, and nothing could cut it short.
    spoken = say_digits(made.code, "ja", group=4)
    assert sum(spoken in line_ for line_ in call.said) == 2
    assert any("予約番号は" in u.text for u in call.utterances)
    # No text message is promised on a line with no Twilio account to send one from.
    assert not heard(call, "確認のショートメッセージ")
    # The time read back is the time booked, spoken as a person would say it.
    assert any(say_when(made.starts_at, "ja") in s for s in call.said)
    assert re.search(r"\d+月\d+日 .曜日 午[前後]\d+時", say_when(made.starts_at, "ja"))

    # The booking is there for the web API too, with the caller's number as second factor.
    found = line.http.post(f"{API}/bookings/{made.code}/lookup", json={"phone": call.from_number})
    assert found.status_code == 200
    assert found.json()["status"] == "booked"

    call.press("9")
    assert heard(call, prompt("ja", "survey_intro"))  # the optional survey, before goodbye
    call.silence()
    assert call.state == "ended"
    record = line.record(call)
    assert record.outcome == "booked"
    assert record.ended_at is not None
    assert record.path.startswith("menu=1 book_service=1 book_party=2 book_venue=1 offer=1")
    assert "19580401" not in record.path and str(first) not in record.path  # keys, not data


def test_a_line_that_sends_sms_promises_the_confirmation(line: Line) -> None:
    config = line.http.app.state.phone_line.config  # type: ignore[attr-defined]
    line.http.app.state.phone_line = replace(  # type: ignore[attr-defined]
        line.http.app.state.phone_line,  # type: ignore[attr-defined]
        config=replace(config, sms_confirmations=True),
    )
    call = line.call()
    book_pickup_for_two(line, call)
    assert heard(call, "確認のショートメッセージ")


def test_an_english_caller_with_a_withheld_number_books_a_pin_reset(line: Line) -> None:
    call = line.call(from_number="anonymous")
    call.dial()
    call.press("9")
    assert heard(call, MENU_EN)
    call.press("1")
    assert heard(call, "For PIN reset, press 3.")
    call.press("3")
    call.press("1")
    call.press("0#")  # the earliest time anywhere
    assert re.search(r"\w+day, \w+ \d+, at \d+(:\d\d)? [AP]M, at .+, is free\.", call.last_said)
    call.press("1")
    call.press("19901231#")
    assert heard(call, "December 31, 1990. If this is right")
    call.press("1")
    assert heard(call, "Enter the phone number to contact you at")  # no caller ID to offer
    call.press("0352734111#")
    assert heard(call, "zero, three, five, two, seven, three, four, one, one, one")
    call.press("1")
    assert heard(call, "for PIN reset, 1 person.")  # one person, never "1 people"
    call.press("1")
    assert heard(call, "Your booking code is")
    made = line.booking_of(call)
    assert (made.service_id, made.party_size, made.language) == ("pin_reset", 1, "en")
    assert made.phone == "+81352734111"
    assert not heard(call, "text message")  # a landline never gets one
    assert line.record(call).caller_kind == "withheld"


def test_a_time_taken_on_the_web_while_the_caller_decides(line: Line) -> None:
    """The caller's hold lapses, a web user books the last seat, the caller says yes: told, and
    offered the next time; the booking goes through there."""
    call = line.call()
    call.dial()
    call.press("1")
    call.press("3")  # PIN reset: one seat a slot at the branch offices
    call.press("1")
    call.press("2#")  # 四谷特別出張所
    first = offered_slot(line, call)
    assert seats(line, first)[0] == 1
    line.clock.advance(minutes=11)  # the hold lapses while the caller thinks
    web = line.http.post(
        f"{API}/bookings",
        json={
            "slot_id": first,
            "name_kana": "ウェブ タロウ",
            "phone": new_mobile(),
            "birth_date": "1980-01-01",
        },
    )
    assert web.status_code == 201, web.text
    call.press("1")
    assert heard(call, prompt("ja", "offer_lapsed"))
    second = offered_slot(line, call)
    assert second != first
    call.press("1")
    call.press("19800202#")
    call.press("1")
    call.press("1")
    call.press("1")
    assert line.booking_of(call).slot_id == second
    assert seats(line, first) == (1, 1, 0)  # the web user's, and no more


def test_pressing_2_offers_the_next_time_and_gives_the_first_back(line: Line) -> None:
    call = line.call()
    call.dial()
    for key in ("1", "4", "1", "3#"):  # certificate renewal, one person, 箪笥町
        call.press(key)
    first = offered_slot(line, call)
    assert seats(line, first)[2] == 1  # held for the caller
    call.press("2")
    second = offered_slot(line, call)
    assert second != first
    assert seats(line, first)[2] == 0  # given back at once
    with line.sessions() as db:
        starts = {
            s: db.execute(select(Slot.starts_at).where(Slot.id == s)).scalar_one()
            for s in (first, second)
        }
    assert starts[second] >= starts[first]
    call.hang_up()
    assert seats(line, second)[2] == 0  # hanging up gives the offer back too
    assert line.record(call).outcome == "abandoned"


def _offered_start(line: Line, call: PhoneCall) -> datetime:
    with line.sessions() as db:
        return db.execute(
            select(Slot.starts_at).where(Slot.id == offered_slot(line, call))
        ).scalar_one()


def test_a_caller_jumps_a_day_a_week_or_to_a_date_they_key(line: Line) -> None:
    """At an offer, 3 is the next day, 4 a week later, 5 a date keyed as month and day: the
    earliest free time on that day, or after it when that day has none (said so)."""
    call = line.call()
    call.dial()
    for key in ("1", "3", "1", "1#"):  # PIN reset, one person, the main office
        call.press(key)
    first = _offered_start(line, call).astimezone(TOKYO).date()
    assert heard(call, prompt("ja", "offer_keys"))
    call.press("3")  # the next day
    next_day = _offered_start(line, call).astimezone(TOKYO).date()
    assert next_day >= first + timedelta(days=1)
    call.press("4")  # a week later
    week = _offered_start(line, call).astimezone(TOKYO).date()
    assert week >= next_day + timedelta(days=7)
    held = offered_slot(line, call)
    call.press("5")
    assert heard(call, prompt("ja", "offer_date"))
    assert seats(line, held)[2] == 0  # the time on offer was given back
    call.press("1322#")  # no such date
    assert heard(call, prompt("ja", "offer_date_wrong"))
    call.press("0112#")  # Tuesday 12 January 2027: the main office is open
    assert _offered_start(line, call).astimezone(TOKYO).date() == date(2027, 1, 12)
    assert not heard(call, "空いている時間がありません")
    call.press("5")
    call.press("0101#")  # New Year's Day: closed
    assert heard(call, prompt("ja", "offer_day_full", day=say_date(date(2027, 1, 1), "ja")))
    assert _offered_start(line, call).astimezone(TOKYO).date() >= date(2027, 1, 4)
    call.hang_up()


def test_the_venues_are_one_sentence_the_caller_may_cut_short(line: Line) -> None:
    call = line.call()
    call.dial()
    for key in ("1", "3", "1"):  # a booking, PIN reset, one person
        call.press(key)
    said = call.turns[-1]
    assert any("案内の途中でも押せます" in s for s in said)  # the caller is told
    [listed] = [s for s in said if "は、1を。" in s]
    assert "は、2を。" in listed and "は、3を。" in listed  # one sentence, no pause per venue
    call.press("1#")  # keyed during the list: the main office's first free time
    assert heard(call, prompt("ja", "offer_keys"))
    held = line.state(call)
    assert held.venue == "main"


def test_a_month_and_day_is_the_next_such_date() -> None:
    today = date(2026, 12, 15)
    assert read_month_day("1216", today) == date(2026, 12, 16)
    assert read_month_day("1215", today) == today
    assert read_month_day("0115", today) == date(2027, 1, 15)  # passed this year: next year
    assert read_month_day("0229", today) is None  # neither 2026 nor 2027 has one
    assert read_month_day("0229", date(2027, 12, 1)) == date(2028, 2, 29)
    for wrong in ("1301", "0230", "0000", "123", "12345", "１２１６"):
        assert read_month_day(wrong, today) is None


# --- check, move, cancel ---------------------------------------------------------------------


@LANGUAGES
def test_a_booking_is_found_by_caller_id_and_cancelled(line: Line, lang: str) -> None:
    number = new_mobile()
    first = line.call(from_number=number)
    book_pickup_for_two(line, first)
    made = line.booking_of(first)
    first.press("9")

    call = line.call(from_number=number)
    start(call, lang)
    call.press("2")
    call.press(made.code)
    # Found by the caller ID: no birth date asked; the booking read back.
    with line.sessions() as db:
        venue = booking.venue_or_404(db, made.venue_id)
    where = venue.name_ja if lang == "ja" else venue.name_en
    assert heard(
        call,
        prompt(
            lang,
            "booking_details",
            when=say_when(made.starts_at, lang),
            venue=where,
            service=ANY,
            people=people(lang, 2),
        ).split(ANY)[0],
    )
    call.press("2")
    assert heard(call, prompt(lang, "cancel_check", when=say_when(made.starts_at, lang)))
    call.press("1")
    assert heard(call, prompt(lang, "cancel_done"))
    lookup = line.http.post(f"{API}/bookings/{made.code}/lookup", json={"phone": number})
    assert lookup.json()["status"] == "cancelled"
    call.press("9")
    assert line.record(call).outcome == "self_served"


def test_a_booking_is_found_by_birth_date_and_moved(line: Line) -> None:
    owner = line.call()
    slot_id = book_pickup_for_two(line, owner)
    made = line.booking_of(owner)
    owner.press("9")
    before = seats(line, slot_id)

    call = line.call()  # another phone: the birth date is the second factor
    call.dial()
    call.press("2")
    slipped = made.code[:-1] + str((int(made.code[-1]) + 1) % 10)
    call.press(slipped)
    assert heard(call, prompt("ja", "code_wrong"))  # the check digit caught the slip
    call.press(made.code)
    assert heard(call, prompt("ja", "manage_birth"))
    assert "昭和は3" in prompt("ja", "manage_birth")  # the era form is offered here too
    call.press("19580402#")
    assert heard(call, prompt("ja", "not_found"))
    # The birth date is keyed again, the code kept: not back to the code.
    assert heard(call, prompt("ja", "manage_birth"))
    call.press("3330401#")  # 昭和33年4月1日, in the Japanese era
    assert heard(call, "ご予約は、")
    call.press("1")  # change the time
    assert heard(call, prompt("ja", "move_intro").split("。")[0])
    target = offered_slot(line, call)
    assert target != slot_id
    assert seats(line, slot_id) == before  # the old seats are kept until the new are secured
    call.press("1")
    moved = line.booking_of(owner)
    assert moved.slot_id == target
    assert moved.code == made.code
    assert heard(call, f"ご予約を、{say_when(moved.starts_at, 'ja')}に変更しました。")
    assert seats(line, slot_id)[1] == before[1] - 2
    with line.sessions() as db:
        count = db.execute(
            select(func.count()).select_from(Booking).where(Booking.code == made.code)
        ).scalar_one()
    assert count == 1


# --- retries, keys, silence --------------------------------------------------------------------


def _bookings_of(line: Line, phone: str) -> int:
    with line.sessions() as db:
        digest = db.info["booking"].vault.digest(phone)
        return int(
            db.execute(
                select(func.count()).select_from(Booking).where(Booking.phone_hmac == digest)
            ).scalar_one()
        )


def test_a_callsid_that_looks_like_a_my_number_still_books(line: Line) -> None:
    """CallSids and hold ids are hex: a run of 12 digits with a valid check digit turns up in
    about 1 call in 400 (found by the bench). The IVR's retry key is built from them, and must
    not be taken for a resident's My Number."""
    call = PhoneCall(
        line.http,
        public_base_url=PUBLIC,
        auth_token=TOKEN,
        from_number=new_mobile(),
        call_sid="CAfcf1580e729ddf7a44ae" + "123456789018",
    )
    book_pickup_for_two(line, call)
    assert line.booking_of(call).status == "booked"


def test_a_retried_webhook_never_books_twice(line: Line) -> None:
    call = line.call()
    before = _bookings_of(line, call.from_number)
    book_pickup_for_two(line, call)
    assert _bookings_of(line, call.from_number) == before + 1
    answered = call.exchanges[-1]
    again = call.retry_last()  # Twilio did not hear back in time and sent it again
    assert again.status_code == 200
    assert again.text == answered.body  # the same reply, replayed
    assert _bookings_of(line, call.from_number) == before + 1
    # The first webhook retried late neither starts the call again nor records a second one:
    # it gets the reply the call is at now.
    first = call.exchanges[0]
    replay = line.http.post(
        "/ivr/voice",
        data=first.params,
        headers={"X-Twilio-Signature": first.signature},
    )
    assert replay.text == answered.body
    assert line.record(call).outcome == "booked"


@LANGUAGES
def test_wrong_keys_and_silence_reprompt_then_reach_a_person(line: Line, lang: str) -> None:
    call = line.call()
    start(call, lang)
    call.press("5")  # 9, 8, 7 and 6 choose languages
    assert heard(call, prompt(lang, "wrong_key"))
    assert heard(call, prompt(lang, "menu"))
    call.press("*")  # repeat: not a miss
    # (a mobile caller: the menu ends with the web booking's link by SMS)
    assert call.last_said == f"{prompt(lang, 'menu')} {prompt(lang, 'menu_link')}"
    call.silence()
    assert heard(call, prompt(lang, "no_input"))
    said = call.silence()  # the third miss in a row
    assert prompt(lang, "too_many_misses") in said
    assert prompt(lang, "to_agent") in said
    # "We will put you through to a person" is said once, not twice in a row.
    through = {"ja": "おつなぎします", "en": "put you through", "ko": "연결해 드리겠습니다"}[lang]
    assert " ".join(said).count(through) == 1
    assert call.state == "queued"
    assert call.queue == f"madoguchi-{lang}"
    assert "menu!" in line.record(call).path


def test_the_queue_tells_the_place_in_line_and_takes_a_callback(line: Line) -> None:
    call = line.call()
    call.queue_position = 3
    call.dial()
    call.press("0")
    assert call.queue == "madoguchi-ja"
    assert heard(call, "ただいま、3番目にお待ちいただいています。")
    call.press("1")  # a callback instead of waiting
    assert heard(call, f"今おかけの電話番号、{say_phone(call.from_number, 'ja')}")
    call.press("1")
    assert heard(call, "折り返しのお電話を承りました。")
    assert call.state == "ended"
    with line.sessions() as db:
        waiting = [c for c in calls.open_callbacks(db) if c.phone == call.from_number]
    assert len(waiting) == 1
    assert (waiting[0].reason, waiting[0].language) == ("queue_wait", "ja")
    assert waiting[0].masked_phone.endswith(call.from_number[-4:])
    record = line.record(call)
    assert (record.outcome, record.queue_result) == ("callback_requested", "leave")


def test_an_agent_answers_in_english(line: Line) -> None:
    call = line.call()
    call.dial()
    call.press("9")
    call.press("0")
    assert call.queue == "madoguchi-en"
    assert heard(call, "You are number 1 in line.")
    call.agent_answers()
    record = line.record(call)
    assert (record.outcome, record.queue_result, record.language) == (
        "handed_to_agent",
        "bridged",
        "en",
    )


@LANGUAGES
def test_after_hours_the_agent_key_offers_a_callback(line: Line, lang: str) -> None:
    line.clock.set(datetime(2026, 12, 15, 20, 0, tzinfo=TOKYO))
    call = line.call(from_number="anonymous")
    start(call, lang)
    call.press("0")
    assert call.state == "gathering"  # no queue out of hours
    hours = {"ja": "平日の午前8時30分から午後5時15分までです。", "en": "from 8:30 AM to 5:15 PM"}
    assert heard(call, hours[lang])
    call.press("1")
    assert heard(call, prompt(lang, "callback_no_number"))
    number = "03" + new_mobile()[-8:]
    call.press(number + "#")
    call.press("1")
    assert heard(call, prompt(lang, "callback_done", phone=say_phone("+81" + number[1:], lang)))
    with line.sessions() as db:
        mine = [c for c in calls.open_callbacks(db) if c.phone == "+81" + number[1:]]
    assert [(c.reason, c.language) for c in mine] == [("after_hours", lang)]
    # Self-service stays open at night: the booking menu still answers.
    night = line.call()
    night.dial()
    night.press("1")
    assert heard(night, prompt("ja", "service_intro"))
    line.clock.set(START)


@LANGUAGES
def test_the_faq_answers_without_an_agent(line: Line, lang: str) -> None:
    call = line.call()
    start(call, lang)
    call.press("3")
    assert heard(call, prompt(lang, "faq_intro"))
    with line.sessions() as db:
        entries = calls.faq_entries(db)
    assert len(entries) >= 4  # hours, venues, what to bring, how long a card takes
    for i, entry in enumerate(entries, start=1):
        assert heard(call, prompt(lang, "faq_option", title=entry.title(lang), press=i))
    for i, entry in enumerate(entries, start=1):
        call.press(str(i))
        assert heard(call, entry.answer(lang))
    call.press(str(len(entries) + 1))  # not a question
    assert heard(call, prompt(lang, "wrong_key"))
    call.press("9")
    assert heard(call, prompt(lang, "menu"))
    call.hang_up()
    assert line.record(call).outcome == "self_served"


# --- signatures and failures -----------------------------------------------------------------


def test_unsigned_or_wrongly_signed_webhooks_are_refused(line: Line) -> None:
    from twilio.request_validator import RequestValidator

    params = {"CallSid": "CA" + "1" * 32, "From": new_mobile(), "To": "+81352734111"}
    assert line.http.post("/ivr/voice", data=params).status_code == 403
    wrong = RequestValidator("another token").compute_signature(f"{PUBLIC}/ivr/voice", params)
    answer = line.http.post("/ivr/voice", data=params, headers={"X-Twilio-Signature": wrong})
    assert answer.status_code == 403
    # Signed for the URL the request arrived on, not the public one: refused as well.
    local = RequestValidator(TOKEN).compute_signature("http://testserver/ivr/voice", params)
    answer = line.http.post("/ivr/voice", data=params, headers={"X-Twilio-Signature": local})
    assert answer.status_code == 403
    right = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/ivr/voice", params)
    answer = line.http.post("/ivr/voice", data=params, headers={"X-Twilio-Signature": right})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")


def test_a_failing_step_apologises_and_offers_a_person(
    line: Line, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ivr import flow

    def broken(turn: flow.Turn, digits: str) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setitem(flow.STEPS, "faq", flow.Step(flow.ask_faq, broken, choice=True))
    call = line.call()
    call.dial()
    call.press("3")
    said = call.press("1")
    assert prompt("ja", "sorry_error") in said
    assert call.state == "queued"  # within hours: straight to a person
    assert "error" in line.record(call).path


# --- a random walk ------------------------------------------------------------------------------

KEYS = ["1", "2", "3", "9", "0", "*", "#", "7", "1#", "0#", "19580401#", "212210", "234567"]


@pytest.mark.parametrize("seed", [1, 2])
def test_random_keys_never_break_the_line(line: Line, seed: int) -> None:
    """Callers pressing whatever: every answer is valid TwiML with status 200 (the caller
    raises otherwise), and every call ends cleanly."""
    rng = random.Random(seed)
    for _ in range(100):
        call = line.call(from_number=rng.choice([new_mobile(), "anonymous"]))
        call.dial()
        for _ in range(rng.randint(1, 20)):
            if call.state == "ended":
                break
            if call.state == "queued":
                roll = rng.random()
                if roll < 0.4:
                    call.agent_answers()
                elif roll < 0.8 and call.prompt is not None:
                    call.press(rng.choice(["1", "2"]))
                else:
                    call.keep_waiting()
                continue
            roll = rng.random()
            if roll < 0.1:
                call.silence()
            elif roll < 0.15:
                assert call.retry_last().status_code == 200
            else:
                keys = rng.choice(KEYS)
                if call.prompt is not None and call.prompt.num_digits is not None:
                    keys = keys[: call.prompt.num_digits]
                call.press(keys)
        if call.state != "ended":
            call.hang_up()
        record = line.record(call)
        assert record.outcome != "in_progress"
        assert record.ended_at is not None


# --- reading keys -----------------------------------------------------------------------------


def test_letters_by_keypad_pairs() -> None:
    assert read_keypad_letters("212210") == "AB1"
    assert read_keypad_letters("747290") == "SQ9"
    assert read_keypad_letters("25") is None  # 2 has three letters
    assert read_keypad_letters("11") is None
    assert read_keypad_letters("2") is None


def test_a_birth_date_keyed_in_the_era_is_read_back_in_the_era(line: Line) -> None:
    call = line.call()
    call.dial()
    call.press("1")
    call.press("3")  # PIN reset
    call.press("1")  # one person
    call.press("0#")  # the earliest time anywhere
    call.press("1")  # take it
    call.press("3330401#")  # 昭和33年4月1日
    assert heard(call, "昭和33年4月1日、ですね。")
    call.press("2")  # key it again, in the Western calendar
    call.press("19580401#")
    assert heard(call, "1958年4月1日、ですね。")
    call.press("2")
    call.press("5010501#")  # 令和元年
    assert heard(call, "令和元年5月1日、ですね。")


def test_a_second_wrong_birth_date_asks_for_the_code_again(line: Line) -> None:
    owner = line.call()
    book_pickup_for_two(line, owner)
    made = line.booking_of(owner)
    call = line.call()
    call.dial()
    call.press("2")
    call.press(made.code)
    call.press("19580402#")
    assert heard(call, prompt("ja", "manage_birth"))
    call.press("19580403#")
    assert heard(call, prompt("ja", "not_found"))
    assert heard(call, prompt("ja", "code_entry"))


def test_birth_dates_in_the_western_or_japanese_calendar() -> None:
    today = date(2026, 12, 15)
    assert read_birth_date("19580401", today) == date(1958, 4, 1)
    assert read_birth_date("3330401", today) == date(1958, 4, 1)  # 昭和33年
    assert read_birth_date("4010108", today) == date(1989, 1, 8)  # 平成元年
    assert read_birth_date("5050505", today) == date(2023, 5, 5)  # 令和5年
    assert read_birth_date("19580231", today) is None
    assert read_birth_date("20300101", today) is None  # not born yet
    assert read_birth_date("12345", today) is None


def test_times_as_spoken() -> None:
    at = datetime(2026, 11, 25, 10, 0, tzinfo=TOKYO)
    assert say_when(at, "ja") == "11月25日 水曜日 午前10時"
    assert say_when(at, "en") == "Wednesday, November 25, at 10 AM"
    assert say_when(at + timedelta(hours=2), "ja") == "11月25日 水曜日 正午"
    assert say_when(at + timedelta(hours=3, minutes=15), "en").endswith("at 1:15 PM")
    assert say_when(at + timedelta(hours=3, minutes=15), "ja").endswith("午後1時15分")
    assert say_digits("29532630", "ja", group=4) == "に、きゅう、ご、さん。に、ろく、さん、ゼロ"
    assert say_phone("+819012345678", "en").startswith("zero, nine, zero, one, two")


def test_an_edited_answer_is_spoken_from_the_next_call(line: Line) -> None:
    with line.sessions() as db:
        first = calls.faq_entries(db)[0]
        calls.update_faq(
            db,
            faq_id=first.id,
            title_ja=first.title_ja,
            title_en=first.title_en,
            answer_ja="年末年始は12月29日から1月3日までお休みです。",
            answer_en=first.answer_en,
        )
        db.commit()
    try:
        call = line.call()
        call.dial()
        call.press("3")
        call.press("1")
        assert heard(call, "年末年始は12月29日から1月3日までお休みです。")
    finally:
        with line.sessions() as db:
            calls.update_faq(
                db,
                faq_id=first.id,
                title_ja=first.title_ja,
                title_en=first.title_en,
                answer_ja=first.answer_ja,
                answer_en=first.answer_en,
            )
            db.commit()


def test_a_queue_that_fails_offers_a_callback_recorded_as_such(line: Line) -> None:
    """Twilio answers the queue with queue-full: the caller hears so, asks for a callback, and
    the request says why (not "waited too long")."""
    from twilio.request_validator import RequestValidator

    call = line.call()
    call.dial()
    call.press("0")
    assert call.state == "queued"
    enqueue = next(e for e in reversed(call.exchanges) if "<Enqueue" in e.body)
    action = re.search(r'<Enqueue action="([^"]+)"', enqueue.body)
    assert action

    def post(url: str, **fields: str) -> str:
        params = {**enqueue.params, **fields}
        url = url.replace("&amp;", "&")
        signature = RequestValidator(TOKEN).compute_signature(url, params)
        answer = line.http.post(
            url.removeprefix(PUBLIC), data=params, headers={"X-Twilio-Signature": signature}
        )
        assert answer.status_code == 200
        text: str = answer.text
        return text

    failed = post(action.group(1), QueueResult="queue-full")
    assert prompt("ja", "queue_failed") in failed
    keys = re.search(r'<Gather action="([^"]+)"', failed)
    assert keys
    asked = post(keys.group(1), Digits="1")  # a callback, please
    confirm = re.search(r'<Gather action="([^"]+)"', asked)
    assert confirm
    done = post(confirm.group(1), Digits="1")  # to this number
    assert "折り返しのお電話を承りました" in done
    with line.sessions() as db:
        mine = [c for c in calls.open_callbacks(db) if c.phone == call.from_number]
    assert [c.reason for c in mine] == ["queue_failed"]


def test_a_calls_path_reads_in_words_on_the_screen_pop() -> None:
    assert calls.readable_path("voice menu=0 agent answered queue=bridged") == [
        "着信",
        "メニュー：担当者（0）",
        "担当者へ",
        "担当者が応答",
        "待ち行列：担当者につながった",
    ]
    assert calls.readable_path("menu! menu=* book_party=3 offer=4 mystery=7") == [
        "メニュー：入力なし・誤り",
        "メニュー：もう一度",
        "人数：3",
        "空き日時の案内：1週間後（4）",
        "mystery：7",  # a step named later still shows, as it is
    ]
