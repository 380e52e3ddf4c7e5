"""Retention: erasing residents' personal data when the contract says, with a record each time.

The daily run (housekeeping, or ``madoguchi erase``) erases what is past
``MADOGUCHI_RETENTION_DAYS`` after the visit or the cancellation, in every package through its
own service, removes audit events past ``MADOGUCHI_AUDIT_RETENTION_DAYS``, and writes an
erasure record (消去記録) from which a certificate of erasure can be printed. ``erase_all`` is
the contract's end: everything personal, at once, with its record.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from agent_console import service as staff
from booking import lottery
from booking import service as booking
from booking.context import context
from config.settings import Settings
from ivr import service as calls
from reminders import service as reminders

DAILY = timedelta(hours=23)


def _erase(db: Session, *, before: datetime, everything: bool) -> dict[str, int]:
    erased_calls = calls.erase_personal_data(db, before=before, everything=everything)
    return {
        "予約 bookings": booking.erase_personal_data(db, before=before, everything=everything),
        "キャンセル待ち waitlist entries": booking.erase_waitlist_personal_data(
            db, before=before, everything=everything
        ),
        "通知 messages": reminders.erase_personal_data(db, before=before, everything=everything),
        "通話 calls": erased_calls.calls,
        "折り返し依頼 callback requests": erased_calls.callbacks,
        "問い合わせ記録 inquiry notes": staff.erase_personal_data(
            db, before=before, everything=everything
        ),
        "抽選の申込 lottery applications": lottery.erase_personal_data(
            db, before=before, everything=everything
        ),
        "届いたカード ready cards": booking.erase_ready_cards(
            db, before=before, everything=everything
        ),
        "LINEの利用者 LINE users": calls.erase_line_users(db, before=before, everything=everything),
    }


def erase_expired(
    sessions: sessionmaker[Session], settings: Settings, *, job: str = "retention (daily)"
) -> staff.Erasure:
    """Erase what is past its retention now; returns the erasure record written."""
    with sessions() as db:
        now = context(db).now()
        cutoff = now - timedelta(days=settings.retention_days)
        counts = _erase(db, before=cutoff, everything=False)
        audit_cutoff = now - timedelta(days=settings.audit_retention_days)
        counts["操作ログ audit events past their retention"] = staff.purge_audit(
            db, before=audit_cutoff
        )
        record = staff.record_erasure(db, job=job, scope="retention", cutoff=cutoff, counts=counts)
        db.commit()
    return record


def erase_expired_daily(sessions: sessionmaker[Session], settings: Settings) -> None:
    """From housekeeping: the retention run, once a day."""
    with sessions() as db:
        last = staff.last_erasure_at(db, scope="retention")
        due = last is None or context(db).now() - last >= DAILY
    if due:
        erase_expired(sessions, settings)


def erase_all(sessions: sessionmaker[Session], *, job: str) -> staff.Erasure:
    """The contract's end: every resident's personal data, now. The audit log stays (it holds
    no personal data) as the record of the work."""
    with sessions() as db:
        counts = _erase(db, before=context(db).now(), everything=True)
        record = staff.record_erasure(db, job=job, scope="everything", cutoff=None, counts=counts)
        db.commit()
    return record
