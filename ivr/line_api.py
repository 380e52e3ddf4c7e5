"""The LINE Messaging API as the LINE channel uses it: the webhook's signature, replies, pushes
and the rich menu, over httpx (the official ``line-bot-sdk`` is not used: see the README's LINE
section; four endpoints and an HMAC do not need it).

Retries only where they are safe. A reply token is single-use and lapses within a minute: a
reply is tried once, and a failed reply is the caller's to turn into a push. A push carries an
``X-Line-Retry-Key``: LINE delivers a key's push once however often it is sent (a repeat
answers 409), so a push that timed out or met a 5xx is retried with the same key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)
Message = dict[str, Any]

LINE_API = "https://api.line.me"
LINE_DATA_API = "https://api-data.line.me"  # where rich menu images go
PUSH_TRIES = 3
RETRY_PAUSE_SECONDS = 0.2
# LINE takes at most five messages in one reply or push.
MAX_MESSAGES = 5


def signature_ok(secret: str, body: bytes, signature: str | None) -> bool:
    """Whether ``X-Line-Signature`` is the channel secret's HMAC-SHA256 of the raw body."""
    if not signature:
        return False
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), signature.strip())


def sign(secret: str, body: bytes) -> str:
    """The signature LINE puts on a webhook body (for the fake's and the tests' events)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class LineError(Exception):
    """A request LINE did not accept."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"LINE answered {status}: {message}")
        self.status = status


class LineRefused(LineError):
    """LINE refused for good (4xx): the user blocked the account, a bad token or request.
    Sending the same again would be refused again; a notice falls back to another channel."""


class LineUnavailable(LineError):
    """LINE could not be reached or answered 5xx/429 after the tries allowed: try later."""


@dataclass(frozen=True)
class LineApi:
    """The Messaging API client of one LINE Official Account channel."""

    access_token: str
    base_url: str = LINE_API
    timeout_seconds: float = 5.0
    transport: httpx.BaseTransport | None = None

    @property
    def data_url(self) -> str:
        """Where uploads go: LINE's data host, or the same base for a local fake."""
        return LINE_DATA_API if self.base_url.rstrip("/") == LINE_API else self.base_url

    def _client(self, base: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=(base or self.base_url).rstrip("/"),
            headers={"Authorization": f"Bearer {self.access_token}"},
            timeout=self.timeout_seconds,
            transport=self.transport,
        )

    def reply(self, reply_token: str, messages: Sequence[Message]) -> None:
        """Answer a webhook event with its reply token: one try (the token is single-use)."""
        body = {"replyToken": reply_token, "messages": list(messages[:MAX_MESSAGES])}
        try:
            with self._client() as client:
                answer = client.post("/v2/bot/message/reply", json=body)
        except httpx.HTTPError as error:
            raise LineUnavailable(0, type(error).__name__) from error
        _raise_for(answer)

    def push(self, to: str, messages: Sequence[Message], *, retry_key: str | None = None) -> str:
        """Push messages to a user; retried on a timeout or 5xx with the same retry key, so
        LINE delivers them once. Returns the retry key used."""
        key = retry_key or str(uuid.uuid4())
        body = {"to": to, "messages": list(messages[:MAX_MESSAGES])}
        last: LineError = LineUnavailable(0, "not tried")
        with self._client() as client:
            for attempt in range(PUSH_TRIES):
                if attempt:
                    time.sleep(RETRY_PAUSE_SECONDS * attempt)
                try:
                    answer = client.post(
                        "/v2/bot/message/push", json=body, headers={"X-Line-Retry-Key": key}
                    )
                except httpx.HTTPError as error:
                    last = LineUnavailable(0, type(error).__name__)
                    continue
                if answer.status_code == httpx.codes.CONFLICT:
                    return key  # this key's push was accepted before: delivered once already
                try:
                    _raise_for(answer)
                except LineUnavailable as error:
                    last = error
                    continue
                return key
        raise last

    def create_rich_menu(self, menu: dict[str, Any]) -> str:
        """Create a rich menu; its id."""
        with self._client() as client:
            answer = client.post("/v2/bot/richmenu", json=menu)
        _raise_for(answer)
        return str(answer.json()["richMenuId"])

    def upload_rich_menu_image(self, menu_id: str, png: bytes) -> None:
        """The rich menu's picture (PNG, 2500x843 or 2500x1686)."""
        with self._client(self.data_url) as client:
            answer = client.post(
                f"/v2/bot/richmenu/{menu_id}/content",
                content=png,
                headers={"Content-Type": "image/png"},
            )
        _raise_for(answer)

    def set_default_rich_menu(self, menu_id: str) -> None:
        """Show this rich menu to every user without one of their own."""
        with self._client() as client:
            answer = client.post(f"/v2/bot/user/all/richmenu/{menu_id}")
        _raise_for(answer)


def _raise_for(answer: httpx.Response) -> None:
    if answer.is_success:
        return
    try:
        message = str(answer.json().get("message", ""))
    except ValueError:
        message = answer.text[:200]
    status = answer.status_code
    if status == httpx.codes.TOO_MANY_REQUESTS or status >= httpx.codes.INTERNAL_SERVER_ERROR:
        raise LineUnavailable(status, message)
    raise LineRefused(status, message)
