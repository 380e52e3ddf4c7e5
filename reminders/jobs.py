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

import hashlib
import logging
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from booking.jobs import Jobs
from ivr.line_api import LineApi, LineRefused, LineUnavailable
from ivr.telephony import Accepted, PhoneApi, TwilioFailure
from reminders import service
from reminders.pacing import Pacer
from reminders.service import Later, Outgoing, ReminderRules

log = logging.getLogger(__name__)

PUMP = "reminders.jobs.pump"
SEND = "reminders.jobs.send"
SEND_BATCH = "reminders.jobs.send_batch"
# Sender threads per process: a batch's messages go to Twilio at once, so a worker's rate is
# about this many over Twilio's answer time (100 at 100 ms: up to 1,000 a second, CPU allowing).
SEND_THREADS = 100
# The longest a claimed message waits for its moment under the sending number's cap.
MOST_PACE_WAIT = 20.0
# The namespace of the LINE pushes' retry keys (uuid5 of the message).
LINE_KEYS = uuid.UUID("6d61646f-6775-6368-692d-6c696e650001")
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
    # The sending number's cap (None: none), and how many messages due together a job sends.
    pace: Pacer | None = None
    batch_size: int = 100
    # The LINE Official Account's Messaging API (None: the LINE channel is off, and a push
    # planned while it was on falls back to SMS or a call).
    line: LineApi | None = None

    def longest_pace_wait(self) -> float:
        """How long a claimed message may wait for its moment under the cap: well within the
        claim's time (a claim older than that is settled with Twilio)."""
        return min(MOST_PACE_WAIT, self.claim_timeout.total_seconds() / 4)


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


def arm_all(rt: Runtime, laters: list[Later], *, backlog: bool = False) -> None:
    """Send jobs for many messages: those due together (now, or in the same second) in batches
    of ``rt.batch_size``, a job per batch; a message alone keeps a job of its own. A batch's
    job id comes from its messages, so arming the same batch again adds no second job; a
    ``backlog`` (due messages whose jobs were lost, swept again each round while it drains) is
    cut by id instead, a job per hundred ids, so that a batch still waiting is not armed again
    as its first messages go."""
    now = _now()
    size = rt.batch_size
    together: dict[datetime | None, list[Later]] = {}
    for later in laters:
        moment = None if later.at <= now else later.at.replace(microsecond=0)
        together.setdefault(moment, []).append(later)
    for group in together.values():
        group.sort(key=lambda later: later.id)
        if backlog:
            buckets: dict[int, list[Later]] = {}
            for later in group:
                buckets.setdefault(later.id // size, []).append(later)
            chunks = list(buckets.values())
        else:
            chunks = [group[start : start + size] for start in range(0, len(group), size)]
        for chunk in chunks:
            if len(chunk) == 1:
                arm(rt, chunk[0])
                continue
            at = max(later.at for later in chunk)
            ids = tuple(later.id for later in chunk)
            if backlog:
                job_id = f"messages-backlog-{ids[0] // size}"
            else:
                digest = hashlib.sha256(repr(ids).encode()).hexdigest()[:16]
                job_id = f"messages-{ids[0]}-{len(ids)}-{int(at.timestamp())}-{digest}"
            if at <= now:
                rt.jobs.run_soon(SEND_BATCH, *ids, job_id=job_id, queue=MESSAGES_QUEUE)
            else:
                rt.jobs.run_at(at, SEND_BATCH, *ids, job_id=job_id, queue=MESSAGES_QUEUE)


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
        # Walk-in tickets' alerts, born with the counter's call: armed at once.
        alerts = service.fresh_queue_alerts(db, since=_now() - rt.claim_timeout)
        # The web booking's link, asked for on the phone line: due at once.
        alerts += service.plan_link_texts(db)
        db.commit()
    arm_all(rt, [Later(message_id, at) for message_id, at in [*planned.due, *alerts]])
    armed = {message_id for message_id, _ in [*planned.due, *alerts]}
    with rt.sessions() as db:
        # Due for longer than a send takes: a message due just now is likely waiting in its
        # batch's job, and the pump runs after every booking (each would be armed again).
        overdue = service.due_message_ids(db, older_than=rt.claim_timeout)
    due = [d for d in overdue if d.id not in armed]
    if len(due) > rt.batch_size:  # a backlog (Redis came back empty): in batches
        arm_all(rt, due, backlog=True)
    else:  # each at its own time, under the job id it was first armed with: queued once
        for later in due:
            arm(rt, later)
    settled = reconcile(rt)
    every = rt.pump_every.total_seconds()
    next_at = datetime.fromtimestamp((_now().timestamp() // every + 1) * every, UTC)
    arm_pump(rt, next_at)
    return (
        f"planned {planned.planned}, dropped {planned.dropped}, "
        f"re-armed {len(due)}, settled {settled}"
    )


def push_key(message_id: int) -> str:
    """The push's ``X-Line-Retry-Key``: the same for every attempt at one message, so LINE
    delivers it once however often a retry or a reconciliation sends it again."""
    return str(uuid.uuid5(LINE_KEYS, f"message-{message_id}"))


def _push(rt: Runtime, out: Outgoing) -> Accepted:
    """A LINE push; LINE's refusal (a block) becomes a failure the message falls back from,
    its unavailability one to retry later (the retry key keeps it single)."""
    if rt.line is None:
        raise TwilioFailure("rejected", "LINE: the channel is off")
    try:
        key = rt.line.push(out.to, [{"type": "text", "text": out.body}], retry_key=push_key(out.id))
    except LineRefused as error:
        raise TwilioFailure("rejected", f"LINE refused: {error}", error.status) from error
    except LineUnavailable as error:
        raise TwilioFailure("retry", f"LINE unavailable: {error}", error.status) from error
    return Accepted(sid=f"line:{key}", status="sent")


def _deliver(rt: Runtime, out: Outgoing) -> Accepted:
    if out.channel == "line":
        return _push(rt, out)
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


Answer = Accepted | TwilioFailure | None  # None: held back by the sending cap, Twilio not called


def _deliver_paced(rt: Runtime, out: Outgoing) -> Answer:
    """One claimed message to Twilio, at the sending number's pace (on a sender thread)."""
    if rt.pace is not None:
        wait = rt.pace.reserve(rt.longest_pace_wait())
        if wait is None:
            return None
        if wait > 0:
            time.sleep(wait)
    try:
        return _deliver(rt, out)
    except TwilioFailure as failure:
        return failure
    except Exception as exc:  # a fault of ours mid-send: as if Twilio's answer were lost
        log.exception("message %s: sending failed", out.id)
        return TwilioFailure("uncertain", f"sending interrupted ({type(exc).__name__})")


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _senders() -> ThreadPoolExecutor:
    """This process's sender threads (Twilio's client keeps a session per thread)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="madoguchi-send")
        return _pool


def _deliver_all(rt: Runtime, batch: list[Outgoing]) -> list[Answer]:
    """Every claimed message of a batch to Twilio at once (each on a thread of its own)."""
    if len(batch) == 1 and rt.pace is None:
        return [_deliver_paced(rt, batch[0])]
    return list(_senders().map(lambda out: _deliver_paced(rt, out), batch))


def _send(rt: Runtime, message_ids: list[int]) -> dict[int, str]:
    """Claim these messages (one commit), send the claimed ones concurrently, record every
    answer (one commit): what became of each message taken."""
    with rt.sessions() as db:
        got = service.claim_batch(db, message_ids=message_ids, rules=rt.rules)
        db.commit()
    outcomes: dict[int, str] = {}
    later: list[Later] = []
    batch: list[Outgoing] = []
    for item in got:
        if isinstance(item, Later):
            later.append(item)
            outcomes[item.id] = f"later, at {item.at.isoformat()}"
        else:
            batch.append(item)
    answers = _deliver_all(rt, batch) if batch else []
    held: list[int] = []
    with rt.sessions() as db:
        sent = [(o.id, a) for o, a in zip(batch, answers, strict=True) if isinstance(a, Accepted)]
        service.record_sent_many(db, sent=sent)
        outcomes.update((message_id, "sent") for message_id, _ in sent)
        for out, answer in zip(batch, answers, strict=True):
            if answer is None:
                held.append(out.id)
                outcomes[out.id] = "held back by the sending cap"
            elif isinstance(answer, TwilioFailure):
                log.warning("message %s: %s (%s)", out.id, answer.outcome, answer.detail)
                retry = service.record_failure(
                    db, message_id=out.id, failure=answer, rules=rt.rules
                )
                later += [retry] if retry is not None else []
                outcomes[out.id] = answer.outcome
        resume = _now() + timedelta(seconds=max(1.0, rt.longest_pace_wait()))
        later += service.give_back(db, message_ids=held, at=resume)
        db.commit()
    arm_all(rt, later)
    return outcomes


def send(message_id: int) -> str:
    """Send one message if it is due and still wanted: claim (committed), call Twilio, record."""
    return _send(runtime(), [message_id]).get(message_id, "nothing to send")


def send_batch(*message_ids: int) -> str:
    """Send a batch of messages due together: claimed in one commit, sent concurrently (at the
    sending number's pace), their answers recorded in one commit."""
    outcomes = Counter(_send(runtime(), list(message_ids)).values())
    return ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items())) or "nothing to send"


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
            if out.channel == "line":
                found = None  # pushed again under the same retry key: LINE delivers it once
            elif out.channel == "sms":
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
