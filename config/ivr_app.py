"""create_ivr_app(): the phone line's own process pool (madoguchi-ivr@.service).

The same application as create_app(), answering only the phone line's paths (/ivr/, the
/ivr/stream WebSocket) and the operators' checks: a flood of resident pages on the web pool
cannot take the threads, connections or memory a call needs, and a path the proxy should never
send here is refused rather than quietly served.
"""

from __future__ import annotations

import gc
import json
import sys

from starlette.types import ASGIApp, Receive, Scope, Send

from config.app import create_app
from config.settings import Settings

PHONE_LINE_PREFIX = "/ivr/"
# The operators' paths every pool answers (a monitor asks each process directly).
OPERATIONS = frozenset({"/healthz", "/readyz", "/metrics"})
CLOSE_POLICY = 1008
# How long a thread running Python keeps the interpreter (GIL) before one that asks for it gets
# it (Python's default: 5 ms). A webhook's thread asks again after each of its database round
# trips, and the event loop after each request it hands over: at 5 ms each of those waits was
# the tail of the phone line's latency (bench/README.md, bench_ivr.py's figures of 2026-12-03).
GIL_SWITCH_SECONDS = 0.0005
# The API's problem shape (booking.web), for a client that reached the wrong pool.
NOT_HERE = json.dumps(
    {"error": {"code": "not_found", "message": {"ja": "見つかりません。", "en": "Not found."}}},
    ensure_ascii=False,
).encode()


def serves_phone_line(path: str) -> bool:
    """Whether a path belongs to the phone-line pool."""
    return path.startswith(PHONE_LINE_PREFIX) or path in OPERATIONS


class PhoneLineOnly:
    """Refuses what is not the phone line's: 404 for a request, a closed WebSocket."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or serves_phone_line(scope["path"]):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": CLOSE_POLICY, "reason": ""})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(NOT_HERE)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": NOT_HERE})


def phone_line_process(app: ASGIApp) -> PhoneLineOnly:
    """An application made the phone line's process: its paths only, threads handed the
    interpreter quickly (GIL_SWITCH_SECONDS), and the objects made at start-up kept out of the
    garbage collector's full passes."""
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    # The application's own objects (modules, routes, mappers, catalogues: a few hundred
    # thousand) live as long as the process; a full collection walked them all, stopping every
    # call for 130-220 ms twice a minute under 100 calls. Frozen, a full pass takes 15-35 ms.
    gc.collect()
    gc.freeze()
    return PhoneLineOnly(app)


def create_ivr_app(settings: Settings | None = None) -> PhoneLineOnly:
    """The phone-line pool's application: /ivr/, /ivr/stream and the operators' checks only.

    Its speech models (MADOGUCHI_VOSK_MODEL_*) are loaded here, once per process; the web pool
    runs without them (its unit unsets them)."""
    return phone_line_process(create_app(settings))
