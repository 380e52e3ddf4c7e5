"""Bookings found for a caller (by phone number or booking code), and one booking's page: its
details and every message about it, with resend and stop. All of it audited."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Session as DbSession

from agent_console.service import Seat
from agent_console.web import (
    NotAllowed,
    audit_event,
    catalogue,
    csrf_ok,
    refuse_my_numbers,
    render,
    signed_in,
    staff_form,
)
from booking import service as booking
from booking.errors import BookingError
from booking.personal import mask_phone, parse_phone
from booking.schemas import RowId
from booking.web import unit_of_work
from reminders import service as reminders

router = APIRouter(
    prefix="/console", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)


@router.get("/bookings", response_class=HTMLResponse)
def find_bookings(request: Request, code: str = "") -> Response:
    """The search form; a booking by its code (a link may carry the code, never a phone
    number: those are searched by POST, so they stay out of URLs, histories and logs)."""
    return _search(request, "", code, None)


@router.post("/bookings", response_class=HTMLResponse)
async def search_bookings(request: Request) -> Response:
    """A caller's bookings, by their phone number or a booking code. Audited."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    phone, code, csrf = form.get("phone", ""), form.get("code", ""), form.get("csrf", "")
    return await run_in_threadpool(_search, request, phone, code, csrf)


def _search(request: Request, phone: str, code: str, csrf: str | None) -> Response:
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "agent", "counter_manager", "supervisor")
        if csrf is not None and not csrf_ok(seat, {"csrf": csrf}):
            return render(request, "expired.html", seat, status_code=403)
        found: list[booking.BookingView] = []
        error = None
        try:
            if code.strip():
                found = [booking.booking_by_code(db, code=code)]
                subject = ("booking", str(found[0].id))
            elif phone.strip():
                found = booking.bookings_for_phone(db, phone=phone)
                # The number itself is personal data: the log names it by its keyed hash.
                digest = db.info["booking"].vault.digest(parse_phone(phone).e164)
                subject = ("phone", digest)
            else:
                subject = None
        except BookingError as refused:
            error, subject = refused.message("ja"), None
        if subject is not None:
            audit_event(
                db,
                seat,
                request,
                "booking.search",
                subject[0],
                subject[1],
                f"{len(found)} found; " + ",".join(str(b.id) for b in found),
            )
        db.commit()
        venues, services = catalogue(db)
    return render(
        request,
        "bookings.html",
        seat,
        found=found,
        phone=phone,
        code=code,
        error=error,
        venues=venues,
        services=services,
        mask=mask_phone,
    )


# --- one booking: its details and the messages sent about it ------------------------------------

MESSAGE_KINDS = {
    "confirmation": "予約確認",
    "moved": "変更のお知らせ",
    "cancelled": "取消のお知らせ",
    "reminder": "前日リマインダー",
    "reminder_morning": "当日リマインダー",
    "drawn": "抽選当選のお知らせ",
}
MESSAGE_STATUSES = {
    "scheduled": "送信予定",
    "claimed": "送信中",
    "sent": "送信済み",
    "delivered": "到達",
    "failed": "失敗",
    "dropped": "取りやめ",
}


STOPPED = {
    "booking": "この予約のお知らせを止めました。",
    "number": "この番号へのお知らせを止めました。",
}


@router.get("/bookings/{booking_id}", response_class=HTMLResponse)
def booking_page(request: Request, booking_id: RowId, done: str = "", error: str = "") -> Response:
    """One booking and every message sent (or not) about it. Audited."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "agent", "counter_manager", "supervisor")
        try:
            found = booking.get_booking(db, booking_id=booking_id)
        except (BookingError, NoResultFound):  # no such booking: as for one not to be seen
            raise NotAllowed from None
        history = reminders.messages_for(db, booking_id=booking_id)
        off = reminders.opted_out(db, booking_id=booking_id)
        audit_event(
            db, seat, request, "booking.view", "booking", booking_id, "details and messages"
        )
        db.commit()
        venues, services = catalogue(db)
    return render(
        request,
        "booking.html",
        seat,
        b=found,
        history=history,
        opted_out=off,
        kinds=MESSAGE_KINDS,
        statuses=MESSAGE_STATUSES,
        venues=venues,
        services=services,
        mask=mask_phone,
        done=done,
        error=error,
    )


@router.post("/bookings/{booking_id}/messages")
async def booking_messages(request: Request, booking_id: RowId) -> Response:
    """Resend the confirmation SMS, or stop messages for the booking or its number."""

    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        action = form.get("action", "")
        try:
            if action == "resend":
                reminders.resend_confirmation(
                    db, booking_id=booking_id, rules=request.app.state.reminder_rules
                )
                done = "確認のSMSを再送します。"
            elif action in ("stop_booking", "stop_number"):
                whole = action == "stop_number"
                reminders.opt_out(db, booking_id=booking_id, whole_number=whole, source="agent")
                done = STOPPED["number" if whole else "booking"]
            else:
                raise NotAllowed
        except BookingError as refused:
            db.rollback()
            return RedirectResponse(
                f"/console/bookings/{booking_id}?" + urlencode({"error": refused.message("ja")}),
                303,
            )
        audit_event(db, seat, request, f"booking.{action}", "booking", booking_id, "messages")
        db.commit()
        return RedirectResponse(f"/console/bookings/{booking_id}?" + urlencode({"done": done}), 303)

    return await staff_form(request, "agent", "supervisor", act=act)
