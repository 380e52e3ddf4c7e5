"""One's own account (changing the password, the second factor) and what a supervisor does for
someone else's (a new temporary password, a reset second factor). Every change is audited;
a temporary password is shown once, on the page that answers the request, never in a URL."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from agent_console import credentials
from agent_console.routes import (
    ANY_STEP,
    _csrf_ok,
    _db,
    _log,
    _render,
    _seat,
    next_page,
    refuse_my_numbers,
)
from agent_console.service import StaffError
from booking.schemas import RowId

router = APIRouter(
    prefix="/console", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)


async def _form(request: Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await request.form()).items()}


# --- one's own password -------------------------------------------------------------------------


@router.get("/account/password", response_class=HTMLResponse)
def password_form(request: Request) -> Response:
    with _db(request) as db:
        seat = _seat(request, db, allow=frozenset({"password"}))
    return _render(request, "password.html", seat, forced=seat.step == "password", error=None)


@router.post("/account/password", response_class=HTMLResponse)
async def password_change(request: Request) -> Response:
    form = await _form(request)

    def work() -> Response:
        # The database and argon2: on a worker thread, never the event loop.
        with _db(request) as db:
            seat = _seat(request, db, allow=frozenset({"password"}))
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
            try:
                credentials.change_password(
                    db,
                    staff_id=seat.staff.id,
                    current=form.get("current", ""),
                    new=form.get("new", ""),
                    again=form.get("again", ""),
                )
            except StaffError as refused:
                db.rollback()
                return _render(
                    request,
                    "password.html",
                    seat,
                    status_code=422,
                    forced=seat.step == "password",
                    error=str(refused),
                )
            _log(db, seat, request, "staff.password_change", "staff", seat.staff.id)
            db.commit()
            after = _seat(request, db, allow=ANY_STEP)
        return RedirectResponse(next_page(after.staff, after.step), status_code=303)

    return await run_in_threadpool(work)


# --- a supervisor, for someone else -------------------------------------------------------------


@router.post("/staff/{staff_id}/password", response_class=HTMLResponse)
async def password_reset(request: Request, staff_id: RowId) -> Response:
    """A new temporary password, shown once on this page: the person replaces it when they next
    sign in, and any session of theirs ends now."""
    form = await _form(request)

    def work() -> Response:
        with _db(request) as db:
            seat = _seat(request, db, "supervisor")
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
            try:
                if staff_id == seat.staff.id:
                    raise StaffError("自分のパスワードは「パスワードの変更」で変えてください。")
                person, password = credentials.reset_password(db, staff_id=staff_id)
            except StaffError as refused:
                db.rollback()
                return RedirectResponse(_staff_page(str(refused)), status_code=303)
            _log(db, seat, request, "staff.password_reset", "staff", staff_id)
            db.commit()
        return _render(request, "password_reset.html", seat, person=person, password=password)

    return await run_in_threadpool(work)


def _staff_page(error: str) -> str:
    return "/console/staff?" + urlencode({"error": error})


# --- the second factor ----------------------------------------------------------------------------

CODE_STEP = frozenset({"code"})
ENROL_STEP = frozenset({"enrol"})


@router.get("/login/code", response_class=HTMLResponse)
def code_form(request: Request) -> Response:
    with _db(request) as db:
        seat = _seat(request, db, allow=CODE_STEP)
    if seat.step != "code":
        return RedirectResponse(next_page(seat.staff, seat.step), status_code=303)
    return _render(request, "second_factor.html", None, csrf=seat.csrf, error=None)


@router.post("/login/code", response_class=HTMLResponse)
async def code_given(request: Request) -> Response:
    """The code from the authenticator app, or a recovery code (each used once)."""
    form = await _form(request)

    def work() -> Response:
        with _db(request) as db:
            seat = _seat(request, db, allow=CODE_STEP)
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", None, status_code=403)
            try:
                used = credentials.give_code(
                    db, session_id=seat.session_id, code=form.get("code", "")
                )
            except StaffError as refused:
                db.commit()  # the wrong code counts towards the lock-out
                _log(db, seat, request, "staff.second_factor_failed", "staff", seat.staff.id)
                db.commit()
                return _render(
                    request,
                    "second_factor.html",
                    None,
                    status_code=401,
                    csrf=seat.csrf,
                    error=str(refused),
                )
            if used == "recovery":
                left = credentials.recovery_codes_left(db, staff_id=seat.staff.id)
                _log(
                    db,
                    seat,
                    request,
                    "staff.recovery_code_used",
                    "staff",
                    seat.staff.id,
                    f"left={left}",
                )
            else:
                _log(db, seat, request, "staff.second_factor", "staff", seat.staff.id)
            db.commit()
            after = _seat(request, db, allow=ANY_STEP)
        return RedirectResponse(next_page(after.staff, after.step), status_code=303)

    return await run_in_threadpool(work)


@router.get("/account/second-factor", response_class=HTMLResponse)
def enrol_form(request: Request) -> Response:
    """Setting up the authenticator: the QR code of the otpauth URI and the secret as text."""
    with _db(request) as db:
        seat = _seat(request, db, allow=ENROL_STEP)
        if credentials.has_second_factor(db, staff_id=seat.staff.id):
            left = credentials.recovery_codes_left(db, staff_id=seat.staff.id)
            return _render(request, "second_factor_status.html", seat, left=left)
        enrolment = credentials.start_enrolment(db, staff_id=seat.staff.id)
        db.commit()
    return _render(
        request, "enrol.html", seat, enrolment=enrolment, forced=seat.step == "enrol", error=None
    )


@router.post("/account/second-factor", response_class=HTMLResponse)
async def enrol_confirm(request: Request) -> Response:
    """The first code confirms the set-up; the ten recovery codes are shown once."""
    form = await _form(request)

    def work() -> Response:
        with _db(request) as db:
            seat = _seat(request, db, allow=ENROL_STEP)
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
            if credentials.has_second_factor(db, staff_id=seat.staff.id):  # set up already
                left = credentials.recovery_codes_left(db, staff_id=seat.staff.id)
                return _render(request, "second_factor_status.html", seat, left=left)
            try:
                codes = credentials.confirm_enrolment(
                    db, staff_id=seat.staff.id, code=form.get("code", "")
                )
            except StaffError as refused:
                db.rollback()
                enrolment = credentials.start_enrolment(db, staff_id=seat.staff.id)
                db.commit()
                return _render(
                    request,
                    "enrol.html",
                    seat,
                    status_code=422,
                    enrolment=enrolment,
                    forced=seat.step == "enrol",
                    error=str(refused),
                )
            _log(db, seat, request, "staff.second_factor_enrol", "staff", seat.staff.id)
            db.commit()
            after = _seat(request, db, allow=ANY_STEP)
        return _render(
            request, "recovery_codes.html", after, codes=codes, next=next_page(after.staff, "")
        )

    return await run_in_threadpool(work)


@router.post("/staff/{staff_id}/second-factor", response_class=HTMLResponse)
async def second_factor_reset(request: Request, staff_id: RowId) -> Response:
    """For someone who lost their authenticator and recovery codes: they set up a new one at
    their next sign-in (and are signed out now)."""
    form = await _form(request)

    def work() -> Response:
        with _db(request) as db:
            seat = _seat(request, db, "supervisor")
            if not _csrf_ok(seat, form):
                return _render(request, "expired.html", seat, status_code=403)
            try:
                if staff_id == seat.staff.id:
                    raise StaffError(
                        "自分の2段階認証は、別のスーパーバイザーに再設定を依頼してください。"
                    )
                person = credentials.reset_second_factor(db, staff_id=staff_id)
            except StaffError as refused:
                db.rollback()
                return RedirectResponse(_staff_page(str(refused)), status_code=303)
            _log(db, seat, request, "staff.second_factor_reset", "staff", staff_id)
            db.commit()
        return RedirectResponse(
            "/console/staff?" + urlencode({"reset_factor": person.id}), status_code=303
        )

    return await run_in_threadpool(work)
