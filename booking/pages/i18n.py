"""Languages for the resident pages: gettext catalogues (.po, read with Babel at start-up) and
Jinja environments, one per language. A new language is a new locale/<code>/ folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from importlib.resources import files
from io import BytesIO
from typing import Any
from urllib.parse import quote

from babel.dates import format_date, format_skeleton, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, PackageLoader, select_autoescape

from booking.context import TOKYO
from booking.languages import CODES, DEFAULT_LANGUAGE, EVERY, NAMES, Offered, info
from booking.localized import Described, name_of

# How each language writes a visit's date and time: Babel's skeletons, which each locale
# spells its own way (2026年12月4日(金), 2026년 12월 4일 (금), Thứ 6, 4 thg 12, 2026...), on the
# 24-hour clock as the ward's texts write times; English pages keep the ward's own style.
DATE_SKELETONS = {"long": "yMMMEd", "short": "MMMEd", "month": "yMMMM", "time": "Hm"}
HOUSE_PATTERNS = {
    "en": {"long": "EEE d MMM y", "short": "EEE d MMM", "month": "MMMM y", "time": "h:mm a"}
}
# The pages' icon, inside each page (a few hundred bytes): the browser asks for nothing more.
ICON = files("booking.pages").joinpath("static/favicon.svg").read_text("utf-8").strip()
ICON_URI = "data:image/svg+xml," + quote(ICON, safe=" =:/\"'")


def _catalogue(language: str) -> Translations:
    source = files("booking.pages").joinpath(f"locale/{language}/LC_MESSAGES/messages.po")
    with source.open("rb") as handle:
        catalog = read_po(handle, locale=info(language).babel)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def available_languages() -> list[str]:
    """Every language of the list (booking.languages) with a catalogue, in the list's order."""
    found = {p.name for p in files("booking.pages").joinpath("locale").iterdir()}
    return [code for code in CODES if code in found]


@dataclass(frozen=True)
class Languages:
    """The Jinja environment of every language, built once per application."""

    environments: dict[str, Environment]
    catalogues: dict[str, Translations]

    @classmethod
    def load(cls, offered: Offered = EVERY) -> Languages:
        """The pages in every language the ward offers on the web (and has a catalogue for)."""
        environments = {}
        catalogues = {}
        for language in available_languages():
            if not offered.offers(language, "web"):
                continue
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


def date_writer(language: str) -> Callable[[str, date | datetime], str]:
    """How a language writes a date or time, by kind: long, short, month or time."""
    locale = info(language).babel
    house = HOUSE_PATTERNS.get(locale, {})

    def write(kind: str, value: date | datetime) -> str:
        if kind in house:
            if kind == "time" and isinstance(value, datetime):
                return format_time(value, house[kind], locale=locale)
            return format_date(value, house[kind], locale=locale)
        return format_skeleton(DATE_SKELETONS[kind], value, locale=locale)

    return write


def _helpers(language: str) -> dict[str, Any]:
    write = date_writer(language)
    locale = info(language).babel

    def long_date(value: date | datetime) -> str:
        if isinstance(value, datetime):
            value = value.astimezone(TOKYO).date()
        return write("long", value)

    def short_date(value: date) -> str:
        """A day in the booking window, where the year goes without saying."""
        return write("short", value)

    def month_name(value: date) -> str:
        return write("month", value)

    def clock(value: datetime) -> str:
        return write("time", value.astimezone(TOKYO))

    def weekday(value: date) -> str:
        return format_date(value, "E", locale=locale)

    def html_lang(code: str) -> str:
        """A language's lang attribute (zh-Hans; やさしい日本語 is ja)."""
        return info(code).html if code in NAMES else code

    def named(item: Described) -> str:
        """A venue's or service's name in the ward's words for this language (booking.localized
        falls back to English, then Japanese)."""
        return name_of(item, language)

    return {
        "language": language,
        "page_lang": info(language).html,
        "html_lang": html_lang,
        "language_name": NAMES,
        "long_date": long_date,
        "short_date": short_date,
        "month_name": month_name,
        "clock": clock,
        "weekday": weekday,
        "named": named,
    }
