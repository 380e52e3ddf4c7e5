"""The counter's day (交付窓口受付): today's bookings at a venue, check-in by code, calls to
the counter, done, walk-ins with their queue numbers, and the signed roster taken offline
and brought back. Every action is audited."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

import segno
from annotated_types import Interval
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session as DbSession
from starlette.datastructures import UploadFile

from agent_console import service as staff
from agent_console.day_view import day_or_today
from agent_console.web import (
    NotAllowed,
    audit_event,
    catalogue,
    csrf_ok,
    refuse_my_numbers,
    render,
    signed_in,
)
from booking import service as booking
from booking.errors import BookingError
from booking.schemas import RowId
from booking.web import ROW_ID_MAX, unit_of_work, whole_number
from calendar_sync import roster
from reminders import service as reminders

router = APIRouter(
    prefix="/console/manage", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)


# --- the counter's day list (交付窓口受付) ----------------------------------------------------

COUNTER = ("counter_manager", "supervisor")


@router.get("/counter", response_class=HTMLResponse)
def counter_day(
    request: Request,
    venue: str = "main",
    done: str = "",
    error: str = "",
    warn: str = "",
    ticket: Annotated[int, Interval(ge=0, le=ROW_ID_MAX)] = 0,
    desk: str = "",
) -> Response:
    """Today's bookings at a venue, check-in by code (typed, or read by a QR scanner), done,
    and walk-ins with their queue numbers. Audited (it lists residents' bookings)."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, *COUNTER)
        venues, services = catalogue(db)
        if venue not in venues:
            raise NotAllowed
        today = db.info["booking"].today()
        bookings = booking.bookings_of_day(db, venue_id=venue, day=today)
        walk_ins = booking.walk_ins_of_day(db, venue_id=venue, day=today)
        offered = booking.venue_services(db).get(venue, [])
        figures = booking.counter_figures(db, first=today, last=today, venue_id=venue)
        audit_event(db, seat, request, "counter.view", "venue", venue, f"{len(bookings)} bookings")
        db.commit()
    return render(
        request,
        "counter.html",
        seat,
        venue=venue,
        today=today,
        bookings=bookings,
        walk_ins=walk_ins,
        offered=offered,
        venues=venues,
        services=services,
        done=done,
        error=error,
        warn=warn,
        ticket=ticket,
        desk=desk[:20],
        figures=figures[0] if figures else booking.CounterDay(venue, today),
    )


def _to_counter(venue: str, desk: str = "", **said: str) -> Response:
    """Back to the counter's list, keeping the desk this screen calls to."""
    kept = {"desk": desk[:20]} if desk else {}
    return RedirectResponse(
        "/console/manage/counter?" + urlencode({"venue": venue, **kept, **said}), 303
    )


class CounterRefused(Exception):
    """A counter action refused, in the words counter staff need."""


@dataclass(frozen=True)
class Done:
    """What a counter action did: the audit event (action, subject kind and id) and the line
    the counter's list says."""

    action: str
    kind: str
    subject: str | int
    said: str
    warn: str = ""  # what counter staff must look at before going on


async def _counter_action(request: Request, act: Callable[[DbSession, str], Done]) -> Response:
    """One button on the counter's list: checked, done in one transaction with its audit
    event, and back to the list saying what happened (or why not)."""
    form = await request.form()
    venue, desk = str(form.get("venue", "")), str(form.get("desk", ""))

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with unit_of_work(request) as db:
            seat = signed_in(request, db, *COUNTER)
            if not csrf_ok(seat, {"csrf": str(form.get("csrf", ""))}):
                return render(request, "expired.html", seat, status_code=403)
            try:
                done = act(db, str(form.get("code", "")))
            except BookingError as refused:
                db.rollback()
                return _to_counter(venue, desk, error=refused.message("ja"))
            except CounterRefused as refused:
                db.rollback()
                return _to_counter(venue, desk, error=str(refused))
            audit_event(db, seat, request, done.action, done.kind, done.subject)
            # The residents' alerts (a few ahead now, called) are born with the call, in its
            # transaction: committed together or not at all.
            reminders.plan_queue_alerts(db, venue_id=venue)
            db.commit()
        return _to_counter(
            venue, desk, done=done.said, **({"warn": done.warn} if done.warn else {})
        )

    return await run_in_threadpool(work)


# A check-in refused, as counter staff need to hear it (the engine's messages speak to residents:
# "check your phone number or birth date" means nothing at the counter).
CHECK_IN_REFUSALS = {
    "booking_not_found": "予約番号 {code} の予約はありません。番号の読み違いがないか、"
    "QRコードを読み直すか、確認書の番号をもう一度入力してください。",
    "not_today_here": "予約番号 {code} は、本日のこの会場の予約ではありません。"
    "予約検索で日時と会場を確かめ、別の日・会場であればご案内してください。",
    "invalid_status_change": "予約番号 {code} は受付できる状態ではありません（現在：{current}）。"
    "予約検索で状態を確かめてください。",
}


@router.post("/counter/check-in")
async def counter_check_in(request: Request) -> Response:
    venue = str((await request.form()).get("venue", ""))

    def act(db: DbSession, code: str) -> Done:
        digits = "".join(ch for ch in code if ch.isascii() and ch.isdigit())[:20]
        if not digits:
            raise CounterRefused("予約番号（8桁）を入力するか、QRコードを読み取ってください。")
        try:
            found = booking.check_in(db, code=code, venue_id=venue)
        except BookingError as refused:
            words = CHECK_IN_REFUSALS.get(refused.code)
            if words is None:
                raise
            raise CounterRefused(words.format(code=digits, **refused.params)) from refused
        said = f"予約番号 {found.code}（{found.party_size}名）を受け付けました。"
        return Done("counter.check_in", "booking", found.id, said, _not_ready(db, found.id))

    return await _counter_action(request, act)


def _not_ready(db: DbSession, booking_id: int) -> str:
    """The warning at check-in (MADOGUCHI_READY_CARDS=warn) for members whose card is not on
    the list of cards that have arrived at this venue."""
    missing = booking.booking_not_ready(db, booking_id=booking_id)
    if not missing:
        return ""
    who = "、".join(f"{i + 1}人目" for i in missing)
    return (
        f"ご注意：{who}の方の交付通知書番号は、この会場に届いたカードの一覧にありません。"
        "カードの保管を確かめてから手続きしてください。見つからないときは、届いていない"
        "ことをお伝えし、コールセンターでの予約の取り直しをご案内してください。"
    )


@router.post("/counter/bookings/{booking_id}/done")
async def counter_done(request: Request, booking_id: RowId) -> Response:
    def act(db: DbSession, _code: str) -> Done:
        finished, picked_up = booking.complete_pickup(db, booking_id=booking_id)
        if picked_up:  # the cards handed over leave the list, with a record of it
            staff.record_erasure(
                db,
                job="card picked up",
                scope="pickup",
                cutoff=None,
                counts={"交付済みのカード ready cards picked up": picked_up},
            )
        said = f"予約番号 {finished.code} の手続きを完了にしました。"
        return Done("counter.completed", "booking", booking_id, said)

    return await _counter_action(request, act)


@router.post("/counter/bookings/{booking_id}/call")
async def counter_call(request: Request, booking_id: RowId) -> Response:
    """Call a checked-in resident to the counter (呼出): their wait ends here."""

    desk = str((await request.form()).get("desk", ""))

    def act(db: DbSession, _code: str) -> Done:
        called = booking.call_to_counter(db, booking_id=booking_id, desk=desk or None)
        return Done(
            "counter.call", "booking", booking_id, f"予約番号 {called.code} の方をお呼びしました。"
        )

    return await _counter_action(request, act)


@router.post("/counter/walk-ins/{number}/call")
async def counter_call_walk_in(request: Request, number: RowId) -> Response:
    """Call today's queue number to the counter."""
    form = await request.form()
    venue, desk = str(form.get("venue", "")), str(form.get("desk", ""))

    def act(db: DbSession, _code: str) -> Done:
        booking.call_walk_in(db, venue_id=venue, number=number, desk=desk or None)
        return Done("counter.call_walk_in", "walk_in", number, f"{number}番の方をお呼びしました。")

    return await _counter_action(request, act)


@router.post("/counter/walk-ins/{number}/done")
async def counter_walk_in_done(request: Request, number: RowId) -> Response:
    """Today's queue number served (完了), as a booking's 完了."""
    venue = str((await request.form()).get("venue", ""))

    def act(db: DbSession, _code: str) -> Done:
        booking.complete_walk_in(db, venue_id=venue, number=number)
        said = f"{number}番の方の手続きを完了にしました。"
        return Done("counter.walk_in_completed", "walk_in", number, said)

    return await _counter_action(request, act)


@router.post("/counter/walk-in")
async def counter_walk_in(request: Request) -> Response:
    form = await request.form()
    venue, service = str(form.get("venue", "")), str(form.get("service", ""))
    party_text = str(form.get("party", "1"))
    phone, language = str(form.get("phone", "")).strip(), str(form.get("language", "ja"))
    desk = str(form.get("desk", ""))

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with unit_of_work(request) as db:
            seat = signed_in(request, db, *COUNTER)
            if not csrf_ok(seat, {"csrf": str(form.get("csrf", ""))}):
                return render(request, "expired.html", seat, status_code=403)
            try:
                party = whole_number(party_text, 100)
                made = booking.walk_in(db, venue_id=venue, service_id=service, party=party)
                booking.set_ticket_language(db, token=str(made.token), language=language)
                if phone:  # for the alerts: a few ahead, called (a mobile's only)
                    booking.leave_ticket_phone(db, token=str(made.token), phone=phone)
            except (BookingError, ValueError) as refused:
                db.rollback()
                message = (
                    refused.message("ja") if isinstance(refused, BookingError) else "人数は数字で。"
                )
                return _to_counter(venue, desk, error=message)
            audit_event(
                db, seat, request, "counter.walk_in", "walk_in", made.number, f"slot {made.slot_id}"
            )
            db.commit()
        said = f"当日受付の番号は {made.number} 番です。"
        return _to_counter(venue, desk, done=said, ticket=str(made.number))

    return await run_in_threadpool(work)


@router.get("/counter/walk-ins/{number}/ticket", response_class=HTMLResponse)
def counter_ticket(
    request: Request, number: RowId, venue: str, width: Annotated[int, Interval(ge=58, le=80)] = 80
) -> Response:
    """Today's ticket (整理券) of a queue number, to print on the receipt printer (58 or 80 mm)
    and show on screen: the number, venue, service, time issued and the QR code of the
    resident's status page. Nothing personal on it."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, *COUNTER)
        venues, services = catalogue(db)
        if venue not in venues:
            raise NotAllowed
        try:
            found = booking.ticket_of_number(db, venue_id=venue, number=number)
        except BookingError as refused:
            db.rollback()
            return _to_counter(venue, error=refused.message("ja"))
        queue = booking.venue_queue(db, venue_id=venue)
        audit_event(db, seat, request, "counter.ticket", "walk_in", number)
        db.commit()
    base = request.app.state.settings.public_base_url.rstrip("/")
    link = f"{base}/queue/{found.token}"
    qr = segno.make_qr(link, error="m").svg_inline(omitsize=True, title=f"{found.number}")
    ahead = queue.ahead_of_walk_in(found.walk_in_id)
    return render(
        request,
        "ticket.html",
        seat,
        ticket=found,
        venue=venues[venue],
        service=services[found.service_id],
        link=link,
        qr=qr,
        ahead=ahead,
        wait=None if ahead is None else queue.wait_for(ahead),
        width=58 if width == 58 else 80,
    )


# --- the signed offline roster ----------------------------------------------------------------


@router.get("/counter/roster.{kind}")
def counter_roster(request: Request, kind: str, venue: str, day: str = "") -> Response:
    """A day's roster to take offline: CSV (with a column for check-ins) or .ics. Signed."""
    if kind not in ("csv", "ics"):
        raise NotAllowed
    with unit_of_work(request) as db:
        seat = signed_in(request, db, *COUNTER)
        chosen = day_or_today(day, db)
        venues, _services = catalogue(db)
        if venue not in venues:
            raise NotAllowed
        if kind == "csv":
            body: bytes = roster.roster_csv(db, venue_id=venue, day=chosen).encode("utf-8-sig")
            media = "text/csv; charset=utf-8"
        else:
            body = roster.roster_ics(db, venue_id=venue, day=chosen)
            media = "text/calendar; charset=utf-8"
        audit_event(db, seat, request, "counter.roster", "venue", venue, f"{kind} {chosen}")
        db.commit()
    name = f"roster-{venue}-{chosen.isoformat()}.{kind}"
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/counter/roster")
async def counter_roster_upload(request: Request) -> Response:
    """The roster back from an offline day, with its check-ins marked: applied once."""
    form = await request.form()
    venue = str(form.get("venue", ""))
    upload = form.get("file")
    data = await upload.read() if isinstance(upload, UploadFile) else b""

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with unit_of_work(request) as db:
            seat = signed_in(request, db, *COUNTER)
            if not csrf_ok(seat, {"csrf": str(form.get("csrf", ""))}):
                return render(request, "expired.html", seat, status_code=403)
            try:
                report = roster.upload_check_ins(db, text=data.decode("utf-8-sig"))
            except (roster.RosterRefused, UnicodeDecodeError) as refused:
                db.rollback()
                return _to_counter(venue, error=f"名簿を受け付けられません：{refused}")
            detail = f"applied {len(report.applied)}, unchanged {len(report.unchanged)}"
            audit_event(db, seat, request, "counter.roster_upload", "venue", venue, detail)
            db.commit()
        said = f"受付済みに {len(report.applied)}件、変更なし {len(report.unchanged)}件"
        if report.refused:
            said += f"、受け付けられず {len(report.refused)}件（{'; '.join(report.refused)}）"
        return _to_counter(venue, done=said + "。")

    return await run_in_threadpool(work)
