"""The languages the ward speaks to residents: the one list, with each language's own name, its
Babel locale, its ``lang`` on a page, its Twilio <Say> language and the channels it is offered
on. Which of them one ward offers is configuration (``MADOGUCHI_LANGUAGES``, default all);
Japanese is always offered, the fallback of every text.

Codes are at most five letters (the ``language`` columns are String(5)). "easy" is やさしい日本語:
Japanese in short sentences and common words, a choice of its own on the web, in texts, in the
LINE chat and on the phone line; its dates and numbers are written as Japanese ones are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

Language = Literal["ja", "en", "ko", "zh", "vi", "ne", "easy"]
# Where a resident meets a language: the booking pages, texts (SMS), the phone line, LINE, and
# the console's words for a caller (what agents read out, the contact language they choose).
Channel = Literal["web", "sms", "phone", "line", "console"]

DEFAULT_LANGUAGE: Language = "ja"
CODES: tuple[Language, ...] = get_args(Language)
CHANNELS: tuple[Channel, ...] = get_args(Channel)
_EVERYWHERE: frozenset[Channel] = frozenset(CHANNELS)


@dataclass(frozen=True)
class LanguageInfo:
    """One language as every channel needs it."""

    code: Language
    name: str  # its own name, as a chooser lists it
    babel: str  # the Babel locale that writes its dates, times and numbers
    html: str  # the page's lang attribute (BCP 47)
    say: str  # Twilio <Say> language; "" where the phone line does not speak it
    channels: frozenset[Channel]

    def offered_on(self, channel: Channel) -> bool:
        return channel in self.channels


ALL: tuple[LanguageInfo, ...] = (
    LanguageInfo("ja", "日本語", "ja", "ja", "ja-JP", _EVERYWHERE),
    LanguageInfo("en", "English", "en", "en", "en-US", _EVERYWHERE),
    LanguageInfo("ko", "한국어", "ko", "ko", "ko-KR", _EVERYWHERE),
    LanguageInfo("zh", "简体中文", "zh_Hans_CN", "zh-Hans", "cmn-CN", _EVERYWHERE),
    # Twilio offers no Nepali voice, and the ward's phone line has no Vietnamese one yet.
    LanguageInfo("vi", "Tiếng Việt", "vi", "vi", "", frozenset({"web", "sms", "line", "console"})),
    LanguageInfo("ne", "नेपाली", "ne", "ne", "", frozenset({"web", "sms", "line", "console"})),
    # やさしい日本語 on LINE too: the chat writes it as the pages do.
    LanguageInfo("easy", "やさしい日本語", "ja", "ja", "ja-JP", _EVERYWHERE),
)
BY_CODE: dict[str, LanguageInfo] = {language.code: language for language in ALL}
# Each language by its own name, in the list's order.
NAMES: dict[str, str] = {language.code: language.name for language in ALL}


def info(code: str) -> LanguageInfo:
    """A language of the list (KeyError for any other code)."""
    return BY_CODE[code]


def is_japanese(code: str) -> bool:
    """Japanese or やさしい日本語: a resident who writes a name in katakana, reads ja dates."""
    return code in BY_CODE and BY_CODE[code].babel == "ja"


def parse(configured: str | Iterable[str]) -> tuple[Language, ...]:
    """The ward's languages from configuration: "all" (or empty) is every language, else codes
    separated by commas. Unknown codes are refused; Japanese is always offered; the list's
    order is kept whatever the configuration's."""
    if isinstance(configured, str):
        wanted = [part.strip().lower() for part in configured.split(",") if part.strip()]
    else:
        wanted = [str(part).strip().lower() for part in configured]
    if not wanted or wanted == ["all"]:
        return CODES
    unknown = [code for code in wanted if code not in BY_CODE]
    if unknown:
        raise ValueError(
            f"unknown language {', '.join(unknown)}: the languages are {', '.join(CODES)}"
        )
    return tuple(code for code in CODES if code in wanted or code == DEFAULT_LANGUAGE)


@dataclass(frozen=True)
class Offered:
    """The languages one ward offers (configuration), asked by channel."""

    codes: tuple[Language, ...] = CODES

    @classmethod
    def from_setting(cls, configured: str | Iterable[str]) -> Offered:
        return cls(parse(configured))

    def on(self, channel: Channel) -> tuple[Language, ...]:
        """The ward's languages offered on a channel, Japanese first."""
        return tuple(code for code in self.codes if BY_CODE[code].offered_on(channel))

    def offers(self, code: str | None, channel: Channel) -> bool:
        return code in self.on(channel)

    def names(self, channel: Channel) -> dict[str, str]:
        """{code: own name} for a chooser on a channel."""
        return {code: NAMES[code] for code in self.on(channel)}


# What a ward offers when nothing is configured (and what tests use): every language.
EVERY = Offered()

__all__ = [
    "ALL",
    "BY_CODE",
    "CHANNELS",
    "CODES",
    "DEFAULT_LANGUAGE",
    "EVERY",
    "NAMES",
    "Channel",
    "Language",
    "LanguageInfo",
    "Offered",
    "info",
    "is_japanese",
    "parse",
]
