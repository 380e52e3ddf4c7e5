"""The lottery (抽選) in the console: managers keep chosen sessions for a lottery with an
application window and a draw time, and see each draw's record (the seed, the input's digest,
every result) with its publishable download; agents take applications on the phone. The draw
itself runs as a job at the draw time (booking.lottery_jobs). Every action is audited."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session as DbSession

from agent_console.service import Seat
from agent_console.web import (
    MANAGERS,
    NotAllowed,
    audit_event,
    catalogue,
    refuse_my_numbers,
    render,
    signed_in,
    staff_form,
)
from booking import lottery, lottery_jobs
from booking import service as booking
from booking.context import TOKYO
from booking.errors import BookingError
from booking.personal import FieldProblems
from booking.schemas import RowId
from booking.service import MemberInput, ResidentInput
from booking.web import unit_of_work, whole_number

router = APIRouter(
    prefix="/console", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)
TAKERS = ("agent", "counter_manager", "supervisor")
LISTED_DAYS = 31


def _when(value: str) -> datetime:
    """A datetime-local field (Tokyo time) as an aware time."""
    return datetime.fromisoformat(value).replace(tzinfo=TOKYO)


def _ids(values: Sequence[object]) -> list[int]:
    """Row ids ticked or chosen in a form (anything else left out), each once, in order."""
    found: list[int] = []
    for value in values:
        try:
            found.append(whole_number(value, least=1))
        except ValueError:
            continue
    return list(dict.fromkeys(found))


def _back(path: str, **said: str) -> Response:
    return RedirectResponse(path + ("?" + urlencode(said) if said else ""), 303)


# --- managers: lotteries and their records ------------------------------------------------------


@router.get("/manage/lotteries", response_class=HTMLResponse)
def lotteries_page(
    request: Request, venue: str = "main", first: str = "", done: str = "", error: str = ""
) -> Response:
    """Every lottery, and a form keeping a venue's coming sessions for a new one."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, *MANAGERS)
        venues, services = catalogue(db)
        if venue not in venues:
            raise NotAllowed
        today: date = db.info["booking"].today()
        try:
            start = date.fromisoformat(first) if first else today + timedelta(days=1)
        except ValueError:
            start = today + timedelta(days=1)
        sessions = [
            s
            for s in booking.sessions_between(
                db, venue_id=venue, start=start, end=start + timedelta(days=LISTED_DAYS)
            )
            if s.is_open
        ]
        every = lottery.lotteries(db)
    return render(
        request,
        "manage_lotteries.html",
        seat,
        venue=venue,
        first=start,
        venues=venues,
        services=services,
        sessions=sessions,
        lotteries=every,
        done=done,
        error=error,
    )


@router.post("/manage/lotteries")
async def create_lottery(request: Request) -> Response:
    session_ids = _ids((await request.form()).getlist("session"))

    def act(db: DbSession, seat: Seat, fields: dict[str, str]) -> Response:
        try:
            made = lottery.create_lottery(
                db,
                session_ids=session_ids,
                applications_from=_when(fields.get("applications_from", "")),
                applications_until=_when(fields.get("applications_until", "")),
                draw_at=_when(fields.get("draw_at", "")),
            )
        except (BookingError, ValueError) as refused:
            db.rollback()
            message = (
                refused.message("ja")
                if isinstance(refused, BookingError)
                else "日時の形をご確認ください（例：2027-01-05 09:00）。"
            )
            return _back("/console/manage/lotteries", error=message)
        detail = f"sessions {sorted(session_ids)}, draw {made.draw_at.isoformat()}"
        audit_event(db, seat, request, "lottery.create", "lottery", made.id, detail)
        db.commit()
        jobs = request.app.state.jobs
        if jobs is not None:  # without a queue, the housekeeping draws it when its time comes
            lottery_jobs.arm(jobs, lottery_id=made.id, at=made.draw_at)
        return _back(
            f"/console/manage/lotteries/{made.id}",
            done=f"抽選 {made.id} を作りました。"
            f"{len(made.slots)}枠は先着順の予約ができなくなりました。",
        )

    return await staff_form(request, *MANAGERS, act=act)


@router.get("/manage/lotteries/{lottery_id}", response_class=HTMLResponse)
def lottery_page(request: Request, lottery_id: RowId, done: str = "", error: str = "") -> Response:
    """A lottery: its times, its applications by number and their outcomes, and once drawn the
    record (seed, the input's digest, every result) the ward may publish."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, *MANAGERS)
        try:
            found = lottery.get_lottery(db, lottery_id=lottery_id)
        except BookingError:
            raise NotAllowed from None
        venues, services = catalogue(db)
        applications = lottery.applications_of(db, lottery_id=lottery_id)
        codes = {
            a.booking_id: booking.get_booking(db, booking_id=a.booking_id).code
            for a in applications
            if a.booking_id is not None
        }
        record = lottery.public_record(db, lottery_id=lottery_id)
        audit_event(db, seat, request, "lottery.view", "lottery", lottery_id)
        db.commit()
    return render(
        request,
        "manage_lottery.html",
        seat,
        lottery=found,
        times={s.id: s for s in found.slots},
        venues=venues,
        services=services,
        applications=applications,
        codes=codes,
        record=record,
        verified=record is not None and lottery.verify(record),
        done=done,
        error=error,
    )


@router.get("/manage/lotteries/{lottery_id}/record.json")
def lottery_record(request: Request, lottery_id: RowId) -> Response:
    """The draw's record as a file to publish: no personal data, enough to run it again."""
    with unit_of_work(request) as db:
        signed_in(request, db, *MANAGERS)
        record = lottery.public_record(db, lottery_id=lottery_id)
    if record is None:
        raise NotAllowed
    return Response(
        json.dumps(record, ensure_ascii=False, indent=1),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="lottery-{lottery_id}.json"'},
    )


@router.post("/manage/lotteries/{lottery_id}/release")
async def release_lottery(request: Request, lottery_id: RowId) -> Response:
    """After the draw: the seats no one won go back to first-come booking."""

    def act(db: DbSession, seat: Seat, fields: dict[str, str]) -> Response:
        try:
            count = lottery.release_seats(db, lottery_id=lottery_id)
        except BookingError as refused:
            db.rollback()
            return _back(f"/console/manage/lotteries/{lottery_id}", error=refused.message("ja"))
        audit_event(db, seat, request, "lottery.release", "lottery", lottery_id, f"{count} slots")
        db.commit()
        return _back(
            f"/console/manage/lotteries/{lottery_id}",
            done=f"{count}枠を先着順の予約に戻しました。",
        )

    return await staff_form(request, *MANAGERS, act=act)


# --- agents: applications taken on the phone ------------------------------------------------


@router.get("/lotteries", response_class=HTMLResponse)
def open_lotteries(request: Request, done: str = "") -> Response:
    """The lotteries taking applications now."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, *TAKERS)
        venues, services = catalogue(db)
        found = lottery.lotteries(db, accepting_only=True)
    return render(
        request,
        "lottery_apply.html",
        seat,
        lotteries=found,
        chosen=None,
        venues=venues,
        services=services,
        done=done,
        error="",
        most=lottery.MOST_PREFERENCES,
        max_party=db.info["booking"].rules.max_party_size,
    )


def _apply_page(
    request: Request, db: DbSession, lottery_id: int, error: str = "", done: str = ""
) -> Response:
    seat = signed_in(request, db, *TAKERS)
    try:
        chosen = lottery.get_lottery(db, lottery_id=lottery_id)
    except BookingError:
        raise NotAllowed from None
    venues, services = catalogue(db)
    return render(
        request,
        "lottery_apply.html",
        seat,
        lotteries=[],
        chosen=chosen,
        venues=venues,
        services=services,
        done=done,
        error=error,
        most=lottery.MOST_PREFERENCES,
        max_party=db.info["booking"].rules.max_party_size,
    )


@router.get("/lotteries/{lottery_id}/apply", response_class=HTMLResponse)
def apply_form(request: Request, lottery_id: RowId, done: str = "") -> Response:
    with unit_of_work(request) as db:
        return _apply_page(request, db, lottery_id, done=done)


@router.post("/lotteries/{lottery_id}/apply")
async def apply(request: Request, lottery_id: RowId) -> Response:
    """An agent applies for a caller's household (channel ``agent``)."""
    form = await request.form()
    notices = [str(v).strip() for v in form.getlist("notice_number") if str(v).strip()]
    wanted = _ids(form.getlist("preference"))

    def act(db: DbSession, seat: Seat, fields: dict[str, str]) -> Response:
        try:
            birth = date.fromisoformat(fields.get("birth_date", ""))
            made = lottery.apply(
                db,
                lottery_id=lottery_id,
                party=whole_number(fields.get("party") or len(notices) or 1, 100),
                resident=ResidentInput(
                    name_kana=fields.get("name_kana") or None,
                    phone=fields.get("phone", ""),
                    birth_date=birth,
                    language=fields.get("language", "ja"),
                    members=[MemberInput(n) for n in notices],
                ),
                preferences=wanted,
                channel="agent",
            )
        except (BookingError, ValueError) as refused:
            db.rollback()
            message = (
                refused.message("ja")
                if isinstance(refused, BookingError)
                else "生年月日・人数の形をご確認ください（例：1970-04-01）。"
            )
            if isinstance(refused, FieldProblems):
                message = " ".join(p.message("ja") for p in refused.problems.values())
            return _apply_page(request, db, lottery_id, error=message)
        audit_event(db, seat, request, "lottery.apply", "lottery_application", made.id)
        db.commit()
        return _back(
            f"/console/lotteries/{lottery_id}/apply",
            done=f"申込番号 {made.id} で受け付けました。抽選の後、結果をお知らせします。",
        )

    return await staff_form(request, *TAKERS, act=act)
