"""Staff credentials after the account is made: the temporary password a supervisor hands
over (at creation or a reset), its forced replacement, and the second factor.

A temporary password is known to two people, so it opens nothing but the page that replaces
it; the new one follows the same rules as any password and may not be the temporary one.

The second factor is a TOTP secret (an authenticator app), kept encrypted with the
installation's data keys (it is rotated with them and never logged or exported), and ten
one-time recovery codes hashed with argon2.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session as DbSession

from agent_console.models import StaffRecoveryCode, StaffSession, StaffUser
from agent_console.staff_accounts import Staff, StaffError, _hasher, _view, check_password
from agent_console.staff_sessions import LOCK_MINUTES, MAX_FAILED_LOGINS
from booking.context import context

LOCKED = (
    "ログインの失敗が続いたため、このIDは一時的にロックされています。"
    f"{LOCK_MINUTES}分ほど待つか、スーパーバイザーに連絡してください。"
)

# No 0/O, 1/l/I: read off a screen and typed in by someone else.
_READABLE = "abcdefghijkmnpqrstuvwxyz23456789"


def _readable(groups: int, size: int = 4) -> str:
    return "-".join("".join(secrets.choice(_READABLE) for _ in range(size)) for _ in range(groups))


def temporary_password() -> str:
    """A password to hand over, e.g. ``k3mq-8xr2-p7tw-hn4e`` (19 characters, about 80 bits)."""
    return _readable(4)


def _user(db: DbSession, staff_id: int) -> StaffUser:
    user = db.get(StaffUser, staff_id)
    if user is None:
        raise StaffError("その職員は見つかりません。")
    return user


def _end_sessions(db: DbSession, staff_id: int, reason: str) -> None:
    db.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.ended_at.is_(None))
        .values(ended_at=context(db).now(), end_reason=reason)
    )


def reset_password(db: DbSession, *, staff_id: int) -> tuple[Staff, str]:
    """A new temporary password for someone who forgot theirs (shown once to the supervisor):
    their open sessions end, a lock-out is lifted, and they replace it at the next sign-in."""
    user = _user(db, staff_id)
    if not user.active:
        raise StaffError("無効なアカウントのパスワードは再設定できません。")
    password = temporary_password()
    user.password_hash = _hasher.hash(password)
    user.must_change_password = True
    user.failed_logins = 0
    user.locked_until = None
    user.updated_at = context(db).now()
    _end_sessions(db, staff_id, "reset")
    db.flush()
    return _view(user), password


def _matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def change_password(db: DbSession, *, staff_id: int, current: str, new: str, again: str) -> None:
    """Replace one's own password: the current one first, the new one twice, 12 characters or
    more, and not the one being replaced (a temporary password stays temporary)."""
    user = _user(db, staff_id)
    if not _matches(user.password_hash, current):
        raise StaffError("現在のパスワードが違います。")
    if new != again:
        raise StaffError("新しいパスワードが2回とも同じになるよう入力してください。")
    check_password(new)
    if new == current:
        raise StaffError("新しいパスワードは、いまのパスワードと違うものにしてください。")
    user.password_hash = _hasher.hash(new)
    user.must_change_password = False
    user.updated_at = context(db).now()
    db.flush()


# --- the second factor: TOTP (RFC 6238) from an authenticator app ------------------------------

ISSUER = "Madoguchi"
STEP_SECONDS = 30  # what every authenticator app uses
TOLERANCE_STEPS = 1  # a code from the step before or after still counts (clocks drift)
RECOVERY_CODES = 10
# Recovery codes are random (40 bits each), not chosen by people: argon2id at OWASP's minimum
# (19 MiB, 2 passes) suffices and keeps making ten and checking them quick.
_code_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
WRONG_CODE = "確認コードが違います。認証アプリに表示されている6桁の数字を入力してください。"


@dataclass(frozen=True)
class Enrolment:
    """A secret being set up: what the app scans (the otpauth URI as a QR code) or is typed."""

    secret: str
    uri: str

    def qr_svg(self) -> str:
        svg: str = segno.make_qr(self.uri, error="m").svg_inline(
            omitsize=True, title="認証アプリで読み取るQRコード"
        )
        return svg

    @property
    def grouped(self) -> str:
        """The secret in groups of four, easier to type by hand."""
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))


def _vault_text(db: DbSession, token: str) -> str:
    return context(db).vault.decrypt(token)


def start_enrolment(db: DbSession, *, staff_id: int) -> Enrolment:
    """The secret to set up (the same one until a code confirms it, so a reload does not
    invalidate what the app already scanned)."""
    user = _user(db, staff_id)
    if user.totp_secret_enc is not None:
        raise StaffError("2段階認証はすでに設定されています。")
    if user.totp_pending_enc:
        secret = _vault_text(db, user.totp_pending_enc)
    else:
        secret = pyotp.random_base32()
        user.totp_pending_enc = context(db).vault.encrypt(secret)
        db.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.login_id, issuer_name=ISSUER)
    return Enrolment(secret, uri)


def _step_now(db: DbSession) -> int:
    return int(context(db).now().timestamp()) // STEP_SECONDS


def _accepted_step(secret: str, code: str, now_step: int, last_step: int | None) -> int | None:
    """The time step a code belongs to (now, or one either side), if it was not used before:
    a code seen once is refused for the rest of its window."""
    totp = pyotp.TOTP(secret)
    for step in range(now_step - TOLERANCE_STEPS, now_step + TOLERANCE_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _digits(code: str) -> str:
    return re.sub(r"[\s-]", "", code)


def _new_recovery_codes(db: DbSession, user: StaffUser) -> list[str]:
    now = context(db).now()
    db.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.staff_id == user.id))
    codes = [_readable(2) for _ in range(RECOVERY_CODES)]
    for code in codes:
        db.add(
            StaffRecoveryCode(
                staff_id=user.id, code_hash=_code_hasher.hash(_digits(code)), created_at=now
            )
        )
    return codes


def confirm_enrolment(db: DbSession, *, staff_id: int, code: str) -> list[str]:
    """The first code from the app confirms the secret: it becomes the second factor, and ten
    recovery codes are made (returned to be shown once; only their hashes are kept)."""
    user = _user(db, staff_id)
    if user.totp_pending_enc is None:
        raise StaffError("設定をやり直してください（QRコードを表示し直します）。")
    secret = _vault_text(db, user.totp_pending_enc)
    step = _accepted_step(secret, _digits(code), _step_now(db), None)
    if step is None:
        raise StaffError(WRONG_CODE)
    user.totp_secret_enc = user.totp_pending_enc
    user.totp_pending_enc = None
    user.totp_last_step = step
    user.updated_at = context(db).now()
    codes = _new_recovery_codes(db, user)
    db.flush()
    return codes


def _use_recovery_code(db: DbSession, user: StaffUser, code: str) -> bool:
    wanted = _digits(code).lower()
    unused = db.execute(
        select(StaffRecoveryCode)
        .where(StaffRecoveryCode.staff_id == user.id, StaffRecoveryCode.used_at.is_(None))
        .with_for_update()
    ).scalars()
    for row in unused:
        if _matches(row.code_hash, wanted):
            row.used_at = context(db).now()
            return True
    return False


def recovery_codes_left(db: DbSession, *, staff_id: int) -> int:
    return int(
        db.execute(
            select(func.count()).where(
                StaffRecoveryCode.staff_id == staff_id, StaffRecoveryCode.used_at.is_(None)
            )
        ).scalar_one()
    )


def give_code(db: DbSession, *, session_id: int, code: str) -> str:
    """The second step of signing in: a TOTP code not used before, or an unused recovery code.
    Wrong codes count with wrong passwords towards the lock-out (which also ends this
    half-open session). Returns "totp" or "recovery"."""
    session = db.get(StaffSession, session_id)
    if session is None or session.pending != "second_factor":
        raise StaffError("もう一度ログインしてください。")
    user = db.execute(
        select(StaffUser).where(StaffUser.id == session.staff_id).with_for_update()
    ).scalar_one()
    now = context(db).now()
    if user.locked_until is not None and user.locked_until > now:
        raise StaffError(LOCKED)
    used = ""
    given = _digits(code)
    if user.totp_secret_enc is not None and re.fullmatch(r"\d{6}", given):
        secret = _vault_text(db, user.totp_secret_enc)
        step = _accepted_step(secret, given, _step_now(db), user.totp_last_step)
        if step is not None:
            user.totp_last_step = step
            used = "totp"
    elif given and _use_recovery_code(db, user, given):
        used = "recovery"
    if not used:
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + timedelta(minutes=LOCK_MINUTES)
            user.failed_logins = 0
            session.ended_at, session.end_reason = now, "locked"
            db.flush()
            raise StaffError(LOCKED)
        db.flush()
        raise StaffError(WRONG_CODE)
    user.failed_logins = 0
    session.pending = None
    db.flush()
    return used


def reset_second_factor(db: DbSession, *, staff_id: int) -> Staff:
    """For someone who lost their authenticator and recovery codes: the secret and the codes
    go, their sessions end, and they set up a new one at the next sign-in."""
    user = _user(db, staff_id)
    user.totp_secret_enc = None
    user.totp_pending_enc = None
    user.totp_last_step = None
    user.updated_at = context(db).now()
    db.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.staff_id == staff_id))
    _end_sessions(db, staff_id, "reset")
    db.flush()
    return _view(user)


def has_second_factor(db: DbSession, *, staff_id: int) -> bool:
    return _user(db, staff_id).totp_secret_enc is not None
