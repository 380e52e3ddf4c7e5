"""Every language the phone line speaks has every prompt, with the same placeholders as the
Japanese one, and the plural forms its CLDR rules use; its dates, times and numbers are said
as the language says them."""

from __future__ import annotations

import re
import tomllib
from datetime import date, datetime
from importlib.resources import files

import pytest
from babel import Locale

from booking.context import TOKYO
from booking.languages import ALL, info
from ivr.flow import LANGUAGE_KEYS, LANGUAGES, SAY_LANGUAGE, people, prompt, say_birth
from ivr.recognition import SpeechModels, grammar_for
from ivr.speech import say_digits, say_notice, say_phone, say_when

PLACEHOLDER = re.compile(r"\{(\w+)\}")
PHONE = [language.code for language in ALL if language.offered_on("phone")]


def raw(language: str) -> dict[str, object]:
    text = files("ivr").joinpath("prompts", f"{language}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def placeholders(entry: object) -> dict[str, set[str]]:
    """{plural form (or ""): the placeholders it uses}."""
    forms = entry if isinstance(entry, dict) else {"": entry}
    return {form: set(PLACEHOLDER.findall(str(text))) for form, text in forms.items()}


def test_the_line_speaks_every_language_offered_on_the_phone() -> None:
    assert set(PHONE) <= set(LANGUAGES)
    assert set(PHONE) == {"ja", "en", "ko", "zh", "easy"}
    assert SAY_LANGUAGE["zh"] == "cmn-CN" and SAY_LANGUAGE["easy"] == "ja-JP"
    # Every language but Japanese has a key at the greeting, and no key is used twice.
    assert sorted(LANGUAGE_KEYS.values()) == sorted(set(PHONE) - {"ja"})


@pytest.mark.parametrize("language", PHONE)
def test_every_catalogue_has_every_prompt_and_placeholder(language: str) -> None:
    japanese, found = raw("ja"), raw(language)
    assert sorted(set(japanese) - set(found)) == [], "prompts missing"
    assert sorted(set(found) - set(japanese)) == [], "prompts no one says"
    for key, entry in japanese.items():
        wanted = set().union(*placeholders(entry).values())
        for form, used in placeholders(found[key]).items():
            assert used == wanted, (language, key, form, used, wanted)
        assert str(found[key]).strip(), (language, key)


@pytest.mark.parametrize("language", PHONE)
def test_plural_tables_use_the_languages_own_forms(language: str) -> None:
    rule = Locale.parse(info(language).babel).plural_form
    used = {rule(n) for n in range(0, 200)}
    for key, entry in raw(language).items():
        if isinstance(entry, dict):
            assert "other" in entry, (language, key)
            assert set(entry) <= used | {"other"}, (language, key, set(entry))
    assert "1" in people(language, 1) and "3" in people(language, 3)


def test_an_offer_of_each_language_is_said_in_that_language() -> None:
    assert prompt("zh", "english") == "中文服务，请按7。"
    assert "6" in prompt("easy", "english") and "やさしい日本語" in prompt("easy", "english")
    for key, language in LANGUAGE_KEYS.items():
        assert key in prompt(language, "english"), language


AT = datetime(2026, 12, 16, 8, 30, tzinfo=TOKYO)


def test_chinese_dates_times_and_digits_as_spoken() -> None:
    assert say_when(AT, "zh") == "12月16日 星期三 上午8点30分"
    assert say_when(AT.replace(hour=12, minute=0), "zh").endswith("中午12点")
    assert say_when(AT.replace(hour=13, minute=5), "zh").endswith("下午1点05分")
    assert say_digits("29532630", "zh", group=4) == "二，九，五，三。二，六，三，零"
    assert say_phone("+819012345678", "zh") == "零，九，零。一，二，三，四。五，六，七，八"
    assert say_notice("AB1-234567", "zh") == "A，B，一，横线，二，三，四，五，六，七"
    assert say_birth(date(1958, 4, 1), "zh") == "1958年4月1日"
    assert say_birth(date(1958, 4, 1), "zh", "3") == "昭和33年，1958年4月1日"


def test_easy_japanese_is_said_as_japanese() -> None:
    assert say_when(AT, "easy") == say_when(AT, "ja")
    assert say_digits("2953", "easy", group=2) == say_digits("2953", "ja", group=2)
    assert say_notice("AB1-234567", "easy") == say_notice("AB1-234567", "ja")
    assert say_phone("+819012345678", "easy") == say_phone("+819012345678", "ja")
    assert say_birth(date(1958, 4, 1), "easy", "3") == "昭和33年4月1日"
    assert people("easy", 2) == "2人"


def test_easy_japanese_is_heard_as_japanese_and_chinese_has_its_words() -> None:
    japanese = grammar_for("confirm", "ja")
    assert japanese is not None and grammar_for("confirm", "easy") == japanese
    chinese = grammar_for("confirm", "zh")
    assert chinese is not None and chinese.phrases["是"] == "1" and chinese.phrases["不是"] == "9"
    digits = grammar_for("manage_code", "zh")
    assert digits is not None and digits.digits and digits.phrases["幺"] == "1"
    menu = grammar_for("menu", "zh")
    assert menu is not None and menu.phrases["预约"] == "1" and menu.phrases["人工"] == "0"
    assert SpeechModels({}).get("easy") is None  # no Japanese model: keys only
