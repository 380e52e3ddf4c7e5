"""Domain errors carry their HTTP meaning and their message in Japanese and English."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files
from typing import Any


@cache
def catalogue() -> dict[str, dict[str, Any]]:
    """The message catalogue (booking/messages.toml), read once per process."""
    text = files("booking").joinpath("messages.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


class BookingError(Exception):
    """A rule of the engine said no; ``code`` names it for machines, the catalogue for people."""

    def __init__(self, code: str, *, field: str | None = None, **params: Any) -> None:
        if code not in catalogue():
            raise KeyError(f"no message for error code {code!r}")
        super().__init__(code)
        self.code = code
        self.field = field
        self.params = params

    @property
    def status(self) -> int:
        return int(catalogue()[self.code]["status"])

    def message(self, language: str) -> str:
        """The message in ``language``; where the catalogue has no such language, in Japanese
        for やさしい日本語 and in English for any other."""
        texts = catalogue()[self.code]
        # やさしい日本語 falls back to Japanese, every other language to English.
        fallback = texts["ja"] if language == "easy" else texts["en"]
        return str(texts.get(language, fallback)).format(**self.params)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "message": {"ja": self.message("ja"), "en": self.message("en")},
        }
        if self.field:
            body["field"] = self.field
        return body
