"""Application help (申請補助) at the counter (seed 002, item ⑤): a help visit completed with
what happened at the terminal (the application sent, the applicant's copy of the printed
details), and the day's handover sheet of the ward's copies, per venue and staff member,
printable, confirmed face to face by the person handing over (signed in) and the ward's
receiver (their own credentials on the same screen). Every step is audited, the receiver's
confirmation in their own name."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session as DbSession

from agent_console import service as staff
from agent_console.day_view import day_or_today
from agent_console.web import (
    NotAllowed,
    audit_event,
    catalogue,
    client_address,
    csrf_ok,
    refuse_my_numbers,
    render,
    second_factor_roles,
    signed_in,
)
from booking import service as booking
from booking.errors import BookingError
from booking.schemas import RowId
from booking.web import unit_of_work

router = APIRouter(
    prefix="/console/manage/counter",
    include_in_schema=False,
    dependencies=[Depends(refuse_my_numbers)],
)

COUNTER = ("counter_manager", "supervisor")
# Who may receive the ward's copies: the ward's staff accounts at the counter.
RECEIVERS = ("counter_manager", "supervisor")


def _said(sent: bool, given: bool) -> str:
    if not sent:
        return "申請は送信なし"
    return "申請を送信、控えを申請者に手渡し" if given else "申請を送信、控えは申請者に渡さず"


async def _help_done(
    request: Request, complete: Callable[[DbSession, int, bool, bool], str], kind: str, subject: int
) -> Response:
    """Complete a help visit with its two ticks, recorded with the signed-in staff member."""
    form = await request.form()
    venue = str(form.get("venue", ""))
    sent, given = form.get("sent") == "on", form.get("copy") == "on"

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with unit_of_work(request) as db:
            seat = signed_in(request, db, *COUNTER)
            if not csrf_ok(seat, {"csrf": str(form.get("csrf", ""))}):
                return render(request, "expired.html", seat, status_code=403)
            try:
                label = complete(db, seat.staff.id, sent, given)
            except BookingError as refused:
                db.rollback()
                return _to_counter(venue, error=refused.message("ja"))
            detail = f"sent={'yes' if sent else 'no'} copy={'yes' if given else 'no'}"
            audit_event(db, seat, request, "counter.help_completed", kind, subject, detail)
            db.commit()
        said = f"{label}の手続きを完了にしました（申請補助：{_said(sent, given)}）。"
        return _to_counter(venue, done=said)

    return await run_in_threadpool(work)


def _to_counter(venue: str, **said: str) -> Response:
    return RedirectResponse("/console/manage/counter?" + urlencode({"venue": venue, **said}), 303)


@router.post("/bookings/{booking_id}/help-done")
async def help_booking_done(request: Request, booking_id: RowId) -> Response:
    """A checked-in help booking completed (完了), with what was sent and handed over."""

    def complete(db: DbSession, staff_id: int, sent: bool, given: bool) -> str:
        code = booking.complete_help_booking(
            db, booking_id=booking_id, staff_id=staff_id, sent=sent, copy_given=given
        )
        return f"予約番号 {code} "

    return await _help_done(request, complete, "booking", booking_id)


@router.post("/walk-ins/{number}/help-done")
async def help_walk_in_done(request: Request, number: RowId) -> Response:
    """Today's help walk-in completed (完了), with what was sent and handed over."""
    venue = str((await request.form()).get("venue", ""))

    def complete(db: DbSession, staff_id: int, sent: bool, given: bool) -> str:
        booking.complete_help_walk_in(
            db, venue_id=venue, number=number, staff_id=staff_id, sent=sent, copy_given=given
        )
        return f"{number}番の方"

    return await _help_done(request, complete, "walk_in", number)


# --- the day's handover sheet -------------------------------------------------------------------


@router.get("/handover", response_class=HTMLResponse)
def handover_sheets(
    request: Request, venue: str = "main", day: str = "", done: str = "", error: str = ""
) -> Response:
    """A venue's handover sheets of a day: the confirmed ones (frozen) and the copies each staff
    member still has to hand over; the signed-in one confirms theirs with the receiver."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, *COUNTER)
        venues, _services = catalogue(db)
        if venue not in venues:
            raise NotAllowed
        chosen = day_or_today(day, db)
        sheets = booking.handover_sheets(db, venue_id=venue, day=chosen)
        ids = {s.staff_id for s in sheets} | {s.receiver_id for s in sheets if s.receiver_id}
        people = {p.id: p for p in staff.list_staff(db) if p.id in ids}
        audit_event(db, seat, request, "handover.view", "venue", venue, chosen.isoformat())
        db.commit()
    return render(
        request,
        "handover.html",
        seat,
        venue=venue,
        venues=venues,
        day=chosen,
        sheets=sheets,
        people=people,
        done=done,
        error=error,
    )


def _to_sheets(venue: str, day: str, **said: str) -> Response:
    query = urlencode({"venue": venue, "day": day, **said})
    return RedirectResponse(f"/console/manage/counter/handover?{query}", 303)


@router.post("/handover/confirm")
async def handover_confirm(request: Request) -> Response:
    """The signed-in staff member hands their copies over; the ward's receiver confirms with
    their own login ID, password (and code) on the same screen. Both are audited."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    venue, day = form.get("venue", ""), form.get("day", "")

    def work() -> Response:
        # The database and what follows (argon2 too): on a worker thread, never the event loop.
        with unit_of_work(request) as db:
            seat = signed_in(request, db, *COUNTER)
            if not csrf_ok(seat, form):
                return render(request, "expired.html", seat, status_code=403)
            chosen = day_or_today(day, db)
            try:
                visits = [int(i) for i in form.get("visits", "").split(",") if i]
            except ValueError:
                return _to_sheets(venue, chosen.isoformat(), error="引渡票を表示し直してください。")
            login = form.get("receiver_login", "")[:64]
            try:
                receiver = staff.countersign(
                    db,
                    login_id=login,
                    password=form.get("receiver_password", ""),
                    code=form.get("receiver_code", ""),
                    second_factor_roles=second_factor_roles(request),
                )
                if not receiver.can(*RECEIVERS):
                    raise staff.StaffError("この職員は引渡しを受け取る役割ではありません。")
            except staff.StaffError as refused:
                db.commit()  # a wrong password counts towards the receiver's lock-out
                audit_event(db, seat, request, "handover.receive_refused", "staff", login or "-")
                db.commit()
                return _to_sheets(venue, chosen.isoformat(), error=str(refused))
            try:
                sheet = booking.confirm_handover(
                    db,
                    venue_id=venue,
                    day=chosen,
                    staff_id=seat.staff.id,
                    receiver_id=receiver.id,
                    visit_ids=visits,
                )
            except BookingError as refused:
                db.rollback()
                detail = f"{chosen.isoformat()}: {refused.code}, receiver {receiver.login_id}"
                audit_event(db, seat, request, "handover.confirm_refused", "venue", venue, detail)
                db.commit()
                return _to_sheets(venue, chosen.isoformat(), error=refused.message("ja"))
            detail = f"{venue} {chosen.isoformat()}: {sheet.copies} copies"
            audit_event(
                db,
                seat,
                request,
                "handover.confirm",
                "handover_sheet",
                sheet.id or 0,
                f"{detail}, received by {receiver.login_id}",
            )
            staff.audit(
                db,
                staff=receiver,
                action="handover.receive",
                subject_kind="handover_sheet",
                subject_id=sheet.id or 0,
                detail=f"{detail}, handed over by {seat.staff.login_id}",
                client=client_address(request),
            )
            db.commit()
        said = f"控え {sheet.copies}枚の引渡しを確認しました（受領：{receiver.display_name}）。"
        return _to_sheets(venue, chosen.isoformat(), done=said)

    return await run_in_threadpool(work)
