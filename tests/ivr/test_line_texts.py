"""The LINE chat's texts: every Japanese text has its English, with the same placeholders."""

from __future__ import annotations

import string

import pytest

from ivr.line_turn import LANGUAGES, catalogue


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "ja"])
def test_every_text_is_translated_with_its_placeholders(language: str) -> None:
    ja, other = catalogue("ja"), catalogue(language)
    assert set(other) == set(ja)
    for key, text in ja.items():
        assert _fields(other[key]) == _fields(text), key


def test_quick_reply_labels_fit_lines_limit() -> None:
    for language in LANGUAGES:
        texts = catalogue(language)
        for key in ("menu_book", "menu_check", "menu_faq", "menu_crowd", "yes", "no", "quit"):
            assert len(texts[key]) <= 20, (language, key)
