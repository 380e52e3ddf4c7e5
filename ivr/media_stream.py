"""Twilio Media Streams: the caller's audio while a question is asked, recognised on premises.

Each question that listens starts a stream (``<Start><Stream>``, see flow.Turn._listen) whose
custom parameters say which call, question and language it is. Twilio sends JSON messages over
this WebSocket: connected, start, media (20 ms of 8 kHz mu-law, base64), dtmf, mark, stop.
The audio is recognised in worker threads (a recogniser call can block; never on the event
loop), in order, a batch of whatever frames have arrived at a time. When the answer is heard,
it is kept on the call (encrypted, never in a URL or a log) and the live call is redirected
through Twilio's REST API to the question's own step, which reads it as if it were keys.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from ivr import service as calls
from ivr.recognition import Heard, Listener, SpeechModels, grammar_for
from ivr.telephony import PhoneApi, TwilioFailure

log = logging.getLogger(__name__)
router = APIRouter(prefix="/ivr", include_in_schema=False)

# WebSocket close codes (RFC 6455): bad data, and a refused handshake signature.
CLOSE_BAD_DATA = 1007
CLOSE_POLICY = 1008
REDIRECT_RETRY_SECONDS = 0.2


class BrokenStream(ValueError):
    """A message that is not what Twilio sends: the stream is closed, the call goes on by keys."""


@dataclass(frozen=True)
class Question:
    """What a stream listens for: a call, the question asked (step and turn), the language."""

    call_sid: str
    step: str
    seq: int
    language: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class StreamStats:
    """One finished stream, for the operators' figures (no audio, no words, no answer)."""

    step: str
    language: str
    audio_seconds: float
    real_time_factor: float
    cpu_real_time_factor: float
    decided: bool
    # From the answer heard to the call redirected (keeping it on the call, Twilio's REST API).
    acting_seconds: float | None


# The last streams' figures (bench/bench_speech.py reads them; a monitor could too).
RECENT_STREAMS: deque[StreamStats] = deque(maxlen=1000)


@dataclass
class Decision:
    """What the stream decided and when (for the logs and the benchmark)."""

    heard: Heard
    redirected: bool
    at: float
    redirected_at: float | None = None


def _question(start: dict[str, Any]) -> Question:
    try:
        params = start["customParameters"]
        media = start.get("mediaFormat", {})
        if media and (media.get("encoding"), int(media.get("sampleRate", 0))) != (
            "audio/x-mulaw",
            8000,
        ):
            raise BrokenStream(f"audio format {media} is not 8 kHz mu-law")
        return Question(
            call_sid=str(start["callSid"]),
            step=str(params["step"]),
            seq=int(params["n"]),
            language=str(params["lang"]),
            choices=tuple(c for c in str(params.get("choices", "")).split("|") if c),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BrokenStream):
            raise
        raise BrokenStream(f"a start message without {exc}") from exc


class StreamSession:
    """One stream: its question, its listener, and the frames waiting to be recognised."""

    def __init__(
        self,
        *,
        speech: SpeechModels,
        pool: ThreadPoolExecutor,
        sessions: sessionmaker[DbSession],
        phone_api: PhoneApi,
        public_base_url: str,
        min_confidence: float,
    ) -> None:
        self.speech = speech
        self.pool = pool
        self.sessions = sessions
        self.phone_api = phone_api
        self.base = public_base_url.rstrip("/")
        self.min_confidence = min_confidence
        self.question: Question | None = None
        self.listener: Listener | None = None
        self.frames: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None
        self.decision: Decision | None = None

    async def take(self, text: str) -> bool:
        """One message from Twilio; False once the stream has stopped."""
        try:
            message = json.loads(text)
            event = message["event"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BrokenStream("a message that is not Twilio's JSON") from exc
        if event == "connected" or event in ("dtmf", "mark"):
            return True  # keys come through the question's <Gather>
        if event == "start":
            if self.question is not None:
                raise BrokenStream("a second start message")
            await self._start(_question(message.get("start", {})))
            return True
        if event == "media":
            if self.question is None:
                raise BrokenStream("media before the start message")
            media = message.get("media") or {}
            if media.get("track", "inbound") != "inbound":
                return True
            try:
                payload = base64.b64decode(media["payload"], validate=True)
            except (KeyError, TypeError, binascii.Error) as exc:
                raise BrokenStream("media whose payload is not base64") from exc
            if self.listener is not None and self.decision is None:
                self.frames.put_nowait(payload)
            return True
        if event == "stop":
            return False
        raise BrokenStream(f"an unknown event {event!r}")

    async def _start(self, question: Question) -> None:
        self.question = question
        model = self.speech.get(question.language)
        grammar = grammar_for(question.step, question.language, question.choices)
        if model is None or grammar is None:
            log.info(
                "stream for call %s at %s: no speech in %s, keys only",
                question.call_sid,
                question.step,
                question.language,
            )
            return
        loop = asyncio.get_running_loop()
        listener = await loop.run_in_executor(
            self.pool, Listener, model, grammar, self.min_confidence
        )
        self.listener = listener
        self.worker = asyncio.create_task(self._recognise(question, listener))

    async def _recognise(self, question: Question, listener: Listener) -> None:
        """Feed the frames in order, whatever has arrived at a time, in a worker thread."""
        loop = asyncio.get_running_loop()
        while self.decision is None:
            batch = [await self.frames.get()]
            while not self.frames.empty():
                batch.append(self.frames.get_nowait())
            payloads = [p for p in batch if p is not None]
            heard = await loop.run_in_executor(self.pool, listener.feed, payloads)
            if heard is not None:
                await self._act(question, heard)
            if None in batch:
                return

    async def _act(self, question: Question, heard: Heard) -> None:
        """Keep the answer on the call and send the call to the question's step. Only if the
        call still waits at that question: a key pressed meanwhile has won."""
        self.decision = Decision(heard, redirected=False, at=time.monotonic())
        log.info(
            "call %s at %s: %s by voice (confidence %.2f, %d words)",
            question.call_sid,
            question.step,
            "answered" if heard.keys is not None else "unclear",
            heard.confidence,
            heard.word_count,
        )
        kept = await run_in_threadpool(self._keep, question, heard)
        if not kept:
            return
        url = f"{self.base}/ivr/step/{question.step}?" + urlencode({"n": question.seq, "voice": 1})
        # Twilio refused before acting (busy, unavailable): once more, shortly. Not after a
        # timeout: the call may have moved already. Either way the caller can still use keys.
        for attempt in range(2):
            try:
                await run_in_threadpool(
                    self.phone_api.redirect_call, sid=question.call_sid, url=url
                )
                break
            except TwilioFailure as failed:
                if attempt == 0 and failed.outcome == "retry":
                    await asyncio.sleep(REDIRECT_RETRY_SECONDS)
                    continue
                log.warning(
                    "call %s: a voice answer could not move the call: %s",
                    question.call_sid,
                    failed,
                )
                return
        self.decision.redirected = True
        self.decision.redirected_at = time.monotonic()

    def _keep(self, question: Question, heard: Heard) -> bool:
        with self.sessions() as db:
            kept = calls.keep_voice_answer(
                db,
                call_sid=question.call_sid,
                step=question.step,
                seq=question.seq,
                keys=heard.keys,
                confidence=heard.confidence,
            )
            db.commit()
        return kept

    def stats(self) -> StreamStats | None:
        if self.question is None or self.listener is None:
            return None
        return StreamStats(
            step=self.question.step,
            language=self.question.language,
            audio_seconds=self.listener.audio_seconds,
            real_time_factor=self.listener.real_time_factor,
            cpu_real_time_factor=self.listener.cpu_real_time_factor,
            decided=self.decision is not None and self.decision.heard.keys is not None,
            acting_seconds=(
                self.decision.redirected_at - self.decision.at
                if self.decision is not None and self.decision.redirected_at is not None
                else None
            ),
        )

    async def close(self) -> None:
        """The stream is over (stopped, broken, or the caller hung up): free its worker."""
        if self.worker is not None and not self.worker.done():
            self.worker.cancel()
            try:
                await self.worker
            except asyncio.CancelledError:
                pass


@router.websocket("/stream")
async def media_stream(websocket: WebSocket) -> None:
    """Twilio's media stream of one question. The handshake is signed like a webhook."""
    app = websocket.app
    line = app.state.phone_line
    signature = websocket.headers.get("x-twilio-signature", "")
    if not line.webhooks.signed(line.config.stream_url, {}, signature):
        await websocket.close(code=CLOSE_POLICY, reason="invalid or missing X-Twilio-Signature")
        return
    await websocket.accept()
    stream = StreamSession(
        speech=app.state.speech,
        pool=app.state.speech_pool,
        sessions=app.state.sessions,
        phone_api=app.state.phone_api,
        public_base_url=line.config.public_base_url,
        min_confidence=app.state.settings.speech_min_confidence,
    )
    try:
        while await stream.take(await websocket.receive_text()):
            pass
        stream.frames.put_nowait(None)
        if stream.worker is not None:
            await stream.worker  # the frames already here are heard out
    except WebSocketDisconnect:  # the caller hung up, or Twilio closed without a stop
        log.info("stream for call %s closed without a stop", _sid(stream))
    except BrokenStream as broken:
        log.warning("stream for call %s refused: %s", _sid(stream), broken)
        await websocket.close(code=CLOSE_BAD_DATA, reason=str(broken)[:120])
    finally:
        await stream.close()
        stats = stream.stats()
        if stats is not None:
            RECENT_STREAMS.append(stats)


def _sid(stream: StreamSession) -> str:
    return stream.question.call_sid if stream.question is not None else "(not started)"
