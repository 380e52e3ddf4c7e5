"""The agent console under /console/: sign-in, the queue and callbacks, bookings found for a
caller, staff accounts (supervisors) and the audit log (auditors). Thin routes over
``agent_console.service``, ``booking.service`` and ``ivr.service``.

Every page that shows a resident's data writes an audit event in the same transaction as the
read, so a page that could not be logged is not shown.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Session as DbSession
from starlette.routing import Match

from agent_console import report
from agent_console import service as staff
from agent_console.models import ROLES
from agent_console.my_number import KeptField, kept_fields, way_back
from agent_console.service import Seat, StaffError
from booking import service as booking
from booking.context import TOKYO
from booking.errors import BookingError
from booking.personal import (
    LANGUAGE_NAMES,
    LANGUAGES,
    contains_my_number,
    display_phone,
    mask_phone,
    parse_phone,
)
from booking.schemas import RowId
from booking.web import Problem, row_id, row_id_or_none, whole_number
from ivr import service as calls
from ivr.telephony import PhoneApi, TwilioFailure
from reminders import service as reminders


class MyNumberInForm(Exception):
    """A form field held an individual number (My Number): refused before anything is done.
    ``kept`` is the form to give back, the number taken out."""

    def __init__(self, field: str, kept: list[KeptField] | None = None) -> None:
        super().__init__(field)
        self.field = field
        self.kept = kept or []


class UnreadableCharacters(Exception):
    """A form field held a NUL or another control character: no text of a person's holds one,
    and PostgreSQL refuses a NUL outright."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


# Fields that are not free text (or must not be read): never scanned.
_UNSCANNED = frozenset({"csrf", "password"})
# Control characters but tab, line feed and carriage return (a note may have several lines).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


async def refuse_my_numbers(request: Request) -> None:
    """Every console form, whatever it is for (inquiry notes, FAQ answers, closure reasons,
    names...): a value holding a 12-digit number that passes the My Number check is refused,
    so no free-text field can store one. Uploaded files are checked where they are read."""
    if request.method != "POST":
        return
    kind = request.headers.get("content-type", "")
    if not kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return
    form = await request.form()  # read once; the route reads the same parsed form
    for name, value in form.multi_items():
        if not isinstance(value, str):
            continue
        if _CONTROL.search(value) or _CONTROL.search(name):
            raise UnreadableCharacters(name[:40])
        if name not in _UNSCANNED and contains_my_number(value):
            raise MyNumberInForm(name, kept_fields(form.multi_items(), _UNSCANNED))


router = APIRouter(
    prefix="/console", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)
log = logging.getLogger(__name__)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# Numbers as Japanese readers write them (090-1111-2222), and the IVR's path in words.
templates.env.filters["phone"] = display_phone
templates.env.globals["readable_path"] = calls.readable_path
SESSION_COOKIE = "console"
LOGIN_CSRF_COOKIE = "console_login"
ROLE_NAMES = {
    "agent": "オペレーター",
    "counter_manager": "窓口管理者",
    "supervisor": "スーパーバイザー",
    "auditor": "監査担当",
}


class SignInNeeded(Exception):
    """No live session: to the login page."""


class NotAllowed(Exception):
    """Signed in, but the role may not open this page."""


class StepNeeded(Exception):
    """Signed in, but something must be done first (a temporary password replaced, the
    second factor given or set up): to that page, whatever was asked for."""

    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


# Where each step is done, and where each role starts its day.
STEP_PAGES = {
    "code": "/console/login/code",
    "password": "/console/account/password",
    "enrol": "/console/account/second-factor",
}
HOMES = {
    "agent": "/console/",
    "counter_manager": "/console/manage",
    "supervisor": "/console/",
    "auditor": "/console/audit",
}
ANY_STEP = frozenset(STEP_PAGES)


def second_factor_roles(request: Request) -> frozenset[str]:
    """The roles that sign in with a second factor here (MADOGUCHI_SECOND_FACTOR_ROLES)."""
    roles: frozenset[str] = request.app.state.settings.second_factor_role_set
    return roles


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@contextmanager
def _db(request: Request) -> Iterator[DbSession]:
    with request.app.state.sessions() as db:
        yield db


def _seat(
    request: Request, db: DbSession, *roles: str, allow: frozenset[str] = frozenset()
) -> Seat:
    """The signed-in staff member, refreshed on every request (a deactivated account is out at
    once); StepNeeded while a step other than those in ``allow`` is pending; NotAllowed if
    their role is not among ``roles``."""
    seat = staff.session_for(
        db, request.cookies.get(SESSION_COOKIE), second_factor_roles=second_factor_roles(request)
    )
    db.commit()  # the touch (or the end of an idle or deactivated session) is kept
    if seat is None:
        raise SignInNeeded
    if seat.step and seat.step not in allow:
        raise StepNeeded(seat.step)
    if roles and not seat.staff.can(*roles):
        _log(db, seat, request, "page.refused", "page", request.url.path)
        db.commit()
        raise NotAllowed
    return seat


def _log(
    db: DbSession,
    seat: Seat,
    request: Request,
    action: str,
    subject_kind: str,
    subject_id: str | int,
    detail: str = "",
) -> None:
    """An audit event by the signed-in staff member, in this request's transaction."""
    staff.audit(
        db,
        staff=seat.staff,
        action=action,
        subject_kind=subject_kind,
        subject_id=subject_id,
        detail=detail,
        client=_client(request),
    )


def _csrf_ok(seat: Seat, form: dict[str, str]) -> bool:
    # Bytes: compare_digest refuses a str that is not ASCII, and a form may hold anything.
    return secrets.compare_digest(seat.csrf.encode(), form.get("csrf", "").encode())


def _render(
    request: Request, template: str, seat: Seat | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        template,
        {"seat": seat, "role_names": ROLE_NAMES, "local": _local, **context},
        status_code=status_code,
    )
    # Never cached, never framed: config.security.SecurityHeaders says so for every page.
    return response


def problem_page(request: Request, problem: Problem) -> HTMLResponse:
    """A request that went wrong, as a console page (config.errors chooses the renderer). No
    session is looked up: the database may be what failed."""
    return _render(
        request,
        "problem.html",
        None,
        status_code=problem.status,
        message=BookingError(problem.code).message("ja"),
        fields=problem.fields,
        ours=problem.ours,
        request_id=problem.request_id,
    )


def _local(at: datetime | None) -> str:
    return at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M") if at else ""


# --- signing in -----------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, error: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = _render(request, "login.html", None, csrf=token, error=error)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, secure=_secure(request), samesite="strict"
    )
    return response


def next_page(person: staff.Staff, step: str) -> str:
    """After signing in (or finishing a step): the pending step's page, else the role's home."""
    return STEP_PAGES.get(step) or HOMES.get(person.role, "/console/")


def _secure(request: Request) -> bool:
    """Secure cookies wherever the console is served over HTTPS (always, behind the proxy)."""
    base: str = request.app.state.settings.public_base_url
    return base.startswith("https://")


@router.post("/login")
async def login(request: Request) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected.encode(), form.get("csrf", "").encode()):
        return login_form(request, "画面の有効期限が切れました。もう一度ログインしてください。")
    login_id = form.get("login_id", "")

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with _db(request) as db:
            try:
                signed = staff.sign_in(
                    db,
                    login_id=login_id,
                    password=form.get("password", ""),
                    second_factor_roles=second_factor_roles(request),
                )
            except StaffError as refused:
                db.commit()  # the failed attempt counts towards the lock-out
                staff.audit(
                    db,
                    staff=None,
                    login_id=login_id[:64] or "-",
                    action="staff.login_failed",
                    subject_kind="staff",
                    subject_id=login_id[:64],
                    client=_client(request),
                )
                db.commit()
                response = login_form(request, str(refused))
                response.status_code = 401
                return response
            staff.audit(
                db,
                staff=signed.staff,
                action="staff.login",
                subject_kind="staff",
                subject_id=signed.staff.id,
                client=_client(request),
            )
            db.commit()
        response = RedirectResponse(next_page(signed.staff, signed.step), status_code=303)
        response.set_cookie(
            SESSION_COOKIE, signed.token, httponly=True, secure=_secure(request), samesite="strict"
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE)
        return response

    return await run_in_threadpool(work)


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with _db(request) as db:
            seat = _seat(request, db, allow=ANY_STEP)
            if _csrf_ok(seat, form):
                staff.sign_out(db, session_id=seat.session_id)
                _log(db, seat, request, "staff.logout", "staff", seat.staff.id)
                db.commit()
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    return await run_in_threadpool(work)


# --- the console ----------------------------------------------------------------------------


def _queue_context(db: DbSession, seat: Seat) -> dict[str, Any]:
    now = db.info["booking"].now()
    return {
        "waiting": calls.waiting_calls(db),
        "callbacks": calls.open_callbacks(db),
        "on_duty": staff.on_duty(db, busy_ids=calls.agents_on_calls(db)),
        "waited": lambda at: _minutes(now - at),
        "csrf": seat.csrf,
        "can_answer": seat.staff.can("agent", "supervisor"),
    }


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    """The queue: callers waiting for a person, and callback requests; kept up to date by the
    stream below, without reloading."""
    with _db(request) as db:
        seat = _seat(request, db)
        context = _queue_context(db, seat)
        mine = calls.my_open_call(db, staff_id=seat.staff.id)
    return _render(
        request,
        "home.html",
        seat,
        taken=request.query_params.get("taken"),
        phone_error=None,
        mine=mine,
        **context,
    )


QUEUE_TICK_SECONDS = 2.0


@router.get("/queue/stream")
async def queue_stream(request: Request) -> Response:
    """Server-sent events: the queue's HTML whenever it changes (and every tick the waiting
    times move on). The session is checked at every tick, so a deactivated or idle agent's
    screen stops getting residents' data at once and goes to the login page."""

    def signed_in() -> None:
        with _db(request) as db:
            _seat(request, db)

    await run_in_threadpool(signed_in)
    token = request.cookies.get(SESSION_COOKIE)
    tick: float = getattr(request.app.state, "console_tick_seconds", QUEUE_TICK_SECONDS)

    def snapshot() -> str | None:
        with _db(request) as db:
            seat = staff.session_for(db, token)
            db.commit()
            if seat is None or seat.step:
                return None
            mine = calls.my_open_call(db, staff_id=seat.staff.id)
            if mine is not None:  # a call was put through to this agent: pop its screen
                return f"pop:/console/calls/{mine}"
            fragment = templates.get_template("_queue.html").render(
                local=_local, **_queue_context(db, seat)
            )
            return fragment

    async def events() -> AsyncIterator[str]:
        last = ""
        while not await request.is_disconnected():
            fragment = await run_in_threadpool(snapshot)
            if fragment is None:
                yield "event: signed-out\ndata: /console/login\n\n"
                return
            if fragment.startswith("pop:"):
                yield f"event: pop\ndata: {fragment[4:]}\n\n"
                return
            if fragment != last:
                last = fragment
                data = "\n".join(f"data: {line}" for line in fragment.splitlines())
                yield f"event: queue\n{data}\n\n"
            await asyncio.sleep(tick)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _catalogue(db: DbSession) -> tuple[dict[str, Any], dict[str, Any]]:
    """Venues and services by id, to name them beside bookings."""
    venues = {v.id: v for v in booking.list_venues(db)}
    services = {s.id: s for s in booking.list_services(db)}
    return venues, services


def _minutes(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    return f"{seconds // 60}分{seconds % 60:02d}秒"


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
    with _db(request) as db:
        seat = _seat(request, db, "agent", "counter_manager", "supervisor")
        if csrf is not None and not _csrf_ok(seat, {"csrf": csrf}):
            return _render(request, "expired.html", seat, status_code=403)
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
            _log(
                db,
                seat,
                request,
                "booking.search",
                subject[0],
                subject[1],
                f"{len(found)} found; " + ",".join(str(b.id) for b in found),
            )
        db.commit()
        venues, services = _catalogue(db)
    return _render(
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


# --- taking a call ----------------------------------------------------------------------------

DISPOSITIONS = {
    "resolved": "解決",
    "booked": "予約を受けた",
    "changed": "予約を変更・取消した",
    "callback": "折り返しが必要",
    "escalated": "職員へ引き継ぎ",
    "unresolved": "未解決",
}


async def _form(request: Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await request.form()).items()}


def resident_from_form(
    form: dict[str, str], party: int, needs_notices: bool
) -> booking.ResidentInput:
    """The resident an agent keyed for a caller's household (notice numbers ``notice_0``...
    where the service needs them); ValueError for a birth date not written as a date."""
    notices = [form.get(f"notice_{i}", "") for i in range(party)]
    return booking.ResidentInput(
        name_kana=form.get("name_kana", ""),
        phone=form.get("phone", ""),
        birth_date=datetime.fromisoformat(form.get("birth_date", "")).date(),
        language=form.get("language", "ja"),
        members=[
            booking.MemberInput(notice_number=n or None) for n in (notices if needs_notices else [])
        ],
        proxy=form.get("proxy") == "on",
    )


def refusal_words(refused: BookingError | ValueError) -> str:
    """What the agent reads when a booking for a caller was refused."""
    if isinstance(refused, BookingError):
        return refused.message("ja")
    return "生年月日を正しく入力してください。"


@router.post("/calls/{call_sid}/answer")
async def answer_call(request: Request, call_sid: str) -> Response:
    """Take a waiting call. The caller is put through to this agent's phone (Twilio dequeues
    them); the screen pops at once."""
    form = await _form(request)

    def claim() -> Response | tuple[Seat, str]:
        with _db(request) as db:
            seat = _seat(request, db, "agent", "supervisor")
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
            if not calls.claim_call(db, call_sid=call_sid, staff_id=seat.staff.id):
                db.rollback()
                return RedirectResponse("/console/?taken=1", status_code=303)
            _log(db, seat, request, "call.answer", "call", call_sid)
            call = calls.get_call(db, call_sid=call_sid)
            db.commit()
            return seat, call.language if call else "ja"

    claimed = await run_in_threadpool(claim)
    if isinstance(claimed, Response):
        return claimed
    seat, language = claimed
    audio = await run_in_threadpool(_put_through, request, call_sid, seat, language)
    return RedirectResponse(f"/console/calls/{call_sid}?audio={audio}", status_code=303)


def _via_desk_phone(
    request: Request, seat: Seat, what: str, act: Callable[[PhoneApi, str, str], None]
) -> str:
    """Have Twilio reach this agent's desk phone (``act`` gets the API, the desk number and
    the public base URL). What happened, for the screen: connected, no_phone, no_twilio or
    failed; nothing is lost when it fails (the caller keeps waiting, the callback stays)."""
    api: PhoneApi = request.app.state.phone_api
    desk = seat.staff.desk_phone
    if desk is None:
        return "no_phone"
    if not api.live:
        return "no_twilio"
    try:
        act(api, desk, request.app.state.settings.public_base_url.rstrip("/"))
    except TwilioFailure as failure:
        log.warning("%s failed: %s", what, failure.detail)
        return "failed"
    return "connected"


def _put_through(request: Request, call_sid: str, seat: Seat, language: str) -> str:
    """Take the caller out of the queue to this agent's desk phone: Twilio redirects the live
    call to TwiML that dials it."""

    def redirect(api: PhoneApi, desk: str, base: str) -> None:
        with _db(request) as db:  # the number waits on the call, not in the URL
            calls.put_through_to(db, call_sid=call_sid, number=desk)
            db.commit()
        api.redirect_call(sid=call_sid, url=f"{base}/ivr/connect?lang={language}")

    return _via_desk_phone(request, seat, f"putting call {call_sid} through", redirect)


def _call_for(db: DbSession, seat: Seat, call_sid: str) -> calls.CallView:
    call = calls.get_call(db, call_sid=call_sid)
    if call is None:
        raise NotAllowed
    if call.agent_staff_id != seat.staff.id and not seat.staff.can("supervisor"):
        raise NotAllowed
    return call


AUDIO = {
    "connected": "お客様の電話を、あなたのデスク電話に転送しています。",
    "no_phone": "デスク電話が未設定のため、音声はつながっていません"
    "（受付キュー画面で設定できます）。",
    "no_twilio": "Twilioのアカウントが未設定のため、音声はつながっていません（画面のみ）。",
    "failed": "音声の転送に失敗しました（Twilioに接続できません）。お客様はキューで待っています。",
}


@router.get("/calls/{call_sid}", response_class=HTMLResponse)
def call_screen(
    request: Request, call_sid: str, error: str | None = None, audio: str = ""
) -> Response:
    """The screen pop: who is calling, what they did in the IVR, their bookings (by caller
    ID), earlier inquiries; then the inquiry note and the wrap-up. Audited."""
    with _db(request) as db:
        seat = _seat(request, db, "agent", "supervisor")
        call = _call_for(db, seat, call_sid)
        bookings = booking.bookings_for_phone(db, phone=call.caller) if call.caller else []
        history = staff.inquiries_for(db, phone=call.caller, call_id=call.id)
        _log(
            db,
            seat,
            request,
            "call.view",
            "call",
            call_sid,
            "bookings " + ",".join(str(b.id) for b in bookings),
        )
        db.commit()
        venues, services = _catalogue(db)
        categories = staff.categories(db)
    return _render(
        request,
        "call.html",
        seat,
        call=call,
        bookings=bookings,
        history=history,
        venues=venues,
        services=services,
        categories=categories,
        dispositions=DISPOSITIONS,
        mask=mask_phone,
        error=error,
        audio=AUDIO.get(audio),
        audio_ok=audio == "connected",
    )


@router.post("/calls/{call_sid}/inquiries")
async def log_inquiry(request: Request, call_sid: str) -> Response:
    form = await _form(request)

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with _db(request) as db:
            seat = _seat(request, db, "agent", "supervisor")
            call = _call_for(db, seat, call_sid)
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
            booking_id = row_id_or_none(form.get("booking_id"))
            try:
                made = staff.log_inquiry(
                    db,
                    staff=seat.staff,
                    category=form.get("category", ""),
                    note=form.get("note", ""),
                    resolution=form.get("resolution", ""),
                    call_id=call.id,
                    booking_id=booking_id,
                    phone=call.caller,
                )
            except StaffError as refused:
                db.rollback()
                return call_screen(request, call_sid, error=str(refused))
            _log(
                db,
                seat,
                request,
                "inquiry.create",
                "call",
                call_sid,
                f"inquiry {made}; booking {booking_id or '-'}",
            )
            db.commit()
        return RedirectResponse(f"/console/calls/{call_sid}", status_code=303)

    return await run_in_threadpool(work)


@router.post("/calls/{call_sid}/wrap-up")
async def wrap_up(request: Request, call_sid: str) -> Response:
    form = await _form(request)

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with _db(request) as db:
            seat = _seat(request, db, "agent", "supervisor")
            _call_for(db, seat, call_sid)
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
            disposition = form.get("disposition", "")
            if disposition not in DISPOSITIONS:
                db.rollback()
                return call_screen(request, call_sid, error="対応結果を選んでください。")
            calls.wrap_up(db, call_sid=call_sid, staff_id=seat.staff.id, disposition=disposition)
            _log(db, seat, request, "call.wrap_up", "call", call_sid, disposition)
            db.commit()
        return RedirectResponse("/console/", status_code=303)

    return await run_in_threadpool(work)


# --- the FAQ panel ----------------------------------------------------------------------------


@router.get("/faq", response_class=HTMLResponse)
def faq_panel(request: Request, q: str = "", saved: str = "") -> Response:
    """The answers agents read from: the same entries the IVR's option 3 speaks."""
    with _db(request) as db:
        seat = _seat(request, db, "agent", "counter_manager", "supervisor")
        entries = calls.faq_entries(db, query=q)
    return _render(request, "faq.html", seat, entries=entries, q=q, saved=saved, error=None)


@router.post("/faq/{faq_id}")
async def faq_edit(request: Request, faq_id: str) -> Response:
    form = await _form(request)

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with _db(request) as db:
            seat = _seat(request, db, "supervisor")
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
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
                return _render(
                    request,
                    "faq.html",
                    seat,
                    status_code=422,
                    entries=entries,
                    q="",
                    saved="",
                    error="日本語と英語の見出しと答えを、すべて入力してください。",
                )
            _log(db, seat, request, "faq.edit", "faq", faq_id)
            db.commit()
        return RedirectResponse(f"/console/faq?saved={faq_id}", status_code=303)

    return await run_in_threadpool(work)


# --- inquiry categories (supervisors) -----------------------------------------------------------


@router.get("/categories", response_class=HTMLResponse)
def category_list(request: Request, error: str | None = None) -> Response:
    with _db(request) as db:
        seat = _seat(request, db, "supervisor")
        rows = staff.all_categories(db)
    return _render(request, "categories.html", seat, rows=rows, error=error)


@router.post("/categories")
async def category_save(request: Request) -> Response:
    form = await _form(request)

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with _db(request) as db:
            seat = _seat(request, db, "supervisor")
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
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
                return _render(
                    request, "categories.html", seat, status_code=422, rows=rows, error=str(refused)
                )
            _log(
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

    return await run_in_threadpool(work)


# --- the supervisor's wallboard ---------------------------------------------------------------


@router.get("/wallboard", response_class=HTMLResponse)
def wallboard(request: Request) -> Response:
    """Today's queue at a glance, and by hour; refreshed every 15 seconds."""
    with _db(request) as db:
        seat = _seat(request, db, "supervisor", "counter_manager")
        board = calls.wallboard(db)
    return _render(
        request,
        "wallboard.html",
        seat,
        board=board,
        target=calls.SERVICE_LEVEL_SECONDS,
        pct=lambda v: "－" if v is None else f"{v * 100:.0f}%",
        secs=lambda v: "－" if v is None else f"{v:.0f}秒",
    )


# --- callbacks ----------------------------------------------------------------------------------

CALLBACK_OUTCOMES = {
    "reached": "話せた",
    "no_answer": "出なかった（後でもう一度）",
    "wrong_number": "番号違い",
    "not_needed": "不要になった",
}


@router.post("/callbacks/{callback_id}/claim")
async def claim_callback(request: Request, callback_id: RowId) -> Response:
    form = await _form(request)

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with _db(request) as db:
            seat = _seat(request, db, "agent", "supervisor")
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
            claimed = calls.claim_callback(db, callback_id=callback_id, staff_id=seat.staff.id)
            if claimed is None:
                db.rollback()
                return RedirectResponse("/console/?taken=1", status_code=303)
            db.commit()
        return RedirectResponse(f"/console/callbacks/{callback_id}", status_code=303)

    return await run_in_threadpool(work)


@router.get("/callbacks/{callback_id}", response_class=HTMLResponse)
def callback_screen(request: Request, callback_id: RowId) -> Response:
    """The callback taken on: the number to call (shown in full to this agent only, audited)
    and their bookings; then the outcome."""
    with _db(request) as db:
        seat = _seat(request, db, "agent", "supervisor")
        claimed = calls.claim_callback(db, callback_id=callback_id, staff_id=seat.staff.id)
        if claimed is None:
            raise NotAllowed
        bookings = booking.bookings_for_phone(db, phone=claimed.phone)
        _log(
            db,
            seat,
            request,
            "callback.view",
            "callback",
            callback_id,
            "bookings " + ",".join(str(b.id) for b in bookings),
        )
        db.commit()
        venues, services = _catalogue(db)
    return _render(
        request,
        "callback.html",
        seat,
        callback=claimed,
        bookings=bookings,
        venues=venues,
        services=services,
        outcomes=CALLBACK_OUTCOMES,
        dial=DIAL.get(request.query_params.get("dial", "")),
    )


@router.post("/callbacks/{callback_id}/dial")
async def dial_callback(request: Request, callback_id: RowId) -> Response:
    """Call the resident back: Twilio rings the agent's desk phone, then dials the resident
    from the ward's number once the agent picks up."""
    form = await _form(request)

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with _db(request) as db:
            seat = _seat(request, db, "agent", "supervisor")
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
            if calls.callback_number(db, callback_id=callback_id, staff_id=seat.staff.id) is None:
                raise NotAllowed
            _log(db, seat, request, "callback.dial", "callback", callback_id)
            db.commit()
        # Already on a worker thread: Twilio's REST call waits here, not on the event loop.
        dialled = _dial_back(request, callback_id, seat)
        return RedirectResponse(f"/console/callbacks/{callback_id}?dial={dialled}", 303)

    return await run_in_threadpool(work)


def _dial_back(request: Request, callback_id: int, seat: Seat) -> str:
    """Ring the agent's desk phone; once picked up, the bridge dials the resident."""

    def ring(api: PhoneApi, desk: str, base: str) -> None:
        query = urlencode({"callback": callback_id, "staff": seat.staff.id})
        api.place_call(
            to=desk, url=f"{base}/ivr/bridge?{query}", status_callback=f"{base}/ivr/status"
        )

    return _via_desk_phone(request, seat, f"dialling callback {callback_id}", ring)


DIAL = {
    "connected": "あなたのデスク電話を呼び出しています。出ると、お客様に発信します。",
    "no_phone": "デスク電話が未設定です。受付キュー画面で設定するか、手元の電話でおかけください。",
    "no_twilio": "Twilioのアカウントが未設定のため発信できません。手元の電話でおかけください。",
    "failed": "発信に失敗しました（Twilioに接続できません）。少し待ってもう一度お試しください。",
}


@router.post("/me/phone")
async def my_phone(request: Request) -> Response:
    """The phone this agent takes calls on for this shift (a desk phone or extension)."""
    form = await _form(request)

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with _db(request) as db:
            seat = _seat(request, db, "agent", "supervisor")
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
            try:
                staff.set_desk_phone(db, staff_id=seat.staff.id, phone=form.get("phone", ""))
            except StaffError as refused:
                db.rollback()  # the queue again, saying why (not in the URL: it is a phone form)
                context = _queue_context(db, seat)
                mine = calls.my_open_call(db, staff_id=seat.staff.id)
                return _render(
                    request,
                    "home.html",
                    seat,
                    status_code=422,
                    taken=None,
                    phone_error=str(refused),
                    mine=mine,
                    **context,
                )
            _log(db, seat, request, "staff.desk_phone", "staff", seat.staff.id)
            db.commit()
        return RedirectResponse("/console/", status_code=303)

    return await run_in_threadpool(work)


@router.post("/callbacks/{callback_id}/finish")
async def finish_callback(request: Request, callback_id: RowId) -> Response:
    form = await _form(request)

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with _db(request) as db:
            seat = _seat(request, db, "agent", "supervisor")
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
            outcome = form.get("outcome", "")
            if not calls.finish_callback(
                db, callback_id=callback_id, staff_id=seat.staff.id, outcome=outcome
            ):
                raise NotAllowed
            _log(db, seat, request, "callback.finish", "callback", callback_id, outcome)
            db.commit()
        return RedirectResponse("/console/", status_code=303)

    return await run_in_threadpool(work)


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
    with _db(request) as db:
        seat = _seat(request, db, "agent", "counter_manager", "supervisor")
        try:
            found = booking.get_booking(db, booking_id=booking_id)
        except (BookingError, NoResultFound):  # no such booking: as for one not to be seen
            raise NotAllowed from None
        history = reminders.messages_for(db, booking_id=booking_id)
        off = reminders.opted_out(db, booking_id=booking_id)
        _log(db, seat, request, "booking.view", "booking", booking_id, "details and messages")
        db.commit()
        venues, services = _catalogue(db)
    return _render(
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
    form = await _form(request)
    action = form.get("action", "")

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with _db(request) as db:
            seat = _seat(request, db, "agent", "supervisor")
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
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
                    f"/console/bookings/{booking_id}?"
                    + urlencode({"error": refused.message("ja")}),
                    303,
                )
            _log(db, seat, request, f"booking.{action}", "booking", booking_id, "messages")
            db.commit()
        return RedirectResponse(f"/console/bookings/{booking_id}?" + urlencode({"done": done}), 303)

    return await run_in_threadpool(work)


# --- changing a caller's booking ---------------------------------------------------------------


@router.post("/calls/{call_sid}/bookings/{booking_id}/cancel")
async def cancel_for_caller(request: Request, call_sid: str, booking_id: RowId) -> Response:
    """Cancel a booking the caller asked to cancel (they confirmed it on the phone)."""
    form = await _form(request)

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with _db(request) as db:
            seat = _seat(request, db, "agent", "supervisor")
            _call_for(db, seat, call_sid)
            if not _csrf_ok(seat, form) or form.get("confirm") != "yes":
                db.rollback()  # SQLite: this request's lock goes before the page reads again
                return call_screen(
                    request, call_sid, error="取り消す前に、確認の欄にチェックを入れてください。"
                )
            try:
                cancelled = booking.cancel_booking(db, booking_id=booking_id)
            except BookingError as refused:
                db.rollback()
                return call_screen(request, call_sid, error=refused.message("ja"))
            _log(db, seat, request, "booking.cancel", "booking", booking_id, f"for call {call_sid}")
            db.commit()
        return RedirectResponse(f"/console/calls/{call_sid}?cancelled={cancelled.code}", 303)

    return await run_in_threadpool(work)


# --- booking on the caller's behalf ----------------------------------------------------------


@router.get("/calls/{call_sid}/book", response_class=HTMLResponse)
def book_search(
    request: Request,
    call_sid: str,
    service: str = "pickup",
    venue: str = "",
    party: Annotated[int, Query(ge=0, le=100)] = 1,
    day: str = "",
    move: RowId | None = None,
) -> Response:
    """Free times for the caller: a service, a venue or any, the party, a day. With ``move``,
    the time chosen becomes that booking's new time."""
    with _db(request) as db:
        seat = _seat(request, db, "agent", "supervisor")
        _call_for(db, seat, call_sid)
        ctx = db.info["booking"]
        first = booking.first_bookable_day(ctx, None)
        try:
            chosen = datetime.fromisoformat(day).date() if day else first
        except ValueError:
            chosen = first
        error = None
        slots: list[booking.SlotView] = []
        try:
            slots = booking.availability(
                db,
                service_id=service,
                venue_id=venue or None,
                start=chosen,
                end=chosen,
                party=party,
                limit=200,
                channel="agent",
            )
        except BookingError as refused:
            error = refused.message("ja")
        venues = {v.id: v for v in booking.list_venues(db)}
        services = booking.list_services(db)
    return _render(
        request,
        "book.html",
        seat,
        call_sid=call_sid,
        service=service,
        venue=venue,
        party=party,
        day=chosen,
        slots=slots,
        venues=venues,
        services=services,
        error=error,
        max_party=ctx.rules.max_party_size,
        move=move,
    )


@router.post("/calls/{call_sid}/book/hold")
async def book_hold(request: Request, call_sid: str) -> Response:
    """Keep the chosen time for the caller while the agent takes their details."""
    form = await _form(request)

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with _db(request) as db:
            seat = _seat(request, db, "agent", "supervisor")
            _call_for(db, seat, call_sid)
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
            try:
                hold = booking.create_hold(
                    db,
                    slot_id=row_id(form.get("slot_id")),
                    seats=whole_number(form.get("party", "1"), 100),
                    channel="agent",
                )
            except (BookingError, ValueError) as refused:
                db.rollback()
                message = (
                    refused.message("ja")
                    if isinstance(refused, BookingError)
                    else "入力が不正です。"
                )
                return call_screen(request, call_sid, error=message)
            if form.get("move", "").isdigit():
                # A move: the new seats are held, now the booking moves onto them (its old seats
                # are given back only once the new ones are taken, in the engine).
                booking_id = int(form["move"])
                try:
                    moved = booking.reschedule_booking(db, booking_id=booking_id, hold_id=hold.id)
                except BookingError as refused:
                    db.rollback()
                    return call_screen(request, call_sid, error=refused.message("ja"))
                _log(
                    db, seat, request, "booking.move", "booking", booking_id, f"for call {call_sid}"
                )
                db.commit()
                return RedirectResponse(f"/console/calls/{call_sid}?moved={moved.code}", 303)
            db.commit()
        return RedirectResponse(f"/console/calls/{call_sid}/book/{hold.id}", status_code=303)

    return await run_in_threadpool(work)


@router.get("/calls/{call_sid}/book/{hold_id}", response_class=HTMLResponse)
def book_details(
    request: Request,
    call_sid: str,
    hold_id: str,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    with _db(request) as db:
        seat = _seat(request, db, "agent", "supervisor")
        call = _call_for(db, seat, call_sid)
        try:
            held = booking.get_hold(db, hold_id=hold_id)
        except BookingError as refused:
            db.rollback()
            return call_screen(request, call_sid, error=refused.message("ja"))
        chosen = booking.service_or_404(db, held.service_id)
        venue = booking.venue_or_404(db, held.venue_id)
    return _render(
        request,
        "book_details.html",
        seat,
        call_sid=call_sid,
        held=held,
        service=chosen,
        venue=venue,
        caller=call.caller or "",
        caller_language=call.language,
        languages=LANGUAGES,
        language_names=LANGUAGE_NAMES,
        error=error,
        values=values or {},
    )


@router.post("/calls/{call_sid}/book/{hold_id}")
async def book_confirm(request: Request, call_sid: str, hold_id: str) -> Response:
    """Book the held time for the caller's household (channel: agent)."""
    form = await _form(request)

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with _db(request) as db:
            seat = _seat(request, db, "agent", "supervisor")
            call = _call_for(db, seat, call_sid)
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
            try:
                held = booking.get_hold(db, hold_id=hold_id)
                needs_notices = booking.service_or_404(db, held.service_id).requires_notice_number
                made = booking.book(
                    db,
                    hold_id=hold_id,
                    party=held.hold.seats,
                    resident=resident_from_form(form, held.hold.seats, needs_notices),
                    channel="agent",
                    idempotency_key=f"agent:{call_sid}:{hold_id}",
                )
            except (BookingError, ValueError) as refused:
                db.rollback()
                message = refusal_words(refused)
                return book_details(request, call_sid, hold_id, error=message, values=form)
            _log(
                db, seat, request, "booking.create", "booking", made.id, f"for call {call.call_sid}"
            )
            db.commit()
        return RedirectResponse(f"/console/calls/{call_sid}?booked={made.code}", status_code=303)

    return await run_in_threadpool(work)


# --- staff accounts (supervisors) ------------------------------------------------------------


@router.get("/staff", response_class=HTMLResponse)
def staff_list(
    request: Request, error: str | None = None, created: str = "", reset_factor: str = ""
) -> Response:
    """The accounts; after creating one, who it is and what to hand over."""
    with _db(request) as db:
        seat = _seat(request, db, "supervisor")
        people = staff.list_staff(db)
    return _render(
        request,
        "staff.html",
        seat,
        people=people,
        roles=ROLES,
        error=error,
        created=next((p for p in people if str(p.id) == created), None),
        reset_factor=next((p for p in people if str(p.id) == reset_factor), None),
    )


@router.post("/staff")
async def staff_change(request: Request) -> Response:
    """Create an account, change a role, or deactivate (which signs the person out at once)."""
    form = {k: str(v) for k, v in (await request.form()).items()}

    def work() -> Response:
        # The database and what follows: on a worker thread, never the event loop.
        with _db(request) as db:
            seat = _seat(request, db, "supervisor")
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
            try:
                action = form.get("action", "")
                if action == "create":
                    made = staff.create_staff(
                        db,
                        login_id=form.get("login_id", ""),
                        display_name=form.get("display_name", ""),
                        role=form.get("role", ""),
                        password=form.get("password", ""),
                        must_change=True,  # the supervisor knows it: the owner replaces it
                    )
                    subject, what = made.id, f"role={made.role}"
                elif action in ("role", "deactivate"):
                    target = row_id(form.get("staff_id"))
                    if target == seat.staff.id and action == "deactivate":
                        raise StaffError("自分のアカウントは無効にできません。")
                    if action == "role":
                        changed = staff.set_role(db, staff_id=target, role=form.get("role", ""))
                        what = f"role={changed.role}"
                    else:
                        staff.deactivate(db, staff_id=target)
                        what = "deactivated"
                    subject = target
                else:
                    raise StaffError("操作が分かりません。")
            except (StaffError, ValueError) as refused:
                db.rollback()
                people = staff.list_staff(db)
                return _render(
                    request,
                    "staff.html",
                    seat,
                    status_code=422,
                    people=people,
                    roles=ROLES,
                    error=str(refused),
                    values=form,
                )
            _log(db, seat, request, f"staff.{action}", "staff", subject, what)
            db.commit()
        if action == "create":
            return RedirectResponse(f"/console/staff?created={subject}", status_code=303)
        return RedirectResponse("/console/staff", status_code=303)

    return await run_in_threadpool(work)


# --- the audit log (auditors) -----------------------------------------------------------------


def _audit_query(request: Request) -> dict[str, Any]:
    q = request.query_params
    since = q.get("since")
    until = q.get("until")
    return {
        "login_id": q.get("login_id") or None,
        "subject_kind": q.get("subject_kind") or None,
        "subject_id": q.get("subject_id") or None,
        "action": q.get("action") or None,
        "since": datetime.fromisoformat(since).replace(tzinfo=TOKYO) if since else None,
        "until": (datetime.fromisoformat(until).replace(tzinfo=TOKYO) + timedelta(days=1))
        if until
        else None,
    }


@router.get("/audit", response_class=HTMLResponse)
def audit_log(request: Request) -> Response:
    with _db(request) as db:
        seat = _seat(request, db, "auditor", "supervisor")
        try:
            query = _audit_query(request)
        except ValueError:
            query = {}
        entries = staff.search_audit(db, **query)
        report = staff.check_chain(db)
        _log(db, seat, request, "audit.search", "audit", "-", str(dict(request.query_params)))
        db.commit()
    return _render(
        request, "audit.html", seat, entries=entries, report=report, q=request.query_params
    )


class BadMonth(Exception):
    """A report's month that is not one (?month=2026-13)."""


def _month(value: str, db: DbSession) -> date:
    """A report's month (YYYY-MM); the last whole month when none is given."""
    if not value:
        today: date = db.info["booking"].today()
        return (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    try:
        return date.fromisoformat(value + "-01")
    except ValueError:
        raise BadMonth(value) from None


def _monthly(request: Request, month: str, action: str) -> report.MonthlyReport:
    """The month's report for a supervisor or an auditor, its opening audited."""
    with _db(request) as db:
        seat = _seat(request, db, "auditor", "supervisor")
        chosen = _month(month, db)
        made = report.monthly_report(db, month=chosen)
        _log(db, seat, request, action, "report", chosen.strftime("%Y-%m"))
        db.commit()
    return made


@router.get("/reports/monthly", response_class=HTMLResponse)
def monthly_report_page(request: Request, month: str = "") -> Response:
    """The monthly report for the ward, printable (supervisors and auditors)."""
    made = _monthly(request, month, "report.monthly")
    return HTMLResponse(report.render_html(made, console=True))


@router.get("/reports/monthly.csv")
def monthly_report_csv(request: Request, month: str = "") -> Response:
    made = _monthly(request, month, "report.monthly.csv")
    return Response(
        report.report_csv(made),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="report-{made.month:%Y-%m}.csv"'},
    )


@router.get("/erasures", response_class=HTMLResponse)
def erasure_records(request: Request) -> Response:
    """消去記録: every erasure run, what and how many; each with its printable certificate."""
    with _db(request) as db:
        seat = _seat(request, db, "auditor", "supervisor")
        records = staff.erasures(db)
        _log(db, seat, request, "erasure.list", "erasure", "-")
        db.commit()
    return _render(request, "erasures.html", seat, records=records)


@router.get("/erasures/{erasure_id}", response_class=HTMLResponse)
def erasure_certificate(request: Request, erasure_id: RowId) -> Response:
    """The certificate of erasure (消去証明書) of one run, to print for the ward."""
    with _db(request) as db:
        seat = _seat(request, db, "auditor", "supervisor")
        record = staff.get_erasure(db, erasure_id)
        if record is None:
            raise NotAllowed
        _log(db, seat, request, "erasure.certificate", "erasure", erasure_id)
        db.commit()
    return _render(
        request,
        "erasure_certificate.html",
        seat,
        record=record,
        text=staff.certificate_text(record),
    )


@router.get("/audit.csv")
def audit_export(request: Request) -> Response:
    with _db(request) as db:
        seat = _seat(request, db, "auditor")
        try:
            query = _audit_query(request)
        except ValueError:
            query = {}
        entries = staff.search_audit(db, limit=100_000, **query)
        _log(
            db,
            seat,
            request,
            "audit.export",
            "audit",
            "-",
            f"{len(entries)} events; " + str(dict(request.query_params)),
        )
        db.commit()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["id", "at", "login_id", "action", "subject_kind", "subject_id", "detail", "client"]
    )
    for e in entries:
        writer.writerow(
            [
                e.id,
                e.at.astimezone(TOKYO).isoformat(),
                e.login_id,
                e.action,
                e.subject_kind,
                e.subject_id,
                e.detail,
                e.client,
            ]
        )
    return Response(
        "\ufeff" + out.getvalue(),  # a BOM, so Excel opens the Japanese correctly
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
    )


# --- wiring ---------------------------------------------------------------------------------


def _is_page(app: FastAPI, path: str) -> bool:
    """True if a GET of the path is one of the console's pages."""
    scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
    return any(r.matches(scope)[0] == Match.FULL for r in app.routes)


def install(app: FastAPI) -> None:
    """The console's router, and where its refusals lead."""

    def to_login(request: Request, _exc: Exception) -> Response:
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    def not_allowed(request: Request, _exc: Exception) -> Response:
        return _render(request, "forbidden.html", None, status_code=403)

    def my_number(request: Request, exc: Exception) -> Response:
        # The form comes back to be corrected and sent again where it was going, the number
        # taken out; nothing was done, and the number is in no log and not on the page.
        field = exc.field if isinstance(exc, MyNumberInForm) else ""
        kept = exc.kept if isinstance(exc, MyNumberInForm) else []
        log.info("a console form field (%s) held a My Number: refused", field)
        return _render(
            request,
            "my_number.html",
            None,
            status_code=422,
            field=field,
            fields=kept,
            action=request.url.path,
            multipart=any(f.kind == "file" for f in kept),
            chosen=any(f.kind == "hidden" and f.name != "csrf" for f in kept),
            back=way_back(request.url.path, kept, partial(_is_page, request.app)),
        )

    def step_needed(request: Request, exc: Exception) -> Response:
        step = exc.step if isinstance(exc, StepNeeded) else ""
        return RedirectResponse(STEP_PAGES.get(step, "/console/login"), status_code=303)

    app.add_exception_handler(SignInNeeded, to_login)
    app.add_exception_handler(NotAllowed, not_allowed)
    app.add_exception_handler(StepNeeded, step_needed)
    app.add_exception_handler(MyNumberInForm, my_number)

    def unreadable(request: Request, exc: Exception) -> Response:
        field = exc.field if isinstance(exc, UnreadableCharacters) else ""
        return _render(
            request,
            "problem.html",
            None,
            status_code=422,
            message="入力に使えない文字（制御文字）が含まれていたため、何も保存していません。"
            "ブラウザの「戻る」で入力画面に戻り、該当の欄を入力し直してください。",
            fields=[{"field": field, "problem": "制御文字"}],
            ours=False,
            request_id="",
        )

    app.add_exception_handler(UnreadableCharacters, unreadable)

    def bad_month(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(
            f"month={exc}: 月は 2026-10 の形で指定してください (a month like 2026-10).",
            status_code=422,
        )

    app.add_exception_handler(BadMonth, bad_month)
    app.include_router(router)
    from agent_console.counter import router as counter_router  # it builds on this module

    app.include_router(counter_router)
    from agent_console.releases import router as releases_router  # it builds on this module

    app.include_router(releases_router)
    from agent_console.accounts import router as accounts_router  # it builds on this module

    app.include_router(accounts_router)
    from agent_console.lottery import router as lottery_router  # it builds on this module

    app.include_router(lottery_router)
    from agent_console.waitlist import router as waitlist_router  # it builds on this module

    app.include_router(waitlist_router)
    from agent_console.waiting import router as waiting_router  # it builds on this module

    app.include_router(waiting_router)
