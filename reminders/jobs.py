"""RQ jobs that send residents' messages: the outbox pump and one send job per message.

The database is the truth; Redis only says when to look. A lost job (Redis restarted empty, or
down when a booking was made) loses nothing: the pump finds what is due and re-arms it. Each
attempt is claimed and committed before Twilio is called, so no message goes twice: a claim left
unfinished (a worker killed mid-send, an answer that never came) is settled by asking Twilio
whether it arrived, never by sending again blindly.

``config.worker`` (or, in the embedded default, ``config.app``) gives the jobs their ``Runtime``
once per process with ``use()``: the database, the rules, the queue and Twilio.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from booking.jobs import Jobs
from ivr.telephony import Accepted, PhoneApi, TwilioFailure
from reminders import service
from reminders.service import Later, Outgoing, ReminderRules

log = logging.getLogger(__name__)

PUMP = "reminders.jobs.pump"
SEND = "reminders.jobs.send"
OUTBOX_QUEUE = "outbox"
MESSAGES_QUEUE = "messages"


@dataclass(frozen=True)
class Runtime:
    sessions: sessionmaker[Session]
    rules: ReminderRules
    jobs: Jobs
    phone: PhoneApi
    public_base_url: str
    # A claim older than this is settled with Twilio (longer than any send can take).
    claim_timeout: timedelta = timedelta(minutes=2)
    pump_every: timedelta = timedelta(minutes=1)


_runtime: Runtime | None = None


def use(runtime: Runtime) -> None:
    """Give this process's jobs what they work with (the worker does this at start)."""
    global _runtime
    _runtime = runtime


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("reminders.jobs.use() was not called in this process")
    return _runtime


def _now() -> datetime:
    return datetime.now(UTC)


def arm(rt: Runtime, later: Later) -> None:
    """A send job for this message at its time (one job id per message and time)."""
    job_id = f"message-{later.id}-{int(later.at.timestamp())}"
    if later.at <= _now():
        rt.jobs.run_soon(SEND, later.id, job_id=job_id, queue=MESSAGES_QUEUE)
    else:
        rt.jobs.run_at(later.at, SEND, later.id, job_id=job_id, queue=MESSAGES_QUEUE)


def arm_pump(rt: Runtime, at: datetime) -> None:
    """The next pump run: one job id per minute, however many ask for it."""
    rt.jobs.run_at(at, PUMP, job_id=f"pump-at-{at:%Y%m%d%H%M%S}", queue=OUTBOX_QUEUE)


def wake_pump(jobs: Jobs) -> None:
    """Run the pump soon (after a booking change; when a worker starts)."""
    jobs.wake(PUMP, queue=OUTBOX_QUEUE)


def pump() -> str:
    """Plan messages from the booking outbox and arm their jobs; pick up due messages whose job
    was lost; settle unfinished claims; then arm the next run (RQ's scheduler keeps time)."""
    rt = runtime()
    with rt.sessions() as db:
        # Waitlist offers unanswered in time go to the next waiting first, so that their
        # offers are planned in this same run (within a pump's minute of the deadline).
        service.pass_on_lapsed_offers(db)
        planned = service.plan_from_outbox(db, rt.rules)
        db.commit()
    for message_id, at in planned.due:
        arm(rt, Later(message_id, at))
    with rt.sessions() as db:
        due = service.due_message_ids(db)
    for later in due:  # at its own time: the same job id as when it was first armed
        arm(rt, later)
    settled = reconcile(rt)
    every = rt.pump_every.total_seconds()
    next_at = datetime.fromtimestamp((_now().timestamp() // every + 1) * every, UTC)
    arm_pump(rt, next_at)
    return (
        f"planned {planned.planned}, dropped {planned.dropped}, "
        f"re-armed {len(due)}, settled {settled}"
    )


def _deliver(rt: Runtime, out: Outgoing) -> Accepted:
    base = rt.public_base_url.rstrip("/")
    if out.channel == "sms":
        status_url = f"{base}/reminders/status?m={out.id}"
        return rt.phone.send_sms(to=out.to, body=out.body, status_callback=status_url)
    # A call's status (CallSid, CallStatus) goes to the IVR, which ends the call's record and
    # settles the message: the SMS route reads MessageStatus, which a call never sends.
    return rt.phone.place_call(
        to=out.to,
        url=f"{base}/ivr/voice?reminder={out.id}",
        status_callback=f"{base}/ivr/status?reminder={out.id}",
    )


def send(message_id: int) -> str:
    """Send one message if it is due and still wanted: claim (committed), call Twilio, record."""
    rt = runtime()
    with rt.sessions() as db:
        got = service.claim(db, message_id=message_id, rules=rt.rules)
        db.commit()
    if got is None:
        return "nothing to send"
    if isinstance(got, Later):
        arm(rt, got)
        return f"later, at {got.at.isoformat()}"
    try:
        accepted = _deliver(rt, got)
    except TwilioFailure as failure:
        log.warning("message %s: %s (%s)", message_id, failure.outcome, failure.detail)
        with rt.sessions() as db:
            later = service.record_failure(
                db, message_id=message_id, failure=failure, rules=rt.rules
            )
            db.commit()
        if later is not None:
            arm(rt, later)
        return failure.outcome
    with rt.sessions() as db:
        service.record_sent(db, message_id=message_id, accepted=accepted)
        db.commit()
    return "sent"


def reconcile(rt: Runtime) -> int:
    """Settle claims left unfinished by asking Twilio whether each went out."""
    with rt.sessions() as db:
        ids = service.claims_to_reconcile(db, older_than=rt.claim_timeout)
        pending = [service.outgoing(db, message_id=i, rules=rt.rules) for i in ids]
    settled = 0
    for out in pending:
        if out is None:
            continue
        try:
            if out.channel == "sms":
                found = rt.phone.find_sms(to=out.to, body=out.body, since=out.claimed_at)
            else:
                found = rt.phone.find_call(to=out.to, since=out.claimed_at)
        except TwilioFailure as failure:  # Twilio unreachable: ask again on the next round
            log.warning("message %s: cannot reconcile yet (%s)", out.id, failure.detail)
            continue
        with rt.sessions() as db:
            later = service.settle(db, sent=out, found=found, rules=rt.rules)
            db.commit()
        settled += 1
        if later is not None:
            arm(rt, later)
    return settled
