"""A second staff member confirming on someone else's screen with their own credentials (the
ward's receiver of a handover sheet): the password, and the second factor's code when they have
one, checked as at sign-in, failures counting towards the same lock-out. No session is opened:
the confirmation is the only thing their credentials do here."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import timedelta

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from agent_console.credentials import (
    LOCKED,
    _accepted_step,
    _digits,
    _step_now,
    _use_recovery_code,
    _vault_text,
)
from agent_console.models import StaffUser
from agent_console.staff_accounts import _DUMMY_HASH, Staff, StaffError, _hasher, _view
from agent_console.staff_sessions import LOCK_MINUTES, MAX_FAILED_LOGINS, SECOND_FACTOR_ALWAYS
from booking.context import context

REFUSED = "受け取る職員のログインIDまたはパスワード（確認コード）が違います。"
TEMPORARY = "受け取る職員のパスワードが仮のままです。先にパスワードを変更してください。"


def _failed(db: DbSession, user: StaffUser) -> StaffError:
    now = context(db).now()
    user.failed_logins += 1
    if user.failed_logins >= MAX_FAILED_LOGINS:
        user.locked_until = now + timedelta(minutes=LOCK_MINUTES)
        user.failed_logins = 0
        db.flush()
        return StaffError(LOCKED)
    db.flush()
    return StaffError(REFUSED)


def _second_factor_ok(db: DbSession, user: StaffUser, code: str) -> bool:
    given = _digits(code)
    if user.totp_secret_enc is not None and re.fullmatch(r"\d{6}", given):
        secret = _vault_text(db, user.totp_secret_enc)
        step = _accepted_step(secret, given, _step_now(db), user.totp_last_step)
        if step is None:
            return False
        user.totp_last_step = step  # a code seen once is refused for the rest of its window
        return True
    return bool(given) and _use_recovery_code(db, user, given)


def countersign(
    db: DbSession,
    *,
    login_id: str,
    password: str,
    code: str = "",
    second_factor_roles: Collection[str] = SECOND_FACTOR_ALWAYS,
) -> Staff:
    """The staff member these credentials belong to, checked as at sign-in (password, then the
    second factor's code if they have one); StaffError otherwise. A temporary password, or a
    second factor the role needs but has not set up, confirms nothing."""
    user = db.execute(
        select(StaffUser).where(StaffUser.login_id == login_id.strip()).with_for_update()
    ).scalar_one_or_none()
    if user is None:
        try:
            _hasher.verify(_DUMMY_HASH, password)  # the same time as for a real account
        except VerificationError:
            pass
        raise StaffError(REFUSED)
    if user.locked_until is not None and user.locked_until > context(db).now():
        raise StaffError(LOCKED)
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise _failed(db, user) from None
    if not user.active:
        raise StaffError(REFUSED)
    if user.totp_secret_enc is not None and not _second_factor_ok(db, user, code):
        raise _failed(db, user)
    if user.must_change_password:
        raise StaffError(TEMPORARY)
    needs = user.role in second_factor_roles or user.role in SECOND_FACTOR_ALWAYS
    if needs and user.totp_secret_enc is None:
        raise StaffError("受け取る職員は、先に2段階認証を設定してください。")
    user.failed_logins = 0
    db.flush()
    return _view(user)
