"""A LINE resident for the tests, in the style of ``ivr.caller``: builds the events LINE would
send (signed with the channel secret), POSTs them to the real app, and reads what the local
fake of the Messaging API (``ivr.fake_line``) received in answer.

Imported by the LINE tests for its fixture ``line_app``.
"""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ivr.fake_line import Delivered, FakeLine
from ivr.line_api import sign
from tests.conftest import FakeClock, app_for

SECRET = "0123456789abcdef0123456789abcdef"  # noqa: S105 (the test channel's secret)
TOKEN = "test-line-channel-token"  # noqa: S105
_users = itertools.count(random.SystemRandom().randrange(1, 10**12))
_clients = itertools.count(1)


@dataclass
class LineApp:
    """The app with its LINE channel on, the fake API it talks to, committed sessions."""

    http: TestClient
    fake: FakeLine
    clock: FakeClock
    sessions: sessionmaker[Session]

    def resident(self) -> Resident:
        return Resident(self, f"U{next(_users):032x}")

    def post(self, events: list[dict[str, Any]], *, signature: str | None = None) -> httpx.Response:
        body = json.dumps({"destination": "Ubot", "events": events}).encode()
        sig = sign(SECRET, body) if signature is None else signature
        answer: httpx.Response = self.http.post(
            "/line/webhook",
            content=body,
            headers={"Content-Type": "application/json", "X-Line-Signature": sig},
        )
        return answer


@dataclass
class Resident:
    """One LINE user talking to the ward's account."""

    app: LineApp
    user_id: str
    last: list[Delivered] = field(default_factory=list)

    def event(self, kind: str, **extra: Any) -> dict[str, Any]:
        return {
            "type": kind,
            "mode": "active",
            "timestamp": 1_700_000_000_000,
            "source": {"type": "user", "userId": self.user_id},
            "webhookEventId": uuid.uuid4().hex.upper()[:26],
            "deliveryContext": {"isRedelivery": False},
            "replyToken": uuid.uuid4().hex,
            **extra,
        }

    def send(self, event: dict[str, Any]) -> list[Delivered]:
        before = len(self.app.fake.delivered)
        answer = self.app.post([event])
        assert answer.status_code == 200, answer.text
        self.last = self.app.fake.delivered[before:]
        return self.last

    def follow(self) -> list[Delivered]:
        return self.send(self.event("follow"))

    def unfollow(self) -> list[Delivered]:
        event = self.event("unfollow")
        event.pop("replyToken")
        return self.send(event)

    def says(self, text: str) -> list[Delivered]:
        message = {"type": "text", "id": uuid.uuid4().hex[:18], "text": text}
        return self.send(self.event("message", message=message))

    def taps(self, label: str) -> list[Delivered]:
        """Tap the button or quick reply labelled ``label`` in the last answer."""
        return self.send(self.event("postback", postback={"data": self.data_of(label)}))

    def data_of(self, label: str) -> str:
        found = [d for delivered in self.last for d in _actions(delivered.messages, label)]
        assert found, f"no button {label!r} in {self.texts()}"
        return found[-1]

    def choices(self) -> list[str]:
        """The quick replies under the last answer's last message."""
        messages = [m for delivered in self.last for m in delivered.messages]
        items = messages[-1].get("quickReply", {}).get("items", []) if messages else []
        return [str(item["action"]["label"]) for item in items]

    def buttons(self) -> list[str]:
        """The Flex buttons of the last answer."""
        messages = [m for delivered in self.last for m in delivered.messages]
        return [label for m in messages if m["type"] == "flex" for label in _buttons(m)]

    def texts(self) -> list[str]:
        return [t for delivered in self.last for t in delivered.texts]

    def said(self) -> str:
        return "\n".join(self.texts())


def _buttons(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [str(node["action"]["label"])] if node.get("type") == "button" else []
        return own + [b for v in node.values() for b in _buttons(v)]
    if isinstance(node, list):
        return [b for v in node for b in _buttons(v)]
    return []


def _actions(node: Any, label: str) -> list[str]:
    if isinstance(node, dict):
        action = node.get("action")
        own = (
            [str(action["data"])]
            if isinstance(action, dict) and action.get("label") == label and "data" in action
            else []
        )
        return own + [d for v in node.values() for d in _actions(v, label)]
    if isinstance(node, list):
        return [d for v in node for d in _actions(v, label)]
    return []


@pytest.fixture
def line_app(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[LineApp]:
    fake = FakeLine(access_token=TOKEN).start()
    app = app_for(
        engine,
        clock,
        tmp_path,
        line_channel_secret=SECRET,
        line_channel_access_token=TOKEN,
        line_api_base=fake.base_url,
    )
    n = next(_clients)
    address = (f"10.251.{n >> 8 & 255}.{n & 255}", 50000)
    try:
        with TestClient(app, raise_server_exceptions=False, client=address) as http:
            yield LineApp(http, fake, clock, app.state.sessions)
    finally:
        fake.stop()
