"""Frequently asked questions: what the phone line speaks at menu 3 and agents read, edited by
supervisors."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from booking.context import context
from ivr.models import FaqEntry

MAX_FAQ_ON_THE_LINE = 8  # keys 1-8 on the phone; 9 is the way back, 0 a person


@dataclass(frozen=True)
class Faq:
    id: str
    sort_order: int
    title_ja: str
    title_en: str
    answer_ja: str
    answer_en: str

    def title(self, language: str) -> str:
        return self.title_ja if language == "ja" else self.title_en

    def answer(self, language: str) -> str:
        return self.answer_ja if language == "ja" else self.answer_en


def faq_entries(db: DbSession, *, query: str = "") -> list[Faq]:
    """The active answers in order (the IVR speaks the first eight); ``query`` filters by a
    word in the title or answer, in either language."""
    rows = db.execute(
        select(FaqEntry).where(FaqEntry.active.is_(True)).order_by(FaqEntry.sort_order, FaqEntry.id)
    ).scalars()
    entries = [
        Faq(r.id, r.sort_order, r.title_ja, r.title_en, r.answer_ja, r.answer_en) for r in rows
    ]
    words = query.strip().lower().split()
    if words:
        entries = [
            e
            for e in entries
            if all(
                w in (e.title_ja + e.title_en + e.answer_ja + e.answer_en).lower() for w in words
            )
        ]
    return entries


def update_faq(
    db: DbSession, *, faq_id: str, title_ja: str, title_en: str, answer_ja: str, answer_en: str
) -> None:
    """A supervisor's edit: what agents read and the IVR speaks from the next call on."""
    fields = [title_ja.strip(), title_en.strip(), answer_ja.strip(), answer_en.strip()]
    if not all(fields):
        raise ValueError("every field is needed: both titles and both answers")
    result = db.execute(
        update(FaqEntry)
        .where(FaqEntry.id == faq_id)
        .values(
            title_ja=fields[0],
            title_en=fields[1],
            answer_ja=fields[2],
            answer_en=fields[3],
            updated_at=context(db).now(),
        )
    )
    if not getattr(result, "rowcount", 0):
        raise ValueError("no such question")
