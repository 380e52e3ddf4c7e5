"""One's own account (changing the password, setting up the second factor) and what a supervisor
does for someone else's on the staff page (accounts made, roles changed, deactivated; a new
temporary password, a reset second factor). Every change is audited; a temporary password is
shown once, on the page that answers the request, never in a URL."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session as DbSession

from agent_console import credentials
from agent_console import service as staff
from agent_console.models import ROLES
from agent_console.service import Seat, StaffError
from agent_console.web import (
    ANY_STEP,
    audit_event,
    next_page,
    refuse_my_numbers,
    render,
    signed_in,
    staff_form,
)
from booking.schemas import RowId
from booking.web import row_id, unit_of_work

router = APIRouter(
    prefix="/console", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)


# --- one's own password ---------------------------------------------------------------------------


@router.get("/account/password", response_class=HTMLResponse)
def password_form(request: Request) -> Response:
    with unit_of_work(request) as db:
        seat = signed_in(request, db, allow=frozenset({"password"}))
    return render(request, "password.html", seat, forced=seat.step == "password", error=None)


@router.post("/account/password", response_class=HTMLResponse)
async def password_change(request: Request) -> Response:
    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        # argon2 too: on the worker thread with the rest.
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
            return render(
                request,
                "password.html",
                seat,
                status_code=422,
                forced=seat.step == "password",
                error=str(refused),
            )
        audit_event(db, seat, request, "staff.password_change", "staff", seat.staff.id)
        db.commit()
        after = signed_in(request, db, allow=ANY_STEP)
        return RedirectResponse(next_page(after.staff, after.step), status_code=303)

    return await staff_form(request, act=act, allow=frozenset({"password"}))


# --- a supervisor, for someone else ---------------------------------------------------------------


@router.post("/staff/{staff_id}/password", response_class=HTMLResponse)
async def password_reset(request: Request, staff_id: RowId) -> Response:
    """A new temporary password, shown once on this page: the person replaces it when they next
    sign in, and any session of theirs ends now."""

    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        try:
            if staff_id == seat.staff.id:
                raise StaffError("自分のパスワードは「パスワードの変更」で変えてください。")
            person, password = credentials.reset_password(db, staff_id=staff_id)
        except StaffError as refused:
            db.rollback()
            return RedirectResponse(_staff_page(str(refused)), status_code=303)
        audit_event(db, seat, request, "staff.password_reset", "staff", staff_id)
        db.commit()
        return render(request, "password_reset.html", seat, person=person, password=password)

    return await staff_form(request, "supervisor", act=act)


def _staff_page(error: str) -> str:
    return "/console/staff?" + urlencode({"error": error})


# --- one's own second factor ----------------------------------------------------------------------

ENROL_STEP = frozenset({"enrol"})


@router.get("/account/second-factor", response_class=HTMLResponse)
def enrol_form(request: Request) -> Response:
    """Setting up the authenticator: the QR code of the otpauth URI and the secret as text."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, allow=ENROL_STEP)
        if credentials.has_second_factor(db, staff_id=seat.staff.id):
            left = credentials.recovery_codes_left(db, staff_id=seat.staff.id)
            return render(request, "second_factor_status.html", seat, left=left)
        enrolment = credentials.start_enrolment(db, staff_id=seat.staff.id)
        db.commit()
    return render(
        request, "enrol.html", seat, enrolment=enrolment, forced=seat.step == "enrol", error=None
    )


@router.post("/account/second-factor", response_class=HTMLResponse)
async def enrol_confirm(request: Request) -> Response:
    """The first code confirms the set-up; the ten recovery codes are shown once."""

    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        if credentials.has_second_factor(db, staff_id=seat.staff.id):  # set up already
            left = credentials.recovery_codes_left(db, staff_id=seat.staff.id)
            return render(request, "second_factor_status.html", seat, left=left)
        try:
            codes = credentials.confirm_enrolment(
                db, staff_id=seat.staff.id, code=form.get("code", "")
            )
        except StaffError as refused:
            db.rollback()
            enrolment = credentials.start_enrolment(db, staff_id=seat.staff.id)
            db.commit()
            return render(
                request,
                "enrol.html",
                seat,
                status_code=422,
                enrolment=enrolment,
                forced=seat.step == "enrol",
                error=str(refused),
            )
        audit_event(db, seat, request, "staff.second_factor_enrol", "staff", seat.staff.id)
        db.commit()
        after = signed_in(request, db, allow=ANY_STEP)
        return render(
            request, "recovery_codes.html", after, codes=codes, next=next_page(after.staff, "")
        )

    return await staff_form(request, act=act, allow=ENROL_STEP)


@router.post("/staff/{staff_id}/second-factor", response_class=HTMLResponse)
async def second_factor_reset(request: Request, staff_id: RowId) -> Response:
    """For someone who lost their authenticator and recovery codes: they set up a new one at
    their next sign-in (and are signed out now)."""

    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        try:
            if staff_id == seat.staff.id:
                raise StaffError(
                    "自分の2段階認証は、別のスーパーバイザーに再設定を依頼してください。"
                )
            person = credentials.reset_second_factor(db, staff_id=staff_id)
        except StaffError as refused:
            db.rollback()
            return RedirectResponse(_staff_page(str(refused)), status_code=303)
        audit_event(db, seat, request, "staff.second_factor_reset", "staff", staff_id)
        db.commit()
        return RedirectResponse(
            "/console/staff?" + urlencode({"reset_factor": person.id}), status_code=303
        )

    return await staff_form(request, "supervisor", act=act)


# --- staff accounts (supervisors) -----------------------------------------------------------------


@router.get("/staff", response_class=HTMLResponse)
def staff_list(
    request: Request, error: str | None = None, created: str = "", reset_factor: str = ""
) -> Response:
    """The accounts; after creating one, who it is and what to hand over."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "supervisor")
        people = staff.list_staff(db)
    return render(
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

    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
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
            return render(
                request,
                "staff.html",
                seat,
                status_code=422,
                people=people,
                roles=ROLES,
                error=str(refused),
                values=form,
            )
        audit_event(db, seat, request, f"staff.{action}", "staff", subject, what)
        db.commit()
        if action == "create":
            return RedirectResponse(f"/console/staff?created={subject}", status_code=303)
        return RedirectResponse("/console/staff", status_code=303)

    return await staff_form(request, "supervisor", act=act)
