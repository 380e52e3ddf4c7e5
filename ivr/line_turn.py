"""One turn of the LINE chat: the resident's working state (what they chose and typed so far),
the messages being built for the answer, and the texts (``ivr/line_texts/<language>.toml``).

LINE's building blocks as the chat uses them: a text with quick replies (up to 13 buttons under
it) for choices, a Flex bubble whose buttons are the free times or a booking's actions, and
postbacks (``a=<action>&v=<value>``) as what a button sends back.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

from babel.dates import format_skeleton
from sqlalchemy.orm import Session as DbSession

from booking import service as booking
from booking.context import TOKYO, context
from booking.languages import ALL as ALL_LANGUAGES
from booking.languages import EVERY, info, is_japanese
from booking.localized import name_of
from booking.views import BookingView
from ivr.line_api import MAX_MESSAGES, Message

# The languages the chat has texts in (booking/languages.py: those offered on LINE); which of
# them a ward's chat offers is configuration (ChatConfig.languages, from MADOGUCHI_LANGUAGES).
LANGUAGES: tuple[str, ...] = tuple(lang.code for lang in ALL_LANGUAGES if lang.offered_on("line"))
MAX_QUICK_REPLIES = 13  # LINE's limit
MAX_TIME_BUTTONS = 12  # a bubble stays readable on a phone
_WEEKDAYS = {
    "ja": "月火水木金土日",
    "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    "ko": "월화수목금토일",
}


@cache
def catalogue(language: str) -> dict[str, str]:
    """A language's chat texts."""
    text = files("ivr").joinpath("line_texts", f"{language}.toml").read_text(encoding="utf-8")
    return {k: str(v) for k, v in tomllib.loads(text).items()}


def text_in(language: str, key: str, **params: Any) -> str:
    """A chat text in ``language`` (Japanese for a language the chat does not have)."""
    return catalogue(language if language in LANGUAGES else "ja")[key].format(**params)


@dataclass(frozen=True)
class ChatConfig:
    """What the chat needs from settings."""

    lookups_per_15_minutes: int = 10
    # Bookings one LINE user may attempt an hour (the web's limit per address).
    bookings_per_hour: int = 30
    # The ward's languages on LINE, Japanese first: the menu offers each by its own name.
    languages: tuple[str, ...] = EVERY.on("line")


@dataclass
class LineState:
    """What the resident chose and typed so far: kept encrypted on their row between events,
    forgotten when it expires (LINE_STATE_MINUTES after the last event)."""

    language: str = "ja"
    step: str = "menu"  # what typed text answers: notice, birth, phone, code, find_birth
    mode: str = "book"  # book | move
    service: str | None = None
    party: int = 1
    venue: str | None = None  # None: anywhere
    day: str | None = None
    hold: str | None = None
    notices: list[str] = field(default_factory=list)
    pending: str | None = None  # a typed value being read back
    birth: str | None = None
    phone: str | None = None
    code: str | None = None
    booking_id: int | None = None

    def forget_booking(self) -> None:
        """Start afresh: what was chosen and typed goes, the language stays."""
        self.__dict__.update(LineState(language=self.language).__dict__)


class ChatTurn:
    """One event's work: the resident, their state, and the messages being built."""

    def __init__(
        self, db: DbSession, *, line_user: str, state: LineState, config: ChatConfig
    ) -> None:
        self.db = db
        self.line_user = line_user
        self.state = state
        self.config = config
        self.messages: list[Message] = []

    @property
    def language(self) -> str:
        return self.state.language

    def t(self, key: str, **params: Any) -> str:
        return text_in(self.language, key, **params)

    def now(self) -> datetime:
        return context(self.db).now()

    def say(self, key: str, **params: Any) -> None:
        self.messages.append(text_message(self.t(key, **params)))

    def ask(self, key: str, choices: Sequence[tuple[str, str]], **params: Any) -> None:
        """A question with its choices as quick replies: (label, postback data)."""
        message = text_message(self.t(key, **params))
        message["quickReply"] = quick_replies(choices)
        self.messages.append(message)

    def add(self, message: Message) -> None:
        self.messages.append(message)

    def answer(self) -> list[Message]:
        """The reply: LINE takes five messages; the last ones (the question) matter most."""
        if len(self.messages) <= MAX_MESSAGES:
            return self.messages
        return self.messages[: MAX_MESSAGES - 1] + self.messages[-1:]

    # --- the things the chat shows ------------------------------------------------------

    def named(self, thing: Any) -> str:
        return name_of(thing, self.language)

    def when(self, at: datetime) -> str:
        return when_text(at, self.language)

    def summary(self, view: BookingView) -> str:
        venue = booking.venue_or_404(self.db, view.venue_id)
        service = booking.service_or_404(self.db, view.service_id)
        return self.t(
            "summary",
            when=self.when(view.starts_at),
            venue=self.named(venue),
            service=self.named(service),
            people=self.t("party_option", count=view.party_size),
        )


def postback(action: str, value: str | int | None = None) -> str:
    return urlencode({"a": action} | ({} if value is None else {"v": str(value)}))


def text_message(text: str) -> Message:
    return {"type": "text", "text": text[:5000]}


def quick_replies(choices: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {
        "items": [
            {
                "type": "action",
                "action": {
                    "type": "postback",
                    "label": label[:20],
                    "data": data,
                    "displayText": label,
                },
            }
            for label, data in choices[:MAX_QUICK_REPLIES]
        ]
    }


def button(label: str, data: str, *, primary: bool = False) -> dict[str, Any]:
    return {
        "type": "button",
        "style": "primary" if primary else "secondary",
        "height": "sm",
        "margin": "sm",
        "action": {"type": "postback", "label": label[:40], "data": data, "displayText": label},
    }


def bubble(alt_text: str, lines: Sequence[str], buttons: Sequence[dict[str, Any]]) -> Message:
    """A Flex bubble: some lines of text and a column of buttons."""
    body: list[dict[str, Any]] = [
        {"type": "text", "text": line, "wrap": True, "size": "md" if i else "lg"}
        for i, line in enumerate(lines)
    ]
    contents: dict[str, Any] = {
        "type": "bubble",
        "body": {"type": "box", "layout": "vertical", "contents": body},
    }
    if buttons:
        contents["footer"] = {"type": "box", "layout": "vertical", "contents": list(buttons)}
    return {"type": "flex", "altText": alt_text[:400], "contents": contents}


def day_text(day: date, language: str) -> str:
    """A day as a button says it: 12月16日（水）, Wed 16 Dec, 12월 16일(수); the other languages
    as Babel writes a month, day and weekday for their locale (やさしい日本語 as Japanese)."""
    if language not in _WEEKDAYS and language in LANGUAGES and not is_japanese(language):
        return format_skeleton("MMMEd", day, locale=info(language).babel)
    weekday = _WEEKDAYS.get(language, _WEEKDAYS["ja"])[day.weekday()]
    if language == "en":
        return f"{weekday} {day.day} {day.strftime('%b')}"
    if language == "ko":
        return f"{day.month}월 {day.day}일({weekday})"
    return f"{day.month}月{day.day}日（{weekday}）"


def when_text(at: datetime, language: str) -> str:
    """A visit's time as the resident reads it: Tokyo's day and clock."""
    local = at.astimezone(TOKYO)
    return f"{day_text(local.date(), language)} {local:%H:%M}"
