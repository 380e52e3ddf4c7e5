"""Languages for the resident pages: gettext catalogues (.po, read with Babel at start-up) and
Jinja environments, one per language. A new language is a new locale/<code>/ folder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from importlib.resources import files
from io import BytesIO
from typing import Any
from urllib.parse import quote

from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, PackageLoader, select_autoescape

from booking.context import TOKYO
from booking.localized import Described, name_of

DEFAULT_LANGUAGE = "ja"
# How each language writes a visit's date and time (Babel patterns).
# Korean pages write the 24-hour clock, as the ward's Korean texts do (14:30).
DATE_PATTERNS = {"ja": "y年M月d日(E)", "en": "EEE d MMM y", "ko": "y년 M월 d일 (E)"}
SHORT_DATE_PATTERNS = {"ja": "M月d日(E)", "en": "EEE d MMM", "ko": "M월 d일 (E)"}
MONTH_PATTERNS = {"ja": "y年M月", "en": "MMMM y", "ko": "y년 M월"}
TIME_PATTERNS = {"ja": "H:mm", "en": "h:mm a", "ko": "H:mm"}
# The pages' icon, inside each page (a few hundred bytes): the browser asks for nothing more.
ICON = files("booking.pages").joinpath("static/favicon.svg").read_text("utf-8").strip()
ICON_URI = "data:image/svg+xml," + quote(ICON, safe=" =:/\"'")


def _catalogue(language: str) -> Translations:
    source = files("booking.pages").joinpath(f"locale/{language}/LC_MESSAGES/messages.po")
    with source.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def available_languages() -> list[str]:
    """Every language with a catalogue, the default first."""
    found = sorted(p.name for p in files("booking.pages").joinpath("locale").iterdir())
    return sorted(found, key=lambda code: code != DEFAULT_LANGUAGE)


@dataclass(frozen=True)
class Languages:
    """The Jinja environment of every language, built once per application."""

    environments: dict[str, Environment]
    catalogues: dict[str, Translations]

    @classmethod
    def load(cls) -> Languages:
        environments = {}
        catalogues = {}
        for language in available_languages():
            catalogues[language] = _catalogue(language)
            env = Environment(
                loader=PackageLoader("booking.pages", "templates"),
                autoescape=select_autoescape(["html"]),
                extensions=["jinja2.ext.i18n"],
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.install_gettext_translations(catalogues[language], newstyle=True)  # type: ignore[attr-defined]
            env.globals.update(_helpers(language), icon=ICON_URI)
            environments[language] = env
        return cls(environments, catalogues)

    def gettext(self, language: str, message: str) -> str:
        """A message from code (not a template) in the visitor's language."""
        return str(self.catalogues[language].gettext(message))

    def ngettext(self, language: str, singular: str, plural: str, count: int) -> str:
        """A counted message from code, in the language's plural form."""
        return str(self.catalogues[language].ngettext(singular, plural, count))

    def pick(self, wanted: str | None) -> str:
        return wanted if wanted in self.environments else DEFAULT_LANGUAGE

    def render(self, language: str, template: str, **context: Any) -> str:
        return self.environments[language].get_template(template).render(**context)


def _helpers(language: str) -> dict[str, Any]:
    def long_date(value: date | datetime) -> str:
        if isinstance(value, datetime):
            value = value.astimezone(TOKYO).date()
        return format_date(value, DATE_PATTERNS.get(language, "medium"), locale=language)

    def short_date(value: date) -> str:
        """A day in the booking window, where the year goes without saying."""
        return format_date(value, SHORT_DATE_PATTERNS.get(language, "MMM d"), locale=language)

    def month_name(value: date) -> str:
        return format_date(value, MONTH_PATTERNS.get(language, "MMMM y"), locale=language)

    def clock(value: datetime) -> str:
        return format_time(
            value.astimezone(TOKYO), TIME_PATTERNS.get(language, "short"), locale=language
        )

    def weekday(value: date) -> str:
        return format_date(value, "E", locale=language)

    def named(item: Described) -> str:
        """A venue's or service's name in the ward's words for this language (booking.localized
        falls back to English, then Japanese)."""
        return name_of(item, language)

    return {
        "language": language,
        "long_date": long_date,
        "short_date": short_date,
        "month_name": month_name,
        "clock": clock,
        "weekday": weekday,
        "named": named,
    }
