"""Booking in the LINE chat, end to end: signed events in, replies out through the fake, the
booking made by the one engine and linked to the LINE user."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import replace
from datetime import date

from sqlalchemy import select

from booking import service as booking
from booking.context import context
from booking.models import Booking
from ivr.line_chat import lock_user
from ivr.models import LineUser
from tests.ivr.conftest import new_mobile
from tests.ivr.line_resident import LineApp, Resident, line_app

__all__ = ["line_app"]
NOTICE_TAILS = itertools.count(random.SystemRandom().randrange(100000, 800000, 1000), 2)


def _to_the_details(resident: Resident, *, service: str, party: str) -> None:
    resident.follow()
    resident.says("予約する")
    resident.taps(service)
    resident.taps(party)
    resident.taps("どこでも")
    first_day = resident.choices()[0]
    resident.taps(first_day)
    times = resident.buttons()
    assert times, resident.said()
    resident.taps(times[0])
    assert "分間お取りしています" in resident.said()


def book_pickup_for_two(resident: Resident, phone: str) -> tuple[str, list[str]]:
    """Walk the chat to a booking of a card pickup for two; its code and notice numbers."""
    _to_the_details(resident, service="マイナンバーカードの受け取り（交付）", party="2人")
    tail = next(NOTICE_TAILS)
    notices = [f"LN1-{tail}", f"LN1-{tail + 1}"]
    for notice in notices:
        assert "交付通知書の番号" in resident.said()
        resident.says(notice.lower())  # lower case accepted, read back normalised
        assert f"「{notice}」でよろしいですか" in resident.said()
        resident.taps("はい")
    assert "生年月日" in resident.said()
    resident.says("1958年4月1日")
    assert "「1958-04-01」" in resident.said()
    resident.taps("はい")
    resident.says(phone)
    resident.taps("はい")
    assert "次の内容で予約します" in resident.said()
    resident.taps("予約する")
    said = resident.said()
    assert "予約しました" in said, said
    code = said.split("予約番号は ")[1][:8]
    return code, notices


def test_a_resident_books_a_pickup_for_two_in_the_chat(line_app: LineApp) -> None:
    resident = line_app.resident()
    phone = new_mobile()
    code, notices = book_pickup_for_two(resident, phone)
    assert all(d.kind == "reply" for d in line_app.fake.delivered)
    assert "交付通知書（はがき）" in resident.said()  # what to bring, from the ward's file
    with line_app.sessions() as db:
        booking_id = db.execute(select(Booking.id).where(Booking.code == code)).scalar_one()
        made = booking.get_booking(db, booking_id=booking_id)
        assert (made.channel, made.party_size, made.phone) == ("line", 2, phone)
        assert made.birth_date == date(1958, 4, 1)
        assert [m.notice_number for m in made.members] == notices
        assert booking.line_user_of(db, booking_id=booking_id) == resident.user_id


def test_a_my_number_typed_in_is_refused_and_never_kept(line_app: LineApp) -> None:
    resident = line_app.resident()
    _to_the_details(resident, service="暗証番号の再設定", party="1人")
    assert "生年月日" in resident.said()
    resident.says("1234 5678 9018")
    said = resident.said()
    assert "マイナンバー（個人番号）は入力しないでください" in said
    assert "9018" not in said
    with line_app.sessions() as db:
        row = lock_user(db, resident.user_id)
        state = json.loads(context(db).vault.decrypt(row.state_enc or ""))
    assert "9018" not in json.dumps(state)
    assert state["step"] == "birth"  # asked again


def test_a_double_tap_on_book_books_once(line_app: LineApp) -> None:
    resident = line_app.resident()
    _to_the_details(resident, service="暗証番号の再設定", party="1人")
    resident.says("19800401")
    resident.taps("はい")
    resident.says(new_mobile())
    resident.taps("はい")
    data = resident.data_of("予約する")
    first = resident.send(resident.event("postback", postback={"data": data}))
    second = resident.send(resident.event("postback", postback={"data": data}))
    assert any("予約しました" in t for d in first for t in d.texts)
    assert not any("予約しました" in t for d in second for t in d.texts)
    with line_app.sessions() as db:
        digest = db.execute(select(LineUser.user_hmac)).scalars().all()
        assert digest
        linked = booking.bookings_for_line_user(db, line_user=resident.user_id)
    assert len(linked) == 1


def test_an_english_resident_books_in_english(line_app: LineApp) -> None:
    resident = line_app.resident()
    resident.follow()
    resident.taps("English")
    resident.says("Book")
    resident.taps("PIN reset")
    resident.taps("1")
    resident.taps("Anywhere")
    resident.taps(resident.choices()[0])
    resident.taps(resident.buttons()[0])
    assert "is kept for you" in resident.said()
    resident.says("1980-04-01")
    resident.taps("Yes")
    resident.says(new_mobile())
    resident.taps("Yes")
    resident.taps("Book")
    assert "Booked. Your booking code is" in resident.said()


def test_bookings_a_line_user_may_try_are_limited(line_app: LineApp) -> None:
    state = line_app.http.app.state  # type: ignore[attr-defined]
    state.line_channel = replace(
        state.line_channel, config=replace(state.line_channel.config, bookings_per_hour=1)
    )
    resident = line_app.resident()
    for attempt in range(2):
        _to_the_details(resident, service="暗証番号の再設定", party="1人")
        resident.says("19800401")
        resident.taps("はい")
        resident.says(new_mobile())
        resident.taps("はい")
        resident.taps("予約する")
        said = resident.said()
        assert ("予約しました" in said) == (attempt == 0), said
    assert "予約の回数が多すぎます" in said


def test_a_korean_resident_books_in_korean(line_app: LineApp) -> None:
    resident = line_app.resident()
    resident.follow()
    resident.taps("한국어")
    resident.says("예약하기")
    resident.taps(resident.choices()[2])  # the third service, by its Korean name
    resident.taps("1명")
    resident.taps("어디든")
    resident.taps(resident.choices()[0])
    resident.taps(resident.buttons()[0])
    assert "잡아 두었습니다" in resident.said()
    resident.says("1980-04-01")
    resident.taps("예")
    resident.says(new_mobile())
    resident.taps("예")
    resident.taps("예약하기")
    assert "예약되었습니다. 예약 번호는" in resident.said()


def test_a_value_read_back_wrong_is_typed_again(line_app: LineApp) -> None:
    resident = line_app.resident()
    _to_the_details(resident, service="マイナンバーカードの受け取り（交付）", party="1人")
    tail = next(NOTICE_TAILS)
    resident.says(f"LN2-{tail}")
    resident.taps("いいえ")
    assert "1人目の方の、交付通知書の番号" in resident.said()  # the same question again
    resident.says(f"LN2-{tail + 1}")
    yes = resident.data_of("はい")
    resident.taps("はい")
    resident.send(resident.event("postback", postback={"data": yes}))  # a double tap
    assert "生年月日" in resident.said()  # still asked for, the hold kept
    resident.says("abc")
    assert "読み取れませんでした" in resident.said()
    resident.says("1980-04-01")
    resident.taps("はい")
    resident.says(new_mobile())
    resident.taps("はい")
    resident.taps("予約する")
    assert "予約しました" in resident.said()
    code = resident.said().split("予約番号は ")[1][:8]
    with line_app.sessions() as db:
        booking_id = db.execute(select(Booking.id).where(Booking.code == code)).scalar_one()
        made = booking.get_booking(db, booking_id=booking_id)
    assert [m.notice_number for m in made.members] == [f"LN2-{tail + 1}"]


def _language_of(line_app: LineApp, said: str, marker: str) -> str:
    """The language of the booking whose code follows ``marker`` in what the chat said."""
    code = said.split(marker)[1].strip()[:8]
    with line_app.sessions() as db:
        return db.execute(select(Booking.language).where(Booking.code == code)).scalar_one()


def test_the_menu_offers_the_wards_languages_each_by_its_own_name(line_app: LineApp) -> None:
    resident = line_app.resident()
    resident.follow()
    offered = resident.choices()[4:]
    assert offered == ["English", "한국어", "简体中文", "Tiếng Việt", "नेपाली", "やさしい日本語"]
    resident.taps("简体中文")
    assert "请问您要办理什么？" in resident.said()
    assert resident.choices()[4:] == [
        "日本語",
        "English",
        "한국어",
        "Tiếng Việt",
        "नेपाली",
        "やさしい日本語",
    ]


def book_in_chinese(resident: Resident, phone: str) -> str:
    """Walk the chat in Chinese to a booking of the third service for one; its code."""
    resident.follow()
    resident.taps("简体中文")
    resident.says("预约")
    resident.taps(resident.choices()[2])  # the third service, by its Chinese name
    resident.taps("1人")
    resident.taps("任何地点")
    first_day = resident.choices()[0]
    assert "月" in first_day and "周" in first_day  # 12月16日周三, as Babel writes zh
    resident.taps(first_day)
    resident.taps(resident.buttons()[0])
    assert "已为您保留" in resident.said()
    resident.says("1980-04-01")
    assert "“1980-04-01”，对吗？" in resident.said()
    resident.taps("是")
    resident.says(phone)
    resident.taps("是")
    assert "将按以下内容预约" in resident.said()
    resident.taps("预约")
    said = resident.said()
    assert "预约成功。您的预约编号是" in said, said
    assert "前一天的提醒将通过此LINE发送。" in said
    return said.split("您的预约编号是")[1].strip()[:8]


def test_a_chinese_resident_books_in_chinese(line_app: LineApp) -> None:
    resident = line_app.resident()
    code = book_in_chinese(resident, new_mobile())
    with line_app.sessions() as db:
        made = db.execute(select(Booking).where(Booking.code == code)).scalar_one()
        assert (made.channel, made.language) == ("line", "zh")  # its texts are Chinese


def test_a_resident_books_in_easy_japanese(line_app: LineApp) -> None:
    resident = line_app.resident()
    resident.follow()
    resident.taps("やさしい日本語")
    assert "何(なに)を しますか。" in resident.said()
    resident.taps("予約(よやく)する")
    resident.taps(resident.choices()[2])
    resident.taps("1人")
    resident.taps("どこでも いい")
    resident.taps(resident.choices()[0])
    resident.taps(resident.buttons()[0])
    assert "とっておきます" in resident.said()
    resident.says("1980-04-01")
    assert "「1980-04-01」で いいですか。" in resident.said()
    resident.taps("はい")
    resident.says(new_mobile())
    resident.taps("はい")
    assert "この 予約(よやく)で いいですか。" in resident.said()
    resident.taps("予約(よやく)する")
    said = resident.said()
    assert "予約(よやく)しました。予約番号(よやくばんごう)は" in said, said
    assert _language_of(line_app, said, "予約番号(よやくばんごう)は") == "easy"


def test_a_ward_offers_only_its_languages_on_line(line_app: LineApp) -> None:
    state = line_app.http.app.state  # type: ignore[attr-defined]
    state.line_channel = replace(
        state.line_channel, config=replace(state.line_channel.config, languages=("ja", "zh"))
    )
    resident = line_app.resident()
    resident.follow()
    assert resident.choices()[4:] == ["简体中文"]
    resident.taps("简体中文")
    assert resident.choices()[4:] == ["日本語"]
    # A button for a language the ward does not offer (an older menu) answers in Japanese.
    resident.send(resident.event("postback", postback={"data": "a=lang&v=ko"}))
    assert "ご用件をお選びください。" in resident.said()
