"""The audit log: every event chained to the one before by a keyed hash (an edit cannot be
re-hashed without the installation's keys), its check, its search, and the purge of the
oldest events past the retention that keeps the chain checkable."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as DbSession

from agent_console.models import (
    AuditEvent,
    AuditHead,
)
from agent_console.staff_accounts import Staff
from booking.context import context

GENESIS = "0" * 64


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
