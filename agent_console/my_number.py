"""A console form refused for holding a My Number, given back to the person who typed it: every
field as it was, but the number taken out, so they can correct it and send it again. The
number itself is never stored, logged or shown back."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from booking.personal import contains_my_number

# What stands where a number was taken out: visible, so the agent sees where to rewrite.
REMOVED = "［番号削除］"
# Digits and the separators people write between groups, before the NFKC normalisation the
# check makes (full-width digits, ideographic space, full-width hyphen, dot, slash, middle dot).
_RUN = re.compile(r"\d+(?:[ \u3000\-\u2212\u30fc\uff0d./\uff0e\uff0f・\uff65_\uff3f]+\d+)*")
# The free-text fields of the console's forms, named as their own pages name them.
LABELS = {
    "note": "メモ",
    "reason": "停止の理由",
    "title_ja": "見出し（日本語）",
    "title_en": "見出し（英語）",
    "answer_ja": "回答（日本語）",
    "answer_en": "回答（英語）",
    "display_name": "表示名",
    "name_ja": "名前（日本語）",
    "new_name_ja": "名前",
    "new_name_en": "名前（英語）",
    "new_address": "住所",
    "name_kana": "代表者のお名前（カタカナ）",
    "phone": "電話番号",
    "login_id": "ログインID",
    "code": "予約番号",
    "q": "検索する言葉",
    "url": "URL",
}
# Fields that say which view a page showed, given back to it in the way back.
_BACK_QUERY = {"/console/manage": ("venue", "day", "service", "from", "to")}
_MULTILINE = frozenset({"note", "answer_ja", "answer_en"})
_LONGEST_NAME = 60


@dataclass(frozen=True)
class KeptField:
    """One field of the refused form: ``kind`` is hidden, text, textarea, password or file."""

    name: str
    value: str
    kind: str
    label: str
    cleaned: bool  # a number was taken out of it


def without_my_numbers(text: str) -> str:
    """The text with every run of digits that holds a My Number replaced by a marker; empty
    if a number would still be found (written in a way the runs do not catch)."""

    def scrub(found: re.Match[str]) -> str:
        # With the character before it: "+81 ..." is an international phone number, kept.
        seen = text[max(found.start() - 1, 0) : found.end()]
        return REMOVED if contains_my_number(seen) else found.group()

    cleaned = _RUN.sub(scrub, text)
    return "" if contains_my_number(cleaned) else cleaned


def kept_fields(items: Iterable[tuple[str, object]], unscanned: frozenset[str]) -> list[KeptField]:
    """The form's fields to give back: free text editable (numbers taken out), choices and
    ids hidden as they were, passwords and files to be given again (never echoed)."""
    kept: list[KeptField] = []
    for name, value in items:
        if len(name) > _LONGEST_NAME or contains_my_number(name):
            continue  # no field of ours is named so
        label = LABELS.get(name, f"入力欄（{name}）")
        if not isinstance(value, str):
            kept.append(KeptField(name, "", "file", "ファイル", cleaned=False))
        elif name in unscanned:
            kind = "hidden" if name == "csrf" else "password"
            shown = value if kind == "hidden" else ""
            kept.append(KeptField(name, shown, kind, "パスワード", cleaned=False))
        else:
            cleaned = without_my_numbers(value)
            free = name in LABELS or cleaned != value
            multiline = name in _MULTILINE or "\n" in value
            kind = ("textarea" if multiline else "text") if free else "hidden"
            kept.append(KeptField(name, cleaned, kind, label, cleaned=cleaned != value))
    return kept


def way_back(action: str, kept: list[KeptField], shows: Callable[[str], bool]) -> str:
    """The page the form was sent from: the nearest page up the form's own address (the
    pages send no Referer), with the day view's venue, day and filter; else the console's
    start. ``shows`` says whether a path is a page."""
    path = action.rstrip("/")
    while path.count("/") > 1 and not shows(path):
        path = path.rsplit("/", 1)[0]
    if not shows(path):
        return "/console/"
    again = [(f.name, f.value) for f in kept if f.name in _BACK_QUERY.get(path, ())]
    return path + (f"?{urlencode(again)}" if again else "")
