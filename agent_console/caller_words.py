"""The console's words for a caller, in the caller's language: what an agent reads out before
asking for personal details, and the contact languages an agent may choose (the ward's, from
booking/languages.py and MADOGUCHI_LANGUAGES). The console itself stays in Japanese."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files

from fastapi import Request

from booking.languages import EVERY, NAMES, Offered, info

# Each language as the console's staff call it (the console itself is in Japanese).
STAFF_NAMES: dict[str, str] = {
    "ja": "日本語",
    "en": "英語（English）",
    "ko": "韓国語",
    "zh": "中国語（簡体字）",
    "vi": "ベトナム語",
    "ne": "ネパール語",
    "easy": "やさしい日本語",
}


@cache
def read_outs() -> dict[str, dict[str, str]]:
    """agent_console/read_out.toml, read once per process."""
    text = files("agent_console").joinpath("read_out.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def read_out(language: str, *, notice: bool, days: int) -> str:
    """The purposes of use, read to a caller (Japanese where the language has no text)."""
    texts = read_outs().get(language) or read_outs()["ja"]
    return texts["notice" if notice else "plain"].format(days=days)


def caller_languages(request: Request) -> tuple[str, ...]:
    """The languages an agent may choose for a caller's texts and calls."""
    offered: Offered = getattr(request.app.state, "offered_languages", EVERY)
    return offered.on("console")


def staff_name(code: str | None) -> str:
    """A caller's or a booking's language, as staff read it."""
    return STAFF_NAMES.get(code or "ja", code or "")


def html_lang(code: str) -> str:
    return info(code).html if code in NAMES else code
