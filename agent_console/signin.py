"""Signing in to the console: the login page, the password, the code of the second factor
(or a recovery code), signing out. Each sign-in, failed one and step is audited."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from agent_console import credentials
from agent_console import service as staff
from agent_console.service import StaffError
from agent_console.web import (
    ANY_STEP,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    audit_event,
    client_address,
    csrf_ok,
    form_fields,
    next_page,
    refuse_my_numbers,
    render,
    second_factor_roles,
    signed_in,
)
from booking.web import unit_of_work

router = APIRouter(
    prefix="/console", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, error: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", None, csrf=token, error=error)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, secure=_secure(request), samesite="strict"
    )
    return response


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
        with unit_of_work(request) as db:
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
                    client=client_address(request),
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
                client=client_address(request),
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
        with unit_of_work(request) as db:
            seat = signed_in(request, db, allow=ANY_STEP)
            if csrf_ok(seat, form):
                staff.sign_out(db, session_id=seat.session_id)
                audit_event(db, seat, request, "staff.logout", "staff", seat.staff.id)
                db.commit()
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    return await run_in_threadpool(work)


# --- the code of the second factor ----------------------------------------------------------------

CODE_STEP = frozenset({"code"})


@router.get("/login/code", response_class=HTMLResponse)
def code_form(request: Request) -> Response:
    with unit_of_work(request) as db:
        seat = signed_in(request, db, allow=CODE_STEP)
    if seat.step != "code":
        return RedirectResponse(next_page(seat.staff, seat.step), status_code=303)
    return render(request, "second_factor.html", None, csrf=seat.csrf, error=None)


@router.post("/login/code", response_class=HTMLResponse)
async def code_given(request: Request) -> Response:
    """The code from the authenticator app, or a recovery code (each used once)."""
    form = await form_fields(request)

    def work() -> Response:
        with unit_of_work(request) as db:
            seat = signed_in(request, db, allow=CODE_STEP)
            if not csrf_ok(seat, form):
                return render(request, "expired.html", None, status_code=403)
            try:
                used = credentials.give_code(
                    db, session_id=seat.session_id, code=form.get("code", "")
                )
            except StaffError as refused:
                db.commit()  # the wrong code counts towards the lock-out
                audit_event(db, seat, request, "staff.second_factor_failed", "staff", seat.staff.id)
                db.commit()
                return render(
                    request,
                    "second_factor.html",
                    None,
                    status_code=401,
                    csrf=seat.csrf,
                    error=str(refused),
                )
            if used == "recovery":
                left = credentials.recovery_codes_left(db, staff_id=seat.staff.id)
                audit_event(
                    db,
                    seat,
                    request,
                    "staff.recovery_code_used",
                    "staff",
                    seat.staff.id,
                    f"left={left}",
                )
            else:
                audit_event(db, seat, request, "staff.second_factor", "staff", seat.staff.id)
            db.commit()
            after = signed_in(request, db, allow=ANY_STEP)
        return RedirectResponse(next_page(after.staff, after.step), status_code=303)

    return await run_in_threadpool(work)
