"""The one list of languages and the ward's choice of them (MADOGUCHI_LANGUAGES)."""

from __future__ import annotations

import pytest
from babel import Locale

from booking.languages import ALL, CODES, EVERY, Offered, info, parse
from booking.localized import WardInfo, pick
from config.sample import sample_ward
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
    assert info("easy").offered_on("line")  # the chat writes it as the pages do


def test_all_is_the_default() -> None:
    assert parse("all") == parse("") == CODES
    assert Settings(environment="test").offered_languages == EVERY


def test_a_ward_chooses_some_and_japanese_stays() -> None:
    assert parse("en, zh,vi") == ("ja", "en", "zh", "vi")
    offered = Offered.from_setting("easy,ne")
    assert offered.on("web") == ("ja", "ne", "easy")
    assert offered.on("phone") == ("ja", "easy")
    assert offered.names("line") == {"ja": "日本語", "ne": "नेपाली", "easy": "やさしい日本語"}
    assert not offered.offers("en", "web")


def test_an_unknown_language_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="MADOGUCHI_LANGUAGES: unknown language fr"):
        Settings(environment="test", languages="ja,fr")


def test_the_sample_ward_names_every_venue_and_service_in_every_language() -> None:
    ward = sample_ward()
    for item in [*ward["venues"], *ward["services"]]:
        for code in ("ko", "zh", "vi", "ne", "easy"):
            assert item["texts"][code]["name"], (item["id"], code)
    for code in CODES:
        assert WardInfo.from_profile(ward["ward"]).text("call_center", code)


def test_a_missing_text_falls_back_by_language() -> None:
    texts = {
        "ja": {"name": "四谷特別出張所", "access": "徒歩5分"},
        "en": {"name": "Yotsuya Branch Office", "access": "5 min walk"},
        "easy": {"name": "四谷(よつや)特別出張所(とくべつしゅっちょうじょ)"},
        "vi": {"name": "Văn phòng chi nhánh Yotsuya"},
    }
    assert pick(texts, "name", "easy") == "四谷(よつや)特別出張所(とくべつしゅっちょうじょ)"
    assert pick(texts, "access", "easy") == "徒歩5分"  # Japanese, never English
    assert pick(texts, "access", "vi") == "5 min walk"
    assert pick(texts, "name", "ne") == "Yotsuya Branch Office"
    assert pick({"ja": {"name": "本庁舎"}}, "name", "zh") == "本庁舎"
