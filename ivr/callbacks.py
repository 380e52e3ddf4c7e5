"""Callback requests: a caller (or the ward) asks for a call back; the agents' list, an agent
taking one on, and what came of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session as DbSession

from booking.context import context
from booking.personal import mask_phone, parse_phone
from ivr.agents import WAITING_HORIZON
from ivr.calls import set_outcome
from ivr.models import Call, CallbackRequest

# Callbacks asked for by a caller who was in the agents' queue: they keep their place in line.
FROM_THE_QUEUE = ("queue_wait", "queue_failed")


def request_callback(db: DbSession, *, call: Call, phone: str, language: str, reason: str) -> int:
    """A caller asks to be called back: a row in the agents' callback list. One who asked from
    the queue keeps their place: the list is ordered by when they entered it."""
    kept = call.enqueued_at if reason in FROM_THE_QUEUE else None
    callback_id = _callback(
        db, call_id=call.id, phone=phone, language=language, reason=reason, place_at=kept
    )
    set_outcome(call, "callback_requested")
    return callback_id


def ask_agents_to_call(db: DbSession, *, phone: str, language: str, reason: str) -> int:
    """A callback the ward owes a resident it could not reach another way (no call behind
    it): a row in the agents' callback list."""
    return _callback(db, call_id=None, phone=phone, language=language, reason=reason)


def _callback(
    db: DbSession,
    *,
    call_id: int | None,
    phone: str,
    language: str,
    reason: str,
    place_at: datetime | None = None,
) -> int:
    ctx = context(db)
    e164 = parse_phone(phone).e164
    now = ctx.now()
    row = CallbackRequest(
        call_id=call_id,
        phone_enc=ctx.vault.encrypt(e164),
        phone_hmac=ctx.vault.digest(e164),
        language=language,
        reason=reason,
        status="open",
        requested_at=now,
        place_at=place_at or now,
    )
    db.add(row)
    db.flush()
    return row.id


@dataclass(frozen=True)
class CallbackView:
    id: int
    phone: str
    masked_phone: str
    language: str
    reason: str
    status: str
    requested_at: datetime
    claimed_by: int | None = None
    outcome: str | None = None
    # When the caller's place in line was taken (see CallbackRequest.place_at).
    place_at: datetime | None = None

    @property
    def kept_place(self) -> bool:
        """Asked for from the agents' queue: the callback keeps the caller's place in line."""
        return self.reason in FROM_THE_QUEUE


CALLBACK_OUTCOMES = ("reached", "no_answer", "wrong_number", "not_needed")


def open_callbacks(db: DbSession) -> list[CallbackView]:
    """The agents' callback list, in the callers' places in line (when each first called)."""
    vault = context(db).vault
    rows = db.execute(
        select(CallbackRequest)
        .where(CallbackRequest.status == "open")
        .order_by(CallbackRequest.place_at, CallbackRequest.id)
    ).scalars()
    views = []
    for row in rows:
        phone = vault.decrypt(row.phone_enc)
        views.append(_callback_view(row, phone))
    return views


def callbacks_ahead(db: DbSession, *, language: str, before: datetime) -> int:
    """Callbacks in this language that kept a place ahead of a caller who entered the queue at
    ``before`` and that no agent has taken on yet: the agents' list serves them first, so the
    caller's place counts them (Twilio's own position does not know them). As far back as a
    caller is ever shown waiting: an older request is owed, but it was not in this line."""
    return int(
        db.execute(
            select(func.count())
            .select_from(CallbackRequest)
            .where(
                CallbackRequest.status == "open",
                CallbackRequest.claimed_by.is_(None),
                CallbackRequest.language == language,
                CallbackRequest.place_at < before,
                CallbackRequest.place_at >= before - WAITING_HORIZON,
            )
        ).scalar_one()
    )


def _callback_view(row: CallbackRequest, phone: str) -> CallbackView:
    return CallbackView(
        row.id,
        phone,
        mask_phone(phone),
        row.language,
        row.reason,
        row.status,
        row.requested_at,
        row.claimed_by,
        row.outcome,
        row.place_at,
    )


def claim_callback(db: DbSession, *, callback_id: int, staff_id: int) -> CallbackView | None:
    """An agent takes on a callback: theirs unless another agent has it already (one
    conditional update). Their own claimed callback is returned again."""
    now = context(db).now()
    db.execute(
        update(CallbackRequest)
        .where(
            CallbackRequest.id == callback_id,
            CallbackRequest.status == "open",
            CallbackRequest.claimed_by.is_(None),
        )
        .values(claimed_by=staff_id, claimed_at=now)
    )
    row = db.get(CallbackRequest, callback_id)
    if row is None or row.claimed_by != staff_id:
        return None
    return _callback_view(row, context(db).vault.decrypt(row.phone_enc))


def finish_callback(db: DbSession, *, callback_id: int, staff_id: int, outcome: str) -> bool:
    """What came of the call back; a request not reached can be left open for another try."""
    if outcome not in CALLBACK_OUTCOMES:
        return False
    done = outcome != "no_answer"
    values: dict[str, object] = {"outcome": outcome}
    if done:
        values.update(status="done", done_at=context(db).now())
    else:  # back on the list for a later try
        values.update(claimed_by=None, claimed_at=None)
    result = db.execute(
        update(CallbackRequest)
        .where(
            CallbackRequest.id == callback_id,
            CallbackRequest.claimed_by == staff_id,
            CallbackRequest.status == "open",
        )
        .values(**values)
    )
    return bool(getattr(result, "rowcount", 0))


def close_callback(db: DbSession, *, callback_id: int) -> bool:
    result = db.execute(
        update(CallbackRequest)
        .where(CallbackRequest.id == callback_id, CallbackRequest.status == "open")
        .values(status="done", done_at=context(db).now())
    )
    return bool(getattr(result, "rowcount", 0))


def callback_number(db: DbSession, *, callback_id: int, staff_id: int) -> str | None:
    """The number to call back, for the agent who took the request on (no one else)."""
    row = db.get(CallbackRequest, callback_id)
    if row is None or row.claimed_by != staff_id or row.status != "open":
        return None
    return context(db).vault.decrypt(row.phone_enc)
