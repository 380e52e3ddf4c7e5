"""A local fake of the LINE Messaging API for tests and trials (like ``ivr.fake_twilio``): a
real HTTP server on 127.0.0.1 that records the replies and pushes it accepts, and can be told
to fail (5xx), to refuse a blocked user (4xx), or to be slow. Free of pytest.

Like LINE: a reply token is accepted once; a push's ``X-Line-Retry-Key`` already accepted
answers 409 and is not delivered again; every request needs the channel's bearer token.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Json = dict[str, Any]
_RICH_MENU_CONTENT = re.compile(r"^/v2/bot/richmenu/([^/]+)/content$")
_DEFAULT_MENU = re.compile(r"^/v2/bot/user/all/richmenu/([^/]+)$")


@dataclass
class Delivered:
    """One reply (``to`` is the reply token) or push (``to`` is the user id) accepted."""

    kind: str  # reply | push
    to: str
    messages: list[Json]
    retry_key: str | None = None

    @property
    def texts(self) -> list[str]:
        """Every text the resident sees: text messages, Flex alt texts and button labels,
        and the quick replies' labels."""
        found: list[str] = []
        for message in self.messages:
            found.append(str(message.get("text") or message.get("altText") or ""))
            found.extend(_labels(message.get("contents")))
            for item in message.get("quickReply", {}).get("items", []):
                found.append(str(item["action"].get("label", "")))
        return found


def _labels(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [str(node["label"])] if isinstance(node.get("label"), str) else []
        own += [str(node["text"])] if isinstance(node.get("text"), str) else []
        return own + [label for value in node.values() for label in _labels(value)]
    if isinstance(node, list):
        return [label for value in node for label in _labels(value)]
    return []


@dataclass
class FakeLine:
    """The fake's state: what it accepted, and how it is told to misbehave."""

    access_token: str = "fake-line-token"  # noqa: S105 (a made-up token)
    delivered: list[Delivered] = field(default_factory=list)
    blocked: set[str] = field(default_factory=set)  # users who blocked the account: 400
    fail_next: int = 0  # the next requests answer 500
    delay_seconds: float = 0.0
    rich_menus: dict[str, Json] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    default_menu: str | None = None
    requests: int = 0
    _tokens_used: set[str] = field(default_factory=set)
    _keys_used: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeLine:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, body = fake.handle(self.path, dict(self.headers.items()), raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- what the tests look at ---------------------------------------------------------

    def replies(self) -> list[Delivered]:
        return [d for d in self.delivered if d.kind == "reply"]

    def pushes(self, to: str | None = None) -> list[Delivered]:
        return [d for d in self.delivered if d.kind == "push" and to in (None, d.to)]

    # --- the API --------------------------------------------------------------------------

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Json]:
        """One request: its status and JSON body."""
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.requests += 1
            if lowered.get("authorization") != f"Bearer {self.access_token}":
                return 401, {"message": "Authentication failed"}
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500, {"message": "An error occurred in the server"}
            return self._route(path, lowered, raw)

    def _route(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Json]:
        if path == "/v2/bot/message/reply":
            body = json.loads(raw)
            token = str(body["replyToken"])
            if token in self._tokens_used:
                return 400, {"message": "Invalid reply token"}
            self._tokens_used.add(token)
            self.delivered.append(Delivered("reply", token, list(body["messages"])))
            return 200, {}
        if path == "/v2/bot/message/push":
            body = json.loads(raw)
            to, key = str(body["to"]), headers.get("x-line-retry-key")
            if key is not None and key in self._keys_used:
                return 409, {"message": "The retry key is already accepted"}
            if to in self.blocked:
                return 400, {"message": "Failed to send messages"}
            if key is not None:
                self._keys_used.add(key)
            self.delivered.append(Delivered("push", to, list(body["messages"]), key))
            return 200, {}
        if path == "/v2/bot/richmenu":
            menu_id = f"richmenu-{uuid.uuid4().hex}"
            self.rich_menus[menu_id] = json.loads(raw)
            return 200, {"richMenuId": menu_id}
        if found := _RICH_MENU_CONTENT.match(path):
            if found.group(1) not in self.rich_menus:
                return 404, {"message": "Not found"}
            self.images[found.group(1)] = raw
            return 200, {}
        if found := _DEFAULT_MENU.match(path):
            if found.group(1) not in self.rich_menus:
                return 404, {"message": "Not found"}
            self.default_menu = found.group(1)
            return 200, {}
        return 404, {"message": "Not found"}
