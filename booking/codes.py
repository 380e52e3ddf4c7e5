"""Booking codes: 8 digits, the last a Damm check digit, so a phone keypad slip is caught."""

from __future__ import annotations

import secrets

from stdnum import damm

CODE_LENGTH = 8


def new_code() -> str:
    """A random code: 7 digits (no leading zero, so spreadsheets keep it) and a check digit."""
    body = str(secrets.randbelow(9_000_000) + 1_000_000)
    return body + str(damm.calc_check_digit(body))


def is_well_formed(code: str) -> bool:
    """Eight digits whose check digit holds: every single-digit slip and adjacent swap fails."""
    return len(code) == CODE_LENGTH and code.isascii() and code.isdigit() and damm.is_valid(code)
