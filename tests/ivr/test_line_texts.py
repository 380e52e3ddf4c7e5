"""The LINE chat's texts: every language the chat offers (booking/languages.py's LINE languages)
has every Japanese text, with the same placeholders; the quick replies' labels fit LINE's 20
characters."""

from __future__ import annotations

import string
from datetime import date

import pytest

from booking.languages import ALL
from ivr.line_turn import LANGUAGES, catalogue, day_text

# The texts that label a quick reply (LINE cuts a label at 20 characters).
QUICK_REPLY_LABELS = (
    "menu_book",
    "menu_check",
    "menu_faq",
    "menu_crowd",
    "yes",
    "no",
    "quit",
    "back",
    "venue_anywhere",
    "confirm_button",
    "find_other",
    "cancel_yes",
    "move_yes",
)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_the_chat_has_texts_in_every_language_offered_on_line() -> None:
    assert LANGUAGES == tuple(lang.code for lang in ALL if lang.offered_on("line"))
    assert {"ja", "en", "ko", "zh", "vi", "ne", "easy"} <= set(LANGUAGES)


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "ja"])
def test_every_text_is_translated_with_its_placeholders(language: str) -> None:
    ja, other = catalogue("ja"), catalogue(language)
    assert set(other) == set(ja)
    for key, text in ja.items():
        assert other[key].strip(), (language, key)
        assert _fields(other[key]) == _fields(text), (language, key)


def test_quick_reply_labels_fit_lines_limit() -> None:
    for language in LANGUAGES:
        texts = catalogue(language)
        for key in QUICK_REPLY_LABELS:
            assert len(texts[key]) <= 20, (language, key)
        assert len(texts["party_option"].format(count=10)) <= 20, language


def test_a_day_is_written_as_each_language_writes_it() -> None:
    day = date(2026, 12, 16)  # a Wednesday
    assert day_text(day, "ja") == day_text(day, "easy") == "12月16日（水）"
    assert day_text(day, "en") == "Wed 16 Dec"
    assert day_text(day, "zh") == "12月16日周三"
    assert "16" in day_text(day, "vi") and "12" in day_text(day, "vi")
    assert "डिसेम्बर" in day_text(day, "ne")
