"""The call queue (callers waiting for a person, callback requests, who is on duty), kept up to
date by server-sent events; the phone an agent takes calls on this shift; the wallboard."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session as DbSession

from agent_console import service as staff
from agent_console.agent_state_pages import REFUSALS, queue_states, wallboard_states
from agent_console.service import Seat, StaffError
from agent_console.web import (
    SESSION_COOKIE,
    audit_event,
    local_time,
    refuse_my_numbers,
    render,
    signed_in,
    staff_form,
    templates,
)
from booking.context import TOKYO
from booking.web import unit_of_work
from ivr import service as calls

router = APIRouter(
    prefix="/console", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)


@dataclass(frozen=True)
class InTurn:
    """One place in the agents' single order: a caller waiting on the line, or a callback that
    kept its caller's place; by when each first called (entered the queue)."""

    first_called: datetime
    call: calls.WaitingCall | None = None
    callback: calls.CallbackView | None = None


def in_turn(waiting: list[calls.WaitingCall], callbacks: list[calls.CallbackView]) -> list[InTurn]:
    """Waiting callers and callbacks in one order, by when each first called (a tie: the
    caller on the line first, who is still paying for the call)."""
    places = [InTurn(w.enqueued_at, call=w) for w in waiting]
    places += [InTurn(c.place_at or c.requested_at, callback=c) for c in callbacks]
    return sorted(places, key=lambda p: (p.first_called, p.call is None))


def _clock_time(now: datetime) -> Callable[[datetime], str]:
    """HH:MM in Tokyo; with the date when it is not today's."""
    today = now.astimezone(TOKYO).date()

    def shown(at: datetime) -> str:
        local = at.astimezone(TOKYO)
        return local.strftime("%H:%M" if local.date() == today else "%m/%d %H:%M")

    return shown


def _queue_context(db: DbSession, seat: Seat, request: Request) -> dict[str, Any]:
    states = queue_states(db, request, seat)  # first: it closes wrap-ups past their limit
    now = db.info["booking"].now()
    waiting = calls.waiting_calls(db)
    callbacks = calls.open_callbacks(db)
    return {
        **states,
        "waiting": waiting,
        "callbacks": callbacks,
        "in_turn": in_turn(waiting, callbacks),
        "clock": _clock_time(now),
        "on_duty": staff.on_duty(db, busy_ids=calls.agents_on_calls(db)),
        "waited": lambda at: _minutes(now - at),
        "csrf": seat.csrf,
        "can_answer": seat.staff.can("agent", "supervisor"),
        "raised_hands": calls.raised_hands(db) if seat.staff.can("supervisor") else 0,
    }


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    """The queue: callers waiting for a person, and callback requests; kept up to date by the
    stream below, without reloading."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db)
        context = _queue_context(db, seat, request)
        mine = calls.my_open_call(db, staff_id=seat.staff.id)
    return render(
        request,
        "home.html",
        seat,
        taken=request.query_params.get("taken"),
        requeued=request.query_params.get("requeued"),
        refused=REFUSALS.get(request.query_params.get("refused", "")),
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

    def check_signed_in() -> None:
        with unit_of_work(request) as db:
            signed_in(request, db)

    await run_in_threadpool(check_signed_in)
    token = request.cookies.get(SESSION_COOKIE)
    tick: float = getattr(request.app.state, "console_tick_seconds", QUEUE_TICK_SECONDS)

    def snapshot() -> str | None:
        with unit_of_work(request) as db:
            seat = staff.session_for(db, token)
            db.commit()
            if seat is None or seat.step:
                return None
            context = _queue_context(db, seat, request)  # closes wrap-ups past their limit
            mine = calls.my_open_call(db, staff_id=seat.staff.id)
            if mine is not None:  # a call was put through to this agent: pop its screen
                return f"pop:/console/calls/{mine}"
            fragment = templates.get_template("_queue.html").render(local=local_time, **context)
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


def _minutes(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    return f"{seconds // 60}分{seconds % 60:02d}秒"


@router.post("/me/phone")
async def my_phone(request: Request) -> Response:
    """The phone this agent takes calls on for this shift (a desk phone or extension)."""

    def act(db: DbSession, seat: Seat, form: dict[str, str]) -> Response:
        try:
            staff.set_desk_phone(db, staff_id=seat.staff.id, phone=form.get("phone", ""))
        except StaffError as refused:
            db.rollback()  # the queue again, saying why (not in the URL: it is a phone form)
            context = _queue_context(db, seat, request)
            mine = calls.my_open_call(db, staff_id=seat.staff.id)
            return render(
                request,
                "home.html",
                seat,
                status_code=422,
                taken=None,
                refused=None,
                phone_error=str(refused),
                mine=mine,
                **context,
            )
        audit_event(db, seat, request, "staff.desk_phone", "staff", seat.staff.id)
        db.commit()
        return RedirectResponse("/console/", status_code=303)

    return await staff_form(request, "agent", "supervisor", act=act)


# --- the supervisor's wallboard ---------------------------------------------------------------


@router.get("/wallboard", response_class=HTMLResponse)
def wallboard(request: Request) -> Response:
    """Today's queue at a glance, and by hour; refreshed every 15 seconds."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "supervisor", "counter_manager")
        board = calls.wallboard(db)
        callback_ages = calls.callbacks_by_age(db)
        states = wallboard_states(db, request)
    return render(
        request,
        "wallboard.html",
        seat,
        board=board,
        callback_ages=callback_ages,
        age=_age,
        **states,
        target=calls.SERVICE_LEVEL_SECONDS,
        pct=lambda v: "－" if v is None else f"{v * 100:.0f}%",
        secs=lambda v: "－" if v is None else f"{v:.0f}秒",
    )


def _age(seconds: float | None) -> str:
    """An age as the wallboard shows it: minutes, or hours and minutes."""
    if seconds is None:
        return "－"
    minutes = int(seconds // 60)
    return f"{minutes}分" if minutes < 60 else f"{minutes // 60}時間{minutes % 60:02d}分"
