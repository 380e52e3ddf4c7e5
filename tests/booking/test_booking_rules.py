"""One rule book, two paths. On PostgreSQL a booking of a slot is one statement (``_BOOK_PG``,
booking/making.py) whose WHERE repeats in SQL what the step-by-step path (SQLite, and every
booking from a hold) checks in Python. Each rule below is put in front of both paths on
PostgreSQL, and both must answer alike: the same refusal (type, code, field, parameters, the
body a client gets) or the same booking with the same seats taken.

The rules are listed from the statement itself: every condition of its WHERE must be named by
some case here (``test_every_condition_of_the_statement_has_a_case``), so a condition added to
the statement without a case beside it fails; a case whose paths disagree fails too.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from booking import lottery, making, schedule, service
from booking.context import TOKYO
from booking.errors import BookingError
from booking.models import Slot, Venue
from booking.service import MemberInput, ResidentInput
from tests.booking.test_fairness import notice
from tests.conftest import FREE_TIMES, FakeClock, make_context

HOUSEHOLD = ResidentInput(
    name_kana="ルール タロウ", phone="090-3300-0001", birth_date=date(1960, 2, 2)
)
OTHERS = ResidentInput(
    name_kana="ホカノ ハナコ", phone="090-3300-0002", birth_date=date(1961, 3, 3)
)
FIRST_DAY = date(2027, 1, 12)  # inside the booking window of the tests' clock (2026-12-15)


def pickup(*numbers: str | None, phone: str = "090-3300-0003") -> ResidentInput:
    return ResidentInput(
        name_kana="ウケトリ サブロウ",
        phone=phone,
        birth_date=date(1970, 7, 7),
        members=[MemberInput(n) for n in numbers],
    )


def slot_on(db: Session, day: date, seats: int = 2, service_id: str = "application_help") -> int:
    """A slot of this test's own at the main office on ``day`` or the first day after it with
    a free time (other tests' committed slots take times too)."""
    for offset in range(14):
        on = day + timedelta(days=offset)
        for at in reversed(FREE_TIMES):  # late first: a minute before is the same day
            closes = (datetime.combine(on, at) + timedelta(minutes=30)).time()
            try:
                with db.begin_nested():
                    made = schedule.open_extra_session(
                        db,
                        venue_id="main",
                        service_id=service_id,
                        day=on,
                        opens=at,
                        closes=closes,
                        slot_minutes=30,
                        seats=seats,
                        kind="extra",
                    )
            except BookingError as exc:
                if exc.code != "session_overlaps":
                    raise
                continue
            return int(db.execute(select(Slot.id).where(Slot.session_id == made.id)).scalar_one())
    raise AssertionError("no free time for a slot")


def starts(db: Session, slot_id: int) -> datetime:
    found = db.execute(select(Slot.starts_at).where(Slot.id == slot_id)).scalar_one()
    return found.astimezone(TOKYO)


def book_now(db: Session, slot_id: int, resident: ResidentInput, party: int = 1) -> int:
    return service.book(db, slot_id=slot_id, party=party, resident=resident, channel="web").id


# --- The situations ----------------------------------------------------------------------------
#
# Each builds its situation in the test's transaction and returns book()'s arguments.

Setup = Callable[[Session, FakeClock], dict[str, Any]]


def _plain(seats: int = 2, party: int = 1, channel: str = "web") -> Setup:
    def setup(db: Session, clock: FakeClock) -> dict[str, Any]:
        return {"slot_id": slot_on(db, FIRST_DAY, seats), "party": party, "channel": channel}

    return setup


def _no_such_slot(db: Session, clock: FakeClock) -> dict[str, Any]:
    return {"slot_id": 2_000_000_000}


def _closed(db: Session, clock: FakeClock) -> dict[str, Any]:
    slot = slot_on(db, FIRST_DAY)
    service.close_slots(db, slot_ids=[slot], reason="rules")
    return {"slot_id": slot}


def _in_lottery(db: Session, clock: FakeClock) -> dict[str, Any]:
    args = {"slot_id": slot_on(db, FIRST_DAY, service_id="pickup"), "resident": pickup(notice())}
    _to_lottery(db, clock, args)
    return args


def _to_lottery(db: Session, clock: FakeClock, args: dict[str, Any]) -> None:
    session = db.execute(select(Slot.session_id).where(Slot.id == args["slot_id"])).scalar_one()
    now = clock()
    lottery.create_lottery(
        db,
        session_ids=[session],
        applications_from=now - timedelta(minutes=1),
        applications_until=now + timedelta(days=1),
        draw_at=now + timedelta(days=2),
    )


def _taken(db: Session, clock: FakeClock) -> dict[str, Any]:
    slot = slot_on(db, FIRST_DAY, seats=1)
    book_now(db, slot, OTHERS)
    return {"slot_id": slot}


def _held(lapsed: bool) -> Setup:
    def setup(db: Session, clock: FakeClock) -> dict[str, Any]:
        slot = slot_on(db, FIRST_DAY, seats=1)
        service.create_hold(db, slot_id=slot, seats=1, channel="ivr")
        if lapsed:
            clock.advance(minutes=db.info["booking"].rules.hold_minutes + 1)
        return {"slot_id": slot}

    return setup


def _quota(phone: int, walk_in: int, channel: str, hours_before: int = 24) -> Setup:
    def setup(db: Session, clock: FakeClock) -> dict[str, Any]:
        slot = slot_on(db, FIRST_DAY, seats=1)
        service.set_quota(
            db,
            slot_ids=[slot],
            phone=phone,
            walk_in=walk_in,
            release_hours_before=hours_before,
        )
        return {"slot_id": slot, "channel": channel}

    return setup


def _clock_at(day_shift: int, at: time | None = None, cutoff: time | None = None) -> Setup:
    """The clock ``day_shift`` days from the slot's day (at ``at``, or a minute before the
    slot's own time), the main office with this daily cut-off."""

    def setup(db: Session, clock: FakeClock) -> dict[str, Any]:
        slot = slot_on(db, FIRST_DAY)
        begins = starts(db, slot)
        day = begins.date() + timedelta(days=day_shift)
        when = begins + timedelta(days=day_shift, minutes=-1)
        if at is not None:
            when = datetime.combine(day, at, TOKYO)
        db.execute(update(Venue).where(Venue.id == "main").values(cutoff_time=cutoff))
        clock.set(when)
        return {"slot_id": slot}

    return setup


def _just_begun(db: Session, clock: FakeClock) -> dict[str, Any]:
    slot = slot_on(db, FIRST_DAY)
    clock.set(starts(db, slot))  # the very moment it starts: no longer ahead
    return {"slot_id": slot}


def _released(opens_in: timedelta, born: tuple[int | None, int | None] = (None, None)) -> Setup:
    def setup(db: Session, clock: FakeClock) -> dict[str, Any]:
        slot = slot_on(db, FIRST_DAY)
        day = starts(db, slot).date()
        service.add_release(
            db,
            first_day=day,
            last_day=day,
            opens_at=clock().astimezone(TOKYO) + opens_in,
            born_from=born[0],
            born_to=born[1],
        )
        return {"slot_id": slot}

    return setup


def _mine_later(db: Session, clock: FakeClock) -> dict[str, Any]:
    """Open for another group already; for the household's own only next week."""
    slot = slot_on(db, FIRST_DAY)
    day, now = starts(db, slot).date(), clock().astimezone(TOKYO)
    service.add_release(db, first_day=day, last_day=day, opens_at=now, born_from=1980)
    later = now + timedelta(days=7)
    service.add_release(db, first_day=day, last_day=day, opens_at=later, born_to=1979)
    return {"slot_id": slot}


def _pickup_with(numbers: int, party: int = 1, blank: bool = False) -> Setup:
    """A pickup for ``party`` giving ``numbers`` notice numbers (and one member without, when
    ``blank``)."""

    def setup(db: Session, clock: FakeClock) -> dict[str, Any]:
        slot = slot_on(db, FIRST_DAY, seats=3, service_id="pickup")
        given: list[str | None] = [notice() for _ in range(numbers)]
        resident = pickup(*given, *([None] if blank else []))
        return {"slot_id": slot, "party": party, "resident": resident}

    return setup


def _bad_phone_and_no_notice(db: Session, clock: FakeClock) -> dict[str, Any]:
    slot = slot_on(db, FIRST_DAY, service_id="pickup")
    resident = pickup(None, phone="12")
    return {"slot_id": slot, "resident": resident}


def _notice_elsewhere(
    then: Callable[[Session, int], None] | None = None, other_service: str = "pickup"
) -> Setup:
    """The household's notice number already on another booking (of ``other_service``),
    after ``then`` was done to that booking."""

    def setup(db: Session, clock: FakeClock) -> dict[str, Any]:
        number = notice()
        first = slot_on(db, FIRST_DAY, service_id=other_service)
        earlier = book_now(db, first, pickup(number, phone="090-3300-0004"))
        if then is not None:
            then(db, earlier)
        slot = slot_on(db, FIRST_DAY, service_id="pickup")
        return {"slot_id": slot, "resident": pickup(number)}

    return setup


def _notice_on_a_past_pickup(db: Session, clock: FakeClock) -> dict[str, Any]:
    number = notice()
    first = slot_on(db, FIRST_DAY, service_id="pickup")
    book_now(db, first, pickup(number, phone="090-3300-0004"))
    day = starts(db, first).date()
    clock.set(datetime.combine(day + timedelta(days=1), time(10), TOKYO))
    slot = slot_on(db, day + timedelta(days=3), service_id="pickup")
    return {"slot_id": slot, "resident": pickup(number)}


def _and(first: Setup, then: Callable[[Session, FakeClock, dict[str, Any]], None]) -> Setup:
    """Two rules broken at once: which one a refusal names must not depend on the path."""

    def setup(db: Session, clock: FakeClock) -> dict[str, Any]:
        args = first(db, clock)
        then(db, clock, args)
        return args

    return setup


def _fill(db: Session, clock: FakeClock, args: dict[str, Any]) -> None:
    _fill_with_pickups(db, args["slot_id"])


def _fill_with_pickups(db: Session, slot: int) -> None:
    while True:
        left = db.execute(
            select(Slot.capacity - Slot.booked - Slot.held).where(Slot.id == slot)
        ).scalar_one()
        if left == 0:
            return
        book_now(db, slot, pickup(notice(), phone=f"090-3301-{left:04d}"))


def _close(db: Session, clock: FakeClock, args: dict[str, Any]) -> None:
    service.close_slots(db, slot_ids=[args["slot_id"]], reason="rules")


def _bad_phone(db: Session, clock: FakeClock, args: dict[str, Any]) -> None:
    resident = args.get("resident", HOUSEHOLD)
    args["resident"] = ResidentInput(
        name_kana=resident.name_kana,
        phone="12",
        birth_date=resident.birth_date,
        members=resident.members,
    )


def _unreleased(db: Session, clock: FakeClock, args: dict[str, Any]) -> None:
    day = starts(db, args["slot_id"]).date()
    opens = clock().astimezone(TOKYO) + timedelta(days=3)
    service.add_release(db, first_day=day, last_day=day, opens_at=opens)


def _phone_at_its_limit(db: Session, clock: FakeClock) -> dict[str, Any]:
    db.info["booking"] = make_context(clock, max_active_per_phone=1)
    book_now(db, slot_on(db, FIRST_DAY), HOUSEHOLD)
    return {"slot_id": slot_on(db, FIRST_DAY)}


def _retried_after_closing(db: Session, clock: FakeClock) -> dict[str, Any]:
    """A request that booked, sent again with its retry key once the slot has closed."""
    slot, key = slot_on(db, FIRST_DAY), "rules-retry-after-closing"
    service.book(db, slot_id=slot, party=1, resident=HOUSEHOLD, channel="web", idempotency_key=key)
    service.close_slots(db, slot_ids=[slot], reason="rules", keep_stranded=True)
    return {"slot_id": slot, "idempotency_key": key}


def _status(status: str) -> Callable[[Session, int], None]:
    def then(db: Session, booking_id: int) -> None:
        service.set_status(db, booking_id=booking_id, status=status)

    return then


def _cancelled(db: Session, booking_id: int) -> None:
    service.cancel_booking(db, booking_id=booking_id)


def _cards_refused(db: Session, clock: FakeClock, args: dict[str, Any]) -> None:
    """The ward holds pickups to its list of cards that have arrived (booking.cards)."""
    db.info["booking"] = dataclasses.replace(db.info["booking"], ready_cards="refuse")


def _card_arrived(venue: str) -> Callable[[Session, FakeClock, dict[str, Any]], None]:
    def then(db: Session, clock: FakeClock, args: dict[str, Any]) -> None:
        _cards_refused(db, clock, args)
        for member in args["resident"].members:
            found = service.read_cards_csv(
                f"notice_number,venue\n{member.notice_number},{venue}\n".encode(),
                {"main": "本庁舎", "yotsuya": "四谷"},
            )
            service.import_ready_cards(db, rows=found.rows)

    return then


def _phone_at_its_limit_with_a_pickup(db: Session, clock: FakeClock) -> dict[str, Any]:
    db.info["booking"] = make_context(clock, max_active_per_phone=1)
    book_now(db, slot_on(db, FIRST_DAY), pickup())
    return {"slot_id": slot_on(db, FIRST_DAY, service_id="pickup"), "resident": pickup(notice())}


@dataclass(frozen=True)
class Rule:
    name: str
    setup: Setup
    expected: str  # "booked", or the refusal's code
    # The conditions of _BOOK_PG's WHERE this case puts to the test (a fragment of each);
    # empty for a rule both paths check before the statement.
    where: tuple[str, ...] = ()


RULES: list[Any] = [
    Rule(
        "a free seat is booked",
        _plain(),
        "booked",
        ("venue.id = slot.venue_id", "service.id = slot.service_id"),
    ),
    Rule("no such slot", _no_such_slot, "slot_not_found", ("slot.id = :slot_id",)),
    Rule("a closed slot", _closed, "slot_closed", ("slot.is_open",)),
    Rule("a slot kept for a lottery", _in_lottery, "slot_in_lottery", ("slot.lottery_id",)),
    Rule("no seat left", _taken, "slot_full", ("slot.capacity - CASE",)),
    Rule("a party larger than the seats", _plain(seats=2, party=3), "slot_full"),
    Rule("a live hold keeps the seat", _held(lapsed=False), "slot_full"),
    Rule("a lapsed hold gives its seat back", _held(lapsed=True), "booked"),
    Rule("seats kept for the phone line", _quota(1, 0, "web"), "slot_full", ("kept_for_phone",)),
    Rule("the phone line takes its kept seat", _quota(1, 0, "ivr"), "booked"),
    Rule("seats kept for walk-ins", _quota(0, 1, "agent"), "slot_full", ("kept_for_walk_in",)),
    Rule(
        "kept seats given back when the quota ends",
        _quota(1, 0, "web", hours_before=24 * 60),
        "booked",
        ("slot.kept_until > :now",),
    ),
    Rule("the time has begun", _just_begun, "outside_booking_window", ("starts_at > :now",)),
    Rule(
        "past the last bookable day",
        _clock_at(-46, time(10)),
        "outside_booking_window",
        ("starts_at < :window_end",),
    ),
    Rule("the last bookable day", _clock_at(-45, time(10)), "booked"),
    Rule(
        "on the day itself",
        _clock_at(0),
        "outside_booking_window",
        (":first_start",),
    ),
    Rule("the day before", _clock_at(-1, time(10)), "booked"),
    Rule(
        "the day before, after the venue's cut-off",
        _clock_at(-1, time(17, 30), cutoff=time(17)),
        "outside_booking_window",
        ("venue.cutoff_time <= :local_time", ":first_late"),
    ),
    Rule(
        "the day before, at the cut-off",
        _clock_at(-1, time(17), cutoff=time(17)),
        "outside_booking_window",
    ),
    Rule(
        "the day before, before the cut-off", _clock_at(-1, time(16, 59), cutoff=time(17)), "booked"
    ),
    Rule(
        "a day not yet released",
        _released(timedelta(days=3)),
        "not_yet_open",
        ("day_release", "r.opens_at <= :now"),
    ),
    Rule("a day released", _released(-timedelta(minutes=1)), "booked"),
    Rule(
        "a day released to another birth-year group only",
        _released(-timedelta(minutes=1), born=(1980, None)),
        "not_yet_announced",
        ("r.born_from", "r.born_to"),
    ),
    Rule(
        "a day released to the household's group",
        _released(-timedelta(minutes=1), born=(1950, 1969)),
        "booked",
    ),
    Rule("the household's group opens later", _mine_later, "not_yet_open"),
    Rule("a pickup with its notice number", _pickup_with(1), "booked"),
    Rule(
        "a pickup for two with one notice number",
        _pickup_with(1, party=2),
        "members_mismatch",
        (":notices = :party",),
    ),
    Rule(
        "a pickup member without a notice number",
        _pickup_with(0, blank=True),
        "invalid_notice_number",
    ),
    Rule("a bad phone number and no notice number", _bad_phone_and_no_notice, "invalid_phone"),
    Rule(
        "a notice number with another pickup ahead",
        _notice_elsewhere(),
        "notice_already_booked",
        ("booking_member bm", "b.status IN", "bs.starts_at >= :today_start"),
    ),
    Rule("a notice number whose pickup was cancelled", _notice_elsewhere(_cancelled), "booked"),
    Rule(
        "a notice number whose holder is at the counter",
        _notice_elsewhere(_status("checked_in")),
        "notice_already_booked",
    ),
    Rule(
        "a notice number whose holder never came", _notice_elsewhere(_status("no_show")), "booked"
    ),
    Rule("a notice number on a past pickup", _notice_on_a_past_pickup, "booked"),
    Rule(
        "a notice number on another service's booking",
        _notice_elsewhere(other_service="application_help"),
        "booked",
        ("bsv.requires_notice_number",),
    ),
    Rule(
        "a phone number at its limit of bookings",
        _phone_at_its_limit,
        "too_many_bookings",
        ("ab.phone_hmac = :phone_hmac",),
    ),
    Rule("a party of none", _plain(party=0), "invalid_party_size"),
    # Two rules at once: the refusal must name the same one on both paths.
    Rule(
        "no seat left and a notice number taken",
        _and(_notice_elsewhere(), _fill),
        "slot_full",
    ),
    Rule(
        "a lottery's slot and a notice number taken",
        _and(_notice_elsewhere(), _to_lottery),
        "slot_in_lottery",
    ),
    Rule(
        "a lottery's slot on a day not yet released",
        _and(_in_lottery, _unreleased),
        "slot_in_lottery",
    ),
    Rule("a closed slot and a bad phone", _and(_and(_plain(), _close), _bad_phone), "slot_closed"),
    # The list of cards that have arrived: one read before the statement, on both paths.
    Rule("a pickup whose card has arrived", _and(_pickup_with(1), _card_arrived("main")), "booked"),
    Rule(
        "a pickup whose card has not arrived",
        _and(_pickup_with(1), _cards_refused),
        "card_not_ready",
    ),
    Rule(
        "a pickup whose card waits at another venue",
        _and(_pickup_with(1), _card_arrived("yotsuya")),
        "card_not_ready",
    ),
    Rule(
        "a closed slot and a card not arrived",
        _and(_and(_pickup_with(1), _close), _cards_refused),
        "slot_closed",
    ),
    Rule(
        "a bad phone and a card not arrived",
        _and(_and(_pickup_with(1), _bad_phone), _cards_refused),
        "invalid_phone",
    ),
    Rule(
        "no seat left and a card not arrived",
        _and(_and(_pickup_with(1), _fill), _cards_refused),
        "card_not_ready",
    ),
    Rule(
        "a phone number at its limit and a card not arrived",
        _and(_phone_at_its_limit_with_a_pickup, _cards_refused),
        "too_many_bookings",
    ),
    # A retry is answered with the booking it made, whatever became of its slot since.
    Rule("a retry once the slot has closed", _retried_after_closing, "booked"),
    Rule("a channel the engine does not know", _plain(channel="walk_in"), "invalid_request"),
]


def _ids(rule: object) -> str:
    return rule.name if isinstance(rule, Rule) else str(rule)


@pytest.fixture
def pg(db: Session) -> Session:
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("the one-statement path is PostgreSQL's")
    return db


def _outcome(db: Session, args: dict[str, Any]) -> tuple[object, ...]:
    """book() in a savepoint rolled back after: the refusal, or the booking and its seats."""
    savepoint = db.begin_nested()
    try:
        made = service.book(db, **args)
        seats = db.execute(select(Slot.booked, Slot.held).where(Slot.id == made.slot_id)).one()
        return ("booked", made.status, made.party_size, len(made.members), tuple(seats))
    except BookingError as exc:
        return ("refused", type(exc).__name__, exc.code, exc.field, exc.params, exc.to_dict())
    finally:
        savepoint.rollback()


@pytest.mark.parametrize("rule", RULES, ids=_ids)
def test_both_paths_answer_a_rule_alike(
    pg: Session, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, rule: Rule
) -> None:
    args = {"party": 1, "resident": HOUSEHOLD, "channel": "web", **rule.setup(pg, clock)}
    statements: list[int] = []
    one_statement = making._book_pg

    def counted(*a: Any, **kw: Any) -> Any:
        statements.append(1)
        return one_statement(*a, **kw)

    monkeypatch.setattr(making, "_book_pg", counted)
    in_one = _outcome(pg, args)
    went_in_one = bool(statements)
    monkeypatch.setattr(making, "_one_statement", lambda db: False)
    statements.clear()
    step_by_step = _outcome(pg, args)
    assert not statements  # the second really went step by step
    assert in_one == step_by_step, f"{rule.name}: the two paths disagree"
    assert (in_one[0] if in_one[0] == "booked" else in_one[2]) == rule.expected, in_one
    if rule.where:  # a rule of the statement: the statement itself was asked
        assert went_in_one


def _where_conditions() -> list[str]:
    """The top-level conditions of the seat claim's WHERE in _BOOK_PG."""
    sql = str(making._BOOK_PG)
    where = sql.split("WITH claimed AS", 1)[1].split("WHERE", 1)[1].split("RETURNING", 1)[0]
    where = re.sub(r"--[^\n]*", "", where)
    parts, depth, start = [], 0, 0
    for token in re.finditer(r"\(|\)|\bCASE\b|\bEND\b|\bAND\b", where):
        word = token.group()
        if word in ("(", "CASE"):
            depth += 1
        elif word in (")", "END"):
            depth -= 1
        elif depth == 0:
            parts.append(where[start : token.start()])
            start = token.end()
    parts.append(where[start:])
    return [" ".join(p.split()) for p in parts]


def test_every_condition_of_the_statement_has_a_case() -> None:
    conditions = _where_conditions()
    assert len(conditions) >= 12, conditions  # the split found the statement's conditions
    rules = [r if isinstance(r, Rule) else r.values[0] for r in RULES]
    named = [fragment for rule in rules for fragment in rule.where]
    uncovered = [c for c in conditions if not any(f in c for f in named)]
    assert uncovered == [], f"conditions of _BOOK_PG with no case here: {uncovered}"
    sql = " ".join(str(making._BOOK_PG).split())
    stale = [f for f in named if f not in sql]
    assert stale == [], f"cases naming conditions _BOOK_PG no longer has: {stale}"
