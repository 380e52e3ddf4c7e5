"""Residents' texts in the ward's own words: the confirmation says what to bring, where to go
and whom to call, in the resident's language (Korean names for Korean texts), counts people as
the language does, and stays within a sensible number of SMS segments for every venue and
service of the sample ward."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.orm import Session

from booking import service as booking
from booking.context import TOKYO
from reminders import jobs
from reminders import service as reminders
from reminders.texts import BUDGET, DEFAULT_BUDGET, Visit, compose, people
from tests.reminders.conftest import Desk, new_landline, new_mobile

CALL_CENTER = "03-1234-5678"  # the sample ward's +81312345678, as written at home
CONFIRMATION_PARTS = 4  # the most a confirmation may take (Japanese: 4 x 67 = 268 characters)
AT = datetime(2026, 12, 16, 8, 30, tzinfo=TOKYO)


def confirmation_of(desk: Desk, phone: str, *, language: str, party: int = 1) -> str:
    made = desk.book(phone, language=language, party=party)
    desk.plan()
    assert jobs.send(desk.message(made.id, "confirmation").id) == "sent"
    [body] = desk.sms_to(phone)
    return body


def test_a_confirmation_says_what_to_bring_where_to_go_and_whom_to_call(desk: Desk) -> None:
    body = confirmation_of(desk, new_mobile(), language="ja")  # help with the application
    assert "本庁舎 マイナンバーカード交付窓口 1人 予約番号" in body
    assert "持ち物：申請書（QRコード付き、お持ちの方）と本人確認書類。" in body
    assert "会場：新宿区歌舞伎町1-4-1 本庁舎1階（西武新宿線「西武新宿駅」徒歩3分" in body
    assert body.endswith(f"問合せ：{CALL_CENTER}")
    assert reminders.sms_segments(body) <= CONFIRMATION_PARTS, (len(body), body)


def test_a_korean_confirmation_names_the_venue_in_korean(desk: Desk) -> None:
    body = confirmation_of(desk, new_mobile(), language="ko")
    assert "본청사 마이넘버카드 교부 창구 1명" in body
    assert "준비물: 신청서(QR코드가 있는 것, 가지고 계신 경우)와 신분증." in body
    assert "장소: 신주쿠구 가부키초 1-4-1 본청사 1층 (세이부신주쿠역에서 도보 3분" in body
    assert "Main Office" not in body and "Kabukicho" not in body
    assert body.endswith(f"문의: {CALL_CENTER}")


def test_an_english_confirmation_counts_one_person_and_more_people(desk: Desk) -> None:
    one = confirmation_of(desk, new_mobile(), language="en")
    assert "Main Office, My Number Card Counter, 1 person." in one
    assert "1 people" not in one
    assert "Address: 1F Main Building, 1-4-1 Kabukicho, Shinjuku (3 min walk" in one
    assert one.endswith(f"Questions: call {CALL_CENTER}")
    two = confirmation_of(desk, new_mobile(), language="en", party=2)
    assert ", 2 people." in two


def test_people_by_the_languages_plural_forms() -> None:
    assert [people("en", n) for n in (1, 2, 0)] == ["1 person", "2 people", "0 people"]
    assert people("ja", 1) == "1人"
    assert people("ko", 1) == "1명"


def test_a_korean_voice_reminder_names_the_ward_and_the_venue_in_korean(desk: Desk) -> None:
    phone = new_landline()
    made = desk.book(phone, language="ko")
    desk.plan()
    reminder = desk.message(made.id, "reminder", "voice")
    desk.due_now(reminder.id)
    assert jobs.send(reminder.id) == "sent"
    [url] = desk.calls_to(phone)
    heard = " ".join(desk.resident(phone).pick_up(url))
    assert "신주쿠구 마이넘버 카드 창구에서 예약 안내를 드립니다." in heard
    assert "본청사 마이넘버카드 교부 창구, 카드 신청 도움(신청 보조), 1명" in heard
    assert "Main Office" not in heard and "Help with" not in heard


# --- length -----------------------------------------------------------------------------------


def every_confirmation(db: Session, language: str) -> list[str]:
    """The sample ward's confirmation for every venue and service it offers, for the largest
    party, as residents would receive it."""
    most = 9
    found = []
    offered = booking.venue_services(db)
    for venue in booking.list_venues(db):
        for service_id in offered.get(venue.id, []):
            found.append(
                reminders.sms_body(
                    db,
                    kind="confirmation",
                    language=language,
                    venue_id=venue.id,
                    service_id=service_id,
                    code="29532630",
                    starts_at=AT,
                    party=most,
                )
            )
    return found


@pytest.mark.parametrize("language", ["ja", "en", "ko"])
def test_every_confirmation_of_the_sample_ward_fits_four_segments(
    db: Session, language: str
) -> None:
    """Measured: the longest is the card pickup at the main office, 224 characters in
    Japanese and 247 in Korean (UCS-2: 4 segments of 67), 503 in English (GSM once the
    bring list's 交付通知書 is left out: 4 segments of 153), each with everything in it."""
    texts = every_confirmation(db, language)
    assert len(texts) >= 34  # 4 services at the main office, 3 at each of 10 branches
    for text in texts:
        assert reminders.sms_segments(text) <= CONFIRMATION_PARTS, (len(text), text)
        assert "29532630" in text and text.endswith(CALL_CENTER)
    longest = max(texts, key=len)
    bring = {
        "ja": "持ち物：交付通知書",
        "en": "Bring: Your card pickup notice",
        "ko": "준비물: 교부통지서",
    }
    station = {"ja": "西武新宿駅", "en": "Seibu-Shinjuku Station", "ko": "세이부신주쿠역"}
    assert bring[language] in longest and station[language] in longest


def test_a_bring_list_too_long_for_a_text_points_to_the_booking_site() -> None:
    visit = Visit(
        code="29532630",
        starts_at=AT,
        venue="本庁舎 マイナンバーカード交付窓口",
        bring="本人確認書類。" * 40,
        address="新宿区歌舞伎町1-4-1 本庁舎1階",
        access="西武新宿線「西武新宿駅」徒歩3分",
        phone="+81312345678",
    )
    text = compose("confirmation", "ja", visit)
    assert "持ち物は予約サイトでご確認ください。" in text
    assert "本人確認書類。" not in text
    assert "新宿区歌舞伎町1-4-1" in text and text.endswith(CALL_CENTER)
    assert reminders.sms_segments(text) <= CONFIRMATION_PARTS


@pytest.mark.parametrize("kind", sorted(reminders.texts()))
@pytest.mark.parametrize("language", ["ja", "en", "ko"])
def test_every_text_ends_with_the_call_center_within_its_budget(kind: str, language: str) -> None:
    visit = Visit(
        code="29532630",
        starts_at=AT,
        venue={
            "ja": "本庁舎 マイナンバーカード交付窓口",
            "ko": "본청사 마이넘버카드 교부 창구",
        }.get(language, "Main Office, My Number Card Counter"),
        party=1,
        phone="+81312345678",
    )
    text = compose(kind, language, visit)
    assert reminders.sms_segments(text) <= BUDGET.get(kind, DEFAULT_BUDGET), (len(text), text)
    assert text.endswith(CALL_CENTER), text
    assert "1 people" not in text
