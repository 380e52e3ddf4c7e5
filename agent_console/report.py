"""The monthly report owed to the ward (委託業務の処理状況等の毎月報告): calls, bookings, the
counters' days, inquiries, staff accounts and erasures for one month, with charts where people
would rather look, as printable HTML (the ward prints it or saves it as PDF) and CSV figures.

It reads each package through its service: the call-event log (ivr), bookings and the counters
(booking), inquiries, staff and erasure records (agent_console).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.orm import Session as DbSession

from agent_console import service as staff
from booking import service as booking
from booking.context import TOKYO
from ivr import service as calls
from ivr.service import CallbacksKept

CHANNEL_NAMES = {
    "web": "Web",
    "ivr": "電話（自動応答）",
    "agent": "電話（オペレーター）",
    "line": "LINE",
}


@dataclass(frozen=True)
class VenueMonth:
    """One venue's month at the counter, and how its seats were used."""

    venue_id: str
    name: str
    bookings: int
    arrived: int
    no_shows: int
    walk_ins: int
    waits: list[float]
    capacity: int
    taken: int

    @property
    def use(self) -> float | None:
        return self.taken / self.capacity if self.capacity else None

    @property
    def average_wait(self) -> float | None:
        return sum(self.waits) / len(self.waits) if self.waits else None


@dataclass(frozen=True)
class MonthlyReport:
    month: date  # its first day
    calls: calls.CallPeriod
    bookings: booking.BookingPeriod
    venues: list[VenueMonth]
    capacity_days: list[booking.CapacityDay]
    office: staff.OfficePeriod
    service_names: dict[str, str]
    venue_names: dict[str, str]
    # Application help (申請補助) by venue: visits, completed, the ward's copies handed over.
    help: list[booking.HelpMonth] = field(default_factory=list)
    # Callbacks asked for from the queue, keeping the caller's place: what came of them.
    callbacks_kept: CallbacksKept | None = None
    # Agents' time per state (ready, not ready by reason, on a call, wrap-up), each agent.
    agents: list[staff.AgentTime] = field(default_factory=list)

    @property
    def occupancy(self) -> float | None:
        """(on a call + wrap-up) / (ready + on a call + wrap-up), every agent together."""
        return staff.occupancy(self.agents)

    @property
    def title(self) -> str:
        return f"{self.month.year}年{self.month.month}月 業務報告"

    @property
    def capacity_by_day(self) -> list[tuple[date, int, int]]:
        """Every venue together, day by day: (day, seats, taken)."""
        days: dict[date, tuple[int, int]] = {}
        for d in self.capacity_days:
            seats, taken = days.get(d.day, (0, 0))
            days[d.day] = (seats + d.capacity, taken + d.taken)
        return [(day, seats, taken) for day, (seats, taken) in sorted(days.items())]

    @property
    def no_shows(self) -> int:
        return sum(v.no_shows for v in self.venues)

    @property
    def walk_ins(self) -> int:
        return sum(v.walk_ins for v in self.venues)


@dataclass
class _Tally:
    bookings: int = 0
    arrived: int = 0
    no_shows: int = 0
    walk_ins: int = 0
    waits: list[float] = field(default_factory=list)


def month_bounds(month: date) -> tuple[date, date]:
    first = month.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return first, last


def monthly_report(
    db: DbSession, *, month: date, wrap_up_seconds: int = staff.WRAP_UP_SECONDS
) -> MonthlyReport:
    first, last = month_bounds(month)
    start = datetime.combine(first, time(0), TOKYO)
    end = datetime.combine(last + timedelta(days=1), time(0), TOKYO)
    period = booking.booking_period(db, first=first, last=last)
    venue_names = {v.id: v.name_ja for v in booking.list_venues(db)}
    service_names = {s.id: s.name_ja for s in booking.list_services(db)}
    counters = booking.counter_figures(db, first=first, last=last)
    tallies: dict[str, _Tally] = {}
    for day in counters:
        tally = tallies.setdefault(day.venue_id, _Tally())
        tally.bookings += day.bookings
        tally.arrived += day.arrived
        tally.no_shows += day.no_shows
        tally.walk_ins += day.walk_ins
        tally.waits += day.waits
    seats: dict[str, tuple[int, int]] = {}
    for cap in period.capacity:
        capacity, taken = seats.get(cap.venue_id, (0, 0))
        seats[cap.venue_id] = (capacity + cap.capacity, taken + cap.taken)
    rows = []
    order = {venue_id: i for i, venue_id in enumerate(venue_names)}  # the ward's own order
    for venue_id in sorted(set(tallies) | set(seats), key=lambda v: (order.get(v, 999), v)):
        tally = tallies.get(venue_id, _Tally())
        capacity, taken = seats.get(venue_id, (0, 0))
        rows.append(
            VenueMonth(
                venue_id=venue_id,
                name=venue_names.get(venue_id, venue_id),
                bookings=tally.bookings,
                arrived=tally.arrived,
                no_shows=tally.no_shows,
                walk_ins=tally.walk_ins,
                waits=tally.waits,
                capacity=capacity,
                taken=taken,
            )
        )
    return MonthlyReport(
        month=first,
        calls=calls.calls_between(db, start=start, end=end),
        bookings=period,
        venues=rows,
        capacity_days=period.capacity,
        office=staff.office_period(db, start=start, end=end),
        service_names=service_names,
        venue_names=venue_names,
        help=booking.application_help_period(db, first=first, last=last),
        callbacks_kept=calls.callbacks_kept(db, start=start, end=end),
        agents=staff.time_in_states(
            db, start=start, end=end, limit=timedelta(seconds=wrap_up_seconds)
        ),
    )


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def figures(report: MonthlyReport) -> list[tuple[str, str, str]]:
    """Every figure of the report as (section, item, value): the CSV, and what tests check."""
    c, b, o = report.calls, report.bookings, report.office
    rows: list[tuple[str, str, str]] = [
        ("calls", "received", str(c.received)),
        ("calls", "self-served by the IVR", str(c.self_served)),
        ("calls", "IVR self-service rate", _rate(c.self_service_rate)),
        ("calls", "offered to agents", str(c.queue.offered)),
        ("calls", "answered", str(c.queue.connected)),
        ("calls", "abandoned", str(c.queue.abandoned)),
        ("calls", f"service level ({calls.SERVICE_LEVEL_SECONDS} s)", _rate(c.queue.service_level)),
        ("calls", "average wait (s)", _rate(c.queue.average_speed_of_answer)),
        ("calls", "callbacks requested", str(c.callbacks_requested)),
        *[("calls by hour", f"{hour:02d}:00", str(n)) for hour, n in c.by_hour.items()],
        ("bookings", "made", str(b.made)),
        ("bookings", "people", str(b.people)),
        ("bookings", "cancelled", str(b.cancelled)),
        *[("bookings by channel", ch, str(n)) for ch, n in sorted(b.by_channel.items())],
        *[("bookings by service", sv, str(n)) for sv, n in sorted(b.by_service.items())],
        *[("bookings by venue", ve, str(n)) for ve, n in sorted(b.by_venue.items())],
        *[("bookings by day", d.isoformat(), str(n)) for d, n in b.by_day.items()],
    ]
    for v in report.venues:
        rows += [
            ("counter " + v.venue_id, "visits booked", str(v.bookings)),
            ("counter " + v.venue_id, "arrived", str(v.arrived)),
            ("counter " + v.venue_id, "no-shows", str(v.no_shows)),
            ("counter " + v.venue_id, "walk-ins", str(v.walk_ins)),
            ("counter " + v.venue_id, "average wait (min)", _rate(v.average_wait)),
            ("counter " + v.venue_id, "seats", str(v.capacity)),
            ("counter " + v.venue_id, "seats taken", str(v.taken)),
            ("counter " + v.venue_id, "capacity use", _rate(v.use)),
        ]
    for h in report.help:
        rows += [
            ("application help " + h.venue_id, "visits", str(h.visits)),
            ("application help " + h.venue_id, "completed", str(h.completed)),
            ("application help " + h.venue_id, "sent", str(h.sent)),
            ("application help " + h.venue_id, "not sent", str(h.not_sent)),
            ("application help " + h.venue_id, "copies given to applicants", str(h.copies_given)),
            ("application help " + h.venue_id, "copies handed over", str(h.copies_handed_over)),
            ("application help " + h.venue_id, "copies not yet handed over", str(h.copies_waiting)),
        ]
    kept = report.callbacks_kept
    if kept is not None:
        rows += [
            ("callbacks kept", "asked for from the queue", str(kept.asked)),
            ("callbacks kept", "reached", str(kept.reached)),
            ("callbacks kept", "not reached", str(kept.not_reached)),
            ("callbacks kept", "still waiting", str(kept.waiting)),
            ("callbacks kept", "median time to call back (s)", _rate(kept.median_to_call_back)),
        ]
    rows += [
        (f"capacity {d.venue_id}", d.day.isoformat(), f"{d.taken}/{d.capacity}")
        for d in report.capacity_days
    ]
    rows += feedback_figures(c.feedback)
    rows += [("inquiries by category", k, str(n)) for k, n in o.inquiries_by_category.items()]
    rows += [("erased", k, str(n)) for k, n in o.erased.items()]
    rows += [
        ("erased", "erasure runs", str(o.erasure_runs)),
        ("staff", "accounts added", str(len(o.staff_added))),
        ("staff", "accounts deactivated", str(len(o.staff_removed))),
    ]
    rows += agent_figures(report)
    return rows


def agent_figures(report: MonthlyReport) -> list[tuple[str, str, str]]:
    """Occupancy, and each agent's time per state (seconds), for the CSV."""
    rows = [("agents", "occupancy", _rate(report.occupancy))]
    for t in report.agents:
        section = f"agent {t.staff_id} {t.display_name}"
        rows += [
            (section, "ready (s)", f"{t.ready:.0f}"),
            (section, "on a call (s)", f"{t.on_call:.0f}"),
            (section, "wrap-up (s)", f"{t.wrap_up:.0f}"),
            *[
                (section, f"not ready: {reason} (s)", f"{t.not_ready.get(reason, 0.0):.0f}")
                for reason in staff.REASON_NAMES
            ],
            (section, "calls answered", str(t.calls)),
            (section, "occupancy", _rate(t.occupancy)),
        ]
    return rows


SURVEY_NAMES = {"agent": "オペレーター対応後", "self_service": "自動応答での予約後"}


def feedback_figures(feedback: calls.CallerFeedback | None) -> list[tuple[str, str, str]]:
    """Calls deflected to the web booking (text-a-link) and the surveys by kind: answers, mean
    score, the 1-5 distribution, share settled."""
    if feedback is None:
        return []
    rows = [("deflections", "calls sent the web booking's link", str(feedback.deflected))]
    for kind, survey in feedback.surveys.items():
        section = f"survey {kind}"
        rows += [
            (section, "answers", str(survey.answers)),
            (section, "mean score", _rate(survey.mean_score)),
            *[(section, f"score {n}", str(k)) for n, k in survey.distribution.items()],
            (section, "settled", str(survey.settled_yes)),
            (section, "not settled", str(survey.settled_no)),
            (section, "share settled", _rate(survey.settled_share)),
        ]
    return rows


def report_csv(report: MonthlyReport) -> str:
    """The figures as CSV, with a byte-order mark so spreadsheet programs read the Japanese."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(["month", "section", "item", "value"])
    for section, item, value in figures(report):
        writer.writerow([report.month.strftime("%Y-%m"), section, item, value])
    return buffer.getvalue()


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str  # the value as printed beside the bar


def charts(report: MonthlyReport) -> dict[str, list[Bar]]:
    """The report's charts, as bars: calls by hour, bookings by day, capacity use by venue."""
    first, last = month_bounds(report.month)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return {
        "calls_by_hour": [
            Bar(f"{h}時", report.calls.by_hour.get(h, 0), str(report.calls.by_hour.get(h, 0)))
            for h in range(7, 21)
        ],
        "bookings_by_day": [
            Bar(str(d.day), report.bookings.by_day.get(d, 0), str(report.bookings.by_day.get(d, 0)))
            for d in days
        ],
        "capacity_by_venue": [
            Bar(v.name, v.use or 0.0, f"{(v.use or 0) * 100:.0f}%")
            for v in report.venues
            if v.capacity
        ],
    }


# Made once: the report's template is compiled on first use and kept.
_TEMPLATES = Environment(
    loader=PackageLoader("agent_console", "templates"), autoescape=select_autoescape()
)


def render_html(report: MonthlyReport, *, console: bool = False) -> str:
    """The printable report (standalone HTML with inline SVG charts)."""
    _first, last = month_bounds(report.month)

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f}%"

    def secs(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f}秒"

    def minutes(value: float | None) -> str:
        return "—" if value is None else f"{value / 60:.0f}分"

    def hours(seconds: float) -> str:
        return f"{seconds / 3600:.1f}時間"

    return _TEMPLATES.get_template("report.html").render(
        report=report,
        hours=hours,
        reason_names=staff.REASON_NAMES,
        charts=charts(report),
        last=last,
        pct=pct,
        secs=secs,
        minutes=minutes,
        level_seconds=calls.SERVICE_LEVEL_SECONDS,
        channel_names=CHANNEL_NAMES,
        survey_names=SURVEY_NAMES,
        console=console,
        made_at=datetime.now(TOKYO).strftime("%Y-%m-%d %H:%M"),
    )
