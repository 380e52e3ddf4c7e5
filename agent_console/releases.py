"""Counter managers' staged release (段階的公開): when a range of days opens for booking, for
everyone or a birth-year group first, at one venue or service or all. The engine enforces it on
every channel; this page sets it, lists it, and audits each change."""

from __future__ import annotations

from datetime import date, datetime, time
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session as DbSession

from agent_console.service import Seat
from agent_console.web import (
    MANAGERS,
    audit_event,
    catalogue,
    refuse_my_numbers,
    render,
    signed_in,
    staff_form,
)
from booking import service as booking
from booking.context import TOKYO
from booking.errors import BookingError
from booking.schemas import RowId
from booking.web import unit_of_work

router = APIRouter(
    prefix="/console/manage", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)


def _back(**said: str) -> Response:
    return RedirectResponse("/console/manage/releases?" + urlencode(said), 303)


@router.get("/releases", response_class=HTMLResponse)
def releases_page(request: Request, done: str = "", error: str = "") -> Response:
    """Every release, the next first, and the form to add one."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, *MANAGERS)
        venues, services = catalogue(db)
        releases = booking.list_releases(db)
        now = db.info["booking"].now()
        today = db.info["booking"].today()
    return render(
        request,
        "manage_releases.html",
        seat,
        releases=releases,
        venues=venues,
        services=services,
        now=now,
        today=today,
        done=done,
        error=error,
    )


def _year(value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    year = int(value)
    if not 1900 <= year <= 2100:
        raise ValueError(value)
    return year


def _describe(release: booking.ReleaseView) -> str:
    group = ""
    if release.grouped:
        group = f" born {release.born_from or ''}-{release.born_to or ''}"
    return (
        f"{release.first_day.isoformat()}..{release.last_day.isoformat()}"
        f" venue={release.venue_id or '*'} service={release.service_id or '*'}{group}"
        f" opens {release.opens_at.astimezone(TOKYO):%Y-%m-%d %H:%M}"
    )


@router.post("/releases")
async def add_release(request: Request) -> Response:
    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        try:
            first = date.fromisoformat(form.get("first", ""))
            opens_at = datetime.combine(
                date.fromisoformat(form.get("opens_day", "")),
                time.fromisoformat(form.get("opens_time", "")),
                TOKYO,
            )
            made = booking.add_release(
                db,
                first_day=first,
                last_day=date.fromisoformat(form.get("last", "") or form.get("first", "")),
                opens_at=opens_at,
                venue_id=form.get("venue") or None,
                service_id=form.get("service") or None,
                born_from=_year(form.get("born_from", "")),
                born_to=_year(form.get("born_to", "")),
            )
        except BookingError as refused:
            db.rollback()
            return _back(error=refused.message("ja"))
        except ValueError:
            db.rollback()
            return _back(
                error="日付・時刻・生まれ年の形をご確認ください（例：2027-01-09、09:00、1956）。"
            )
        audit_event(db, seat, request, "manage.release.add", "release", made.id, _describe(made))
        db.commit()
        local = made.opens_at.astimezone(TOKYO)
        return _back(
            done=f"{made.first_day:%m/%d}〜{made.last_day:%m/%d} の受付開始を "
            f"{local:%m/%d %H:%M} に設定しました。"
        )

    return await staff_form(request, *MANAGERS, act=act)


@router.post("/releases/{release_id}/remove")
async def remove_release(request: Request, release_id: RowId) -> Response:
    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        try:
            gone = booking.remove_release(db, release_id=release_id)
        except BookingError as refused:
            db.rollback()
            return _back(error=refused.message("ja"))
        audit_event(db, seat, request, "manage.release.remove", "release", gone.id, _describe(gone))
        db.commit()
        return _back(done="受付開始の設定を削除しました。")

    return await staff_form(request, *MANAGERS, act=act)
