"""The calendar on SQLite and PostgreSQL: holidays, the year-end closure, the sample ward's
sessions, extra sessions, closed days and the booking window."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from booking import schedule, service
from booking.context import TOKYO, context
from booking.errors import BookingError
from booking.models import Closure, Slot, Venue
from booking.models import Session as SessionRow
from booking.service import MemberInput, ResidentInput
from tests.conftest import FakeClock

RESIDENT = ResidentInput(
    name_kana="カレンダー タロウ", phone="090-2345-6789", birth_date=date(1970, 5, 5)
)
PICKUP_RESIDENT = ResidentInput(
    name_kana="カレンダー ハナコ",
    phone="03-5273-4111",
    birth_date=date(1972, 2, 2),
    members=[MemberInput("XY9-876543")],
)
CUTOFF_VENUES = {"enokicho", "totsuka", "kashiwagi"}  # cutoff_time "17:00" in sample_ward.json


def tokyo(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=TOKYO)


def bookable_days(
    db: Session, *, service_id: str, venue_id: str | None, start: date, end: date
) -> set[date]:
    """Days on which availability lists at least one slot."""
    found = service.availability(
        db, service_id=service_id, venue_id=venue_id, start=start, end=end, limit=5000
    )
    return {s.starts_at.astimezone(TOKYO).date() for s in found}


def listed(
    db: Session, *, service_id: str, venue_id: str | None, day: date
) -> list[service.SlotView]:
    return service.availability(
        db, service_id=service_id, venue_id=venue_id, start=day, end=day, limit=5000
    )


def regular_slots(db: Session, venue_id: str, service_id: str, day: date) -> list[Slot]:
    """The slots of the day's regular sessions, straight from the tables."""
    return list(
        db.execute(
            select(Slot)
            .join(SessionRow, SessionRow.id == Slot.session_id)
            .where(
                SessionRow.venue_id == venue_id,
                SessionRow.service_id == service_id,
                SessionRow.day == day,
                SessionRow.kind == "regular",
            )
            .order_by(Slot.starts_at)
        ).scalars()
    )


def regular_days(db: Session, venue_id: str, service_id: str, start: date, end: date) -> set[date]:
    """Days with a regular session (open or closed since), straight from the tables."""
    return set(
        db.execute(
            select(SessionRow.day).where(
                SessionRow.venue_id == venue_id,
                SessionRow.service_id == service_id,
                SessionRow.kind == "regular",
                SessionRow.day.between(start, end),
            )
        ).scalars()
    )


def regular_slot_ids(db: Session, day: date) -> set[int]:
    return set(
        db.execute(
            select(Slot.id)
            .join(SessionRow, SessionRow.id == Slot.session_id)
            .where(SessionRow.day == day, SessionRow.kind == "regular")
        ).scalars()
    )


def venues_listed(db: Session, service_id: str, day: date) -> set[str]:
    return {s.venue_id for s in listed(db, service_id=service_id, venue_id=None, day=day)}


def book(db: Session, slot_id: int, service_id: str = "pin_reset") -> service.BookingView:
    resident = PICKUP_RESIDENT if service_id == "pickup" else RESIDENT
    return service.book(db, slot_id=slot_id, party=1, resident=resident, channel="web")


def refusal(db: Session, slot_id: int, service_id: str = "pin_reset") -> str:
    with pytest.raises(BookingError) as refused:
        book(db, slot_id, service_id)
    return refused.value.code


# --- closed_reason ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "day",
    [date(2026, 12, 29), date(2026, 12, 31), date(2027, 1, 1), date(2027, 1, 3)],
)
def test_the_year_end_closure(day: date) -> None:
    assert schedule.closed_reason(day, "main", set()) == "year_end"


@pytest.mark.parametrize("day", [date(2026, 12, 28), date(2027, 1, 4), date(2026, 12, 15)])
def test_days_around_the_year_end_are_open(day: date) -> None:
    assert schedule.closed_reason(day, "main", set()) is None


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2027, 1, 11), "成人の日"),
        (date(2026, 5, 6), "振替休日"),
        (date(2026, 11, 23), "勤労感謝の日"),
        (date(2027, 2, 11), "建国記念の日"),
    ],
)
def test_national_holidays_are_closed(day: date, name: str) -> None:
    reason = schedule.closed_reason(day, "yotsuya", set())
    assert reason is not None and reason.startswith("holiday") and name in reason


def test_an_ordinary_weekday_is_open() -> None:
    assert schedule.closed_reason(date(2026, 12, 16), "main", set()) is None
    assert schedule.closed_reason(date(2027, 1, 12), "main", set()) is None


def test_ad_hoc_closures_for_one_venue_or_all() -> None:
    day = date(2026, 12, 24)
    one: set[tuple[str | None, date]] = {("yotsuya", day)}
    assert schedule.closed_reason(day, "yotsuya", one) == "closure"
    assert schedule.closed_reason(day, "main", one) is None
    assert schedule.closed_reason(day + timedelta(days=1), "yotsuya", one) is None
    every: set[tuple[str | None, date]] = {(None, day)}
    assert schedule.closed_reason(day, "yotsuya", every) == "closure"
    assert schedule.closed_reason(day, "main", every) == "closure"


# --- The generated sample schedule --------------------------------------------------------
# Other test modules commit to the same session-wide databases (bookings, closures), so these
# tests read the generated sessions from the tables and compare availability before and after.

WINDOW = (date(2026, 12, 16), date(2027, 1, 29))


def test_the_main_office_has_pickup_slots_on_every_working_weekday(db: Session) -> None:
    day = date(2026, 12, 16)
    slots = regular_slots(db, "main", "pickup", day)
    # 08:30 to 17:00 in 15-minute slots of 6 seats.
    assert len(slots) == 34
    assert slots[0].starts_at == tokyo(day, time(8, 30))
    assert slots[-1].ends_at == tokyo(day, time(17, 0))
    assert {s.capacity for s in slots} == {6}
    days = regular_days(db, "main", "pickup", *WINDOW)
    weekdays = {
        WINDOW[0] + timedelta(days=i)
        for i in range((WINDOW[1] - WINDOW[0]).days + 1)
        if (WINDOW[0] + timedelta(days=i)).weekday() < 5
    }
    closed = {date(2026, 12, 29), date(2026, 12, 30), date(2026, 12, 31), date(2027, 1, 1)}
    closed.add(date(2027, 1, 11))  # 成人の日
    assert {d for d in days if d.weekday() < 5} == weekdays - closed
    # Wednesday 16 to Tuesday 22 December on sale, but not the weekend (20th: 3rd Sunday).
    shown = bookable_days(
        db, service_id="pickup", venue_id="main", start=day, end=date(2026, 12, 22)
    )
    assert shown == {date(2026, 12, d) for d in (16, 17, 18, 21, 22)}


@pytest.mark.parametrize(
    "day",
    [date(2026, 12, 29) + timedelta(days=i) for i in range(6)] + [date(2027, 1, 11)],
)
def test_no_regular_sessions_on_closed_days(db: Session, day: date) -> None:
    count = db.execute(
        select(func.count())
        .select_from(SessionRow)
        .where(SessionRow.day == day, SessionRow.kind == "regular")
    ).scalar_one()
    assert count == 0
    shown = listed(db, service_id="pickup", venue_id=None, day=day)
    assert not {s.id for s in shown} & regular_slot_ids(db, day)


def test_pickup_on_the_second_and_fourth_sunday_only(db: Session) -> None:
    sundays = {d for d in regular_days(db, "main", "pickup", *WINDOW) if d.weekday() == 6}
    assert sundays == {date(2026, 12, 27), date(2027, 1, 10), date(2027, 1, 24)}
    holiday_session = regular_slots(db, "main", "pickup", date(2027, 1, 10))
    assert len(holiday_session) == 32  # 09:00 to 17:00 in 15 minutes
    assert holiday_session[0].starts_at == tokyo(date(2027, 1, 10), time(9, 0))
    for day in (date(2026, 12, 20), date(2027, 1, 17), date(2027, 1, 3)):
        assert regular_slots(db, "main", "pickup", day) == []
    # Only the pickup line opens on those Sundays, and only at the main office.
    sunday_lines = db.execute(
        select(SessionRow.venue_id, SessionRow.service_id)
        .where(SessionRow.day == date(2026, 12, 27), SessionRow.kind == "regular")
        .distinct()
    ).all()
    assert [tuple(r) for r in sunday_lines] == [("main", "pickup")]
    shown = bookable_days(
        db, service_id="pickup", venue_id="main", start=date(2026, 12, 19), end=date(2026, 12, 27)
    )
    assert date(2026, 12, 27) in shown and date(2026, 12, 20) not in shown


@pytest.mark.parametrize(
    ("day", "week"),
    [
        (date(2027, 2, 1), 1),
        (date(2027, 2, 7), 1),
        (date(2027, 2, 8), 2),
        (date(2027, 2, 14), 2),
        (date(2027, 2, 21), 3),
        (date(2027, 2, 28), 4),
        (date(2027, 1, 31), 5),
    ],
)
def test_week_of_month_counts_the_weekday_in_its_month(day: date, week: int) -> None:
    assert schedule.week_of_month(day) == week


def test_the_second_and_fourth_sundays_of_a_later_month(db: Session) -> None:
    start, end = date(2031, 3, 1), date(2031, 3, 31)
    made = schedule.extend_schedule(db, first=start, through=end)
    assert made.sessions > 0
    sundays = {d for d in regular_days(db, "main", "pickup", start, end) if d.weekday() == 6}
    assert sundays == {date(2031, 3, 9), date(2031, 3, 23)}


def test_every_venue_has_its_weekday_sessions(db: Session) -> None:
    day = date(2026, 12, 17)
    venues = set(
        db.execute(
            select(SessionRow.venue_id).where(
                SessionRow.day == day,
                SessionRow.service_id == "pickup",
                SessionRow.kind == "regular",
            )
        ).scalars()
    )
    assert venues == {v.id for v in service.list_venues(db, service_id="pickup")}
    assert len(venues) == 11
    assert len(regular_slots(db, "yotsuya", "pickup", day)) == 17  # 30 minutes, 08:30-17:00
    assert len(regular_slots(db, "yotsuya", "application_help", day)) == 0  # not offered there


# --- extend_schedule ----------------------------------------------------------------------


def test_extend_schedule_is_idempotent(db: Session, clock: FakeClock) -> None:
    assert schedule.extend_schedule(db) == schedule.ScheduleResult(sessions=0, slots=0)
    start, end = date(2031, 3, 3), date(2031, 3, 9)  # Monday to Sunday, beyond every test
    grown = schedule.extend_schedule(db, first=start, through=end)
    # 5 weekdays: 4 lines at the main office and 3 at each of the 10 branches; Sunday 9 March
    # is the 2nd Sunday (main office pickup).
    assert grown.sessions == 5 * (4 + 3 * 10) + 1
    again = schedule.extend_schedule(db, first=start, through=end)
    assert again == schedule.ScheduleResult(sessions=0, slots=0)
    assert len(regular_slots(db, "main", "pickup", end)) == 32
    duplicates = db.execute(
        select(SessionRow.venue_id, SessionRow.service_id, SessionRow.day, SessionRow.opens)
        .group_by(SessionRow.venue_id, SessionRow.service_id, SessionRow.day, SessionRow.opens)
        .having(func.count() > 1)
    ).all()
    assert duplicates == []
    clock.advance(days=7)  # the horizon moves on by a week: only the new days are made
    moved = schedule.extend_schedule(db)
    assert moved.sessions > 0
    assert schedule.extend_schedule(db).sessions == 0


def test_a_closure_set_ahead_keeps_the_day_out_of_the_schedule(db: Session) -> None:
    monday, tuesday = date(2031, 3, 3), date(2031, 3, 4)
    assert schedule.close_day(db, day=monday, reason="庁舎点検") == 0  # not generated yet
    assert schedule.close_day(db, day=tuesday, reason="停電", venue_id="yotsuya") == 0
    schedule.extend_schedule(db, first=monday, through=tuesday)
    assert db.execute(select(SessionRow.id).where(SessionRow.day == monday)).first() is None
    assert regular_slots(db, "yotsuya", "pickup", tuesday) == []
    assert len(regular_slots(db, "main", "pickup", tuesday)) == 34
    assert len(regular_slots(db, "tansumachi", "pickup", tuesday)) == 17


# --- Extra sessions -----------------------------------------------------------------------


def test_an_extra_session_opens_on_a_closed_day(db: Session) -> None:
    day = date(2027, 1, 2)
    assert schedule.closed_reason(day, "main", set()) == "year_end"
    session = open_holiday_pickup(db, day, time(10, 0), time(12, 0), seats=3)
    assert session.kind == "holiday" and session.status == "open"
    slots = [
        s
        for s in listed(db, service_id="pickup", venue_id="main", day=day)
        if s.starts_at < tokyo(day, time(12, 0)) and s.ends_at > tokyo(day, time(10, 0))
    ]
    assert [s.starts_at for s in slots] == [
        tokyo(day, time(10, 0)) + timedelta(minutes=15 * i) for i in range(8)
    ]
    assert {s.remaining for s in slots} == {3}
    booking = book(db, slots[0].id, "pickup")
    assert booking.status == "booked" and booking.starts_at == tokyo(day, time(10, 0))
    again = {s.id: s.remaining for s in listed(db, service_id="pickup", venue_id="main", day=day)}
    assert again[slots[0].id] == 2


def open_holiday_pickup(
    db: Session, day: date, opens: time, closes: time, *, seats: int = 2, kind: str = "holiday"
) -> SessionRow:
    return schedule.open_extra_session(
        db,
        venue_id="main",
        service_id="pickup",
        day=day,
        opens=opens,
        closes=closes,
        slot_minutes=15,
        seats=seats,
        kind=kind,
    )


def session_slots(db: Session, session_id: int) -> int:
    count = db.execute(
        select(func.count()).select_from(Slot).where(Slot.session_id == session_id)
    ).scalar_one()
    return int(count)


@pytest.mark.parametrize(
    ("opens", "closes"),
    [
        (time(11, 0), time(13, 0)),  # overlaps the end
        (time(9, 0), time(10, 15)),  # overlaps the start
        (time(10, 30), time(11, 0)),  # inside
        (time(9, 0), time(13, 0)),  # around
        (time(10, 0), time(12, 0)),  # the same hours
    ],
)
def test_an_overlapping_extra_session_is_refused(db: Session, opens: time, closes: time) -> None:
    day = date(2031, 1, 2)
    first = open_holiday_pickup(db, day, time(10, 0), time(12, 0))
    with pytest.raises(BookingError) as refused:
        open_holiday_pickup(db, day, opens, closes)
    assert refused.value.code == "session_overlaps"
    sessions = db.execute(select(SessionRow.id).where(SessionRow.day == day)).scalars().all()
    assert sessions == [first.id]
    assert session_slots(db, first.id) == 8


def test_adjacent_sessions_and_other_lines_do_not_overlap(db: Session) -> None:
    day = date(2031, 1, 2)
    made = [
        schedule.open_extra_session(
            db,
            venue_id=venue_id,
            service_id=service_id,
            day=day,
            opens=opens,
            closes=closes,
            slot_minutes=30,
            seats=1,
        )
        for venue_id, service_id, opens, closes in (
            ("main", "pickup", time(10, 0), time(12, 0)),
            ("main", "pickup", time(12, 0), time(13, 0)),  # right after
            ("main", "pickup", time(8, 0), time(10, 0)),  # right before
            ("main", "pin_reset", time(10, 0), time(12, 0)),  # another service
            ("yotsuya", "pickup", time(10, 0), time(12, 0)),  # another venue
        )
    ]
    assert [session_slots(db, s.id) for s in made] == [4, 2, 4, 4, 4]


def test_an_extra_session_cannot_overlap_the_regular_hours(db: Session) -> None:
    day = date(2026, 12, 16)
    with pytest.raises(BookingError) as refused:
        open_holiday_pickup(db, day, time(16, 0), time(19, 0))
    assert refused.value.code == "session_overlaps"
    evening = open_holiday_pickup(db, day, time(17, 0), time(19, 0), kind="extra")
    assert evening.kind == "extra"
    late = [
        s.starts_at
        for s in listed(db, service_id="pickup", venue_id="main", day=day)
        if s.starts_at >= tokyo(day, time(17, 0))
    ]
    assert late == [tokyo(day, time(17, 0)) + timedelta(minutes=15 * i) for i in range(8)]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"venue_id": "nowhere"}, "unknown_venue"),
        ({"service_id": "nothing"}, "unknown_service"),
        ({"opens": time(12, 0), "closes": time(12, 0)}, "invalid_request"),
        ({"slot_minutes": 0}, "invalid_request"),
    ],
)
def test_bad_extra_sessions_are_refused(db: Session, change: dict[str, object], code: str) -> None:
    fields: dict[str, object] = {
        "venue_id": "main",
        "service_id": "pickup",
        "day": date(2031, 1, 2),
        "opens": time(10, 0),
        "closes": time(12, 0),
        "slot_minutes": 15,
        "seats": 2,
        **change,
    }
    with pytest.raises(BookingError) as refused:
        schedule.open_extra_session(db, **fields)  # type: ignore[arg-type]
    assert refused.value.code == code


# --- Closing a day ------------------------------------------------------------------------


def test_closing_a_day_at_one_venue(db: Session) -> None:
    day = date(2026, 12, 24)
    regular = regular_slots(db, "yotsuya", "pickup", day)
    assert len(regular) == 17  # 08:30 to 17:00 in 30 minutes
    before = listed(db, service_id="pickup", venue_id="yotsuya", day=day)
    assert before, "the sample ward's yotsuya pickup slots should be on sale"
    elsewhere = {v: listed(db, service_id="pickup", venue_id=v, day=day) for v in ("main", "okubo")}
    evening = schedule.open_extra_session(
        db,
        venue_id="yotsuya",
        service_id="pickup",
        day=day,
        opens=time(17, 0),
        closes=time(18, 0),
        slot_minutes=30,
        seats=2,
        kind="extra",
    )
    closed = schedule.close_day(db, day=day, reason="停電工事", venue_id="yotsuya")
    assert closed == 17 * 3  # pickup, pin_reset and cert_renewal
    after = listed(db, service_id="pickup", venue_id="yotsuya", day=day)
    assert [s.starts_at for s in after] == [tokyo(day, time(17, 0)), tokyo(day, time(17, 30))]
    assert listed(db, service_id="pin_reset", venue_id="yotsuya", day=day) == []
    assert refusal(db, before[0].id, "pickup") == "slot_closed"
    assert book(db, after[0].id, "pickup").status == "booked"
    # Other venues are untouched.
    for venue_id, slots in elsewhere.items():
        assert listed(db, service_id="pickup", venue_id=venue_id, day=day) == slots
    sessions = db.execute(
        select(SessionRow.kind, SessionRow.status, SessionRow.closed_reason).where(
            SessionRow.venue_id == "yotsuya", SessionRow.day == day
        )
    ).all()
    assert sorted(tuple(r) for r in sessions) == sorted(
        [("regular", "closed", "停電工事")] * 3 + [("extra", "open", None)]
    )
    assert evening.status == "open"
    closure = db.execute(
        select(Closure).where(Closure.day == day, Closure.venue_id == "yotsuya")
    ).scalar_one()
    assert closure.reason == "停電工事"


def test_closing_a_day_everywhere(db: Session) -> None:
    day = date(2026, 12, 25)
    regular = regular_slot_ids(db, day)
    assert len(regular) > 17 * 3 * 10
    next_working_day = day + timedelta(days=3)
    unaffected = venues_listed(db, "pickup", next_working_day)
    assert schedule.close_day(db, day=day, reason="システム障害") == len(regular)
    for service_id in ("pickup", "application_help", "pin_reset", "cert_renewal"):
        shown = listed(db, service_id=service_id, venue_id=None, day=day)
        assert not {s.id for s in shown} & regular
    still_open = db.execute(
        select(func.count()).select_from(Slot).where(Slot.id.in_(regular), Slot.is_open.is_(True))
    ).scalar_one()
    assert still_open == 0
    assert venues_listed(db, "pickup", next_working_day) == unaffected
    assert len(unaffected) >= 10


def test_a_booked_slot_on_a_closed_day_stays_booked(db: Session) -> None:
    day = date(2026, 12, 22)
    slot_id = listed(db, service_id="pin_reset", venue_id="yotsuya", day=day)[0].id
    booking = book(db, slot_id)
    schedule.close_day(db, day=day, reason="臨時休業", venue_id="yotsuya")
    kept = service.get_booking(db, booking_id=booking.id)
    assert kept.status == "booked" and kept.slot_id == slot_id
    slot = db.get(Slot, slot_id)
    assert slot is not None
    db.refresh(slot)
    assert slot.is_open is False and slot.booked >= 1


def test_closing_an_unknown_venue_is_refused(db: Session) -> None:
    with pytest.raises(BookingError) as refused, db.begin_nested():
        schedule.close_day(db, day=date(2026, 12, 24), reason="typo", venue_id="yotuya")
    assert refused.value.code == "unknown_venue"


# --- The booking window -------------------------------------------------------------------


def test_today_is_refused_and_tomorrow_is_bookable(db: Session) -> None:
    today, tomorrow = date(2026, 12, 15), date(2026, 12, 16)
    now = tokyo(today, time(10, 0))
    later_today = [s for s in regular_slots(db, "main", "pin_reset", today) if s.starts_at > now]
    assert later_today, "the sample ward has main office slots this afternoon"
    assert refusal(db, later_today[0].id) == "outside_booking_window"
    assert listed(db, service_id="pin_reset", venue_id="main", day=today) == []
    first = listed(db, service_id="pin_reset", venue_id="main", day=tomorrow)[0]
    assert first.starts_at.astimezone(TOKYO).date() == tomorrow
    assert book(db, first.id).starts_at == first.starts_at


def test_nothing_is_listed_or_bookable_after_the_last_day(db: Session) -> None:
    last = date(2027, 1, 29)  # 45 days after 2026-12-15
    made = schedule.extend_schedule(db, first=last + timedelta(days=1), through=date(2027, 2, 5))
    assert made.sessions > 0
    days = bookable_days(
        db, service_id="pin_reset", venue_id="main", start=date(2027, 1, 25), end=date(2027, 2, 5)
    )
    assert max(days) == last
    beyond = regular_slots(db, "main", "pin_reset", date(2027, 2, 1))[0]
    assert refusal(db, beyond.id) == "outside_booking_window"
    on_last = listed(db, service_id="pin_reset", venue_id="main", day=last)[-1]
    assert book(db, on_last.id).status == "booked"


def test_the_window_follows_the_clock(db: Session, clock: FakeClock) -> None:
    last = date(2027, 1, 29)
    slot_id = listed(db, service_id="pin_reset", venue_id="main", day=last)[0].id
    clock.set(tokyo(date(2026, 12, 14), time(23, 59)))  # 46 days before
    assert listed(db, service_id="pin_reset", venue_id="main", day=last) == []
    assert refusal(db, slot_id) == "outside_booking_window"
    clock.set(tokyo(date(2026, 12, 15), time(0, 0)))
    assert book(db, slot_id).status == "booked"


@pytest.mark.parametrize("venue_id", sorted(CUTOFF_VENUES))
def test_the_cutoff_closes_the_next_day_at_five(
    db: Session, clock: FakeClock, venue_id: str
) -> None:
    venue = db.get(Venue, venue_id)
    assert venue is not None and venue.cutoff_time == time(17, 0)
    ctx = context(db)
    tomorrow = date(2026, 12, 16)

    clock.set(tokyo(date(2026, 12, 15), time(16, 59)))
    assert service.first_bookable_day(ctx, venue.cutoff_time) == tomorrow
    on_sale = listed(db, service_id="pin_reset", venue_id=venue_id, day=tomorrow)
    assert on_sale, f"{venue_id} should sell {tomorrow} before its cut-off"

    clock.set(tokyo(date(2026, 12, 15), time(17, 0)))
    assert service.first_bookable_day(ctx, venue.cutoff_time) == date(2026, 12, 17)
    assert listed(db, service_id="pin_reset", venue_id=venue_id, day=tomorrow) == []
    assert listed(db, service_id="pin_reset", venue_id=venue_id, day=date(2026, 12, 17)) != []
    assert refusal(db, on_sale[0].id) == "outside_booking_window"

    clock.set(tokyo(date(2026, 12, 15), time(16, 59, 59)))
    assert book(db, on_sale[0].id).status == "booked"


def test_a_venue_without_a_cutoff_still_takes_the_next_day(db: Session, clock: FakeClock) -> None:
    tomorrow = date(2026, 12, 16)
    main = db.get(Venue, "main")
    assert main is not None and main.cutoff_time is None
    clock.set(tokyo(date(2026, 12, 15), time(16, 59)))
    before = venues_listed(db, "pickup", tomorrow)
    assert {"main"} | CUTOFF_VENUES <= before
    clock.set(tokyo(date(2026, 12, 15), time(17, 0)))
    assert service.first_bookable_day(context(db), None) == tomorrow
    assert venues_listed(db, "pickup", tomorrow) == before - CUTOFF_VENUES
    clock.set(tokyo(date(2026, 12, 15), time(23, 59)))
    slot = listed(db, service_id="pin_reset", venue_id="main", day=tomorrow)[0]
    assert book(db, slot.id).status == "booked"


def test_the_day_turns_at_midnight_in_tokyo(db: Session, clock: FakeClock) -> None:
    ctx = context(db)
    clock.set(tokyo(date(2026, 12, 15), time(23, 59)))
    assert service.first_bookable_day(ctx, None) == date(2026, 12, 16)
    assert service.first_bookable_day(ctx, time(17, 0)) == date(2026, 12, 17)
    clock.set(tokyo(date(2026, 12, 16), time(0, 0)))  # 15:00 UTC the day before
    assert service.first_bookable_day(ctx, None) == date(2026, 12, 17)
    assert service.first_bookable_day(ctx, time(17, 0)) == date(2026, 12, 17)
