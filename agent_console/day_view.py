"""The counter managers' day view: a venue's day, slot by slot; capacity changes, closures and
seat quotas that show first whom they strand, then keep those bookings on purpose or move
them to the nearest free time (each resident is told through the reminder pipeline).
Every action is audited."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session as DbSession

from agent_console.day_filter import NOON, read_filter
from agent_console.service import Seat
from agent_console.web import (
    MANAGERS,
    NotAllowed,
    audit_event,
    catalogue,
    local_time,
    refuse_my_numbers,
    render,
    signed_in,
    staff_form,
)
from booking import service as booking
from booking.errors import BookingError
from booking.personal import mask_phone
from booking.web import unit_of_work, whole_number

router = APIRouter(
    prefix="/console/manage", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)
ACTIONS = {
    "capacity": "定員を変更",
    "close": "受付を停止",
    "reopen": "受付を再開",
    "quota": "確保席を設定",
}


def day_or_today(value: str, db: DbSession) -> date:
    """The day asked for (YYYY-MM-DD), or today when none is given or it cannot be read."""
    today: date = db.info["booking"].today()
    try:
        return date.fromisoformat(value) if value else today
    except ValueError:
        return today


def _unreadable(day: str) -> bool:
    try:
        date.fromisoformat(day or "2000-01-01")
    except ValueError:
        return True
    return False


@router.get("", response_class=HTMLResponse)
def day_view(
    request: Request,
    venue: str = "main",
    day: str = "",
    done: str = "",
    start: Annotated[str, Query(alias="from")] = "",
    end: Annotated[str, Query(alias="to")] = "",
) -> Response:
    """A venue's day: every slot with its capacity, seats booked and held, open or closed;
    narrowed to some services and a time range if the manager asks (kept in the address)."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, *MANAGERS)
        chosen = day_or_today(day, db)
        venues, services = catalogue(db)
        if venue not in venues:
            raise NotAllowed
        slots = booking.slots_of_day(db, venue_id=venue, day=chosen)
        now = db.info["booking"].now()
    wanted = read_filter(
        services=request.query_params.getlist("service"),
        start=start,
        end=end,
        known={k: s.name_ja for k, s in services.items()},
    )
    notes = list(wanted.notes)
    if _unreadable(day):
        notes.insert(0, f"日付「{day[:20]}」を読めないため、{chosen.isoformat()}を表示しています。")
    where = [("venue", venue), ("day", chosen.isoformat())]
    return render(
        request,
        "manage_day.html",
        seat,
        venue=venue,
        day=chosen,
        slots=slots,
        shown=[s for s in slots if wanted.shows(s)],
        per_service=Counter(s.service_id for s in slots),
        wanted=wanted,
        notes=notes,
        shortcuts={
            name: "/console/manage?" + urlencode(where + wanted.with_times(a, b).query())
            for name, a, b in (("morning", None, NOON), ("afternoon", NOON, None))
        }
        | {"all": "/console/manage?" + urlencode(where)},
        now=now,
        venues=venues,
        services=services,
        done=done,
    )


@dataclass(frozen=True)
class Change:
    """The day view's form: which slots, what to do, and the manager's choice if asked."""

    slot_ids: list[int]
    action: str
    capacity: str
    reason: str
    venue: str
    day: str
    choice: str
    kept_phone: str
    kept_walk_in: str
    release: str
    release_hours: str
    view: list[tuple[str, str]]  # the day view's filter, to come back to the same rows


# The day view's filter fields, carried through the change form and back.
VIEW_FIELDS = ("service", "from", "to")


async def _change(request: Request) -> Change:
    form = await request.form()

    def field(name: str) -> str:
        return str(form.get(name, ""))

    return Change(
        slot_ids=[int(str(v)) for v in form.getlist("slot") if _count(str(v), 10**9) is not None],
        action=field("change"),
        capacity=field("capacity"),
        reason=field("reason"),
        venue=field("venue"),
        day=field("day"),
        choice=field("choice"),
        kept_phone=field("kept_phone"),
        kept_walk_in=field("kept_walk_in"),
        release=field("release"),
        release_hours=field("release_hours"),
        view=[(k, str(v)[:40]) for k in VIEW_FIELDS for v in form.getlist(k) if str(v)],
    )


# What the forms accept: the day view's seats, and how long before a slot kept seats go.
MAX_SEATS = 999
MAX_RELEASE_HOURS = 720


def _count(text: str, most: int) -> int | None:
    """A whole number from 0 to ``most`` typed in a form, or None."""
    try:
        return whole_number(text, most)
    except ValueError:
        return None


def _back(change: Change, said: str) -> Response:
    query = urlencode([("venue", change.venue), ("day", change.day), *change.view, ("done", said)])
    return RedirectResponse(f"/console/manage?{query}", 303)


@router.post("/change", response_class=HTMLResponse)
async def change(request: Request) -> Response:
    """Apply a change to the chosen slots. When it would strand bookings and the manager has
    not chosen yet, show exactly whom, and ask: keep them, or move them."""
    c = await _change(request)

    def act(db: DbSession, seat: Seat, _form: dict[str, str]) -> Response:
        return _apply_change(request, db, seat, c)

    return await staff_form(request, *MANAGERS, act=act)


def _apply_change(request: Request, db: DbSession, seat: Seat, c: Change) -> Response:
    """The change checked, then done: slots reopened, quotas set, or capacity and closures
    applied once the manager has said what becomes of the bookings they strand."""
    if c.action not in ACTIONS or not c.slot_ids:
        return _back(c, "時間枠を選んでください。")
    capacity = _count(c.capacity, MAX_SEATS)
    if c.action == "capacity" and capacity is None:
        return _back(c, f"定員は0から{MAX_SEATS}までの数字で入れてください。")
    if c.action == "reopen":
        booking.reopen_slots(db, slot_ids=c.slot_ids)
        audit_event(db, seat, request, "manage.reopen", "slots", _ids(c.slot_ids))
        db.commit()
        return _back(c, "受付を再開しました。")
    if c.action == "quota":
        return _set_quota(request, db, seat, c)
    over = booking.stranded(
        db, slot_ids=c.slot_ids, capacity=capacity if c.action == "capacity" else None
    )
    if over and c.choice not in ("keep", "move"):
        db.rollback()
        return _ask_whom(request, db, seat, c, over)
    return _resize_or_close(request, db, seat, c, over, capacity)


def _ask_whom(
    request: Request, db: DbSession, seat: Seat, c: Change, over: list[booking.BookingView]
) -> Response:
    """The bookings the change would strand, and the question: keep them, or move them."""
    venues, services = catalogue(db)
    return render(
        request,
        "manage_stranded.html",
        seat,
        over=over,
        slot_ids=c.slot_ids,
        action=c.action,
        capacity=c.capacity,
        reason=c.reason,
        venue=c.venue,
        day=c.day,
        venues=venues,
        services=services,
        mask=mask_phone,
        label=ACTIONS[c.action],
        view=c.view,
        view_query=urlencode([("venue", c.venue), ("day", c.day), *c.view]),
    )


def _resize_or_close(
    request: Request,
    db: DbSession,
    seat: Seat,
    c: Change,
    over: list[booking.BookingView],
    capacity: int | None,
) -> Response:
    """The stranded bookings moved if the manager chose so, then the capacity set or the slots
    closed; audited and committed."""
    moved = _move_or_keep(db, over, c.slot_ids) if c.choice == "move" else []
    # What stays over is what the engine finds under the slots' lock: the bookings kept
    # on purpose, those with no free time to move to, and any made since the preview.
    if c.action == "capacity":
        kept = booking.set_capacity(
            db, slot_ids=c.slot_ids, capacity=int(capacity or 0), keep_stranded=True
        )
    else:
        kept = booking.close_slots(
            db, slot_ids=c.slot_ids, reason=c.reason or "臨時休止", keep_stranded=True
        )
    detail = (
        f"slots {_ids(c.slot_ids)}; {c.action} {c.capacity or c.reason}; "
        f"moved {_ids([b.id for b, _ in moved])}; kept {_ids([b.id for b in kept])}"
    )
    audit_event(db, seat, request, f"manage.{c.action}", "slots", _ids(c.slot_ids), detail)
    venue_names = {v.id: v.name_ja for v in booking.list_venues(db)}
    db.commit()
    return _back(c, _what_was_done(c.action, moved, kept, venue_names))


def _what_was_done(
    action: str,
    moved: list[tuple[booking.BookingView, booking.SlotView]],
    kept: list[booking.BookingView],
    venue_names: dict[str, str],
) -> str:
    """The day view's line after a change: what was done, where the moved bookings went (so the
    counter can answer a resident who calls about it), how many were kept."""
    said = f"{ACTIONS[action]}しました。"
    if moved:
        said += f"{len(moved)}件の予約を近い時間へ移し、お知らせを送ります。"
        went = [
            f"{b.code}→{local_time(t.starts_at)[5:]} {venue_names.get(t.venue_id, '')}"
            for b, t in moved[:MOVES_LISTED]
        ]
        more = f"ほか{len(moved) - MOVES_LISTED}件" if len(moved) > MOVES_LISTED else ""
        said += "移した先：" + "、".join(went) + (f"、{more}" if more else "") + "。"
    if kept:
        said += f"{len(kept)}件の予約はそのまま残しました。"
    return said


def _set_quota(request: Request, db: DbSession, seat: Seat, c: Change) -> Response:
    """Seats kept for the phone line and for walk-ins, released at a set time before each
    slot or when its session opens on the day. Nobody is stranded: a quota limits only what
    is claimed from now on."""
    phone = _count(c.kept_phone or "0", MAX_SEATS)
    walk_in = _count(c.kept_walk_in or "0", MAX_SEATS)
    hours = _count(c.release_hours if c.release == "hours" else "0", MAX_RELEASE_HOURS)
    if phone is None or walk_in is None or hours is None:
        return _back(
            c,
            f"確保する席数は0から{MAX_SEATS}、解放の時間は0から{MAX_RELEASE_HOURS}までの"
            "数字で入れてください。",
        )
    release_hours = hours if c.release == "hours" else None
    try:
        booking.set_quota(
            db,
            slot_ids=c.slot_ids,
            phone=phone,
            walk_in=walk_in,
            release_hours_before=release_hours,
        )
    except BookingError as refused:
        db.rollback()
        return _back(c, refused.message("ja"))
    when = "当日の開庁時" if release_hours is None else f"{release_hours}時間前"
    detail = f"slots {_ids(c.slot_ids)}; phone {phone}, walk-in {walk_in}, released {when}"
    audit_event(db, seat, request, "manage.quota", "slots", _ids(c.slot_ids), detail)
    db.commit()
    if phone == walk_in == 0:
        return _back(c, "確保席をなくしました。すべての受付方法で予約できます。")
    return _back(c, f"電話用{phone}席・来庁用{walk_in}席を確保しました（{when}に解放）。")


MOVES_LISTED = 20  # a change that moves more lists the first ones, and how many more


def _move_or_keep(
    db: DbSession, over: list[booking.BookingView], avoid: list[int]
) -> list[tuple[booking.BookingView, booking.SlotView]]:
    """Each stranded booking to the nearest free time (same venue first); those with none
    near stay where they are (the change then keeps them on purpose)."""
    moved: list[tuple[booking.BookingView, booking.SlotView]] = []
    for stranded in over:
        target = booking.nearest_free_slot(db, booking_id=stranded.id, avoid=avoid)
        if target is None:
            continue
        try:
            with db.begin_nested():
                booking.relocate(db, booking_id=stranded.id, slot_id=target.id)
        except BookingError:  # taken in the meantime: keep rather than fail the whole change
            continue
        moved.append((stranded, target))
    return moved


def _ids(ids: list[int]) -> str:
    return ",".join(str(i) for i in ids)
