"""The call center's figures from the call-event log: the supervisor's wallboard (today, by
hour) and a period's calls for the monthly report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from booking.context import TOKYO, context
from ivr.agents import waiting_calls
from ivr.callbacks import FROM_THE_QUEUE
from ivr.models import Call, CallbackRequest, CallEvent
from ivr.surveys import CallerFeedback, caller_feedback

SERVICE_LEVEL_SECONDS = 20


@dataclass(frozen=True)
class QueueFigures:
    """One period's queue: offered, connected, abandoned, and the derived rates."""

    offered: int
    connected: int
    abandoned: int
    within_target: int
    answer_seconds: list[float]

    @property
    def service_level(self) -> float | None:
        """Share answered within the target of those answered or abandoned."""
        settled = self.connected + self.abandoned
        return self.within_target / settled if settled else None

    @property
    def abandon_rate(self) -> float | None:
        settled = self.connected + self.abandoned
        return self.abandoned / settled if settled else None

    @property
    def average_speed_of_answer(self) -> float | None:
        return sum(self.answer_seconds) / len(self.answer_seconds) if self.answer_seconds else None


@dataclass(frozen=True)
class Wallboard:
    day: date
    waiting: int
    longest_wait_seconds: float | None
    today: QueueFigures
    by_hour: dict[int, QueueFigures]
    average_handling_seconds: float | None
    calls: int
    self_served: int
    # Calls deflected to the web booking by text-a-link, and the callers' surveys, today.
    feedback: CallerFeedback | None = None

    @property
    def self_service_rate(self) -> float | None:
        """Calls that ended without a person (booked, or checked/moved/cancelled/FAQ)."""
        return self.self_served / self.calls if self.calls else None


def _events_by_kind(
    db: DbSession, start: datetime, end: datetime
) -> dict[str, dict[int, datetime]]:
    """The call-event log of a period: for each kind, when each call had it (once per call)."""
    by_kind: dict[str, dict[int, datetime]] = {}
    for call_id, kind, at in db.execute(
        select(CallEvent.call_id, CallEvent.kind, CallEvent.at).where(
            CallEvent.at >= start, CallEvent.at < end
        )
    ):
        by_kind.setdefault(kind, {})[call_id] = at
    return by_kind


def _figures(
    entered: dict[int, datetime], connected: dict[int, datetime], abandoned: set[int]
) -> QueueFigures:
    waits = [(connected[c] - entered[c]).total_seconds() for c in connected if c in entered]
    return QueueFigures(
        offered=len(entered),
        connected=len(connected),
        abandoned=len(abandoned),
        within_target=sum(1 for w in waits if w <= SERVICE_LEVEL_SECONDS),
        answer_seconds=waits,
    )


def wallboard(db: DbSession, *, day: date | None = None) -> Wallboard:
    """Today's figures (Tokyo time), and by hour, from the call-event log."""
    now = context(db).now()
    day = day or now.astimezone(TOKYO).date()
    start = datetime.combine(day, datetime.min.time(), TOKYO)
    end = start + timedelta(days=1)
    by_kind = _events_by_kind(db, start, end)
    entered = by_kind.get("entered_queue", {})
    connected = by_kind.get("connected", {})
    abandoned = set(by_kind.get("abandoned", {}))
    hours: dict[int, QueueFigures] = {}
    for hour in sorted({at.astimezone(TOKYO).hour for at in entered.values()}):
        in_hour = {c: at for c, at in entered.items() if at.astimezone(TOKYO).hour == hour}
        hours[hour] = _figures(
            in_hour,
            {c: at for c, at in connected.items() if c in in_hour},
            {c for c in abandoned if c in in_hour},
        )
    waiting = waiting_calls(db)
    handled = db.execute(
        select(Call.answered_at, Call.wrapped_at).where(
            Call.answered_at >= start, Call.answered_at < end, Call.wrapped_at.is_not(None)
        )
    ).all()
    handling = [(w - a).total_seconds() for a, w in handled if a and w]
    started = by_kind.get("started", {})
    served = 0
    if started:
        served = int(
            db.execute(
                select(func.count())
                .select_from(Call)
                .where(Call.id.in_(list(started)), Call.outcome.in_(("booked", "self_served")))
            ).scalar_one()
        )
    return Wallboard(
        day=day,
        waiting=len(waiting),
        longest_wait_seconds=max(
            ((now - w.enqueued_at).total_seconds() for w in waiting), default=None
        ),
        today=_figures(entered, connected, abandoned),
        by_hour=hours,
        average_handling_seconds=sum(handling) / len(handling) if handling else None,
        calls=len(started),
        self_served=served,
        feedback=caller_feedback(db, start=start, end=end),
    )


@dataclass(frozen=True)
class CallPeriod:
    """A period's calls, for the monthly report: received, served by the IVR alone, the queue's
    figures, and calls received by hour of the day (Tokyo)."""

    received: int
    self_served: int
    callbacks_requested: int
    queue: QueueFigures
    by_hour: dict[int, int]
    # Calls deflected to the web booking by text-a-link, and the callers' surveys.
    feedback: CallerFeedback | None = None

    @property
    def self_service_rate(self) -> float | None:
        return self.self_served / self.received if self.received else None


def calls_between(db: DbSession, *, start: datetime, end: datetime) -> CallPeriod:
    """Calls that began from ``start`` to before ``end``, from the call-event log; the queue's
    figures count what entered it in the period."""
    by_kind = _events_by_kind(db, start, end)
    started = by_kind.get("started", {})
    entered = by_kind.get("entered_queue", {})
    outcomes: dict[str, int] = {}
    if started:
        ids = list(started)
        for first in range(0, len(ids), 1000):
            for outcome, count in db.execute(
                select(Call.outcome, func.count())
                .where(Call.id.in_(ids[first : first + 1000]))
                .group_by(Call.outcome)
            ):
                outcomes[outcome] = outcomes.get(outcome, 0) + int(count)
    hours: dict[int, int] = {}
    for at in started.values():
        hour = at.astimezone(TOKYO).hour
        hours[hour] = hours.get(hour, 0) + 1
    # From the callback list itself: a caller who was queued for a person and then chose a
    # callback keeps the outcome "handed to an agent", and the ward's own callbacks (a notice
    # that reached no one) have no call at all.
    callbacks = db.execute(
        select(func.count())
        .select_from(CallbackRequest)
        .where(CallbackRequest.requested_at >= start, CallbackRequest.requested_at < end)
    ).scalar_one()
    return CallPeriod(
        received=len(started),
        self_served=outcomes.get("booked", 0) + outcomes.get("self_served", 0),
        callbacks_requested=int(callbacks),
        queue=_figures(
            entered,
            {c: at for c, at in by_kind.get("connected", {}).items() if c in entered},
            {c for c in by_kind.get("abandoned", {}) if c in entered},
        ),
        by_hour=dict(sorted(hours.items())),
        feedback=caller_feedback(db, start=start, end=end),
    )


# Open callbacks by how long they have waited since they were asked for: the wallboard's bands
# (upper bounds in seconds; the last band has none).
CALLBACK_AGE_BANDS: tuple[tuple[str, float | None], ...] = (
    ("15分未満", 15 * 60),
    ("15〜60分", 60 * 60),
    ("1〜4時間", 4 * 60 * 60),
    ("4時間以上", None),
)


@dataclass(frozen=True)
class CallbackAges:
    """The callbacks still owed, by age (since asked for), and the oldest's age."""

    bands: list[tuple[str, int]]
    oldest_seconds: float | None

    @property
    def waiting(self) -> int:
        return sum(n for _label, n in self.bands)


def callbacks_by_age(db: DbSession) -> CallbackAges:
    """Open callbacks counted in age bands (since each was asked for), for the wallboard."""
    now = context(db).now()
    asked = db.execute(
        select(CallbackRequest.requested_at).where(CallbackRequest.status == "open")
    ).scalars()
    ages = [max(0.0, (now - at).total_seconds()) for at in asked]
    counts = dict.fromkeys((label for label, _upper in CALLBACK_AGE_BANDS), 0)
    for age in ages:
        label = next(label for label, upper in CALLBACK_AGE_BANDS if upper is None or age < upper)
        counts[label] += 1
    return CallbackAges(list(counts.items()), max(ages, default=None))


@dataclass(frozen=True)
class CallbacksKept:
    """A period's callbacks asked for from the queue (keeping the caller's place): reached,
    not reached (wrong number, not needed, or tried without an answer), still waiting, and
    the median time from the request to the call back that reached the caller."""

    asked: int
    reached: int
    not_reached: int
    waiting: int
    to_call_back_seconds: list[float]

    @property
    def median_to_call_back(self) -> float | None:
        times = sorted(self.to_call_back_seconds)
        if not times:
            return None
        middle = len(times) // 2
        return times[middle] if len(times) % 2 else (times[middle - 1] + times[middle]) / 2


def callbacks_kept(db: DbSession, *, start: datetime, end: datetime) -> CallbacksKept:
    """Callbacks asked for from the queue from ``start`` to before ``end``, and what came of
    them (the time to call back: from the request to the agent taking on the call that
    reached the caller)."""
    rows = db.execute(
        select(
            CallbackRequest.status,
            CallbackRequest.outcome,
            CallbackRequest.requested_at,
            CallbackRequest.claimed_at,
        ).where(
            CallbackRequest.requested_at >= start,
            CallbackRequest.requested_at < end,
            CallbackRequest.reason.in_(FROM_THE_QUEUE),
        )
    ).all()
    reached = [r for r in rows if r.outcome == "reached"]
    waiting = [r for r in rows if r.status == "open" and r.outcome is None]
    return CallbacksKept(
        asked=len(rows),
        reached=len(reached),
        not_reached=len(rows) - len(reached) - len(waiting),
        waiting=len(waiting),
        to_call_back_seconds=[
            max(0.0, (r.claimed_at - r.requested_at).total_seconds())
            for r in reached
            if r.claimed_at is not None
        ],
    )
