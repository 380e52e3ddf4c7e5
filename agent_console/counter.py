"""Counter managers' screens: a venue's day, slot by slot; capacity changes and closures that
show first whom they strand, then keep those bookings on purpose or move them to the nearest
free time (each resident is told through the reminder pipeline). Every action is audited."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session as DbSession
from starlette.datastructures import UploadFile

from agent_console.day_filter import NOON, read_filter
from agent_console.service import Seat
from agent_console.web import (
    NotAllowed,
    audit_event,
    catalogue,
    csrf_ok,
    local_time,
    refuse_my_numbers,
    render,
    signed_in,
)
from booking import schedule
from booking import service as booking
from booking.errors import BookingError
from booking.personal import mask_phone
from booking.schemas import RowId
from booking.web import unit_of_work, whole_number
from calendar_sync import roster
from calendar_sync import service as calendar
from calendar_sync.fetch import CalendarFetchFailed, fetch_calendar

router = APIRouter(
    prefix="/console/manage", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)
MANAGERS = ("counter_manager", "supervisor")
ACTIONS = {
    "capacity": "定員を変更",
    "close": "受付を停止",
    "reopen": "受付を再開",
    "quota": "確保席を設定",
}


def _day(value: str, db: DbSession) -> date:
    today: date = db.info["booking"].today()
    try:
        return date.fromisoformat(value) if value else today
    except ValueError:
        return today


def _unreadable(day: str) -> bool:
    try:
        date.fromisoformat(day or "2000-01-01")
    except ValueError:
        return True
    return False


@router.get("", response_class=HTMLResponse)
def day_view(
    request: Request,
    venue: str = "main",
    day: str = "",
    done: str = "",
    start: Annotated[str, Query(alias="from")] = "",
    end: Annotated[str, Query(alias="to")] = "",
) -> Response:
    """A venue's day: every slot with its capacity, seats booked and held, open or closed;
    narrowed to some services and a time range if the manager asks (kept in the address)."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, *MANAGERS)
        chosen = _day(day, db)
        venues, services = catalogue(db)
        if venue not in venues:
            raise NotAllowed
        slots = booking.slots_of_day(db, venue_id=venue, day=chosen)
        now = db.info["booking"].now()
    wanted = read_filter(
        services=request.query_params.getlist("service"),
        start=start,
        end=end,
        known={k: s.name_ja for k, s in services.items()},
    )
    notes = list(wanted.notes)
    if _unreadable(day):
        notes.insert(0, f"日付「{day[:20]}」を読めないため、{chosen.isoformat()}を表示しています。")
    where = [("venue", venue), ("day", chosen.isoformat())]
    return render(
        request,
        "manage_day.html",
        seat,
        venue=venue,
        day=chosen,
        slots=slots,
        shown=[s for s in slots if wanted.shows(s)],
        per_service=Counter(s.service_id for s in slots),
        wanted=wanted,
        notes=notes,
        shortcuts={
            name: "/console/manage?" + urlencode(where + wanted.with_times(a, b).query())
            for name, a, b in (("morning", None, NOON), ("afternoon", NOON, None))
        }
        | {"all": "/console/manage?" + urlencode(where)},
        now=now,
        venues=venues,
        services=services,
        done=done,
    )


@dataclass(frozen=True)
class Change:
    """The day view's form: which slots, what to do, and the manager's choice if asked."""

    csrf: str
    slot_ids: list[int]
    action: str
    capacity: str
    reason: str
    venue: str
    day: str
    choice: str
    kept_phone: str
    kept_walk_in: str
    release: str
    release_hours: str
    view: list[tuple[str, str]]  # the day view's filter, to come back to the same rows


# The day view's filter fields, carried through the change form and back.
VIEW_FIELDS = ("service", "from", "to")


async def _change(request: Request) -> Change:
    form = await request.form()

    def field(name: str) -> str:
        return str(form.get(name, ""))

    return Change(
        csrf=field("csrf"),
        slot_ids=[int(str(v)) for v in form.getlist("slot") if _count(str(v), 10**9) is not None],
        action=field("change"),
        capacity=field("capacity"),
        reason=field("reason"),
        venue=field("venue"),
        day=field("day"),
        choice=field("choice"),
        kept_phone=field("kept_phone"),
        kept_walk_in=field("kept_walk_in"),
        release=field("release"),
        release_hours=field("release_hours"),
        view=[(k, str(v)[:40]) for k in VIEW_FIELDS for v in form.getlist(k) if str(v)],
    )


# What the forms accept: the day view's seats, and how long before a slot kept seats go.
MAX_SEATS = 999
MAX_RELEASE_HOURS = 720


def _count(text: str, most: int) -> int | None:
    """A whole number from 0 to ``most`` typed in a form, or None."""
    try:
        return whole_number(text, most)
    except ValueError:
        return None


def _back(change: Change, said: str) -> Response:
    query = urlencode([("venue", change.venue), ("day", change.day), *change.view, ("done", said)])
    return RedirectResponse(f"/console/manage?{query}", 303)


@router.post("/change", response_class=HTMLResponse)
async def change(request: Request) -> Response:
    """Apply a change to the chosen slots. When it would strand bookings and the manager has
    not chosen yet, show exactly whom, and ask: keep them, or move them."""
    c = await _change(request)
    slot_ids, action, capacity_text = c.slot_ids, c.action, c.capacity

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with unit_of_work(request) as db:
            seat = signed_in(request, db, *MANAGERS)
            if not csrf_ok(seat, {"csrf": c.csrf}):
                return render(request, "expired.html", seat, status_code=403)
            if action not in ACTIONS or not slot_ids:
                return _back(c, "時間枠を選んでください。")
            capacity = _count(capacity_text, MAX_SEATS)
            if action == "capacity" and capacity is None:
                return _back(c, f"定員は0から{MAX_SEATS}までの数字で入れてください。")
            if action == "reopen":
                booking.reopen_slots(db, slot_ids=slot_ids)
                audit_event(db, seat, request, "manage.reopen", "slots", _ids(slot_ids))
                db.commit()
                return _back(c, "受付を再開しました。")
            if action == "quota":
                return _set_quota(request, db, seat, c)
            over = booking.stranded(
                db, slot_ids=slot_ids, capacity=capacity if action == "capacity" else None
            )
            if over and c.choice not in ("keep", "move"):
                db.rollback()
                venues, services = catalogue(db)
                return render(
                    request,
                    "manage_stranded.html",
                    seat,
                    over=over,
                    slot_ids=slot_ids,
                    action=action,
                    capacity=capacity_text,
                    reason=c.reason,
                    venue=c.venue,
                    day=c.day,
                    venues=venues,
                    services=services,
                    mask=mask_phone,
                    label=ACTIONS[action],
                    view=c.view,
                    view_query=urlencode([("venue", c.venue), ("day", c.day), *c.view]),
                )
            moved = _move_or_keep(db, over, slot_ids) if c.choice == "move" else []
            # What stays over is what the engine finds under the slots' lock: the bookings kept
            # on purpose, those with no free time to move to, and any made since the preview.
            if action == "capacity":
                kept = booking.set_capacity(
                    db, slot_ids=slot_ids, capacity=int(capacity or 0), keep_stranded=True
                )
            else:
                kept = booking.close_slots(
                    db, slot_ids=slot_ids, reason=c.reason or "臨時休止", keep_stranded=True
                )
            detail = (
                f"slots {_ids(slot_ids)}; {action} {capacity_text or c.reason}; "
                f"moved {_ids([b.id for b, _ in moved])}; kept {_ids([b.id for b in kept])}"
            )
            audit_event(db, seat, request, f"manage.{action}", "slots", _ids(slot_ids), detail)
            venue_names = {v.id: v.name_ja for v in booking.list_venues(db)}
            db.commit()
        said = f"{ACTIONS[action]}しました。"
        if moved:
            said += f"{len(moved)}件の予約を近い時間へ移し、お知らせを送ります。"
            # Where each went, so the counter can answer a resident who calls about it.
            went = [
                f"{b.code}→{local_time(t.starts_at)[5:]} {venue_names.get(t.venue_id, '')}"
                for b, t in moved[:MOVES_LISTED]
            ]
            more = f"ほか{len(moved) - MOVES_LISTED}件" if len(moved) > MOVES_LISTED else ""
            said += "移した先：" + "、".join(went) + (f"、{more}" if more else "") + "。"
        if kept:
            said += f"{len(kept)}件の予約はそのまま残しました。"
        return _back(c, said)

    return await run_in_threadpool(work)


def _set_quota(request: Request, db: DbSession, seat: Seat, c: Change) -> Response:
    """Seats kept for the phone line and for walk-ins, released at a set time before each
    slot or when its session opens on the day. Nobody is stranded: a quota limits only what
    is claimed from now on."""
    phone = _count(c.kept_phone or "0", MAX_SEATS)
    walk_in = _count(c.kept_walk_in or "0", MAX_SEATS)
    hours = _count(c.release_hours if c.release == "hours" else "0", MAX_RELEASE_HOURS)
    if phone is None or walk_in is None or hours is None:
        return _back(
            c,
            f"確保する席数は0から{MAX_SEATS}、解放の時間は0から{MAX_RELEASE_HOURS}までの"
            "数字で入れてください。",
        )
    release_hours = hours if c.release == "hours" else None
    try:
        booking.set_quota(
            db,
            slot_ids=c.slot_ids,
            phone=phone,
            walk_in=walk_in,
            release_hours_before=release_hours,
        )
    except BookingError as refused:
        db.rollback()
        return _back(c, refused.message("ja"))
    when = "当日の開庁時" if release_hours is None else f"{release_hours}時間前"
    detail = f"slots {_ids(c.slot_ids)}; phone {phone}, walk-in {walk_in}, released {when}"
    audit_event(db, seat, request, "manage.quota", "slots", _ids(c.slot_ids), detail)
    db.commit()
    if phone == walk_in == 0:
        return _back(c, "確保席をなくしました。すべての受付方法で予約できます。")
    return _back(c, f"電話用{phone}席・来庁用{walk_in}席を確保しました（{when}に解放）。")


MOVES_LISTED = 20  # a change that moves more lists the first ones, and how many more


def _move_or_keep(
    db: DbSession, over: list[booking.BookingView], avoid: list[int]
) -> list[tuple[booking.BookingView, booking.SlotView]]:
    """Each stranded booking to the nearest free time (same venue first); those with none
    near stay where they are (the change then keeps them on purpose)."""
    moved: list[tuple[booking.BookingView, booking.SlotView]] = []
    for stranded in over:
        target = booking.nearest_free_slot(db, booking_id=stranded.id, avoid=avoid)
        if target is None:
            continue
        try:
            with db.begin_nested():
                booking.relocate(db, booking_id=stranded.id, slot_id=target.id)
        except BookingError:  # taken in the meantime: keep rather than fail the whole change
            continue
        moved.append((stranded, target))
    return moved


def _ids(ids: list[int]) -> str:
    return ",".join(str(i) for i in ids)


# --- the ward's calendar: feeds and import ---------------------------------------------------


@router.get("/calendar", response_class=HTMLResponse)
def calendar_page(request: Request) -> Response:
    """Each venue's calendar feeds (free times; bookings behind the venue's secret), and the
    import of the ward's published holiday sessions and closures."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, *MANAGERS)
        venues, _services = catalogue(db)
        tokens = {v: calendar.feed_token(db, v) for v in venues}
        audit_event(db, seat, request, "manage.calendar.view", "venues", "feeds")
        db.commit()
    base = request.app.state.settings.public_base_url.rstrip("/")
    return render(request, "manage_calendar.html", seat, venues=venues, tokens=tokens, base=base)


@router.post("/calendar/import", response_class=HTMLResponse)
async def calendar_import(request: Request) -> Response:
    """Import an uploaded .ics: what was created, already there, changed since, or refused.
    Who asks is checked first: nothing is read or fetched for a stranger."""
    form = await request.form()

    def who() -> Seat | Response:
        with unit_of_work(request) as db:
            seat = signed_in(request, db, *MANAGERS)
            if not csrf_ok(seat, {"csrf": str(form.get("csrf", ""))}):
                return render(request, "expired.html", seat, status_code=403)
            return seat

    seat = await run_in_threadpool(who)
    if isinstance(seat, Response):
        return seat
    upload = form.get("file")
    data = await upload.read() if isinstance(upload, UploadFile) else b""
    address = str(form.get("url", "")).strip()
    if not data and address:
        try:
            data = await run_in_threadpool(fetch_calendar, address)
        except CalendarFetchFailed as failed:
            error = f"{address} を読めませんでした：{failed}"
            return render(request, "manage_import.html", seat, report=None, error=error)

    def work() -> Response:
        # The import and its audit event: on a worker thread, never the event loop.
        with unit_of_work(request) as db:
            try:
                report = calendar.import_calendar(db, ics=data)
            except BookingError:
                db.rollback()
                report = None
            if report is not None:
                detail = (
                    f"created {len(report.created)}, unchanged {len(report.unchanged)}, "
                    f"changed {len(report.changed)}, refused {len(report.refused)}"
                )
                audit_event(
                    db, seat, request, "manage.calendar.import", "calendar", "upload", detail
                )
            db.commit()
        return render(request, "manage_import.html", seat, report=report)

    return await run_in_threadpool(work)


# --- the counter's day list (交付窓口受付) ----------------------------------------------------

COUNTER = ("counter_manager", "supervisor")


@router.get("/counter", response_class=HTMLResponse)
def counter_day(request: Request, venue: str = "main", done: str = "", error: str = "") -> Response:
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
        figures=figures[0] if figures else booking.CounterDay(venue, today),
    )


def _to_counter(venue: str, **said: str) -> Response:
    return RedirectResponse("/console/manage/counter?" + urlencode({"venue": venue, **said}), 303)


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


async def _counter_action(request: Request, act: Callable[[DbSession, str], Done]) -> Response:
    """One button on the counter's list: checked, done in one transaction with its audit
    event, and back to the list saying what happened (or why not)."""
    form = await request.form()
    venue = str(form.get("venue", ""))

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
                return _to_counter(venue, error=refused.message("ja"))
            except CounterRefused as refused:
                db.rollback()
                return _to_counter(venue, error=str(refused))
            audit_event(db, seat, request, done.action, done.kind, done.subject)
            db.commit()
        return _to_counter(venue, done=done.said)

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
        return Done("counter.check_in", "booking", found.id, said)

    return await _counter_action(request, act)


@router.post("/counter/bookings/{booking_id}/done")
async def counter_done(request: Request, booking_id: RowId) -> Response:
    def act(db: DbSession, _code: str) -> Done:
        finished = booking.set_status(db, booking_id=booking_id, status="completed")
        said = f"予約番号 {finished.code} の手続きを完了にしました。"
        return Done("counter.completed", "booking", booking_id, said)

    return await _counter_action(request, act)


@router.post("/counter/bookings/{booking_id}/call")
async def counter_call(request: Request, booking_id: RowId) -> Response:
    """Call a checked-in resident to the counter (呼出): their wait ends here."""

    def act(db: DbSession, _code: str) -> Done:
        called = booking.call_to_counter(db, booking_id=booking_id)
        return Done(
            "counter.call", "booking", booking_id, f"予約番号 {called.code} の方をお呼びしました。"
        )

    return await _counter_action(request, act)


@router.post("/counter/walk-ins/{number}/call")
async def counter_call_walk_in(request: Request, number: RowId) -> Response:
    """Call today's queue number to the counter."""
    venue = str((await request.form()).get("venue", ""))

    def act(db: DbSession, _code: str) -> Done:
        booking.call_walk_in(db, venue_id=venue, number=number)
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

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with unit_of_work(request) as db:
            seat = signed_in(request, db, *COUNTER)
            if not csrf_ok(seat, {"csrf": str(form.get("csrf", ""))}):
                return render(request, "expired.html", seat, status_code=403)
            try:
                party = whole_number(party_text, 100)
                made = booking.walk_in(db, venue_id=venue, service_id=service, party=party)
            except (BookingError, ValueError) as refused:
                db.rollback()
                message = (
                    refused.message("ja") if isinstance(refused, BookingError) else "人数は数字で。"
                )
                return _to_counter(venue, error=message)
            audit_event(
                db, seat, request, "counter.walk_in", "walk_in", made.number, f"slot {made.slot_id}"
            )
            db.commit()
        return _to_counter(venue, done=f"当日受付の番号は {made.number} 番です。")

    return await run_in_threadpool(work)


# --- the signed offline roster ----------------------------------------------------------------


@router.get("/counter/roster.{kind}")
def counter_roster(request: Request, kind: str, venue: str, day: str = "") -> Response:
    """A day's roster to take offline: CSV (with a column for check-ins) or .ics. Signed."""
    if kind not in ("csv", "ics"):
        raise NotAllowed
    with unit_of_work(request) as db:
        seat = signed_in(request, db, *COUNTER)
        chosen = _day(day, db)
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


# --- extra sessions and pop-up venues ----------------------------------------------------------


@router.get("/sessions", response_class=HTMLResponse)
def sessions_page(request: Request, done: str = "", error: str = "") -> Response:
    """Open a holiday or evening session, or a pop-up venue, for a range of days."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, *MANAGERS)
        venues, services = catalogue(db)
        today = db.info["booking"].today()
    return render(
        request,
        "manage_sessions.html",
        seat,
        venues=venues,
        services=services,
        today=today,
        done=done,
        error=error,
    )


SESSION_KINDS = ("holiday", "extra", "popup")


def _sessions_back(**said: str) -> Response:
    return RedirectResponse("/console/manage/sessions?" + urlencode(said), 303)


@router.post("/sessions")
async def open_sessions(request: Request) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with unit_of_work(request) as db:
            seat = signed_in(request, db, *MANAGERS)
            if not csrf_ok(seat, form):
                return render(request, "expired.html", seat, status_code=403)
            try:
                venue = form.get("venue", "")
                if venue == "_new":
                    venue = form.get("new_id", "").strip()
                    schedule.add_popup_venue(
                        db,
                        venue_id=venue,
                        name_ja=form.get("new_name_ja", ""),
                        name_en=form.get("new_name_en", ""),
                        address_ja=form.get("new_address", ""),
                    )
                result = schedule.open_sessions_for_range(
                    db,
                    venue_id=venue,
                    service_id=form.get("service", ""),
                    first=date.fromisoformat(form.get("first", "")),
                    last=date.fromisoformat(form.get("last", "") or form.get("first", "")),
                    opens=time.fromisoformat(form.get("opens", "")),
                    closes=time.fromisoformat(form.get("closes", "")),
                    slot_minutes=whole_number(form.get("slot_minutes") or 15, 24 * 60),
                    seats=whole_number(form.get("seats") or 0, 10_000),
                    kind=form.get("kind", "extra")
                    if form.get("kind") in ("holiday", "extra", "popup")
                    else "extra",
                )
            except BookingError as refused:
                db.rollback()
                return _sessions_back(error=refused.message("ja"))
            except ValueError:
                db.rollback()
                return _sessions_back(
                    error="日付・時刻・人数の形をご確認ください（例：2027-01-09、09:00）。"
                )
            opened, refused_days = len(result.opened), len(result.refused)
            detail = f"{venue} {form.get('service')}: {opened} days opened, {refused_days} refused"
            audit_event(db, seat, request, "manage.sessions.open", "venue", venue, detail)
            db.commit()
        said = f"{len(result.opened)}日分の受付を開きました。"
        if result.refused:
            said += "開けなかった日：" + "、".join(
                f"{d.isoformat()}（{why}）" for d, why in result.refused
            )
        return _sessions_back(done=said)

    return await run_in_threadpool(work)
