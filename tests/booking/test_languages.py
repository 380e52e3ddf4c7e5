"""The one list of languages and the ward's choice of them (MADOGUCHI_LANGUAGES)."""

from __future__ import annotations

import pytest
from babel import Locale

from booking.languages import ALL, CODES, EVERY, Offered, info, parse
from config.settings import Settings


def test_every_language_has_a_short_code_a_babel_locale_and_a_name() -> None:
    assert CODES == ("ja", "en", "ko", "zh", "vi", "ne", "easy")
    for language in ALL:
        assert len(language.code) <= 5  # the language columns are String(5)
        assert Locale.parse(language.babel)
        assert language.name
        assert "web" in language.channels


def test_simplified_chinese_and_easy_japanese() -> None:
    assert (info("zh").html, info("zh").babel) == ("zh-Hans", "zh_Hans_CN")
    assert (info("easy").html, info("easy").babel, info("easy").name) == (
        "ja",
        "ja",
        "やさしい日本語",
    )
    assert info("zh").offered_on("phone") and info("easy").offered_on("phone")
    assert not info("ne").offered_on("phone")
    assert not info("easy").offered_on("line")


def test_all_is_the_default() -> None:
    assert parse("all") == parse("") == CODES
    assert Settings(environment="test").offered_languages == EVERY


def test_a_ward_chooses_some_and_japanese_stays() -> None:
    assert parse("en, zh,vi") == ("ja", "en", "zh", "vi")
    offered = Offered.from_setting("easy,ne")
    assert offered.on("web") == ("ja", "ne", "easy")
    assert offered.on("phone") == ("ja", "easy")
    assert offered.names("line") == {"ja": "日本語", "ne": "नेपाली"}
    assert not offered.offers("en", "web")


def test_an_unknown_language_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="MADOGUCHI_LANGUAGES: unknown language fr"):
        Settings(environment="test", languages="ja,fr")
