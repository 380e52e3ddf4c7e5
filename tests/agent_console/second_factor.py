"""Test helpers for the console's second factor: set one up for an account the way the
enrolment page does, and the code an authenticator app would show at a given moment."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyotp
from sqlalchemy.orm import Session

from agent_console import credentials


def code_at(secret: str, when: datetime) -> str:
    """The six digits an authenticator app shows at ``when``."""
    return pyotp.TOTP(secret).generate_otp(int(when.timestamp()) // credentials.STEP_SECONDS)


def enrol(db: Session, staff_id: int, now: datetime) -> str:
    """Set up a second factor for an account (confirmed with the previous step's code, so the
    code of ``now`` is still unused for signing in); its secret."""
    enrolment = credentials.start_enrolment(db, staff_id=staff_id)
    earlier = now - timedelta(seconds=credentials.STEP_SECONDS)
    credentials.confirm_enrolment(db, staff_id=staff_id, code=code_at(enrolment.secret, earlier))
    return enrolment.secret
