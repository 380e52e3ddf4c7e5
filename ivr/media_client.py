"""Twilio's side of a media stream, for tests, the benchmark and trying the line by voice: it
connects to the app's /ivr/stream with a signed handshake, sends Twilio's connected and start
messages, the caller's audio in 20 ms mu-law frames, and stop (or just hangs up)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from contextlib import ExitStack
from types import TracebackType

import numpy as np
from twilio.request_validator import RequestValidator
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from ivr.audio import FRAME_BYTES, decode_mulaw
from ivr.caller import MediaStream
from ivr.recognition import SPEECH_LEVEL

FRAME_SECONDS = 0.02


def voiced(frame: bytes) -> bool:
    """A frame loud enough to be speech, by the listener's own measure."""
    samples = decode_mulaw(frame).astype(np.float32)
    return bool(len(samples)) and float(np.sqrt(np.mean(samples * samples))) >= SPEECH_LEVEL


class MediaStreamSender:
    """One stream of one call, as Twilio would send it."""

    def __init__(
        self,
        stream: MediaStream,
        *,
        call_sid: str,
        auth_token: str,
        connect_to: str | None = None,
        account_sid: str = "AC" + "0" * 32,
    ) -> None:
        self.stream = stream
        self.call_sid = call_sid
        self.account_sid = account_sid
        self.stream_sid = "MZ" + secrets.token_hex(16)
        # Twilio signs the stream's own URL (the public wss:// one), whatever it connects to.
        self._signature = RequestValidator(auth_token).compute_signature(stream.url, {})
        self._url = connect_to or stream.url
        self._socket: ClientConnection | None = None
        self._open = ExitStack()
        self._sequence = 0
        self._chunk = 0
        self.last_voice_sent: float | None = None

    def __enter__(self) -> MediaStreamSender:
        self.open()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def open(self, *, start: bool = True) -> None:
        self._socket = self._open.enter_context(
            connect(
                self._url,
                additional_headers={"X-Twilio-Signature": self._signature},
                open_timeout=5,
            )
        )
        self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        if start:
            self.send_start()

    def send_start(self) -> None:
        self.send(
            {
                "event": "start",
                "start": {
                    "streamSid": self.stream_sid,
                    "accountSid": self.account_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": self.stream.parameters,
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
                "streamSid": self.stream_sid,
            }
        )

    def send(self, message: dict[str, object]) -> None:
        self._sequence += 1
        self.send_raw(json.dumps({"sequenceNumber": str(self._sequence), **message}))

    def send_raw(self, text: str) -> None:
        if self._socket is None:
            raise RuntimeError("the stream is not open")
        self._socket.send(text)

    def send_audio(self, mulaw: bytes, *, realtime: bool = True) -> None:
        """The caller's audio in 20 ms frames, paced as a phone line sends them (``realtime``)
        or as fast as the socket takes them. Notes when the last frame with a voice in it went:
        the end of speech, from which the decision's delay is measured."""
        began = time.monotonic()
        for index in range(0, len(mulaw), FRAME_BYTES):
            frame = mulaw[index : index + FRAME_BYTES]
            if realtime:
                due = began + (index // FRAME_BYTES) * FRAME_SECONDS
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            self._chunk += 1
            self.send(
                {
                    "event": "media",
                    "streamSid": self.stream_sid,
                    "media": {
                        "track": "inbound",
                        "chunk": str(self._chunk),
                        "timestamp": str(self._chunk * 20),
                        "payload": base64.b64encode(frame).decode(),
                    },
                }
            )
            if voiced(frame):
                self.last_voice_sent = time.monotonic()

    def stop(self) -> None:
        self.send(
            {
                "event": "stop",
                "streamSid": self.stream_sid,
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            }
        )

    def wait_closed(self, timeout: float = 5.0) -> int | None:
        """Wait for the server to close the stream; its close code (None: still open)."""
        if self._socket is None:
            return None
        try:
            while True:
                self._socket.recv(timeout=timeout)
        except TimeoutError:
            return None
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None

    def close(self) -> None:
        """Close the socket (after stop, or without it: the caller hung up)."""
        if self._socket is not None:
            self._socket = None
            self._open.close()
