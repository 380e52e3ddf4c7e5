"""The managers' view of the web waiting room (booking.waiting_room): the line's length, the
admissions of the last minute, the wait; the mode, the rate and a release time to change. Every
change is audited. The line is in Redis: no Redis, nothing to show but that."""

from __future__ import annotations

from datetime import datetime
from typing import cast
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from redis.exceptions import RedisError
from sqlalchemy.orm import Session as DbSession

from agent_console.service import Seat
from agent_console.web import (
    MANAGERS,
    audit_event,
    refuse_my_numbers,
    render,
    signed_in,
    staff_form,
)
from booking.context import TOKYO
from booking.waiting_room import MODES, Mode, WaitingRoom
from booking.web import unit_of_work, whole_number

router = APIRouter(
    prefix="/console/manage", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)
MODE_NAMES = {
    "off": "使わない",
    "auto": "自動（入場の速さを超えたときだけ列を作る）",
    "on": "全員に列に並んでもらう（公開時刻の前から）",
}
MOST_PER_MINUTE = 100_000


def _room(request: Request) -> WaitingRoom | None:
    return cast(WaitingRoom | None, getattr(request.app.state, "waiting_room", None))


def _back(**said: str) -> Response:
    return RedirectResponse("/console/manage/waiting?" + urlencode(said), 303)


@router.get("/waiting", response_class=HTMLResponse)
def waiting_page(request: Request, done: str = "", error: str = "") -> Response:
    """The line now: mode, length, admitted in the last minute, the wait; the form to change."""
    room = _room(request)
    with unit_of_work(request) as db:
        seat = signed_in(request, db, *MANAGERS)
    line = room.line() if room is not None else None
    return render(
        request,
        "manage_waiting.html",
        seat,
        line=line,
        modes=MODE_NAMES,
        start=(
            datetime.fromtimestamp(line.start_at, TOKYO).strftime("%Y-%m-%d %H:%M")
            if line and line.start_at
            else ""
        ),
        done=done,
        error=error,
    )


@router.post("/waiting")
async def change_waiting(request: Request) -> Response:
    """Set the mode and the rate, and for 'on' the release time (Tokyo; empty: now)."""

    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        # Redis too: on the worker thread with the rest.
        room = _room(request)
        if room is None:
            return _back(error="待合室には Redis（MADOGUCHI_REDIS_URL）が必要です。")
        try:
            mode = _mode(form.get("mode", ""))
            per_minute = whole_number(form.get("per_minute", ""), MOST_PER_MINUTE, least=1)
            start = _start(form.get("start", "")) if mode == "on" else None
        except ValueError:
            return _back(error="入場の速さ（1分あたりの人数）と公開時刻の形をご確認ください。")
        try:
            line = room.set_line(mode=mode, per_minute=per_minute, start_at=start)
        except RedisError:
            line = room.line()
        if not line.reachable:
            return _back(error="Redis に接続できないため、変更できませんでした。")
        when = f", release {form.get('start')}" if start is not None else ""
        detail = f"{mode}, {per_minute}/min{when}"
        audit_event(db, seat, request, "manage.waiting_room", "waiting_room", mode, detail)
        db.commit()
        return _back(done=f"待合室を「{MODE_NAMES[mode]}」、1分あたり{per_minute}人にしました。")

    return await staff_form(request, *MANAGERS, act=act)


def _mode(value: str) -> Mode:
    for mode in MODES:
        if value == mode:
            return mode
    raise ValueError(value)


def _start(value: str) -> float | None:
    """A release time typed as Tokyo's (2027-01-09T10:00 or with a space); None: now."""
    if not value.strip():
        return None
    return datetime.fromisoformat(value.strip()).replace(tzinfo=TOKYO).timestamp()
