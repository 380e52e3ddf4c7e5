"""The resident pages' catalogues stay complete: every English message has a translation in every
other language, with the same placeholders, and counted messages have as many forms as the
language has plural forms (CLDR). A message added in English only fails here, not on a page."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from importlib.resources import files

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from booking.errors import BookingError
from booking.errors import catalogue as error_catalogue
from booking.languages import CODES, info
from booking.pages.i18n import available_languages
from booking.release import when_words

# %(name)s for gettext; {m} for the countdown script's own filling.
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w+)\}")
TRANSLATED = [code for code in available_languages() if code != "en"]


def catalogue(language: str) -> Catalog:
    source = files("booking.pages").joinpath(f"locale/{language}/LC_MESSAGES/messages.po")
    with source.open("rb") as handle:
        return read_po(handle, locale=info(language).babel)


def placeholders(text: str) -> set[str]:
    return {named or braced for named, braced in PLACEHOLDER.findall(text)}


def forms(message: Message) -> tuple[str, ...]:
    string = message.string
    return tuple(string) if isinstance(string, (tuple, list)) else (string or "",)


def key(message: Message) -> str:
    return message.id[0] if isinstance(message.id, (tuple, list)) else message.id


def english() -> list[Message]:
    return [message for message in catalogue("en") if message.id]


def untranslated(source: list[Message], translated: Catalog) -> list[str]:
    """English messages the other catalogue lacks, or leaves (a form of) empty."""
    missing = []
    for message in source:
        found = translated.get(key(message))
        if found is None or not all(text.strip() for text in forms(found)):
            missing.append(key(message))
    return missing


def placeholders_lost(source: list[Message], translated: Catalog) -> list[tuple[str, str]]:
    """Translations whose placeholders differ from the English ones."""
    wrong = []
    for message in source:
        found = translated.get(key(message))
        if found is None:
            continue
        wanted = set().union(*(placeholders(text) for text in forms(message)))
        wrong += [(key(message), text) for text in forms(found) if placeholders(text) != wanted]
    return wrong


def test_every_language_of_the_list_has_the_pages() -> None:
    assert available_languages() == list(CODES)


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_english_message_is_translated(language: str) -> None:
    assert untranslated(english(), catalogue(language)) == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_the_placeholders(language: str) -> None:
    assert placeholders_lost(english(), catalogue(language)) == []


@pytest.mark.parametrize("language", ["en", *TRANSLATED])
def test_counted_messages_have_the_languages_plural_forms(language: str) -> None:
    translated = catalogue(language)
    count, _rule = get_plural(info(language).babel)
    assert translated.num_plurals == count, f"{language}: Plural-Forms header"
    wrong = []
    for message in english():
        found = translated.get(key(message))
        if found is None:
            continue
        if message.pluralizable != found.pluralizable or (
            found.pluralizable and len(forms(found)) != count
        ):
            wrong.append(key(message))
    assert wrong == []


def test_the_guard_sees_a_missing_or_broken_translation() -> None:
    """What the checks above would say of a message added in English only, or translated
    without its placeholder."""
    korean = catalogue("ko")
    korean.delete("Book this time")
    korean["Person %(n)s"].string = "번째 분"
    korean["({m} min {s} s left)"].string = "(남은 시간 {m}분)"
    assert untranslated(english(), korean) == ["Book this time"]
    assert placeholders_lost(english(), korean) == [
        ("Person %(n)s", "번째 분"),
        ("({m} min {s} s left)", "(남은 시간 {m}분)"),
    ]


# The engine's messages (booking/messages.toml): every entry in every language of the list,
# with the English text's {placeholders} (an opening time is {opens_<language>} in each).
BRACED = re.compile(r"\{(\w+)\}")


def engine_placeholders(text: str) -> set[str]:
    return {re.sub(r"^opens_\w+$", "opens_", name) for name in BRACED.findall(text)}


def engine_gaps(entries: dict[str, dict[str, object]]) -> list[tuple[str, str]]:
    """(code, language) of every entry lacking a language, or with other placeholders."""
    wrong: list[tuple[str, str]] = []
    for code, entry in entries.items():
        wanted = engine_placeholders(str(entry["en"]))
        for language in CODES:
            text = entry.get(language)
            if not isinstance(text, str) or not text.strip():
                wrong.append((code, language))
            elif engine_placeholders(text) != wanted:
                wrong.append((code, language))
    return wrong


def test_every_engine_message_is_in_every_language_with_its_placeholders() -> None:
    assert engine_gaps(error_catalogue()) == []


def test_the_engine_guard_sees_a_missing_language_or_a_lost_placeholder() -> None:
    entries = {code: dict(entry) for code, entry in error_catalogue().items()}
    del entries["slot_full"]["ne"]
    entries["too_many_bookings"]["vi"] = "Số điện thoại này đã có nhiều lịch hẹn."
    assert engine_gaps(entries) == [("slot_full", "ne"), ("too_many_bookings", "vi")]


@pytest.mark.parametrize("language", CODES)
def test_an_engine_message_fills_in_every_language(language: str) -> None:
    opening = BookingError("not_yet_open", **when_words(datetime(2026, 12, 15, tzinfo=UTC)))
    assert "{" not in opening.message(language)
    assert "15" in opening.message(language)
