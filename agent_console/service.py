"""Staff accounts, their sessions, and the audit log: the rules, no HTTP.

The contract (seed 002, システム上の対策 1-2) asks for personal IDs and passwords, access
updated whenever staff change, and operation logs kept and checked. So: argon2id passwords,
lock-out after repeated failures, sessions looked up on every request (a deactivated account is
out at once), an idle timeout, and an audit log whose events are chained by a keyed hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session as DbSession

from agent_console.models import (
    RESOLUTIONS,
    ROLES,
    AuditEvent,
    AuditHead,
    ErasureRecord,
    Inquiry,
    InquiryCategory,
    StaffSession,
    StaffUser,
)
from booking.context import TOKYO, context
from booking.errors import BookingError
from booking.personal import parse_phone

MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15
IDLE_MINUTES = 30
MIN_PASSWORD_LENGTH = 12
# Roles that sign in with a second factor whatever the settings say (config.settings adds
# the ward's MADOGUCHI_SECOND_FACTOR_ROLES).
SECOND_FACTOR_ALWAYS = frozenset({"supervisor", "auditor"})
GENESIS = "0" * 64


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
    db.execute(
        update(StaffSession)
        .where(StaffSession.id == session_id, StaffSession.ended_at.is_(None))
        .values(ended_at=context(db).now(), end_reason="logout")
    )


# --- the audit log --------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    login_id: str
    action: str
    subject_kind: str
    subject_id: str
    detail: str
    client: str


def _chain_key(db: DbSession) -> bytes:
    # Keyed with the installation's keys: someone who can write to the database but does not
    # hold the keys cannot recompute the chain after editing an event.
    return context(db).vault.derive("audit-chain")


def _event_hash(key: bytes, prev_hash: str, fields: dict[str, str]) -> str:
    body = json.dumps({"prev": prev_hash, **fields}, sort_keys=True, ensure_ascii=False)
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def _fields(event: AuditEvent) -> dict[str, str]:
    return {
        "at": event.at.isoformat(),
        "staff_id": str(event.staff_id),
        "login_id": event.login_id,
        "action": event.action,
        "subject_kind": event.subject_kind,
        "subject_id": event.subject_id,
        "detail": event.detail,
        "client": event.client,
    }


def audit(
    db: DbSession,
    *,
    staff: Staff | None,
    action: str,
    subject_kind: str,
    subject_id: str | int,
    client: str,
    detail: str = "",
    login_id: str | None = None,
) -> None:
    """Append one event, chained to the one before (in the caller's transaction: the event
    and what it records commit together, or neither does)."""
    head = db.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    event = AuditEvent(
        at=context(db).now(),
        staff_id=staff.id if staff else None,
        login_id=staff.login_id if staff else (login_id or "-"),
        action=action,
        subject_kind=subject_kind,
        subject_id=str(subject_id)[:64],  # the column's width: a long list of ids is cut
        detail=detail,
        client=client[:64],
        prev_hash=head.last_hash,
        hash="",
    )
    event.hash = _event_hash(_chain_key(db), head.last_hash, _fields(event))
    head.last_hash = event.hash
    head.events += 1
    db.add(event)
    db.flush()


@dataclass(frozen=True)
class ChainReport:
    events: int
    breaks: list[str]

    @property
    def intact(self) -> bool:
        return not self.breaks


def _events(db: DbSession) -> Iterator[AuditEvent]:
    last = 0
    while True:
        batch = list(
            db.execute(
                select(AuditEvent).where(AuditEvent.id > last).order_by(AuditEvent.id).limit(1000)
            ).scalars()
        )
        if not batch:
            return
        yield from batch
        last = batch[-1].id


def check_chain(db: DbSession) -> ChainReport:
    """Walk the log from the first event: each must hash to what it says and name the one
    before; the head must name the last. Reports every break (an edit, a deletion, an
    insertion)."""
    key = _chain_key(db)
    breaks: list[str] = []
    head = db.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    # Events past the log's retention were removed from the front: the first kept follows the
    # anchor the purge recorded.
    prev = head.anchor_hash if head is not None else GENESIS
    count = 0
    for event in _events(db):
        count += 1
        if event.prev_hash != prev:
            breaks.append(f"event {event.id}: does not follow the event before it (one removed?)")
        if _event_hash(key, event.prev_hash, _fields(event)) != event.hash:
            breaks.append(f"event {event.id}: its content does not match its hash (edited?)")
        prev = event.hash
    if head is None:
        breaks.append("the chain's head is missing")
    else:
        if head.last_hash != prev:
            breaks.append("the newest events are missing (the head names a later event)")
        if head.events - head.purged != count:
            breaks.append(
                f"{head.events} events were written and {head.purged} purged, {count} are there"
            )
    return ChainReport(count, breaks)


def search_audit(
    db: DbSession,
    *,
    login_id: str | None = None,
    subject_kind: str | None = None,
    subject_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
) -> list[AuditEntry]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if login_id:
        query = query.where(AuditEvent.login_id == login_id)
    if subject_kind:
        query = query.where(AuditEvent.subject_kind == subject_kind)
    if subject_id:
        query = query.where(AuditEvent.subject_id == subject_id)
    if action:
        query = query.where(AuditEvent.action == action)
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at < until)
    return [
        AuditEntry(
            e.id, e.at, e.login_id, e.action, e.subject_kind, e.subject_id, e.detail, e.client
        )
        for e in db.execute(query).scalars()
    ]


# --- inquiries ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Category:
    id: str
    name_ja: str


@dataclass(frozen=True)
class InquiryView:
    id: int
    at: datetime
    login_id: str
    category: str
    note: str
    resolution: str
    booking_id: int | None


def categories(db: DbSession) -> list[Category]:
    rows = db.execute(
        select(InquiryCategory)
        .where(InquiryCategory.active.is_(True))
        .order_by(InquiryCategory.sort_order, InquiryCategory.id)
    ).scalars()
    return [Category(c.id, c.name_ja) for c in rows]


def log_inquiry(
    db: DbSession,
    *,
    staff: Staff,
    category: str,
    note: str,
    resolution: str,
    call_id: int | None = None,
    booking_id: int | None = None,
    phone: str | None = None,
) -> int:
    if db.get(InquiryCategory, category) is None:
        raise StaffError("用件の分類を選んでください。")
    if resolution not in RESOLUTIONS:
        raise StaffError("対応結果を選んでください。")
    if len(note) > 4000:
        raise StaffError("メモは4000文字までにしてください。")
    vault = context(db).vault
    inquiry = Inquiry(
        call_id=call_id,
        booking_id=booking_id,
        phone_hmac=vault.digest(phone) if phone else None,
        staff_id=staff.id,
        category_id=category,
        note_enc=vault.encrypt(note.strip()),
        resolution=resolution,
        created_at=context(db).now(),
    )
    db.add(inquiry)
    db.flush()
    return inquiry.id


def inquiries_for(db: DbSession, *, phone: str | None, call_id: int | None) -> list[InquiryView]:
    """Earlier inquiries from the same number (and this call's), newest first."""
    vault = context(db).vault
    conditions = []
    if phone:
        conditions.append(Inquiry.phone_hmac == vault.digest(phone))
    if call_id is not None:
        conditions.append(Inquiry.call_id == call_id)
    if not conditions:
        return []
    rows = db.execute(
        select(Inquiry, StaffUser.login_id, InquiryCategory.name_ja)
        .join(StaffUser, StaffUser.id == Inquiry.staff_id)
        .join(InquiryCategory, InquiryCategory.id == Inquiry.category_id)
        .where(or_(*conditions))
        .order_by(Inquiry.created_at.desc(), Inquiry.id.desc())
        .limit(50)
    ).all()
    return [
        InquiryView(
            i.id, i.created_at, login, name, vault.decrypt(i.note_enc), i.resolution, i.booking_id
        )
        for i, login, name in rows
    ]


def all_categories(db: DbSession) -> list[tuple[Category, bool]]:
    """Every category with whether it is offered (supervisors' list)."""
    rows = db.execute(
        select(InquiryCategory).order_by(InquiryCategory.sort_order, InquiryCategory.id)
    ).scalars()
    return [(Category(c.id, c.name_ja), c.active) for c in rows]


def save_category(db: DbSession, *, category_id: str, name_ja: str, active: bool) -> None:
    """Add a category or rename one; one no longer offered stays on past inquiries."""
    category_id = category_id.strip()
    name = name_ja.strip()
    if not category_id or not category_id.isascii() or len(category_id) > 40 or not name:
        raise StaffError("分類のIDは半角英数字、名前は必ず入力してください。")
    found = db.get(InquiryCategory, category_id)
    if found is None:
        last = (
            db.execute(
                select(InquiryCategory.sort_order).order_by(InquiryCategory.sort_order.desc())
            )
            .scalars()
            .first()
        )
        db.add(
            InquiryCategory(id=category_id, name_ja=name, sort_order=(last or 0) + 1, active=active)
        )
    else:
        found.name_ja = name
        found.active = active
    db.flush()


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


def erase_personal_data(db: DbSession, *, before: datetime, everything: bool = False) -> int:
    """Erase the notes (and the caller's lookup hash) of inquiries logged before ``before``, or
    of all: the category, the outcome and the time stay for the figures."""
    due = update(Inquiry).where((Inquiry.note_enc != "") | Inquiry.phone_hmac.is_not(None))
    if not everything:
        due = due.where(Inquiry.created_at < before)
    return int(db.execute(due.values(note_enc="", phone_hmac=None)).rowcount)  # type: ignore[attr-defined]


def purge_audit(db: DbSession, *, before: datetime) -> int:
    """Remove the audit events older than the log's retention, oldest first, keeping the chain
    checkable: the head records the hash the oldest kept event follows, and how many went."""
    head = db.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    old = list(
        db.execute(
            select(AuditEvent.id, AuditEvent.hash)
            .where(AuditEvent.at < before)
            .order_by(AuditEvent.id)
        )
    )
    if not old:
        return 0
    # Only a prefix of the chain may go: stop at the first kept event's predecessor.
    first_kept = db.execute(
        select(func.min(AuditEvent.id)).where(AuditEvent.at >= before)
    ).scalar_one()
    gone = [row for row in old if first_kept is None or row.id < first_kept]
    if not gone:
        return 0
    head.purge_before = before  # the trigger lets go of older events only, in this transaction
    db.flush()
    db.execute(delete(AuditEvent).where(AuditEvent.id <= gone[-1].id))
    head.anchor_hash = gone[-1].hash
    head.purged += len(gone)
    db.flush()
    return len(gone)


# --- Erasure records (消去記録) and certificates ----------------------------------------------

ERASURE_METHOD = (
    "Personal fields (names, phone numbers, birth dates, notice numbers, notes, callers' keyed "
    "answers) overwritten in the database with nothing, with their lookup hashes; the rows "
    "stay with what the statistics need. The database's own free-space reuse and the backups' "
    "retention complete the erasure on disk."
)


@dataclass(frozen=True)
class Erasure:
    id: int
    at: datetime
    job: str
    scope: str
    cutoff: datetime | None
    counts: dict[str, int]
    total: int
    method: str


def _erasure(row: ErasureRecord) -> Erasure:
    counts = {str(k): int(v) for k, v in json.loads(row.counts).items()}
    return Erasure(row.id, row.at, row.job, row.scope, row.cutoff, counts, row.total, row.method)


def record_erasure(
    db: DbSession, *, job: str, scope: str, cutoff: datetime | None, counts: dict[str, int]
) -> Erasure:
    """Write the erasure record of one run (also when it found nothing to erase)."""
    row = ErasureRecord(
        at=context(db).now(),
        job=job,
        scope=scope,
        cutoff=cutoff,
        counts=json.dumps(counts, ensure_ascii=False),
        total=sum(counts.values()),
        method=ERASURE_METHOD,
    )
    db.add(row)
    db.flush()
    return _erasure(row)


def erasures(db: DbSession, *, limit: int = 200) -> list[Erasure]:
    rows = db.execute(select(ErasureRecord).order_by(ErasureRecord.id.desc()).limit(limit))
    return [_erasure(row) for row in rows.scalars()]


def get_erasure(db: DbSession, erasure_id: int) -> Erasure | None:
    row = db.get(ErasureRecord, erasure_id)
    return _erasure(row) if row is not None else None


def last_erasure_at(db: DbSession, *, scope: str) -> datetime | None:
    found: datetime | None = db.execute(
        select(func.max(ErasureRecord.at)).where(ErasureRecord.scope == scope)
    ).scalar_one()
    return found


def _scope(erasure: Erasure) -> str:
    if erasure.scope == "everything":
        return "全データ (all personal data, at the contract's end)"
    if erasure.cutoff is not None:
        cutoff = erasure.cutoff.astimezone(TOKYO)
        return f"保存期間経過分 (past the retention period): before {cutoff:%Y-%m-%d %H:%M}"
    return erasure.scope


def certificate_text(erasure: Erasure) -> str:
    """The certificate of erasure (消去証明書) for the ward, as plain text to print or file."""
    local = erasure.at.astimezone(TOKYO)
    lines = [
        "消去証明書 (Certificate of erasure)",
        "",
        f"記録番号 Record no.: {erasure.id}",
        f"実施日時 Erased at: {local:%Y-%m-%d %H:%M} (Asia/Tokyo)",
        f"実施処理 Job: {erasure.job}",
        f"対象 Scope: {_scope(erasure)}",
        "",
        "消去件数 Erased:",
        *[f"  {what}: {count}" for what, count in erasure.counts.items()],
        f"  合計 Total: {erasure.total}",
        "",
        f"方法 Method: {erasure.method}",
        "",
        "上記のとおり、個人情報を消去したことを証明します。",
        "We certify that the personal data above was erased.",
    ]
    return "\n".join(lines)


# --- the office's part of the monthly report -------------------------------------------------


@dataclass(frozen=True)
class OfficePeriod:
    """Inquiries by category, staff accounts added and deactivated, and what was erased."""

    inquiries_by_category: dict[str, int]
    staff_added: list[str]  # "login (role)"
    staff_removed: list[str]
    erased: dict[str, int]
    erasure_runs: int


def office_period(db: DbSession, *, start: datetime, end: datetime) -> OfficePeriod:
    names = {c.id: c.name_ja for c in db.execute(select(InquiryCategory)).scalars()}
    by_category: dict[str, int] = {}
    for category, count in db.execute(
        select(Inquiry.category_id, func.count())
        .where(Inquiry.created_at >= start, Inquiry.created_at < end)
        .group_by(Inquiry.category_id)
    ):
        by_category[names.get(category, category)] = int(count)
    added = [
        f"{login} ({role})"
        for login, role in db.execute(
            select(StaffUser.login_id, StaffUser.role)
            .where(StaffUser.created_at >= start, StaffUser.created_at < end)
            .order_by(StaffUser.created_at)
        )
    ]
    removed = list(
        db.execute(
            select(AuditEvent.subject_id)
            .where(
                AuditEvent.action == "staff.deactivate",
                AuditEvent.at >= start,
                AuditEvent.at < end,
            )
            .order_by(AuditEvent.id)
        ).scalars()
    )
    logins = {str(i): login for i, login in db.execute(select(StaffUser.id, StaffUser.login_id))}
    erased: dict[str, int] = {}
    runs = 0
    for row in db.execute(
        select(ErasureRecord).where(ErasureRecord.at >= start, ErasureRecord.at < end)
    ).scalars():
        runs += 1
        for what, count in json.loads(row.counts).items():
            erased[what] = erased.get(what, 0) + int(count)
    return OfficePeriod(
        inquiries_by_category=dict(sorted(by_category.items(), key=lambda kv: -kv[1])),
        staff_added=added,
        staff_removed=[logins.get(s, s) for s in removed],
        erased=erased,
        erasure_runs=runs,
    )
