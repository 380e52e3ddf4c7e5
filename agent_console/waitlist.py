"""The waitlist in the console: an agent puts a caller on a full day's list, sees a day's list
(or a number's entries, from a callback), and books an offer for a resident on the phone (a
landline's offers come to the agents to call). Every page showing entries is audited, in the
same transaction as the read."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session as DbSession

from agent_console.caller_words import caller_languages
from agent_console.service import Seat
from agent_console.web import (
    audit_event,
    call_for,
    catalogue,
    csrf_ok,
    form_fields,
    refusal_words,
    refuse_my_numbers,
    render,
    resident_from_form,
    signed_in,
    staff_form,
)
from booking import service as booking
from booking.errors import BookingError
from booking.personal import display_phone, mask_phone
from booking.schemas import RowId
from booking.views import HeldTime, HoldView
from booking.web import unit_of_work, whole_number

router = APIRouter(
    prefix="/console", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)
STATUSES = {
    "waiting": "待機中",
    "offered": "ご案内中",
    "booked": "予約済み",
    "lapsed": "期限切れ",
    "left": "取消",
    "closed": "終了",
}
CHANNELS = {"web": "ウェブ", "ivr": "電話（自動）", "agent": "電話（職員）"}


@router.get("/waitlist", response_class=HTMLResponse)
def waitlist_page(request: Request, venue: str = "main", day: str = "", done: str = "") -> Response:
    """A venue's waitlist for a day, every service, in order. Audited."""
    return _waitlist(request, venue, day, "", done)


@router.post("/waitlist", response_class=HTMLResponse)
async def waitlist_of_number(request: Request) -> Response:
    """A number's entries (a callback about an offer): a POST, so the number stays out of the
    URL. Audited."""
    form = await form_fields(request)
    return await run_in_threadpool(_waitlist, request, "main", "", form.get("phone", ""), "", form)


def _waitlist(
    request: Request,
    venue: str,
    day: str,
    phone: str,
    done: str,
    form: dict[str, str] | None = None,
) -> Response:
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "agent", "counter_manager", "supervisor")
        if form is not None and not csrf_ok(seat, form):
            return render(request, "expired.html", seat, status_code=403)
        venues, services = catalogue(db)
        error = None
        shown = date.fromisoformat(day) if _is_day(day) else db.info["booking"].today()
        entries: list[booking.WaitlistView] = []
        try:
            if phone:
                entries = booking.waitlist_for_phone(db, phone=phone)
                subject = "phone"
            else:
                entries = booking.waitlist_of_day(db, venue_id=venue, day=shown)
                subject = f"{venue} {shown.isoformat()}"
        except BookingError as refused:
            error, subject = refused.message("ja"), "-"
        audit_event(
            db,
            seat,
            request,
            "waitlist.view",
            "waitlist",
            subject,
            "entries " + ",".join(str(e.id) for e in entries),
        )
        db.commit()
    return render(
        request,
        "waitlist.html",
        seat,
        entries=entries,
        venues=venues,
        services=services,
        venue=venue,
        day=shown,
        phone=phone,
        statuses=STATUSES,
        channels=CHANNELS,
        mask=mask_phone,
        error=error,
        done=done,
    )


def _is_day(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


@router.post("/calls/{call_sid}/waitlist")
async def add_caller(request: Request, call_sid: str) -> Response:
    """Put the caller on a full day's waitlist (channel: agent). Audited."""
    form = await form_fields(request)

    def work() -> Response:
        with unit_of_work(request) as db:
            seat = signed_in(request, db, "agent", "supervisor")
            call = call_for(db, seat, call_sid)
            if not csrf_ok(seat, form):
                return render(request, "expired.html", seat, status_code=403)
            venue = form.get("venue", "")
            try:
                day = date.fromisoformat(form.get("day", ""))
                entry = booking.join_waitlist(
                    db,
                    venue_id=venue,
                    service_id=form.get("service", ""),
                    day=day,
                    party=whole_number(form.get("party", "1"), 100),
                    phone=form.get("phone") or call.caller or "",
                    language=form.get("language") or call.language,
                    channel="agent",
                )
            except (BookingError, ValueError) as refused:
                db.rollback()
                message = (
                    refused.message("ja")
                    if isinstance(refused, BookingError)
                    else "日付と人数を正しく入力してください。"
                )
                query = urlencode({"venue": venue, "day": form.get("day", ""), "done": message})
                return RedirectResponse(f"/console/waitlist?{query}", status_code=303)
            audit_event(
                db, seat, request, "waitlist.join", "waitlist", entry.id, f"for call {call_sid}"
            )
            db.commit()
        done = f"キャンセル待ちに登録しました（前に{entry.ahead or 0}人）。"
        query = urlencode({"venue": venue, "day": day.isoformat(), "done": done})
        return RedirectResponse(f"/console/waitlist?{query}", status_code=303)

    return await run_in_threadpool(work)


def _offer(db: Any, entry_id: int) -> tuple[booking.WaitlistView, HeldTime | None]:
    entry = booking.waitlist_entry(db, entry_id=entry_id)
    now = db.info["booking"].now()
    if (
        not entry.offer_live(now)
        or entry.offered_slot_id is None
        or entry.offered_starts_at is None
        or entry.offered_ends_at is None
        or entry.offer_expires_at is None
    ):
        return entry, None
    hold = HoldView("", entry.offered_slot_id, entry.party_size, entry.offer_expires_at)
    held = HeldTime(
        hold,
        entry.venue_id,
        entry.service_id,
        entry.offered_starts_at,
        entry.offered_ends_at,
        True,
    )
    return entry, held


@router.get("/waitlist/{entry_id}/take", response_class=HTMLResponse)
def take_form(
    request: Request,
    entry_id: RowId,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    """The booking form for an offer, read to the resident on the phone. Audited."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "agent", "supervisor")
        entry, held = _offer(db, entry_id)
        audit_event(db, seat, request, "waitlist.view", "waitlist", entry.id, "offer")
        db.commit()
        if held is None:
            query = urlencode({"venue": entry.venue_id, "day": entry.day.isoformat()})
            return RedirectResponse(f"/console/waitlist?{query}", status_code=303)
        chosen = booking.service_or_404(db, entry.service_id)
        venue = booking.venue_or_404(db, entry.venue_id)
    return render(
        request,
        "book_details.html",
        seat,
        call_sid="",
        held=held,
        service=chosen,
        venue=venue,
        caller=display_phone(entry.phone),
        caller_language=entry.language,
        languages=caller_languages(request),
        error=error,
        values=values or {},
        form_action=f"/console/waitlist/{entry.id}/take",
    )


@router.post("/waitlist/{entry_id}/take")
async def take(request: Request, entry_id: RowId) -> Response:
    """Book an offer for the resident on the phone (channel: agent). Audited."""

    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        entry = booking.waitlist_entry(db, entry_id=entry_id)
        try:
            needs_notices = booking.service_or_404(db, entry.service_id).requires_notice_number
            made = booking.take_waitlist_offer(
                db,
                token=entry.token,
                resident=resident_from_form(form, entry.party_size, needs_notices),
                channel="agent",
                idempotency_key=f"agent-waitlist:{entry.token}",
            )
        except (BookingError, ValueError) as refused:
            db.rollback()
            message = refusal_words(refused)
            return take_form(request, entry_id, error=message, values=form)
        audit_event(db, seat, request, "booking.create", "booking", made.id, f"waitlist {entry.id}")
        db.commit()
        return RedirectResponse(f"/console/bookings/{made.id}", status_code=303)

    return await staff_form(request, "agent", "supervisor", act=act)
