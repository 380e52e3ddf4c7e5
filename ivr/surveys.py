"""The callers' short survey by keys, after an agent's call or a booking the line made by
itself: satisfaction 1-5 and whether the matter was settled. Only the answers are kept (the
kind, the language, when): no recording, no number. And the figures the wallboard and the
monthly report show of it, with the calls deflected to the web booking by text-a-link."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from booking.context import TOKYO, context
from ivr.models import SURVEY_KINDS, Call, CallEvent, CallSurvey

SCORES = range(1, 6)


def _survey_of(db: DbSession, call: Call) -> CallSurvey | None:
    return db.execute(select(CallSurvey).where(CallSurvey.call_id == call.id)).scalar_one_or_none()


def record_score(db: DbSession, *, call: Call, kind: str, score: int) -> None:
    """The caller's satisfaction (1-5): the call's survey row, made at its first answer (the
    call's row is locked by the webhook: one survey per call, its unique key says so too)."""
    if kind not in SURVEY_KINDS or score not in SCORES:
        raise ValueError(f"no such survey answer: {kind} {score}")
    found = _survey_of(db, call)
    if found is None:
        db.add(
            CallSurvey(
                call_id=call.id,
                kind=kind,
                language=call.language,
                score=score,
                answered_at=context(db).now(),
            )
        )
        db.flush()
    else:
        found.score = score


def record_settled(db: DbSession, *, call: Call, settled: bool) -> None:
    """Whether the caller's matter was settled (the survey's second question)."""
    found = _survey_of(db, call)
    if found is not None:
        found.settled = settled


@dataclass(frozen=True)
class SurveyFigures:
    """One kind's answers in a period: how many, the scores' spread, settled or not."""

    kind: str
    answers: int = 0
    distribution: dict[int, int] = field(default_factory=lambda: dict.fromkeys(SCORES, 0))
    settled_yes: int = 0
    settled_no: int = 0

    @property
    def scored(self) -> int:
        return sum(self.distribution.values())

    @property
    def mean_score(self) -> float | None:
        total = sum(score * n for score, n in self.distribution.items())
        return total / self.scored if self.scored else None

    @property
    def settled_share(self) -> float | None:
        """Share settled of those who answered the question (a caller may hang up before)."""
        told = self.settled_yes + self.settled_no
        return self.settled_yes / told if told else None


@dataclass(frozen=True)
class CallerFeedback:
    """Calls deflected to the web booking by text-a-link, and the surveys by kind."""

    deflected: int
    surveys: dict[str, SurveyFigures]


def caller_feedback(db: DbSession, *, start: datetime, end: datetime) -> CallerFeedback:
    """Deflections (by the call-event log) and survey answers from ``start`` to before ``end``."""
    deflected = db.execute(
        select(func.count())
        .select_from(CallEvent)
        .where(CallEvent.kind == "deflected", CallEvent.at >= start, CallEvent.at < end)
    ).scalar_one()
    counts: dict[str, dict[int, int]] = {k: dict.fromkeys(SCORES, 0) for k in SURVEY_KINDS}
    answers = dict.fromkeys(SURVEY_KINDS, 0)
    settled = {k: [0, 0] for k in SURVEY_KINDS}
    rows = db.execute(
        select(CallSurvey.kind, CallSurvey.score, CallSurvey.settled, func.count())
        .where(CallSurvey.answered_at >= start, CallSurvey.answered_at < end)
        .group_by(CallSurvey.kind, CallSurvey.score, CallSurvey.settled)
    )
    for kind, score, was_settled, n in rows:
        answers[kind] += int(n)
        if score is not None:
            counts[kind][int(score)] += int(n)
        if was_settled is not None:
            settled[kind][0 if was_settled else 1] += int(n)
    return CallerFeedback(
        deflected=int(deflected),
        surveys={
            k: SurveyFigures(k, answers[k], counts[k], settled[k][0], settled[k][1])
            for k in SURVEY_KINDS
        },
    )


def feedback_today(db: DbSession, *, day: date | None = None) -> CallerFeedback:
    """Today's deflections and surveys (Tokyo time): the wallboard's block."""
    day = day or context(db).now().astimezone(TOKYO).date()
    start = datetime.combine(day, datetime.min.time(), TOKYO)
    return caller_feedback(db, start=start, end=start + timedelta(days=1))
