"""The log audit (tests/log_audit.py) finds what it is looking for: a resident's phone number
in either form, a birth date, a name; and not a booking code or a step name."""

from __future__ import annotations

from tests import log_audit


def test_the_audit_finds_personal_values_in_log_lines() -> None:
    log_audit._remember("+819077770123")
    log_audit._remember("1944-02-29")
    log_audit._remember("ロクオーディット ハナコ")
    log_audit._remember('{"phone": "+819077770456", "code": "12345678", "step": "after_hours"}')
    lines = [
        "ivr INFO call CA1: sent to 090-7777-0123",
        "httpx INFO POST /x?to=819077770123",
        "app INFO born 1944-02-29",
        "app INFO name ロクオーディット ハナコ",
        "app INFO state phone 09077770456",
        "app INFO booking 12345678 at after_hours",  # not personal: a code and a step
    ]
    found = log_audit.leaks("\n".join(lines))
    assert found == lines[:5]
