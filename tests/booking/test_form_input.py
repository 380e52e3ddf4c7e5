"""The resident's input, checked whole: era birth dates (one conversion for the web and the
phone), names by the page's language, every field's problem at once, and the contact languages
the API takes."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from booking.eras import BY_KEY, ERAS, OutsideEra, from_era
from booking.errors import BookingError
from booking.languages import CODES, EVERY
from booking.personal import LANGUAGES, FieldProblems, check_resident, normalise_name_kana
from booking.views import MemberInput, ResidentInput
from ivr.flow import LANGUAGES as PHONE_LANGUAGES
from ivr.flow import read_birth_date
from reminders.service import texts
from tests.booking.test_api import (  # noqa: F401 (fixtures)
    API,
    Db,
    client,
    database,
    error_of,
    ok,
    person,
)

TODAY = date(2026, 12, 15)

# --- Era dates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("era", "ymd", "western"),
    [
        ("showa", (33, 4, 1), date(1958, 4, 1)),
        ("showa", (64, 1, 7), date(1989, 1, 7)),  # the last day of 昭和
        ("heisei", (1, 1, 8), date(1989, 1, 8)),  # 平成元年
        ("heisei", (31, 4, 30), date(2019, 4, 30)),  # the last day of 平成
        ("reiwa", (1, 5, 1), date(2019, 5, 1)),
        ("reiwa", (5, 5, 5), date(2023, 5, 5)),
        ("taisho", (15, 12, 24), date(1926, 12, 24)),
    ],
)
def test_era_dates_become_western_dates(era: str, ymd: tuple[int, int, int], western: date) -> None:
    assert from_era(era, *ymd) == western


@pytest.mark.parametrize(
    ("era", "ymd"),
    [
        ("heisei", (32, 1, 1)),  # 平成 ended in its 31st year
        ("heisei", (31, 5, 1)),  # that day is 令和元年5月1日
        ("showa", (64, 1, 8)),  # 平成元年1月8日
        ("reiwa", (1, 4, 30)),  # still 平成
        ("showa", (1, 12, 24)),  # still 大正
        ("showa", (0, 1, 1)),
    ],
)
def test_a_date_outside_its_era_is_refused(era: str, ymd: tuple[int, int, int]) -> None:
    with pytest.raises(OutsideEra) as refused:
        from_era(era, *ymd)
    assert refused.value.era.key == era


def test_no_such_day_or_era_is_not_a_date() -> None:
    with pytest.raises(ValueError, match="day is out of range") as refused:
        from_era("showa", 33, 2, 30)
    assert not isinstance(refused.value, OutsideEra)
    with pytest.raises(ValueError, match="no era"):
        from_era("edo", 1, 1, 1)


@given(st.dates(min_value=ERAS[-1].first, max_value=date(2100, 12, 31)), st.sampled_from(ERAS))
def test_every_day_reads_back_in_its_own_era_only(day: date, era: Any) -> None:
    year = day.year - era.first.year + 1
    inside = era.first <= day and (era.last is None or day <= era.last)
    if inside:
        assert from_era(era.key, year, day.month, day.day) == day
    elif year >= 1:
        with pytest.raises(OutsideEra):
            from_era(era.key, year, day.month, day.day)


def test_the_phone_line_uses_the_same_conversion() -> None:
    assert read_birth_date("3330401", TODAY) == date(1958, 4, 1)  # 昭和33年4月1日
    assert read_birth_date("4310430", TODAY) == date(2019, 4, 30)
    assert read_birth_date("4320101", TODAY) is None  # 平成32年: there was none
    assert read_birth_date("3640108", TODAY) is None  # 昭和64年1月8日 was 平成元年
    assert BY_KEY["heisei"].years() == 31


# --- Names --------------------------------------------------------------------------------

HIRAGANA = st.text(
    st.sampled_from([chr(c) for c in range(0x3041, 0x3097)] + [" ", "\u3000"]),
    min_size=1,
    max_size=30,
).filter(lambda s: s.strip(" \u3000"))


def to_katakana(text: str) -> str:
    return "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)


@given(HIRAGANA)
def test_hiragana_is_taken_as_katakana(name: str) -> None:
    as_katakana = normalise_name_kana(name, latin=False)
    assert as_katakana == normalise_name_kana(to_katakana(name), latin=False)
    assert all("\u30a1" <= c <= "\u30fa" or c == " " for c in as_katakana)
    assert "  " not in as_katakana and as_katakana == as_katakana.strip()
    assert normalise_name_kana(as_katakana, latin=False) == as_katakana  # stored form is stable


def test_names_are_normalised_to_one_stored_form() -> None:
    assert normalise_name_kana("やまだ　はなこ", latin=False) == "ヤマダ ハナコ"
    assert normalise_name_kana("ﾔﾏﾀﾞ  ﾊﾅｺ", latin=False) == "ヤマダ ハナコ"  # half-width
    assert normalise_name_kana("  ヤマダ ハナコ ") == "ヤマダ ハナコ"


@pytest.mark.parametrize("name", ["John Smith", "山田太郎", "ヤマダ Taro", "・・", "-"])
def test_a_japanese_page_takes_katakana_only(name: str) -> None:
    with pytest.raises(BookingError) as refused:
        normalise_name_kana(name, latin=False)
    assert refused.value.code == "invalid_name_kana"


def test_latin_letters_are_kept_as_given_where_allowed() -> None:
    assert normalise_name_kana("John  Smith") == "John Smith"
    assert normalise_name_kana("O'Brien-Kim") == "O'Brien-Kim"
    with pytest.raises(BookingError):
        normalise_name_kana("山田太郎")  # kanji never


# --- Every problem at once ----------------------------------------------------------------


def test_every_wrong_field_is_named_at_once() -> None:
    resident = ResidentInput(
        name_kana="山田太郎",
        phone="090-12",
        birth_date=date(2030, 1, 1),
        language="xx",
        members=[MemberInput("AB1-2345"), MemberInput(None), MemberInput("AB1-234567")],
    )
    with pytest.raises(FieldProblems) as refused:
        check_resident(TODAY, True, 3, resident)
    codes = {field: error.code for field, error in refused.value.problems.items()}
    assert codes == {
        "name_kana": "invalid_name_kana",
        "phone": "invalid_phone",
        "birth_date": "invalid_birth_date",
        "language": "invalid_language",
        "members[0].notice_number": "invalid_notice_number",
        "members[1].notice_number": "invalid_notice_number",
    }
    # Its own code and field are the first problem's, as a refusal of that field alone said.
    assert (refused.value.code, refused.value.field) == ("invalid_name_kana", "name_kana")
    assert refused.value.status == 422


def test_a_duplicate_notice_number_is_one_of_the_problems() -> None:
    twice = [MemberInput("AB1-234567"), MemberInput("ab1-234567")]
    resident = ResidentInput(name_kana="ヤマダ", phone="x", birth_date=date(1950, 1, 1))
    with pytest.raises(FieldProblems) as refused:
        check_resident(TODAY, True, 2, ResidentInput(**{**resident.__dict__, "members": twice}))
    assert {f: e.code for f, e in refused.value.problems.items()} == {
        "phone": "invalid_phone",
        "members[1].notice_number": "duplicate_notice_number",
    }


def test_the_service_speaks_the_same_languages_everywhere() -> None:
    """One list (booking/languages.py): a booking may be in any of its languages, the phone
    line speaks languages of the list offered on it, and every text and call a booking sends
    exists at least in Japanese, English and Korean (the reminders' own catalogue tests check
    each language offered in texts)."""
    assert LANGUAGES == CODES
    assert set(PHONE_LANGUAGES) <= set(EVERY.on("phone"))
    for kind, by_language in texts().items():
        assert {"ja", "en", "ko"} <= set(by_language), kind


# --- The API ------------------------------------------------------------------------------


def test_the_api_names_every_wrong_field(client: TestClient, database: Db) -> None:  # noqa: F811
    [slot] = database.slots(3)
    before = database.bookings()
    body = person(
        slot,
        name_kana="山田太郎",
        phone="0901",
        party_size=1,
        members=[{"notice_number": "AB1-2345"}],
    )
    error = error_of(client.post(f"{API}/bookings", json=body), 422, "invalid_name_kana")
    assert error["field"] == "name_kana"
    found = {p["field"]: p["code"] for p in error["problems"]}
    assert found == {
        "name_kana": "invalid_name_kana",
        "phone": "invalid_phone",
        "members[0].notice_number": "invalid_notice_number",
    }
    for problem in error["problems"]:
        assert problem["problem"] == problem["message"]["en"]
        assert any(ord(c) > 0x3000 for c in problem["message"]["ja"])
    assert database.bookings() == before


def test_the_api_books_in_korean_and_refuses_unknown_languages(
    client: TestClient,  # noqa: F811
    database: Db,  # noqa: F811
) -> None:
    [slot] = database.slots(3)
    booked = ok(client.post(f"{API}/bookings", json=person(slot, language="ko")), 201)
    assert booked["language"] == "ko"
    refused = error_of(
        client.post(f"{API}/bookings", json=person(slot, language="xx")), 422, "invalid_request"
    )
    [problem] = refused["problems"]
    assert problem["field"] == "language"
    assert all(f"'{code}'" in problem["problem"] for code in LANGUAGES)
    schema = ok(client.get("/openapi.json"))["components"]["schemas"]["BookingIn"]
    assert schema["properties"]["language"]["enum"] == list(LANGUAGES)


def test_a_birthday_tomorrow_is_not_yet() -> None:
    resident = ResidentInput(
        name_kana="ヤマダ", phone="090-1234-5678", birth_date=TODAY + timedelta(days=1)
    )
    with pytest.raises(FieldProblems) as refused:
        check_resident(TODAY, False, 1, resident)
    assert list(refused.value.problems) == ["birth_date"]
