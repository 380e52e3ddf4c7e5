"""The web booking's link by SMS, to a caller who asked for it on the phone line (text-a-link).
The line leaves a request in its outbox in the call's own transaction; the pump makes it a
``message`` (kind ``booking_link``, about the call: once per call, the table's unique key),
claimed before it goes and sent like any message. The number is the call's as stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session as DbSession

from booking.context import context
from ivr import service as calls
from reminders.ledger import add_once, drop_or_claim
from reminders.models import Message
from reminders.opt_outs import number_opted_out
from reminders.planning import ReminderRules
from reminders.texts import compose_booking_link

LINK = "booking_link"


def plan_link_texts(db: DbSession) -> list[tuple[int, datetime]]:
    """Messages for the phone line's link requests not planned yet, due now (the caller is
    waiting for it: no quiet hours); in the caller's transaction, with the requests marked."""
    requests = calls.pending_link_requests(db)
    if not requests:
        return []
    now = context(db).now()
    made: list[tuple[int, datetime]] = []
    for request in requests:
        if not request.to_enc:  # erased meanwhile: nothing to send to
            continue
        message = Message(
            call_id=request.call_id,
            booking_version=1,
            kind=LINK,
            channel="sms",
            to_enc=request.to_enc,
            to_hmac=request.to_hmac,
            language=request.language,
            send_after=now,
            status="scheduled",
            copy=0,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        if not add_once(db, message):
            continue  # another made it at the same moment
        made.append((message.id, now))
    calls.mark_links_planned(db, request_ids=[r.request_id for r in requests])
    return made


def claim_link_text(
    db: DbSession, message: Message, rules: ReminderRules
) -> tuple[str, str] | None:
    """Claim the link's SMS (a number erased or opted out: dropped), committed by the caller
    before sending: the number and the text, or None."""
    now = context(db).now()
    reason = None
    if not message.to_enc:
        reason = "no number"
    elif number_opted_out(db, message.to_hmac):
        reason = "opted out"
    if not drop_or_claim(db, message.id, reason, now):
        return None  # dropped, or another worker took it
    return context(db).vault.decrypt(message.to_enc), link_text(message, rules.site_url)


def booking_page(site_url: str, language: str) -> str:
    """The web booking's start page in the caller's language (Japanese is the page's own)."""
    base = site_url.rstrip("/") + "/"
    return base if language == "ja" else f"{base}?lang={language}"


def link_text(message: Message, site_url: str) -> str:
    """The SMS: the link to the web booking, in the caller's language."""
    return compose_booking_link(message.language, link=booking_page(site_url, message.language))
