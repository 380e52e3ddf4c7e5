"""Text-a-link: a caller on a mobile takes the web booking's link by SMS and hangs up (counted
as deflected). The phone line writes the request as an outbox row in the call's own
transaction; the reminders' pump plans the SMS from it (the phone line sends nothing itself).
A spoofed caller ID must not become a way to bomb someone with texts: one link per number an
hour."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from booking import service as booking
from booking.context import context
from ivr.calls import Caller, note_event, set_outcome
from ivr.models import Call, LinkRequest

LINKS_PER_NUMBER = 1
LINK_WINDOW = timedelta(hours=1)


def may_text(caller: Caller) -> bool:
    """Only a mobile number we could text is offered the link (a landline takes no SMS)."""
    return caller.e164 is not None and caller.line_type == "mobile"


def note_link_attempt(db: DbSession, *, call: Call) -> bool:
    """Count one link to this calling number; False when one went to it within the hour."""
    if call.caller_hmac is None:
        return False
    client = context(db).vault.digest(f"ivr-link:{call.caller_hmac}")
    return booking.note_attempt(
        db, client=client, kind="ivr_link", limit=LINKS_PER_NUMBER, window=LINK_WINDOW
    )


def request_link(db: DbSession, *, call: Call) -> None:
    """The caller takes the link: an outbox row for the SMS (once a call), the call deflected."""
    seen = db.execute(select(LinkRequest.id).where(LinkRequest.call_id == call.id)).first()
    if seen is None:
        db.add(LinkRequest(call_id=call.id, language=call.language, requested_at=context(db).now()))
        db.flush()
        db.info[booking.OUTBOX_WRITTEN] = True  # wake the pump after commit: it plans the SMS
    set_outcome(call, "deflected")
    note_event(db, call, "deflected")


@dataclass(frozen=True)
class LinkToSend:
    """A request not yet planned: the call's number as stored (sealed, with its keyed hash)."""

    request_id: int
    call_id: int
    language: str
    to_enc: str
    to_hmac: str


def pending_link_requests(db: DbSession, *, limit: int = 200) -> list[LinkToSend]:
    """Requests the pump has not planned yet, oldest first, locked for this transaction (on
    PostgreSQL another pump skips them rather than waiting)."""
    rows = db.execute(
        select(
            LinkRequest.id,
            LinkRequest.call_id,
            LinkRequest.language,
            Call.caller_enc,
            Call.caller_hmac,
        )
        .join(Call, Call.id == LinkRequest.call_id)
        .where(LinkRequest.planned_at.is_(None))
        .order_by(LinkRequest.id)
        .limit(limit)
        .with_for_update(of=LinkRequest, skip_locked=True)
    ).all()
    return [
        LinkToSend(request_id, call_id, language, sealed or "", hmac or "")
        for request_id, call_id, language, sealed, hmac in rows
    ]


def mark_links_planned(db: DbSession, *, request_ids: list[int]) -> None:
    """The pump planned these (in the same transaction as the messages it made)."""
    if request_ids:
        db.execute(
            update(LinkRequest)
            .where(LinkRequest.id.in_(request_ids))
            .values(planned_at=context(db).now())
        )
