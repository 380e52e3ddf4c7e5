"""The ward's calendar for counter managers: each venue's feeds, the import of the ward's
published holiday sessions and closures, and extra sessions or pop-up venues opened for a
range of days. Audited."""

from __future__ import annotations

from datetime import date, time
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session as DbSession
from starlette.datastructures import UploadFile

from agent_console.service import Seat
from agent_console.web import (
    MANAGERS,
    audit_event,
    catalogue,
    csrf_ok,
    refuse_my_numbers,
    render,
    signed_in,
    staff_form,
)
from booking import schedule
from booking.errors import BookingError
from booking.web import unit_of_work, whole_number
from calendar_sync import service as calendar
from calendar_sync.fetch import CalendarFetchFailed, fetch_calendar

router = APIRouter(
    prefix="/console/manage", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)


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
    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
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

    return await staff_form(request, *MANAGERS, act=act)
