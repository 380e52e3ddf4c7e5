"""Erasure records (消去記録) and their certificates, and the office's part of the monthly
report (inquiries by category, accounts added and deactivated, what was erased)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from agent_console.models import (
    AuditEvent,
    ErasureRecord,
    Inquiry,
    InquiryCategory,
    StaffUser,
)
from booking.context import TOKYO, context

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
    if erasure.scope == "pickup":
        return "交付済みのカード (cards picked up at the counter, off the list of cards arrived)"
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
