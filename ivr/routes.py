"""Twilio's voice webhooks under /ivr/: thin routes over ``ivr.flow`` and ``ivr.service``.

Every request must carry a valid ``X-Twilio-Signature``, computed over the public URL
(``MADOGUCHI_PUBLIC_BASE_URL`` + path + query: behind the ward's proxy the URL a request arrives
on is not the one Twilio signed). Every answer is valid TwiML with status 200, even when a step
fails inside: the caller hears an apology and the way to a person, never silence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession
from twilio.twiml.voice_response import VoiceResponse

from booking.schemas import RowId
from booking.web import Problem, row_id_or_none, unit_of_work, whole_number
from ivr import flow, telephony
from ivr import service as calls
from ivr.flow import LineConfig, Turn
from ivr.models import Call
from ivr.placed import PlacedCalls
from ivr.telephony import Webhooks, forbidden

router = APIRouter(prefix="/ivr", include_in_schema=False)
log = logging.getLogger(__name__)
TWIML = "application/xml"
T = TypeVar("T")
# When the database pool has no size (a NullPool or a StaticPool): anyio's own default.
THREADS_WITHOUT_A_POOL = 40


@dataclass(frozen=True)
class PhoneLine:
    """What the routes need: the token to check signatures with, and the dialogue's settings."""

    auth_token: str
    config: LineConfig

    @property
    def webhooks(self) -> Webhooks:
        return Webhooks(self.auth_token, self.config.public_base_url)


def _line(request: Request) -> PhoneLine:
    line: PhoneLine = request.app.state.phone_line
    return line


def _placed(request: Request) -> PlacedCalls:
    placed: PlacedCalls = request.app.state.placed_calls
    return placed


async def signed_form(request: Request) -> dict[str, str] | None:
    """The webhook's form fields, or None when the signature does not match."""
    return await telephony.signed_form(request, _line(request).webhooks)


def _limiter(request: Request) -> CapacityLimiter:
    """The phone line's threads: as many as the database pool keeps connections open. A webhook
    beyond them waits its turn here, on the loop, rather than in a thread queued for a
    connection; and the pool's overflow connections, each opened (a new PostgreSQL backend)
    and closed again after one webhook, are never needed (measured: bench/README.md)."""
    state = request.app.state
    limiter: CapacityLimiter | None = getattr(state, "ivr_limiter", None)
    if limiter is None:
        size = getattr(state.sessions.kw["bind"].pool, "size", None)
        limiter = CapacityLimiter(size() if callable(size) else THREADS_WITHOUT_A_POOL)
        state.ivr_limiter = limiter
    return limiter


async def in_thread(request: Request, work: Callable[[], T]) -> T:
    """Run a webhook's database work in a thread of the phone line's own (never on the loop)."""
    return await to_thread.run_sync(work, limiter=_limiter(request))


def _int(value: str | None) -> int | None:
    return row_id_or_none(value)


def _twiml(reply: VoiceResponse | str) -> Response:
    return Response(str(reply), media_type=TWIML)


def _turn(request: Request, db: DbSession, call: Call) -> Turn:
    state = calls.load_state(db, call)
    return Turn(db, call, state, lambda: calls.caller_of(db, call), _line(request).config)


def _finish(db: DbSession, turn: Turn) -> str:
    """Store what this webhook answered (replayed if Twilio retries it) and commit."""
    xml = str(turn.reply)
    turn.call.seq = turn.next_seq
    turn.call.last_reply = xml
    calls.save_state(db, turn.call, turn.state)
    db.commit()
    return xml


def _apology(request: Request, call_sid: str, language: str) -> str:
    """A step failed: say sorry and offer a person (or a callback out of hours). If even that
    cannot be done, a static apology, so the caller never hears Twilio's application error."""
    try:
        with unit_of_work(request) as db:
            call = calls.lock_call(db, call_sid)
            if call is not None:
                turn = _turn(request, db, call)
                calls.note_step(call, "error")
                turn.say("sorry_error")
                flow.hand_over(turn)
                return _finish(db, turn)
    except Exception:
        log.exception("the apology for call %s failed too", call_sid)
    reply = VoiceResponse()
    text = flow.prompt(language if language in flow.LANGUAGES else "ja", "sorry_call_later")
    reply.say(text, language=flow.SAY_LANGUAGE.get(language, "ja-JP"))
    reply.hangup()
    return str(reply)


def apology_for(request: Request, problem: Problem) -> Response:
    """A webhook that failed before any step could answer (config.errors chooses the
    renderer): nothing of the call can be read, perhaps not even the database, so in Japanese,
    sorry, and into the agents' queue; if no one answers, call again later. Answered with 200,
    or Twilio would play its own "application error" instead."""
    line = _line(request)
    voice = line.config.voices["ja"]
    reply = VoiceResponse()
    reply.say(flow.prompt("ja", "sorry_error"), language=flow.SAY_LANGUAGE["ja"], voice=voice)
    if problem.ours:
        reply.enqueue("madoguchi-ja")
    reply.say(flow.prompt("ja", "sorry_call_later"), language=flow.SAY_LANGUAGE["ja"], voice=voice)
    reply.hangup()
    return Response(
        str(reply), media_type=TWIML, status_code=200 if problem.ours else problem.status
    )


async def _run(request: Request, call_sid: str, work: Callable[[], str]) -> Response:
    try:
        xml = await in_thread(request, work)
    except Exception:
        log.exception("IVR step failed for call %s", call_sid)
        xml = await in_thread(request, lambda: _apology(request, call_sid, "ja"))
    return _twiml(xml)


@router.post("/voice")
async def incoming_call(request: Request) -> Response:
    """A call comes in: greeting, the way to English, the main menu."""
    form = await signed_form(request)
    if form is None:
        return forbidden()
    call_sid = form.get("CallSid", "")
    # A reminder call we placed: the resident is the one called, and the call is about a booking.
    reminder = _int(request.query_params.get("reminder"))

    def work() -> str:
        with unit_of_work(request) as db:
            call = calls.lock_call(db, call_sid)
            if call is not None:  # Twilio retried the first webhook
                return call.last_reply
            resident = form.get("To" if reminder is not None else "From", "")
            caller = calls.read_caller(resident)
            try:
                call = calls.start_call(
                    db, call_sid=call_sid, caller=caller, placed=reminder is not None
                )
            except IntegrityError:  # the retry raced the first request: answer as it did
                db.rollback()
                found = calls.lock_call(db, call_sid)
                return found.last_reply if found is not None else ""
            turn = _turn(request, db, call)
            if reminder is None:
                flow.greet(turn)
            else:
                flow.remind(turn, _placed(request).about(db, reminder))
            return _finish(db, turn)

    return await _run(request, call_sid, work)


@router.post("/step/{step}")
async def step_answer(request: Request, step: str) -> Response:
    """The keys pressed at a question (or Twilio's word on the queue, for queue_done)."""
    form = await signed_form(request)
    if form is None:
        return forbidden()
    call_sid = form.get("CallSid", "")
    try:
        seq = whole_number(request.query_params.get("n", ""))
    except ValueError:
        seq = -1
    # The media stream heard the answer and redirected the call here; it is kept on the call.
    by_voice = request.query_params.get("voice") == "1"

    def work() -> str:
        with unit_of_work(request) as db:
            call = calls.lock_call(db, call_sid)
            if call is None:  # not a call we answered: start it properly
                call = calls.start_call(
                    db, call_sid=call_sid, caller=calls.read_caller(form.get("From", ""))
                )
                turn = _turn(request, db, call)
                flow.greet(turn)
                return _finish(db, turn)
            if seq != call.seq or step != call.expect:
                # Twilio retried a webhook already answered, or a stale one: the same answer.
                return call.last_reply
            if step != "queue_done" and step not in flow.STEPS:
                return call.last_reply
            turn = _turn(request, db, call)
            # The call row is written once, as the webhook ends: not also before each query
            # the step makes (its path changes first).
            with db.no_autoflush:
                if step == "queue_done":
                    flow.queue_done(turn, form.get("QueueResult", ""))
                elif by_voice:
                    flow.answer_by_voice(turn, step, seq)
                else:
                    flow.answer(turn, step, form.get("Digits", "").strip())
                if not turn.finished:  # every path asks, queues or hangs up; never silence
                    flow.back_to_menu(turn)
            return _finish(db, turn)

    return await _run(request, call_sid, work)


@router.post("/wait")
async def queue_wait(request: Request) -> Response:
    """The queue's wait loop (Twilio's waitUrl): the place in line, and 1 for a callback."""
    form = await signed_form(request)
    if form is None:
        return forbidden()
    call_sid = form.get("CallSid", "")
    line = _line(request)

    def work() -> str:
        try:
            position = max(1, whole_number(form.get("QueuePosition", "1")))
        except ValueError:
            position = 1
        estimate: float | None = None
        waited = 0
        with unit_of_work(request) as db:
            call = calls.lock_call(db, call_sid)
            language = call.language if call is not None else "ja"
            mobile = call is not None and calls.may_text(calls.caller_of(db, call))
            if call is not None:
                try:
                    call.wait_seconds = whole_number(form.get("QueueTime", "0"))
                except ValueError:
                    pass
                waited = call.wait_seconds or 0
                if call.enqueued_at is not None:  # callbacks that kept a place ahead of theirs
                    position += calls.callbacks_ahead(
                        db, language=call.language, before=call.enqueued_at
                    )
                if call.queue is not None:  # from the queue's last hour of answers
                    estimate = calls.queue_wait_estimate(db, queue=call.queue, position=position)
                db.commit()
        offer = flow.offers_callback(line.config, estimate, waited)
        action = line.config.public_base_url.rstrip("/") + "/ivr/wait/key"
        return str(
            flow.wait_music(
                language,
                position,
                line.config,
                action,
                estimate=estimate,
                offer=offer,
                mobile=mobile,
            )
        )

    return await _run(request, call_sid, work)


@router.post("/wait/key")
async def queue_key(request: Request) -> Response:
    """A key pressed while waiting: 1 leaves the queue for a callback (asked for next)."""
    form = await signed_form(request)
    if form is None:
        return forbidden()
    call_sid = form.get("CallSid", "")

    def work() -> str:
        reply = VoiceResponse()
        if form.get("Digits", "") == "2":
            return _link_from_queue(request, call_sid)
        if form.get("Digits", "") != "1":
            return str(reply)  # back to the wait loop
        with unit_of_work(request) as db:
            call = calls.lock_call(db, call_sid)
            if call is not None:
                state = calls.load_state(db, call)
                state.callback = "queue_wait"
                calls.note_step(call, "queue_wait=1")
                calls.save_state(db, call, state)
                db.commit()
        reply.leave()
        return str(reply)

    return await _run(request, call_sid, work)


def _link_from_queue(request: Request, call_sid: str) -> str:
    """Key 2 while waiting: a mobile caller leaves the queue for the web booking's link by SMS
    (sent by queue_done). One link per number an hour: refused, said kindly, and the caller
    keeps their place in the queue."""
    reply = VoiceResponse()
    with unit_of_work(request) as db:
        call = calls.lock_call(db, call_sid)
        if call is None or not calls.may_text(calls.caller_of(db, call)):
            return str(reply)  # back to the wait loop
        if not calls.note_link_attempt(db, call=call):
            refused = flow.prompt(call.language, "link_refused")
            flow.say_in(reply, call.language, refused, _line(request).config)
            return str(reply)
        state = calls.load_state(db, call)
        state.link = True
        calls.note_step(call, "queue_wait=2")
        calls.save_state(db, call, state)
        db.commit()
    reply.leave()
    return str(reply)


@router.post("/status")
async def call_status(request: Request) -> Response:
    """Twilio's status callback: the call ended (or failed). Records the outcome."""
    form = await signed_form(request)
    if form is None:
        return forbidden()
    call_sid = form.get("CallSid", "")
    status = form.get("CallStatus", "")
    reminder = _int(request.query_params.get("reminder"))

    def work() -> None:
        if status not in ("completed", "busy", "failed", "no-answer", "canceled"):
            return
        try:
            duration: int | None = whole_number(form.get("CallDuration", ""))
        except ValueError:
            duration = None
        with unit_of_work(request) as db:
            calls.end_call(db, call_sid=call_sid, status=status, duration=duration)
            if reminder is not None:
                _placed(request).settle(db, reminder, call_sid, status)
            db.commit()

    await in_thread(request, work)
    return Response(status_code=204)


# --- putting callers through to agents' phones -----------------------------------------------


@router.post("/connect")
async def connect_to_agent(request: Request, lang: str = "ja") -> Response:
    """A queued caller, taken out of the queue by the console (the agent pressed answer): into
    the call's conference, with music until the agent's phone (called in by the console)
    joins and starts it; the agent leaving ends it."""
    form = await signed_form(request)
    if form is None:
        return forbidden()
    call_sid = form.get("CallSid", "")

    def room() -> tuple[str | None, str | None]:
        with unit_of_work(request) as db:
            return (
                calls.put_through_number(db, call_sid=call_sid),
                calls.conference_of(db, call_sid=call_sid),
            )

    to, conference = await in_thread(request, room)
    language = lang if lang in flow.LANGUAGES else "ja"
    reply = VoiceResponse()
    base = _line(request).config.public_base_url.rstrip("/")
    done = f"{base}/ivr/connect/done?lang={language}"
    if to is None or conference is None:  # nobody to put through to after all: back in the queue
        reply.redirect(done, method="POST")
        return _twiml(reply)
    flow.say_in(reply, language, flow.prompt(language, "connecting"), _line(request).config)
    dial = reply.dial(action=done, method="POST")
    dial.conference(
        conference,
        start_conference_on_enter=False,
        end_conference_on_exit=True,
        beep=False,
        wait_url=f"{base}/ivr/hold?lang={language}",
        wait_method="POST",
    )
    return _twiml(reply)


@router.api_route("/hold", methods=["GET", "POST"])
async def hold_music(request: Request, lang: str = "ja") -> Response:
    """What a caller hears waiting for the agent in the conference, or held by the agent
    (Twilio's waitUrl and HoldUrl): a word in their language, a pause, again."""
    form = await signed_form(request)
    if form is None:
        return forbidden()
    language = lang if lang in flow.LANGUAGES else "ja"
    reply = VoiceResponse()
    flow.say_in(reply, language, flow.prompt(language, "on_hold"), _line(request).config)
    reply.pause(length=15)
    return _twiml(reply)


@router.post("/connect/agent")
async def agent_leg_status(request: Request, call: str = "", lang: str = "ja") -> Response:
    """How the agent's phone, called into the conference, did (its participant's status
    callback): one that did not answer puts the caller (``call``) back in the queue for the
    next agent, as a failed dial did, by redirecting the caller's live call."""
    form = await signed_form(request)
    if form is None:
        return forbidden()
    leg = form.get("CallSid", "")
    if form.get("CallStatus") not in ("busy", "no-answer", "failed", "canceled"):
        return Response(status_code=204)
    language = lang if lang in flow.LANGUAGES else "ja"

    def requeue() -> None:
        with unit_of_work(request) as db:
            missed = calls.agent_leg_missed(db, call_sid=call, leg_sid=leg)
            db.commit()
        if not missed:
            return
        api: telephony.PhoneApi = request.app.state.phone_api
        base = _line(request).config.public_base_url.rstrip("/")
        try:
            api.redirect_call(sid=call, url=f"{base}/ivr/connect/done?lang={language}&missed=1")
        except telephony.TwilioFailure as failure:
            log.warning("call %s not put back in the queue: %s", call, failure.detail)

    await in_thread(request, requeue)
    return Response(status_code=204)


# What a <Dial> that reached nobody ends with (Twilio's DialCallStatus).
DIAL_FAILED = frozenset({"busy", "failed", "no-answer", "canceled"})


@router.post("/connect/done")
async def connect_done(request: Request, lang: str = "ja") -> Response:
    """The agent's phone was answered and the talk is over (hang up), or it was not answered:
    back into the queue, for the next agent."""
    form = await signed_form(request)
    if form is None:
        return forbidden()
    call_sid = form.get("CallSid", "")

    def talk_over() -> str:
        with unit_of_work(request) as db:
            call = calls.lock_call(db, call_sid)
            if call is not None:
                calls.end_talk(db, call=call)  # the agent's wrap-up starts here
            if call is not None and call.ended_at is None:
                # The caller's leg goes on (unless it was they who hung up): the optional
                # survey, then goodbye.
                turn = _turn(request, db, call)
                flow.offer_survey(turn, "agent")
                return _finish(db, turn)
            db.commit()
        reply = VoiceResponse()
        reply.hangup()
        return str(reply)

    # A conference's Dial ends when the conference does (the talk is over); a caller whose
    # agent's phone did not answer comes back here with missed=1, by the console's redirect.
    # Anything but a failure is the end of a talk: Twilio says "completed" or "answered" for a
    # conference's end, and an unknown word must never put a caller who talked back in line.
    missed = request.query_params.get("missed") == "1"
    if form.get("DialCallStatus") not in DIAL_FAILED and not missed:
        return await _run(request, call_sid, talk_over)

    def work() -> str:
        with unit_of_work(request) as db:
            call = calls.release_call(db, call_sid=call_sid)
            if call is None:
                hang_up = VoiceResponse()
                hang_up.hangup()
                return str(hang_up)
            turn = _turn(request, db, call)
            turn.say("agent_missed")
            first_in_line = call.enqueued_at
            turn.enqueue()
            # Back where they were: the agents' list orders callers by when they entered it.
            call.enqueued_at = first_in_line or call.enqueued_at
            return _finish(db, turn)

    return await _run(request, call_sid, work)


@router.post("/bridge")
async def callback_bridge(request: Request, callback: RowId, staff: RowId) -> Response:
    """The agent picked up the call the console placed to their desk phone: dial the resident
    who asked for a callback (the number never leaves the database except to Twilio here)."""
    if await signed_form(request) is None:
        return forbidden()

    def work() -> str:
        with unit_of_work(request) as db:
            number = calls.callback_number(db, callback_id=callback, staff_id=staff)
        reply = VoiceResponse()
        if number is None:
            reply.say(flow.prompt("ja", "sorry_call_later"), language="ja-JP")
            reply.hangup()
            return str(reply)
        reply.say(flow.prompt("ja", "callback_dialling"), language="ja-JP")
        ward = _line(request).config.ward_number
        dial = reply.dial(caller_id=ward or None, timeout=30)
        dial.number(number)
        return str(reply)

    return _twiml(await in_thread(request, work))
