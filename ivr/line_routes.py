"""The LINE Official Account's webhook, ``POST /line/webhook``: thin, over ``ivr.line_chat``.

Every request must carry a valid ``X-Line-Signature`` (the channel secret's HMAC of the raw
body), else 403. The events are taken in one transaction (each once: LINE redelivers), and
LINE gets its 200 at once; the replies go after it (a reply token lasts a minute, LINE's
webhook waits a few seconds at most). A reply LINE does not take becomes a push.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from booking.web import unit_of_work
from ivr.line_api import LineApi, LineError, signature_ok
from ivr.line_chat import Outgoing, take_events
from ivr.line_turn import ChatConfig

router = APIRouter(prefix="/line", include_in_schema=False)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LineChannel:
    """What the webhook needs: the secret to check signatures with, the API, the chat's
    settings. ``app.state.line_channel`` is None while the channel is off."""

    secret: str
    api: LineApi
    config: ChatConfig


def _channel(request: Request) -> LineChannel | None:
    channel: LineChannel | None = getattr(request.app.state, "line_channel", None)
    return channel


@router.post("/webhook")
async def webhook(request: Request, background: BackgroundTasks) -> Response:
    """LINE's events: checked, taken once each, answered by replies sent after the 200."""
    channel = _channel(request)
    if channel is None:
        return JSONResponse({"detail": "the LINE channel is off"}, status_code=404)
    body = await request.body()
    if not signature_ok(channel.secret, body, request.headers.get("x-line-signature")):
        return JSONResponse({"detail": "bad signature"}, status_code=403)
    try:
        payload = json.loads(body)
    except ValueError:
        return JSONResponse({"detail": "not JSON"}, status_code=400)
    if not isinstance(payload, dict):
        return JSONResponse({"detail": "not an object"}, status_code=400)

    def work() -> list[Outgoing]:
        with unit_of_work(request) as db:
            out = take_events(db, payload, channel.config)
            db.commit()
            return out

    for outgoing in await run_in_threadpool(work):
        background.add_task(send_reply, channel.api, outgoing)
    return JSONResponse({})


def send_reply(api: LineApi, outgoing: Outgoing) -> None:
    """Reply with the token; if LINE does not take the reply (the token lapsed, LINE was
    down a moment), push the same messages once, under a retry key of their own."""
    try:
        api.reply(outgoing.reply_token, outgoing.messages)
        return
    except LineError as error:
        log.warning("a LINE reply failed (%s); pushing it instead", error)
    try:
        api.push(outgoing.line_user, outgoing.messages, retry_key=str(uuid.uuid4()))
    except LineError as error:
        log.warning("the pushed reply failed too: %s", error)
