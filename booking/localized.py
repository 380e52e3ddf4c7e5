"""The ward's own words, by language: venue and service names, what to bring, how to get there,
and who runs the service (the ward's profile). All of it comes from the ward's JSON.

Japanese and English names and addresses live in their own columns (the console and the reports
use them); everything else, and every other language, is in `texts`: {language: {field: text}}.
A language without a text falls back to English, then Japanese, so a Korean caller never hears
nothing, and a missing English text never blocks a page; やさしい日本語 falls back to Japanese.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# Fields a venue may describe (beyond name and address).
VENUE_FIELDS = ("name", "address", "access", "barrier_free", "parking")
SERVICE_FIELDS = ("name", "bring")
WARD_FIELDS = (
    "name",
    "call_center",
    "hours",
    "handler",
    "privacy_contact",
    "proxy",
    "children",
)


class Described(Protocol):
    """A venue or a service: names in columns, the rest in texts."""

    name_ja: str
    name_en: str
    texts: dict[str, dict[str, str]]


def fallbacks(language: str) -> tuple[str, ...]:
    """Where a missing text is looked for: やさしい日本語 reads the Japanese (the ward writes
    its own easy names with readings, 四谷(よつや)...); every other language, English first."""
    if language == "easy":
        return ("easy", "ja")
    return (language, "en", "ja")


def pick(texts: Mapping[str, Mapping[str, str]], name: str, language: str) -> str:
    """A field's text in the language, else its fallbacks (English, then Japanese), else ''."""
    for code in fallbacks(language):
        value = (texts.get(code) or {}).get(name)
        if value:
            return str(value)
    return ""


def _columns(thing: Any) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {"ja": {}, "en": {}}
    for code in ("ja", "en"):
        for name in ("name", "address"):
            value = getattr(thing, f"{name}_{code}", None)
            if value:
                found[code][name] = str(value)
    return found


def text_of(thing: Described, name: str, language: str) -> str:
    """One field of a venue or a service in a language (the columns first for ja/en names)."""
    merged: dict[str, dict[str, str]] = {}
    stored = thing.texts or {}
    columns = _columns(thing)
    for code in set(stored) | set(columns):
        merged[code] = {**dict(stored.get(code) or {}), **columns.get(code, {})}
    return pick(merged, name, language)


def name_of(thing: Described, language: str) -> str:
    return text_of(thing, "name", language)


def checked_texts(raw: object, fields: tuple[str, ...], where: str) -> dict[str, dict[str, str]]:
    """A ward file's `texts` block, checked: {language: {known field: text}}."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: texts must be an object of languages")
    checked: dict[str, dict[str, str]] = {}
    for code, words in raw.items():
        if not (isinstance(code, str) and code.isalpha() and 2 <= len(code) <= 5):
            raise ValueError(f"{where}: {code!r} is not a language code such as ja, en or easy")
        if not isinstance(words, dict):
            raise ValueError(f"{where}: texts.{code} must be an object of fields")
        for name, value in words.items():
            if name not in fields:
                raise ValueError(f"{where}: texts.{code}.{name} is not one of {', '.join(fields)}")
            if not isinstance(value, str):
                raise ValueError(f"{where}: texts.{code}.{name} must be text")
        checked[code] = {str(k): v.strip() for k, v in words.items()}
    return checked


@dataclass(frozen=True)
class WardInfo:
    """Who runs the service, as residents are told on every page, text and call."""

    phone: str = ""  # the call center's number, E.164
    logo: str = ""  # a path under the resident pages' /static/, or an https URL
    texts: dict[str, dict[str, str]] = field(default_factory=dict)

    def text(self, name: str, language: str) -> str:
        return pick(self.texts, name, language)

    @classmethod
    def from_profile(cls, profile: Mapping[str, object] | None) -> WardInfo:
        if not profile:
            return cls()
        texts = profile.get("texts") or {}
        return cls(
            phone=str(profile.get("phone") or ""),
            logo=str(profile.get("logo") or ""),
            texts={
                str(code): {str(k): str(v) for k, v in dict(words).items()}
                for code, words in dict(texts).items()  # type: ignore[call-overload]
            },
        )
