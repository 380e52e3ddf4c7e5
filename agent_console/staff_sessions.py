"""Signing in and the sessions: lock-out after repeated failures, a session looked up on
every request (a deactivated account is out at once), the idle timeout, the step (a
temporary password to replace, the second factor) still due before any page opens; who
is on duty (signed in, free or on a call)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from agent_console import agent_states
from agent_console.models import (
    StaffSession,
    StaffUser,
)
from agent_console.staff_accounts import (
    _DUMMY_HASH,
    Staff,
    StaffError,
    _hasher,
    _view,
)
from booking.context import context

MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15
IDLE_MINUTES = 30
# Roles that sign in with a second factor whatever the settings say (config.settings adds
# the ward's MADOGUCHI_SECOND_FACTOR_ROLES).
SECOND_FACTOR_ALWAYS = frozenset({"supervisor", "auditor"})


# --- signing in ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    staff: Staff
    token: str  # for the cookie; only its hash is stored
    csrf: str
    step: str = ""  # what must be done before anything else (see Seat.step)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(
    db: DbSession,
    *,
    login_id: str,
    password: str,
    second_factor_roles: Collection[str] = SECOND_FACTOR_ALWAYS,
) -> SignedIn:
    """Check the password; lock the account for a while after repeated failures. A session
    whose owner has a second factor opens nothing until the code is given."""
    now = context(db).now()
    user = db.execute(
        select(StaffUser).where(StaffUser.login_id == login_id.strip()).with_for_update()
    ).scalar_one_or_none()
    refused = StaffError("ログインIDまたはパスワードが違います。")
    if user is None:
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        raise refused
    if user.locked_until is not None and user.locked_until > now:
        raise StaffError(
            "ログインの失敗が続いたため、このIDは一時的にロックされています。"
            f"{LOCK_MINUTES}分ほど待つか、スーパーバイザーに連絡してください。"
        )
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + timedelta(minutes=LOCK_MINUTES)
            user.failed_logins = 0
        raise refused from None
    if not user.active:
        raise refused
    user.failed_logins = 0
    user.locked_until = None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    session = StaffSession(
        token_hash=_token_hash(token),
        staff_id=user.id,
        csrf_token=csrf,
        created_at=now,
        last_seen_at=now,
        # Whoever has set up a second factor gives it, whatever their role.
        pending="second_factor" if user.totp_secret_enc is not None else None,
    )
    db.add(session)
    db.flush()
    agent_states.signed_in(db, staff_id=user.id, role=user.role, session_id=session.id)
    return SignedIn(_view(user), token, csrf, _step(user, session, second_factor_roles))


@dataclass(frozen=True)
class Seat:
    """The session behind a request: who, and the form token their pages carry."""

    staff: Staff
    csrf: str
    session_id: int
    # What must happen before the console shows anything else: "" (nothing), "code" (the
    # second factor), "password" (replace a temporary password), "enrol" (set up a second
    # factor the role needs).
    step: str = ""


def session_for(
    db: DbSession,
    token: str | None,
    *,
    second_factor_roles: Collection[str] = SECOND_FACTOR_ALWAYS,
) -> Seat | None:
    """The live session for a cookie, or None: unknown, ended, idle too long, or the account
    deactivated. Touches the session, so activity keeps it alive."""
    if not token:
        return None
    now = context(db).now()
    row = db.execute(
        select(StaffSession, StaffUser)
        .join(StaffUser, StaffUser.id == StaffSession.staff_id)
        .where(StaffSession.token_hash == _token_hash(token))
    ).first()
    if row is None:
        return None
    session, user = row
    if session.ended_at is not None:
        return None
    if not user.active:
        session.ended_at, session.end_reason = now, "deactivated"
        return None
    if session.last_seen_at < now - timedelta(minutes=IDLE_MINUTES):
        session.ended_at, session.end_reason = now, "idle"
        return None
    session.last_seen_at = now
    return Seat(
        _view(user), session.csrf_token, session.id, _step(user, session, second_factor_roles)
    )


def _step(user: StaffUser, session: StaffSession, second_factor_roles: Collection[str]) -> str:
    # The code first (it proves who is there), then a temporary password replaced, then a
    # second factor set up where the role needs one (worked out now: a promotion counts at once).
    if session.pending == "second_factor":
        return "code"
    if user.must_change_password:
        return "password"
    if user.totp_secret_enc is None and (
        user.role in second_factor_roles or user.role in SECOND_FACTOR_ALWAYS
    ):
        return "enrol"
    return ""


def sign_out(db: DbSession, *, session_id: int) -> None:
    """The session ends; an agent with no other console signed in goes offline."""
    db.execute(
        update(StaffSession)
        .where(StaffSession.id == session_id, StaffSession.ended_at.is_(None))
        .values(ended_at=context(db).now(), end_reason="logout")
    )
    staff_id = db.execute(
        select(StaffSession.staff_id).where(StaffSession.id == session_id)
    ).scalar_one_or_none()
    if staff_id is not None:
        agent_states.signed_out(db, staff_id=staff_id)


# --- who is on duty -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnDuty:
    """A signed-in agent (or supervisor) the queue can go to."""

    staff_id: int
    display_name: str
    role: str
    has_phone: bool
    busy: bool  # on a call, or wrapping one up


def on_duty(db: DbSession, *, busy_ids: set[int]) -> list[OnDuty]:
    """Agents and supervisors with a live console session, free ones first."""
    since = context(db).now() - timedelta(minutes=IDLE_MINUTES)
    rows = db.execute(
        select(StaffUser)
        .join(StaffSession, StaffSession.staff_id == StaffUser.id)
        .where(
            StaffSession.ended_at.is_(None),
            StaffSession.last_seen_at >= since,
            StaffUser.active.is_(True),
            StaffUser.role.in_(("agent", "supervisor")),
        )
        .distinct()
    ).scalars()
    people = [
        OnDuty(u.id, u.display_name, u.role, u.desk_phone is not None, u.id in busy_ids)
        for u in rows
    ]
    return sorted(people, key=lambda p: (p.busy, p.display_name))
