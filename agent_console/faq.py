"""The FAQ panel agents read from (the entries the IVR's option 3 speaks; supervisors edit
them) and the inquiry categories (supervisors)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session as DbSession

from agent_console import service as staff
from agent_console.service import Seat, StaffError
from agent_console.web import (
    audit_event,
    refuse_my_numbers,
    render,
    signed_in,
    staff_form,
)
from booking.web import unit_of_work
from ivr import service as calls

router = APIRouter(
    prefix="/console", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)


# --- the FAQ panel ----------------------------------------------------------------------------


@router.get("/faq", response_class=HTMLResponse)
def faq_panel(request: Request, q: str = "", saved: str = "") -> Response:
    """The answers agents read from: the same entries the IVR's option 3 speaks."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "agent", "counter_manager", "supervisor")
        entries = calls.faq_entries(db, query=q)
    return render(request, "faq.html", seat, entries=entries, q=q, saved=saved, error=None)


@router.post("/faq/{faq_id}")
async def faq_edit(request: Request, faq_id: str) -> Response:
    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        try:
            calls.update_faq(
                db,
                faq_id=faq_id,
                title_ja=form.get("title_ja", ""),
                title_en=form.get("title_en", ""),
                answer_ja=form.get("answer_ja", ""),
                answer_en=form.get("answer_en", ""),
            )
        except ValueError:
            db.rollback()
            entries = calls.faq_entries(db)
            return render(
                request,
                "faq.html",
                seat,
                status_code=422,
                entries=entries,
                q="",
                saved="",
                error="日本語と英語の見出しと答えを、すべて入力してください。",
            )
        audit_event(db, seat, request, "faq.edit", "faq", faq_id)
        db.commit()
        return RedirectResponse(f"/console/faq?saved={faq_id}", status_code=303)

    return await staff_form(request, "supervisor", act=act)


# --- inquiry categories (supervisors) -----------------------------------------------------------


@router.get("/categories", response_class=HTMLResponse)
def category_list(request: Request, error: str | None = None) -> Response:
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "supervisor")
        rows = staff.all_categories(db)
    return render(request, "categories.html", seat, rows=rows, error=error)


@router.post("/categories")
async def category_save(request: Request) -> Response:
    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        try:
            staff.save_category(
                db,
                category_id=form.get("id", ""),
                name_ja=form.get("name_ja", ""),
                active=form.get("active") == "yes",
            )
        except StaffError as refused:
            db.rollback()
            rows = staff.all_categories(db)
            return render(
                request, "categories.html", seat, status_code=422, rows=rows, error=str(refused)
            )
        audit_event(
            db,
            seat,
            request,
            "category.save",
            "category",
            form.get("id", "")[:40],
            f"active={form.get('active') == 'yes'}",
        )
        db.commit()
        return RedirectResponse("/console/categories", status_code=303)

    return await staff_form(request, "supervisor", act=act)
