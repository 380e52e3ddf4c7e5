"""Inquiries an agent logs on a call (the note stored encrypted, the caller found again by a
keyed hash of their number), the categories supervisors keep, and their erasure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session as DbSession

from agent_console.models import (
    RESOLUTIONS,
    Inquiry,
    InquiryCategory,
    StaffUser,
)
from agent_console.staff_accounts import Staff, StaffError
from booking.context import context

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


def erase_personal_data(db: DbSession, *, before: datetime, everything: bool = False) -> int:
    """Erase the notes (and the caller's lookup hash) of inquiries logged before ``before``, or
    of all: the category, the outcome and the time stay for the figures."""
    due = update(Inquiry).where((Inquiry.note_enc != "") | Inquiry.phone_hmac.is_not(None))
    if not everything:
        due = due.where(Inquiry.created_at < before)
    return int(db.execute(due.values(note_enc="", phone_hmac=None)).rowcount)  # type: ignore[attr-defined]
