"""Staff accounts: who may use the console and with which role, their passwords (argon2id,
one hash at a time), the desk phone each takes calls on."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Literal

from argon2 import PasswordHasher
from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from agent_console.models import (
    ROLES,
    StaffSession,
    StaffUser,
)
from booking.context import context
from booking.errors import BookingError
from booking.personal import parse_phone

MIN_PASSWORD_LENGTH = 12


class _OneAtATime(PasswordHasher):
    """argon2id, one hash or check at a time in this process. Each runs its lanes on threads of
    its own (4 with the library's parameters): ten agents signing in at once put 40 busy threads
    against the phone line's one. Measured (bench/bench_load.py --agents-sign-in 10, two busy
    cores): the phone line's p99 during the bursts 417 ms queued here against 625 ms not
    (253 against 1,306 in an earlier pair); the last sign-in of a burst waits longer (9.2 s
    against 5.7 s), the median one no longer (3.7 s against 4.4 s)."""

    _turn = threading.Lock()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        with self._turn:
            return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._turn:
            return super().verify(hash, password)


_hasher = _OneAtATime()  # argon2id with the library's current recommended parameters
# Verifying against this when the login ID is unknown costs the same as a real check, so the
# answer's timing does not tell which IDs exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class StaffError(Exception):
    """A staff operation refused, with a message for the person at the screen."""


@dataclass(frozen=True)
class Staff:
    """A signed-in (or listed) staff member, as the console sees them."""

    id: int
    login_id: str
    display_name: str
    role: str
    active: bool
    desk_phone: str | None = None  # E.164: where a queued caller is put through
    second_factor: bool = False  # an authenticator is set up

    def can(self, *roles: str) -> bool:
        return self.role in roles


def _view(user: StaffUser) -> Staff:
    return Staff(
        user.id,
        user.login_id,
        user.display_name,
        user.role,
        user.active,
        user.desk_phone,
        user.totp_secret_enc is not None,
    )


# --- accounts -------------------------------------------------------------------------------


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"パスワードは{MIN_PASSWORD_LENGTH}文字以上にしてください。")


def create_staff(
    db: DbSession,
    *,
    login_id: str,
    display_name: str,
    role: str,
    password: str,
    must_change: bool = False,
) -> Staff:
    """A new account; ``must_change`` when someone else chose its first password (a
    supervisor in the console), so its owner replaces it at the first sign-in."""
    login_id = login_id.strip()
    if not login_id or len(login_id) > 64 or not login_id.isascii():
        raise StaffError("ログインIDは半角英数字で64文字までにしてください。")
    if role not in ROLES:
        raise StaffError(f"役割は {', '.join(ROLES)} のいずれかです。")
    check_password(password)
    if db.execute(select(StaffUser.id).where(StaffUser.login_id == login_id)).first():
        raise StaffError(f"ログインID {login_id} はすでに使われています。")
    now = context(db).now()
    user = StaffUser(
        login_id=login_id,
        display_name=display_name.strip() or login_id,
        role=role,
        password_hash=_hasher.hash(password),
        active=True,
        failed_logins=0,
        must_change_password=must_change,
        created_at=now,
        updated_at=now,
    )
    db.add(user)
    db.flush()
    return _view(user)


def list_staff(db: DbSession) -> list[Staff]:
    users = db.execute(select(StaffUser).order_by(StaffUser.active.desc(), StaffUser.login_id))
    return [_view(u) for u in users.scalars()]


def get_staff(db: DbSession, staff_id: int) -> Staff:
    user = db.get(StaffUser, staff_id)
    if user is None:
        raise StaffError("その職員は見つかりません。")
    return _view(user)


def set_role(db: DbSession, *, staff_id: int, role: str) -> Staff:
    if role not in ROLES:
        raise StaffError(f"役割は {', '.join(ROLES)} のいずれかです。")
    user = db.get(StaffUser, staff_id)
    if user is None:
        raise StaffError("その職員は見つかりません。")
    user.role = role
    user.updated_at = context(db).now()
    db.flush()
    return _view(user)


def deactivate(db: DbSession, *, staff_id: int) -> Staff:
    """A leaver: the account stops working at once, and every open session with it."""
    user = db.get(StaffUser, staff_id)
    if user is None:
        raise StaffError("その職員は見つかりません。")
    now = context(db).now()
    user.active = False
    user.updated_at = now
    db.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.ended_at.is_(None))
        .values(ended_at=now, end_reason="deactivated")
    )
    db.flush()
    return _view(user)


# --- where agents take calls, and who is on duty ----------------------------------------------


def set_desk_phone(db: DbSession, *, staff_id: int, phone: str) -> str | None:
    """The phone this agent takes calls on (empty: none). Returns it in E.164."""
    e164: str | None = None
    if phone.strip():
        try:
            e164 = parse_phone(phone).e164
        except BookingError as refused:
            raise StaffError(refused.message("ja")) from None
    db.execute(
        update(StaffUser)
        .where(StaffUser.id == staff_id)
        .values(desk_phone=e164, updated_at=context(db).now())
    )
    return e164
