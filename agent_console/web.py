"""What every page of the agent console shares: the signed-in seat and its role checks, the
CSRF check, rendering, the audit event of a page, the catalogue beside bookings, the
refusals (no session, not allowed, a step first, a My Number or a control character in a
form), a caller's household as keyed by an agent, and the agent's desk phone.

Every page that shows a resident's data writes an audit event in the same transaction as the
read, so a page that could not be logged is not shown.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session as DbSession

from agent_console import caller_words
from agent_console import service as staff
from agent_console.my_number import KeptField, kept_fields
from agent_console.service import Seat
from booking import service as booking
from booking.context import TOKYO
from booking.errors import BookingError
from booking.personal import LANGUAGE_NAMES, contains_my_number, display_phone
from booking.web import unit_of_work
from ivr import service as calls
from ivr.telephony import PhoneApi, TwilioFailure

# --- what a form may not hold ---------------------------------------------------------------------


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


# --- the signed-in seat ---------------------------------------------------------------------------

log = logging.getLogger(__name__)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# Numbers as Japanese readers write them (090-1111-2222), and the IVR's path in words.
templates.env.filters["phone"] = display_phone
templates.env.globals["readable_path"] = calls.readable_path
# A caller's words in the caller's language (agent_console/caller_words.py).
templates.env.globals.update(
    read_out=caller_words.read_out,
    caller_languages=caller_words.caller_languages,
    html_lang=caller_words.html_lang,
    staff_language=caller_words.staff_name,
    language_names=LANGUAGE_NAMES,
)
SESSION_COOKIE = "console"
LOGIN_CSRF_COOKIE = "console_login"
ROLE_NAMES = {
    "agent": "オペレーター",
    "counter_manager": "窓口管理者",
    "supervisor": "スーパーバイザー",
    "auditor": "監査担当",
}
# Who changes capacity, closures, sessions, releases, lotteries and the waiting room.
MANAGERS = ("counter_manager", "supervisor")


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


def next_page(person: staff.Staff, step: str) -> str:
    """After signing in (or finishing a step): the pending step's page, else the role's home."""
    return STEP_PAGES.get(step) or HOMES.get(person.role, "/console/")


def second_factor_roles(request: Request) -> frozenset[str]:
    """The roles that sign in with a second factor here (MADOGUCHI_SECOND_FACTOR_ROLES)."""
    roles: frozenset[str] = request.app.state.settings.second_factor_role_set
    return roles


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def signed_in(
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
        audit_event(db, seat, request, "page.refused", "page", request.url.path)
        db.commit()
        raise NotAllowed
    return seat


def audit_event(
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
        client=client_address(request),
    )


# --- a page ---------------------------------------------------------------------------------------


def csrf_ok(seat: Seat, form: dict[str, str]) -> bool:
    # Bytes: compare_digest refuses a str that is not ASCII, and a form may hold anything.
    return secrets.compare_digest(seat.csrf.encode(), form.get("csrf", "").encode())


def render(
    request: Request, template: str, seat: Seat | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        template,
        {"seat": seat, "role_names": ROLE_NAMES, "local": local_time, **context},
        status_code=status_code,
    )
    # Never cached, never framed: config.security.SecurityHeaders says so for every page.
    return response


def local_time(at: datetime | None) -> str:
    return at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M") if at else ""


def catalogue(db: DbSession) -> tuple[dict[str, Any], dict[str, Any]]:
    """Venues and services by id, to name them beside bookings."""
    venues = {v.id: v for v in booking.list_venues(db)}
    services = {s.id: s for s in booking.list_services(db)}
    return venues, services


async def form_fields(request: Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await request.form()).items()}


async def staff_form(
    request: Request,
    *roles: str,
    act: Callable[[DbSession, Seat, dict[str, str]], Response],
    allow: frozenset[str] = frozenset(),
    check: Callable[[DbSession, Seat], object] | None = None,
) -> Response:
    """A console form sent by a staff member in one of ``roles`` (any step pending but those
    in ``allow`` refused, as by ``signed_in``): the form is read here, on the event loop, and
    everything else runs on a worker thread in one unit of work: the seat, then ``check`` if
    given (a refusal that must win over an expired form, such as a call that is not this
    agent's), then the CSRF token (an expired page, 403), then ``act``, which commits what it
    changes and answers.

    Why: an ``async`` route runs on the loop that also answers the phone line, so a route that
    touches the database must never do it there; and one session per request means one owner
    of the transaction, so a 2xx is sent only once ``act`` has committed."""
    form = await form_fields(request)

    def work() -> Response:
        with unit_of_work(request) as db:
            seat = signed_in(request, db, *roles, allow=allow)
            if check is not None:
                check(db, seat)
            if not csrf_ok(seat, form):
                return render(request, "expired.html", seat, status_code=403)
            return act(db, seat, form)

    return await run_in_threadpool(work)


# --- a caller, for the agent ----------------------------------------------------------------------


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


def via_desk_phone(
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


def call_for(db: DbSession, seat: Seat, call_sid: str) -> calls.CallView:
    call = calls.get_call(db, call_sid=call_sid)
    if call is None:
        raise NotAllowed
    if call.agent_staff_id != seat.staff.id and not seat.staff.can("supervisor"):
        raise NotAllowed
    return call


def call_is_theirs(call_sid: str) -> Callable[[DbSession, Seat], object]:
    """For ``staff_form``'s check: the call is this agent's (any, for a supervisor), else
    NotAllowed, even when the form has expired too."""
    return lambda db, seat: call_for(db, seat, call_sid)
