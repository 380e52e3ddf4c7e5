"""Every language residents' texts are offered in has every text and part, with the same
placeholders as the Japanese one; each text stays within its SMS budget in every language
(UCS-2: Chinese, Vietnamese with its tone marks, Nepali and やさしい日本語 alike), with dates
and times written as the language writes them."""

from __future__ import annotations

import re
import tomllib
from datetime import date, datetime
from importlib.resources import files

import pytest
from sqlalchemy.orm import Session

from booking.context import TOKYO
from booking.languages import ALL
from reminders import service as reminders
from reminders.texts import (
    BUDGET,
    DEFAULT_BUDGET,
    OFFER_BUDGET,
    Visit,
    compose,
    compose_lost,
    compose_offer,
    day_text,
    people,
    when_text,
)
from tests.reminders.test_ward_words import every_confirmation

PLACEHOLDER = re.compile(r"\{(\w+)\}")
SMS = [language.code for language in ALL if language.offered_on("sms")]
NEW = ["zh", "vi", "ne", "easy"]
AT = datetime(2026, 12, 16, 8, 30, tzinfo=TOKYO)
CALL_CENTER = "03-1234-5678"
LINK = "https://madoguchi.example.jp/w/" + "x" * 43  # a waitlist page: a 32-byte token


def catalogue() -> dict[str, dict[str, object]]:
    text = files("reminders").joinpath("messages.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def placeholders(entry: object) -> dict[str, set[str]]:
    forms = entry if isinstance(entry, dict) else {"": entry}
    return {form: set(PLACEHOLDER.findall(str(text))) for form, text in forms.items()}


def test_texts_are_offered_in_every_language_of_the_list() -> None:
    assert set(SMS) == {"ja", "en", "ko", "zh", "vi", "ne", "easy"}


@pytest.mark.parametrize("language", SMS)
def test_every_text_and_part_has_the_language_and_its_placeholders(language: str) -> None:
    for name, table in catalogue().items():
        assert language in table, (name, language)
        wanted = set().union(*placeholders(table["ja"]).values())
        for form, used in placeholders(table[language]).items():
            assert used == wanted, (name, language, form, used, wanted)


def venue(language: str) -> str:
    """A long name for a text to carry: Japanese for やさしい日本語, else the English one (a
    ward's file may lack its Chinese, Vietnamese or Nepali names)."""
    return {"easy": "本庁舎 マイナンバーカード交付窓口"}.get(
        language, "Main Office, My Number Card Counter"
    )


@pytest.mark.parametrize("kind", sorted(reminders.texts()))
@pytest.mark.parametrize("language", NEW)
def test_every_text_fits_its_budget_with_the_booking_in_it(kind: str, language: str) -> None:
    visit = Visit(
        code="29532630", starts_at=AT, venue=venue(language), party=9, phone="+81312345678"
    )
    text = compose(kind, language, visit)
    assert reminders.sms_segments(text) <= BUDGET.get(kind, DEFAULT_BUDGET), (len(text), text)
    assert "29532630" in text and when_text(AT, language) in text
    said = set().union(*placeholders(catalogue()[kind]["ja"]).values())
    assert venue(language) in text or "venue" not in said
    assert people(language, 9) in text or "people" not in said


@pytest.mark.parametrize("language", ["zh", "easy"])
def test_short_texts_keep_the_call_center_where_the_language_is_dense(language: str) -> None:
    """Chinese and Japanese take few characters: the call center's number always fits; the
    Vietnamese and Nepali texts drop it first where the English venue name is long."""
    for kind in reminders.texts():
        visit = Visit(code="29532630", starts_at=AT, venue=venue(language), phone="+81312345678")
        assert compose(kind, language, visit).endswith(CALL_CENTER), kind


@pytest.mark.parametrize("language", NEW)
def test_a_confirmation_carries_what_to_bring_and_where_in_four_segments(language: str) -> None:
    visit = Visit(
        code="29532630",
        starts_at=AT,
        venue=venue(language),
        party=2,
        bring="交付通知書",
        address="新宿区歌舞伎町1-4-1 本庁舎1階",
        access="西武新宿線「西武新宿駅」徒歩3分",
        phone="+81312345678",
    )
    text = compose("confirmation", language, visit)
    assert reminders.sms_segments(text) <= BUDGET["confirmation"], (len(text), text)
    assert "交付通知書" in text and "新宿区歌舞伎町1-4-1" in text, text


@pytest.mark.parametrize("language", NEW)
def test_an_offer_and_a_lottery_loss_fit_three_segments(language: str) -> None:
    offer = compose_offer(
        language,
        starts_at=AT,
        venue=venue(language),
        party=9,
        until=AT,
        link=LINK,
        phone="+81312345678",
    )
    lost = compose_lost(
        language, day=AT.date(), venue=venue(language), place=12, link=LINK, phone="+81312345678"
    )
    for text in (offer, lost):
        assert reminders.sms_segments(text) <= OFFER_BUDGET, (len(text), text)
        assert LINK in text
    assert "12" in lost


def test_dates_and_times_as_each_language_writes_them() -> None:
    assert when_text(AT, "zh") == "12/16周三 8:30"
    assert when_text(AT, "vi") == "8:30 Thứ 4, 16/12"
    assert when_text(AT, "ne") == "डिसेम्बर 16, बुध 8:30"
    assert when_text(AT, "easy") == "12月16日(水) 8:30"
    assert day_text(date(2027, 1, 12), "zh") == "1/12周二"
    assert day_text(date(2027, 1, 12), "easy") == "1月12日(火)"


def test_people_in_the_new_languages() -> None:
    assert [people(code, 1) for code in NEW] == ["1人", "1 người", "1 जना", "1人"]
    assert people("vi", 3) == "3 người"


@pytest.mark.parametrize("language", NEW)
def test_every_confirmation_of_the_sample_ward_fits_four_segments(
    db: Session, language: str
) -> None:
    """Measured, the longest for a party of 9: 203 characters in Chinese, 268 in Vietnamese,
    267 in Nepali, 266 in やさしい日本語 (the ward's easy words carry their readings), each
    within 4 UCS-2 segments of 67; where the whole does not fit, the station goes first."""
    texts = every_confirmation(db, language)
    assert len(texts) >= 34
    for text in texts:
        assert reminders.sms_segments(text) <= BUDGET["confirmation"], (len(text), text)
        assert "29532630" in text
