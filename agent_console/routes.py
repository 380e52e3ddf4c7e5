"""The agent console under /console/: the one place that gathers its pages' routers, and where
its refusals lead (the login page, a page refused, a step first, a form given back without the
My Number it held). The pages live in ``signin``, ``call_queue``, ``bookings``, ``calls``,
``call_booking``, ``callbacks``, ``faq``, ``accounts`` and ``audit``; the counter managers' in
``day_view``, ``manage_calendar``, ``counter``, ``releases``, ``lottery`` and ``waiting``; the
agents' waitlist in ``waitlist``; calls in progress (the supervisors' live page, the
caller's hold, a raised hand) in ``live``.
What they share (the seat, CSRF, rendering, the audit event) is in ``agent_console.web``.
"""

from __future__ import annotations

import logging
from functools import partial
from types import ModuleType

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Match

from agent_console import (
    accounts,
    agent_state_pages,
    audit,
    bookings,
    call_booking,
    call_queue,
    callbacks,
    calls,
    counter,
    day_view,
    faq,
    handover,
    live,
    lottery,
    manage_calendar,
    ready_cards,
    releases,
    signin,
    waiting,
    waitlist,
)
from agent_console.audit import BadMonth
from agent_console.my_number import way_back
from agent_console.web import (
    SESSION_COOKIE,
    STEP_PAGES,
    MyNumberInForm,
    NotAllowed,
    SignInNeeded,
    StepNeeded,
    UnreadableCharacters,
    render,
)
from booking.errors import BookingError
from booking.web import Problem

log = logging.getLogger(__name__)


def _gather(*pages: ModuleType) -> APIRouter:
    """One router holding each page's, in the order their routes are matched."""
    gathered = APIRouter()
    for page in pages:
        gathered.include_router(page.router)
    return gathered


router = _gather(
    signin,
    call_queue,
    agent_state_pages,
    bookings,
    calls,
    faq,
    callbacks,
    call_booking,
    audit,
    day_view,
    manage_calendar,
    counter,
    handover,
    releases,
    accounts,
    lottery,
    waitlist,
    waiting,
    ready_cards,
    live,
)


def problem_page(request: Request, problem: Problem) -> HTMLResponse:
    """A request that went wrong, as a console page (config.errors chooses the renderer). No
    session is looked up: the database may be what failed."""
    return render(
        request,
        "problem.html",
        None,
        status_code=problem.status,
        message=BookingError(problem.code).message("ja"),
        fields=problem.fields,
        ours=problem.ours,
        request_id=problem.request_id,
    )


def _is_page(app: FastAPI, path: str) -> bool:
    """True if a GET of the path is one of the console's pages."""
    scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
    return any(r.matches(scope)[0] == Match.FULL for r in app.routes)


# --- where refusals lead -------------------------------------------------------------------------


def _to_login(request: Request, _exc: Exception) -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _not_allowed(request: Request, _exc: Exception) -> Response:
    return render(request, "forbidden.html", None, status_code=403)


def _my_number(request: Request, exc: Exception) -> Response:
    # The form comes back to be corrected and sent again where it was going, the number
    # taken out; nothing was done, and the number is in no log and not on the page.
    field = exc.field if isinstance(exc, MyNumberInForm) else ""
    kept = exc.kept if isinstance(exc, MyNumberInForm) else []
    log.info("a console form field (%s) held a My Number: refused", field)
    return render(
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


def _step_needed(request: Request, exc: Exception) -> Response:
    step = exc.step if isinstance(exc, StepNeeded) else ""
    return RedirectResponse(STEP_PAGES.get(step, "/console/login"), status_code=303)


def _unreadable(request: Request, exc: Exception) -> Response:
    field = exc.field if isinstance(exc, UnreadableCharacters) else ""
    return render(
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


def _bad_month(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(
        f"month={exc}: 月は 2026-10 の形で指定してください (a month like 2026-10).",
        status_code=422,
    )


def install(app: FastAPI) -> None:
    """The console's router, and where its refusals lead."""
    app.add_exception_handler(SignInNeeded, _to_login)
    app.add_exception_handler(NotAllowed, _not_allowed)
    app.add_exception_handler(StepNeeded, _step_needed)
    app.add_exception_handler(MyNumberInForm, _my_number)
    app.add_exception_handler(UnreadableCharacters, _unreadable)
    app.add_exception_handler(BadMonth, _bad_month)
    app.include_router(router)
