"""Staged release (段階的公開): a manager says when a range of days opens for booking, for
everyone or for a birth-year group first, at one venue or service or at all of them.

The rule lives in the seat statements themselves (``RELEASED`` joins the WHERE of every claim
and of the one-statement booking on PostgreSQL), so no channel can book or hold a seat of a day
before it opens: the statement just updates no row, and ``check_released`` then says why.
A day no release covers is open as before. A day some release covers is open to a resident
once one of those releases whose group includes them has opened; a hold, made before anyone
is known, needs one of them opened for someone (the booking from it checks the group again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from babel.dates import format_skeleton
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session as DbSession

from booking.base import UTCDateTime
from booking.context import TOKYO, context
from booking.errors import BookingError
from booking.languages import info
from booking.models import DayRelease, Service, Slot, Venue

# --- The rule, as SQL the seat statements embed ---------------------------------------------

_NOW = bindparam("now", type_=UTCDateTime())
# The resident's birth year; NULL for a hold (nobody known yet: any group's opening will do).
_BIRTH_YEAR = cast(bindparam("birth_year", type_=Integer()), Integer)
# True for a walk-in at the counter on the day: a release is about booking ahead.
_AT_COUNTER = bindparam("at_counter", type_=Boolean())


def _covers(r: type[DayRelease]) -> ColumnElement[bool]:
    return and_(
        r.slots_from <= Slot.starts_at,
        r.slots_until > Slot.starts_at,
        or_(r.venue_id.is_(None), r.venue_id == Slot.venue_id),
        or_(r.service_id.is_(None), r.service_id == Slot.service_id),
    )


_ONE: ColumnElement[int] = literal_column("1", Integer())
# No release covers the slot's day (no row: NULL, so 1), or one of them has opened for this
# birth year. One scalar subquery: the cheapest form to plan on the hot path.
_OPEN_FOR_ME = case(
    (
        and_(
            DayRelease.opens_at <= _NOW,
            or_(
                _BIRTH_YEAR.is_(None),
                and_(
                    or_(DayRelease.born_from.is_(None), DayRelease.born_from <= _BIRTH_YEAR),
                    or_(DayRelease.born_to.is_(None), DayRelease.born_to >= _BIRTH_YEAR),
                ),
            ),
        ),
        _ONE,
    ),
    else_=literal_column("0", Integer()),
)
RELEASED = or_(
    _AT_COUNTER,
    func.coalesce(select(func.max(_OPEN_FOR_ME)).where(_covers(DayRelease)).scalar_subquery(), 1)
    == 1,
)


def release_params(birth_year: int | None, channel: str) -> dict[str, object]:
    """The bind parameters of ``RELEASED`` for a claim (``now`` comes with the claim's own)."""
    return {"birth_year": birth_year, "at_counter": channel == "walk_in"}


# --- Why a claim was refused ------------------------------------------------------------------

WEEKDAYS_JA = "月火水木金土日"
WEEKDAYS_KO = "월화수목금토일"


def when_words(at: datetime) -> dict[str, str]:
    """An opening time as each language writes it: 12月15日(火) 9:00, Tue 15 Dec 9:00..."""
    local = at.astimezone(TOKYO)
    day = local.weekday()
    return {
        "opens_ja": f"{local.month}月{local.day}日({WEEKDAYS_JA[day]}) {local:%-H:%M}",
        "opens_en": f"{local:%a} {local.day} {local:%b} {local:%-H:%M}",
        "opens_ko": f"{local.month}월 {local.day}일({WEEKDAYS_KO[day]}) {local:%-H:%M}",
        # The other languages as Babel writes a day and a time for their locale.
        **{f"opens_{code}": _babel_when(local, code) for code in ("zh", "vi", "ne", "easy")},
    }


def _babel_when(local: datetime, code: str) -> str:
    locale = info(code).babel
    day = format_skeleton("MMMEd", local, locale=locale)
    return f"{day} {format_skeleton('Hm', local, locale=locale)}"


def _in_group(row: DayRelease, birth_year: int | None) -> bool:
    if birth_year is None:
        return True
    return (row.born_from is None or row.born_from <= birth_year) and (
        row.born_to is None or row.born_to >= birth_year
    )


def check_released(db: DbSession, *, slot_id: int, birth_year: int | None) -> None:
    """Refuse (``not_yet_open`` with the opening time, or ``not_yet_announced`` when no
    release of the day is for this resident's group) a slot whose day has not opened for
    them; nothing for an open day. Asked only after a seat statement refused."""
    rows = list(
        db.execute(
            select(DayRelease).join(Slot, _covers(DayRelease)).where(Slot.id == slot_id)
        ).scalars()
    )
    mine = [row for row in rows if _in_group(row, birth_year)]
    now = context(db).now()
    if not rows or any(row.opens_at <= now for row in mine):
        return
    if not mine:
        raise BookingError("not_yet_announced", field="slot_id")
    opens = min(row.opens_at for row in mine)
    raise BookingError("not_yet_open", field="slot_id", **when_words(opens))


# --- The managers' side -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseView:
    """A release as the managers' page and the start page show it."""

    id: int
    first_day: date
    last_day: date
    venue_id: str | None
    service_id: str | None
    born_from: int | None
    born_to: int | None
    opens_at: datetime

    @property
    def grouped(self) -> bool:
        return self.born_from is not None or self.born_to is not None


def _view(row: DayRelease) -> ReleaseView:
    return ReleaseView(
        row.id,
        row.slots_from.astimezone(TOKYO).date(),
        (row.slots_until - timedelta(days=1)).astimezone(TOKYO).date(),
        row.venue_id,
        row.service_id,
        row.born_from,
        row.born_to,
        row.opens_at,
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), TOKYO)


def add_release(
    db: DbSession,
    *,
    first_day: date,
    last_day: date,
    opens_at: datetime,
    venue_id: str | None = None,
    service_id: str | None = None,
    born_from: int | None = None,
    born_to: int | None = None,
) -> ReleaseView:
    """Open the days ``first_day``..``last_day`` for booking at ``opens_at`` (for one venue,
    service or birth-year group when given). Bookings already made stay."""
    if last_day < first_day:
        raise BookingError("release_days_reversed", field="last_day")
    if born_from is not None and born_to is not None and born_from > born_to:
        raise BookingError("release_years_reversed", field="born_to")
    if opens_at.tzinfo is None:
        raise ValueError("opens_at must be timezone-aware")
    if venue_id is not None and db.get(Venue, venue_id) is None:
        raise BookingError("unknown_venue", field="venue")
    if service_id is not None and db.get(Service, service_id) is None:
        raise BookingError("unknown_service", field="service")
    row = DayRelease(
        slots_from=_midnight(first_day),
        slots_until=_midnight(last_day + timedelta(days=1)),
        venue_id=venue_id,
        service_id=service_id,
        born_from=born_from,
        born_to=born_to,
        opens_at=opens_at,
        created_at=context(db).now(),
    )
    db.add(row)
    db.flush()
    return _view(row)


def remove_release(db: DbSession, *, release_id: int) -> ReleaseView:
    """Take a release away (its days are then open as if it had never been set, unless
    another release covers them); the release as it was."""
    row = db.get(DayRelease, release_id)
    if row is None:
        raise BookingError("release_not_found", field="release")
    view = _view(row)
    db.execute(delete(DayRelease).where(DayRelease.id == release_id))
    return view


def list_releases(db: DbSession, *, upcoming_only: bool = False) -> list[ReleaseView]:
    """Every release by opening time (``upcoming_only``: those not opened yet)."""
    query = select(DayRelease).order_by(DayRelease.opens_at, DayRelease.slots_from, DayRelease.id)
    if upcoming_only:
        query = query.where(DayRelease.opens_at > context(db).now())
    return [_view(row) for row in db.execute(query).scalars()]
