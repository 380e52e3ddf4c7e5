"""The monthly report over a generated month (January 2027, on a database of the test's own):
every figure is checked against counts the test keeps itself while it makes the month happen
(calls, bookings, cancellations, visits, no-shows, waits, capacity use, inquiries, erasures,
staff accounts). Also the printable HTML with its charts, the CSV, the command and the console
page."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agent_console import report
from agent_console import service as staff
from booking import service as booking
from booking.context import TOKYO
from booking.models import Slot
from config.db import make_engine, make_sessionmaker
from ivr import service as calls
from tests.cli import madoguchi
from tests.conftest import FakeClock, make_context

MONTH = date(2027, 1, 1)
SERVICES = ("application_help", "pin_reset", "cert_renewal")
CHANNELS = ("web", "ivr", "agent")


@dataclass
class Expected:
    """What the test made happen, counted as it went."""

    received: int = 0
    self_served: int = 0
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    within_20s: int = 0
    answer_waits: list[float] = field(default_factory=list)
    callbacks: int = 0
    by_hour: Counter[int] = field(default_factory=Counter)
    made: int = 0
    people: int = 0
    by_channel: Counter[str] = field(default_factory=Counter)
    by_service: Counter[str] = field(default_factory=Counter)
    by_venue: Counter[str] = field(default_factory=Counter)
    by_day: Counter[date] = field(default_factory=Counter)
    cancelled: int = 0
    no_shows: Counter[str] = field(default_factory=Counter)
    arrived: Counter[str] = field(default_factory=Counter)
    seats_used: Counter[tuple[str, date]] = field(default_factory=Counter)
    inquiries: Counter[str] = field(default_factory=Counter)
    erased_bookings: int = 0
    help_visits: Counter[str] = field(default_factory=Counter)
    help_completed: Counter[str] = field(default_factory=Counter)
    help_sent: Counter[str] = field(default_factory=Counter)
    help_not_sent: Counter[str] = field(default_factory=Counter)
    help_copies_given: Counter[str] = field(default_factory=Counter)
    help_handed_over: Counter[str] = field(default_factory=Counter)
    help_waiting: Counter[str] = field(default_factory=Counter)


def at(clock: FakeClock, day: date, hour: int, minute: int = 0) -> None:
    clock.set(datetime.combine(day, time(hour, minute), TOKYO))


def help_visit(
    db: Session,
    want: Expected,
    rng: random.Random,
    view: booking.BookingView,
    staff_id: int,
) -> None:
    """An application-help visit checked in: mostly completed, mostly sent, mostly a copy."""
    want.help_visits[view.venue_id] += 1
    if rng.random() < 0.3:
        return  # still at the counter when the month ends
    sent = rng.random() < 0.8
    given = sent and rng.random() < 0.8
    booking.complete_help_booking(
        db, booking_id=view.id, staff_id=staff_id, sent=sent, copy_given=given
    )
    want.help_completed[view.venue_id] += 1
    (want.help_sent if sent else want.help_not_sent)[view.venue_id] += 1
    want.help_copies_given[view.venue_id] += given


def make_month(url: str) -> tuple[sessionmaker[Session], Expected]:
    rng = random.Random(20270101)
    clock = FakeClock()
    sessions = make_sessionmaker(make_engine(url), make_context(clock))
    want = Expected()
    with sessions() as db:
        supervisor = staff.create_staff(
            db,
            login_id="boss",
            display_name="監督",
            role="supervisor",
            password="long enough pw 1",  # noqa: S106 (a test account)
        )
        ward = staff.create_staff(  # who receives the ward's copies of application help
            db,
            login_id="ward",
            display_name="区職員",
            role="counter_manager",
            password="long enough pw 3",  # noqa: S106 (a test account)
        )
        db.commit()
    # Calls, on weekdays of the first half of January, at various hours.
    n = 0
    for day in (date(2027, 1, d) for d in range(4, 16)):
        for _ in range(rng.randint(3, 6)):
            n += 1
            hour = rng.randint(8, 19)
            at(clock, day, hour, rng.randint(0, 59))
            kind = rng.choice(["self", "self", "answered", "abandoned", "callback"])
            with sessions() as db:
                call = calls.start_call(
                    db, call_sid=f"CA{n:032d}", caller=calls.read_caller(f"+8190{n:08d}")
                )
                want.received += 1
                want.by_hour[hour] += 1
                if kind == "self":
                    calls.set_outcome(call, rng.choice(["booked", "self_served"]))
                    want.self_served += 1
                elif kind == "callback":
                    # Put through to a person, then a callback instead of waiting: the call
                    # keeps the outcome "handed to an agent", and the callback still counts.
                    calls.set_outcome(call, "handed_to_agent")
                    calls.request_callback(
                        db,
                        call=call,
                        phone=f"+8190{12_340_000 + n:08d}",
                        language="ja",
                        reason="queue_wait",
                    )
                    want.callbacks += 1
                else:
                    call.queue, call.enqueued_at = "madoguchi-ja", clock()
                    calls.note_event(db, call, "entered_queue")
                    want.offered += 1
                    wait = rng.choice([5, 15, 19, 30, 75])
                    db.commit()
                    clock.advance(seconds=wait)
                    if kind == "answered":
                        assert calls.claim_call(db, call_sid=call.call_sid, staff_id=supervisor.id)
                        want.answered += 1
                        want.answer_waits.append(wait)
                        want.within_20s += wait <= 20
                    else:
                        want.abandoned += 1
                calls.end_call(db, call_sid=call.call_sid, status="completed", duration=60)
                db.commit()
    # A callback the ward owes a resident its notice could not reach: no call behind it.
    at(clock, date(2027, 1, 18), 10)
    with sessions() as db:
        calls.ask_agents_to_call(db, phone="+819012349999", language="ja", reason="notice")
        db.commit()
    want.callbacks += 1
    helping = random.Random(4)  # application help's own draws: the rest of the month unchanged
    helped: set[tuple[str, date]] = set()
    # Bookings made Jan 4-15 for visits Jan 20-28, some cancelled.
    made: list[tuple[booking.BookingView, int]] = []
    for day in (date(2027, 1, d) for d in range(4, 16)):
        for _ in range(rng.randint(2, 5)):
            at(clock, day, rng.randint(9, 16))
            service = rng.choice(SERVICES)
            with sessions() as db:
                party = rng.randint(1, 3)
                free: list[booking.SlotView] = []
                while not free:  # certificate renewal slots are small: a smaller party then
                    free = booking.availability(
                        db,
                        service_id=service,
                        start=date(2027, 1, 20),
                        end=date(2027, 1, 28),
                        party=party,
                        limit=500,
                    )
                    party = party if free else party - 1
                slot = rng.choice(free)
                channel = rng.choice(CHANNELS)
                view = booking.book(
                    db,
                    slot_id=slot.id,
                    party=party,
                    channel=channel,
                    resident=booking.ResidentInput(
                        "ゲツジ ハナコ", f"+8180{len(made):08d}", date(1970, 1, 1)
                    ),
                )
                db.commit()
            made.append((view, party))
            want.made += 1
            want.people += party
            want.by_channel[channel] += 1
            want.by_service[service] += 1
            want.by_venue[view.venue_id] += 1
            want.by_day[day] += 1
    cancelled = rng.sample(range(len(made)), k=len(made) // 5)
    for i in cancelled:
        at(clock, date(2027, 1, 16), 10)
        with sessions() as db:
            booking.cancel_booking(db, booking_id=made[i][0].id)
            db.commit()
        want.cancelled += 1
    # The visits, slot time by slot time: most arrive, then the rest are marked no-shows.
    kept = [m for i, m in enumerate(made) if i not in cancelled]
    for starts in sorted({view.starts_at for view, _ in kept}):
        local = starts.astimezone(TOKYO)
        here = [(view, party) for view, party in kept if view.starts_at == starts]
        clock.set(local + timedelta(minutes=1))
        with sessions() as db:
            for view, party in here:
                if rng.random() < 0.8:
                    booking.check_in(db, code=view.code, venue_id=view.venue_id)
                    want.arrived[view.venue_id] += 1
                    want.seats_used[(view.venue_id, local.date())] += party
                    if view.service_id == "application_help":
                        help_visit(db, want, helping, view, supervisor.id)
                        helped.add((view.venue_id, local.date()))
                else:
                    want.no_shows[view.venue_id] += 1
            db.commit()
        clock.set(local + timedelta(minutes=20))
        with sessions() as db:
            booking.mark_no_shows(db, late_after=timedelta(minutes=15))
            db.commit()
    # The day's handover sheets of application help: the first day's with copies confirmed,
    # the later ones not yet.
    with sessions() as db:
        for venue, day in sorted(helped):
            sheets = [s for s in booking.handover_sheets(db, venue_id=venue, day=day) if not s.id]
            if want.help_handed_over[venue] or not sheets or not sheets[0].copies:
                for sheet in sheets:
                    want.help_waiting[venue] += sheet.copies
                continue
            [sheet] = sheets
            booking.confirm_handover(
                db,
                venue_id=venue,
                day=day,
                staff_id=supervisor.id,
                receiver_id=ward.id,
                visit_ids=[v.id for v in sheet.visits],
            )
            want.help_handed_over[venue] += sheet.copies
        db.commit()
    # Inquiries, an erasure run, staff changes: late January.
    at(clock, date(2027, 1, 29), 11)
    with sessions() as db:
        for _ in range(9):
            category = rng.choice(["booking", "pin", "what_to_bring", "other"])
            staff.log_inquiry(
                db, staff=supervisor, category=category, note="問い合わせ", resolution="resolved"
            )
            want.inquiries[category] += 1
        newcomer = staff.create_staff(
            db,
            login_id="newcomer",
            display_name="新人",
            role="agent",
            password="long enough pw 2",  # noqa: S106 (a test account)
        )
        staff.deactivate(db, staff_id=newcomer.id)
        staff.audit(
            db,
            staff=supervisor,
            action="staff.deactivate",
            subject_kind="staff",
            subject_id=newcomer.id,
            client="test",
        )
        want.erased_bookings = booking.erase_personal_data(db, before=clock())
        staff.record_erasure(
            db,
            job="retention (daily)",
            scope="retention",
            cutoff=clock(),
            counts={"予約 bookings": want.erased_bookings},
        )
        db.commit()
    # Something in February, which January's report must not count.
    at(clock, date(2027, 2, 1), 10)
    with sessions() as db:
        calls.start_call(db, call_sid="CA" + "f" * 32, caller=calls.read_caller("+819000000001"))
        db.commit()
    return sessions, want


@pytest.fixture
def month(fresh_database: str) -> tuple[sessionmaker[Session], Expected, str]:
    sessions, want = make_month(fresh_database)
    return sessions, want, fresh_database


def test_every_figure_matches_what_happened(
    month: tuple[sessionmaker[Session], Expected, str],
) -> None:
    sessions, want, _url = month
    with sessions() as db:
        made = report.monthly_report(db, month=MONTH)
        capacity = {
            (venue, starts.astimezone(TOKYO).date()): 0
            for venue, starts in db.execute(
                select(Slot.venue_id, Slot.starts_at).where(Slot.is_open.is_(True))
            )
        }
        for venue, starts, seats in db.execute(
            select(Slot.venue_id, Slot.starts_at, Slot.capacity).where(Slot.is_open.is_(True))
        ):
            capacity[(venue, starts.astimezone(TOKYO).date())] += seats
    c = made.calls
    assert c.received == want.received
    assert c.self_served == want.self_served
    assert c.self_service_rate == pytest.approx(want.self_served / want.received)
    assert c.callbacks_requested == want.callbacks
    assert (c.queue.offered, c.queue.connected, c.queue.abandoned) == (
        want.offered,
        want.answered,
        want.abandoned,
    )
    assert c.queue.service_level == pytest.approx(
        want.within_20s / (want.answered + want.abandoned)
    )
    assert c.queue.average_speed_of_answer == pytest.approx(
        sum(want.answer_waits) / len(want.answer_waits)
    )
    assert c.by_hour == dict(sorted(want.by_hour.items()))
    b = made.bookings
    assert (b.made, b.people, b.cancelled) == (want.made, want.people, want.cancelled)
    assert b.by_channel == dict(want.by_channel)
    assert b.by_service == dict(want.by_service)
    assert b.by_venue == dict(want.by_venue)
    assert b.by_day == dict(sorted(want.by_day.items()))
    for place in made.venues:
        assert place.no_shows == want.no_shows[place.venue_id], place.venue_id
        assert place.arrived == want.arrived[place.venue_id], place.venue_id
    for day in made.capacity_days:
        key = (day.venue_id, day.day)
        assert day.capacity == capacity[key], key
        assert day.taken == want.seats_used[key], key  # no-shows' seats went back
    assert made.no_shows == sum(want.no_shows.values())
    helped = {h.venue_id: h for h in made.help}
    assert set(helped) == set(want.help_visits)
    for venue, h in helped.items():
        assert (h.visits, h.completed, h.sent, h.not_sent, h.copies_given) == (
            want.help_visits[venue],
            want.help_completed[venue],
            want.help_sent[venue],
            want.help_not_sent[venue],
            want.help_copies_given[venue],
        ), venue
        assert (h.copies_handed_over, h.copies_waiting) == (
            want.help_handed_over[venue],
            want.help_waiting[venue],
        ), venue
    assert sum(want.help_handed_over.values()) > 0 and sum(want.help_waiting.values()) > 0
    assert sum(want.help_not_sent.values()) > 0
    names = {
        "booking": "予約（新規・変更・取消）",
        "pin": "暗証番号",
        "what_to_bring": "持ち物",
        "other": "その他",
    }
    assert made.office.inquiries_by_category == {names[k]: v for k, v in want.inquiries.items()}
    assert made.office.staff_added == ["newcomer (agent)"]  # boss came in December
    assert made.office.staff_removed == ["newcomer"]
    assert made.office.erased == {"予約 bookings": want.erased_bookings}
    assert want.erased_bookings > 0


def test_the_report_prints_with_charts_and_its_csv_holds_the_figures(
    month: tuple[sessionmaker[Session], Expected, str], tmp_path: Path
) -> None:
    sessions, want, url = month
    with sessions() as db:
        made = report.monthly_report(db, month=MONTH)
    html = report.render_html(made)
    assert "2027年1月 業務報告" in html
    assert html.count("<svg") == 3  # calls by hour, bookings by day, capacity use by venue
    assert "時間帯別の受信件数" in html and "会場別の定員利用率" in html
    assert "<script" not in html
    rows = list(csv.reader(io.StringIO(report.report_csv(made))))
    figures = {(r[1], r[2]): r[3] for r in rows[1:]}
    assert figures[("calls", "received")] == str(want.received)
    assert figures[("bookings", "made")] == str(want.made)
    assert figures[("bookings", "cancelled")] == str(want.cancelled)
    for venue, handed in want.help_handed_over.items():
        assert figures[("application help " + venue, "copies handed over")] == str(handed)
        assert figures[("application help " + venue, "visits")] == str(want.help_visits[venue])
    assert "申請補助（会場別）" in html and "区へ引渡し済みの控え" in html
    done = madoguchi(
        "report",
        "monthly",
        "--month",
        "2027-01",
        "--html",
        str(tmp_path / "r.html"),
        "--csv",
        str(tmp_path / "r.csv"),
        data_dir=tmp_path,
        database_url=url,
    )
    assert done.returncode == 0, done.stderr
    assert f"calls: {want.received} received" in done.stdout
    assert (tmp_path / "r.html").read_text(encoding="utf-8").count("<svg") == 3
    assert f"calls,received,{want.received}" in (tmp_path / "r.csv").read_text(encoding="utf-8-sig")
