"""No resident's data in the logs, over a whole test run.

Everything the service encrypts during the run is personal data by definition (names, phone
numbers, birth dates, notice numbers, notes, a call's keyed answers), so every value passed to
``Vault.encrypt`` is remembered. Every log record of the run at INFO and above (what production
logs; the HTTP clients' request lines show every URL called) is written to a file. When the run
ends, the file is searched for each remembered value: phone numbers also in their national form
(09012345678) and digits-only, dates as written. A hit fails the run and shows the lines.

Loaded from tests/conftest.py (``pytest_plugins``).
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from booking.personal import Vault

_lock = threading.Lock()
_phones: set[str] = set()  # digit strings: +81... without the +, and the national 0... form
_dates: set[str] = set()
_texts: set[str] = set()
_log_file = Path(tempfile.gettempdir()) / f"madoguchi-test-run-{id(_lock)}.log"
_PHONE = re.compile(r"^\+\d{8,15}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DIGITS = re.compile(r"\d[\d\- ]{6,}\d")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# Keys of a call's saved state that hold the ward's calendar, not the resident: the day a caller
# jumped to and the full day they asked about (the waitlist's), which the logs may name like any
# day of the calendar.
_CALENDAR_KEYS = frozenset({"wanted", "full_day"})


def _remember(value: Any, texts: bool = True) -> None:
    """Note a value as personal. Inside a call's saved state (JSON) only its phone numbers and
    dates are: the rest is the menu's working (step names, a booking code, choices)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in _CALENDAR_KEYS:
                _remember(item, texts)
    elif isinstance(value, list):
        for item in value:
            _remember(item, texts)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith(("{", "[")):
            try:
                _remember(json.loads(text), texts=False)
            except ValueError:
                pass
            return
        if _PHONE.match(text):
            digits = text[1:]
            _phones.add(digits)
            if digits.startswith("81"):
                _phones.add("0" + digits[2:])
        elif _DATE.match(text):
            _dates.add(text)
        elif texts and len(text) >= 6:
            _texts.add(text)


def pytest_configure(config: pytest.Config) -> None:
    original = Vault.encrypt

    def remembering(self: Vault, value: str) -> str:
        with _lock:
            _remember(value)
        return original(self, value)

    Vault.encrypt = remembering  # type: ignore[method-assign]
    _log_file.write_text("", encoding="utf-8")
    # Appending, so a handler closed by someone's logging set-up reopens on the next record
    # (a closed "w" handler stays silent, and the audit would miss everything after it).
    handler = logging.FileHandler(_log_file, mode="a", encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level, logging.INFO) if root.level else logging.INFO)


def leaks(log_text: str) -> list[str]:
    """Log lines holding a remembered value."""
    found = []
    names = [t for t in _texts if t in log_text]
    for line in log_text.splitlines():
        digits = {re.sub(r"[\- ]", "", m) for m in _DIGITS.findall(line)}
        if digits & _phones or set(_ISO_DAY.findall(line)) & _dates:
            found.append(line)
        elif any(name in line for name in names):
            found.append(line)
    return found


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()
    if not _log_file.exists():
        return
    text = _log_file.read_text(encoding="utf-8", errors="replace")
    found = leaks(text)
    _log_file.unlink(missing_ok=True)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    summary = (
        f"log audit: {len(text.splitlines())} log lines searched for {len(_phones)} phone "
        f"numbers, {len(_dates)} dates and {len(_texts)} other personal values"
    )
    if reporter is not None:
        reporter.write_line(summary + (f": {len(found)} leaks" if found else ": none found"))
        for line in found[:20]:
            reporter.write_line(f"  LEAK: {line[:300]}", red=True)
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
