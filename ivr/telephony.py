"""The telephony adapter: Twilio's webhook signatures, checked for every request Twilio sends
(the phone line's and the delivery callbacks'), and Twilio's REST API, the one place that calls
out to Twilio (SMS, outbound calls, redirecting a queued call to an agent), with a timeout on
every request and each failure sorted by what it means for a retry:

- ``retry``: Twilio certainly did not take it (no connection, 429, 503, bad credentials): safe to
  send again later.
- ``uncertain``: the request may have been taken (read timeout, other 5xx): never resend blindly;
  ask Twilio first (``find_sms`` / ``find_call``).
- ``rejected``: Twilio will never take it (invalid number, a landline for SMS, unsubscribed).

Without an account SID and a sending number, ``LogOnly`` stands in: it sends nothing and logs
only message ids, never a number or a text (the embedded default).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar

import requests
import urllib3
from fastapi import Request
from fastapi.responses import PlainTextResponse
from fastapi.responses import Response as HttpResponse
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client

log = logging.getLogger(__name__)
TWILIO_API = "https://api.twilio.com"

# Error codes that mean the number itself cannot be reached this way, whatever we retry.
# 21211 invalid 'To', 21214 not a reachable number, 21408 region not enabled, 21610 the resident
# unsubscribed (STOP), 21612 / 21614 not a mobile (cannot take SMS), 13223-13224 invalid call To.
UNSUBSCRIBED = 21610
Outcome = Literal["retry", "uncertain", "rejected"]


# --- Webhooks: Twilio's signature on what it sends us -------------------------------------------


@dataclass(frozen=True)
class Webhooks:
    """How to tell Twilio's requests from forged ones: the account's auth token, and the public
    address Twilio was given (``MADOGUCHI_PUBLIC_BASE_URL``: behind the ward's proxy the URL a
    request arrives on is not the one Twilio signed)."""

    auth_token: str
    public_base_url: str

    @property
    def validator(self) -> RequestValidator:
        return RequestValidator(self.auth_token)

    def signed(self, url: str, form: dict[str, str], signature: str) -> bool:
        return bool(signature) and bool(self.validator.validate(url, form, signature))


async def signed_form(request: Request, webhooks: Webhooks) -> dict[str, str] | None:
    """The webhook's form fields, or None when the signature does not match."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    url = webhooks.public_base_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    if not webhooks.signed(url, form, request.headers.get("X-Twilio-Signature", "")):
        return None
    return form


def forbidden() -> HttpResponse:
    return PlainTextResponse("invalid or missing X-Twilio-Signature", status_code=403)


# --- The REST API -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """Twilio took it: its SID and first status."""

    sid: str
    status: str


class TwilioFailure(Exception):
    """A request Twilio did not (or may not have) carried out, and what a retry may do."""

    def __init__(self, outcome: Outcome, detail: str, code: int | None = None) -> None:
        super().__init__(detail)
        self.outcome: Outcome = outcome
        self.detail = detail
        self.code = code


@dataclass(frozen=True)
class Joining:
    """How a phone called into a conference joins it: its label there, whether it starts the
    conference (and ends it on leaving), muted (listening) or coaching one participant
    (whispering to them: no one else hears), and where Twilio reports how the call went."""

    label: str
    start_on_enter: bool = True
    end_on_exit: bool = False
    muted: bool = False
    coach: str | None = None  # the CallSid of the participant coached
    status_callback: str | None = None
    timeout: int = 20


@dataclass(frozen=True)
class ParticipantChange:
    """What to change of a participant (None: leave as it is). ``coach`` set coaches that
    participant; ``coaching=False`` stops coaching."""

    muted: bool | None = None
    hold: bool | None = None
    hold_url: str | None = None
    coaching: bool | None = None
    coach: str | None = None


class PhoneApi(Protocol):
    """What the rest of the service asks of Twilio's REST API."""

    def send_sms(self, *, to: str, body: str, status_callback: str) -> Accepted: ...

    def place_call(self, *, to: str, url: str, status_callback: str) -> Accepted: ...

    def find_sms(self, *, to: str, body: str, since: datetime) -> Accepted | None: ...

    def find_call(self, *, to: str, since: datetime) -> Accepted | None: ...

    def redirect_call(self, *, sid: str, url: str) -> None: ...

    def add_participant(self, *, conference: str, to: str, join: Joining) -> Accepted: ...

    def update_participant(
        self, *, conference: str, participant: str, change: ParticipantChange
    ) -> None: ...

    def remove_participant(self, *, conference: str, participant: str) -> None: ...

    @property
    def live(self) -> bool: ...


class _ToBase(TwilioHttpClient):  # type: ignore[misc]  # twilio ships no types
    """Twilio's own HTTP client, pointed at another base URL (a regional edge, a test fake)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout, max_retries=0)  # retries are ours, where safe
        self.base_url = base_url.rstrip("/")
        # The environment's proxy and CA bundle, read once: requests would scan the whole
        # environment on every request (a third of a message's CPU in a batch).
        found = self.session.merge_environment_settings(self.base_url, {}, None, None, None)
        self.proxy = dict(found["proxies"])
        if isinstance(found["verify"], str):
            self.session.verify = found["verify"]
        self.session.trust_env = False

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self.base_url != TWILIO_API and url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)


def _failure(exc: Exception) -> TwilioFailure:
    """Sort a failed request by what a retry may do."""
    if isinstance(exc, TwilioRestException):
        status, code = exc.status, exc.code
        detail = f"Twilio {status} {code}: {exc.msg}"[:200]
        if status in (401, 403, 429, 503):
            return TwilioFailure("retry", detail, code)
        if status >= 500:
            return TwilioFailure("uncertain", detail, code)
        return TwilioFailure("rejected", detail, code)
    if isinstance(exc, TwilioException):  # a list page Twilio would not give (no status)
        return TwilioFailure("uncertain", f"Twilio: {exc}"[:200])
    if _never_connected(exc):  # refused, or no answer to connect: nothing reached Twilio
        return TwilioFailure("retry", f"no connection to Twilio ({type(exc).__name__})")
    return TwilioFailure("uncertain", f"no answer from Twilio ({type(exc).__name__})")


def _never_connected(exc: Exception) -> bool:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError) or not exc.args:
        return False
    # A connection dropped after the request went out ("Connection aborted") is uncertain.
    reason = getattr(exc.args[0], "reason", None)
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


class TwilioApi:
    """The real thing: twilio's client with a timeout, no hidden retries. Safe to share between
    threads (a batch of messages is sent from a pool): each thread gets a client of its own,
    because a ``requests.Session`` (under twilio's HTTP client) is not guaranteed thread-safe."""

    live = True

    def __init__(
        self, *, account_sid: str, auth_token: str, from_number: str, base_url: str, timeout: float
    ) -> None:
        self.from_number = from_number
        self._credentials = (account_sid, auth_token)
        self._base_url = base_url
        self._timeout = timeout
        self._local = threading.local()

    @property
    def client(self) -> Client:
        """This thread's client (its own HTTP session, kept alive between requests)."""
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            http = _ToBase(self._base_url, timeout=self._timeout)
            client = Client(*self._credentials, http_client=http)
            self._local.client = client
        return client

    def send_sms(self, *, to: str, body: str, status_callback: str) -> Accepted:
        try:
            m = self.client.messages.create(
                to=to, from_=self.from_number, body=body, status_callback=status_callback
            )
        except (TwilioException, requests.exceptions.RequestException) as exc:
            raise _failure(exc) from exc
        return Accepted(str(m.sid), str(m.status))

    def place_call(self, *, to: str, url: str, status_callback: str) -> Accepted:
        try:
            c = self.client.calls.create(
                to=to,
                from_=self.from_number,
                url=url,
                status_callback=status_callback,
                status_callback_event=["completed"],
            )
        except (TwilioException, requests.exceptions.RequestException) as exc:
            raise _failure(exc) from exc
        return Accepted(str(c.sid), str(c.status))

    def find_sms(self, *, to: str, body: str, since: datetime) -> Accepted | None:
        """A message to ``to`` with this text, made since ``since``: did an uncertain send land?"""
        try:
            # DateSent filters by day; a claim near midnight UTC looks at the day before too.
            found = self.client.messages.list(
                to=to, date_sent_after=since - timedelta(days=1), limit=50
            )
        except (TwilioException, requests.exceptions.RequestException) as exc:
            raise _failure(exc) from exc
        for m in found:
            if m.body == body and m.date_created is not None and m.date_created >= _minute(since):
                return Accepted(str(m.sid), str(m.status))
        return None

    def find_call(self, *, to: str, since: datetime) -> Accepted | None:
        """A call to ``to`` placed since ``since``."""
        try:
            found = self.client.calls.list(
                to=to, start_time_after=since - timedelta(days=1), limit=50
            )
        except (TwilioException, requests.exceptions.RequestException) as exc:
            raise _failure(exc) from exc
        for c in found:
            if c.date_created is not None and c.date_created >= _minute(since):
                return Accepted(str(c.sid), str(c.status))
        return None

    def redirect_call(self, *, sid: str, url: str) -> None:
        """Give a live call new TwiML (takes a queued caller out of the queue to an agent)."""
        try:
            self.client.calls(sid).update(url=url, method="POST")
        except (TwilioException, requests.exceptions.RequestException) as exc:
            raise _failure(exc) from exc

    def add_participant(self, *, conference: str, to: str, join: Joining) -> Accepted:
        """Call ``to`` into the conference (by its friendly name): Twilio's CallSid of the new
        leg. Not idempotent (a second request rings a second phone): retried only when Twilio
        certainly did not take the first."""
        return _once_more_if(
            ("retry",),
            lambda: self._add_participant(conference=conference, to=to, join=join),
        )

    def _add_participant(self, *, conference: str, to: str, join: Joining) -> Accepted:
        extra: dict[str, Any] = {}
        if join.coach is not None:
            extra = {"coaching": True, "call_sid_to_coach": join.coach}
        if join.status_callback is not None:
            extra["status_callback"] = join.status_callback
            extra["status_callback_event"] = ["initiated", "answered", "completed"]
        try:
            p = self.client.conferences(conference).participants.create(
                from_=self.from_number,
                to=to,
                label=join.label,
                start_conference_on_enter=join.start_on_enter,
                end_conference_on_exit=join.end_on_exit,
                muted=join.muted,
                beep="false",
                early_media=False,
                timeout=join.timeout,
                **extra,
            )
        except (TwilioException, requests.exceptions.RequestException) as exc:
            raise _failure(exc) from exc
        return Accepted(str(p.call_sid), str(p.status))

    def update_participant(
        self, *, conference: str, participant: str, change: ParticipantChange
    ) -> None:
        """Mute, hold or coach a participant (by CallSid or label). Setting values is
        idempotent, so an uncertain request is sent again once."""
        fields: dict[str, Any] = {
            k: v
            for k, v in {
                "muted": change.muted,
                "hold": change.hold,
                "hold_url": change.hold_url,
                "coaching": change.coaching,
                "call_sid_to_coach": change.coach,
            }.items()
            if v is not None
        }

        def update() -> None:
            try:
                self.client.conferences(conference).participants(participant).update(**fields)
            except (TwilioException, requests.exceptions.RequestException) as exc:
                raise _failure(exc) from exc

        _once_more_if(("retry", "uncertain"), update)

    def remove_participant(self, *, conference: str, participant: str) -> None:
        """Take a participant out of the conference (their call ends). One already gone
        (Twilio's 404) is not a failure."""

        def remove() -> None:
            try:
                self.client.conferences(conference).participants(participant).delete()
            except TwilioRestException as exc:
                if exc.status != 404:
                    raise _failure(exc) from exc
            except (TwilioException, requests.exceptions.RequestException) as exc:
                raise _failure(exc) from exc

        _once_more_if(("retry", "uncertain"), remove)


T = TypeVar("T")


def _once_more_if(outcomes: tuple[Outcome, ...], request: Callable[[], T]) -> T:
    """The request, sent a second time at once if the first failed in one of these ways
    (a peer that dropped one connection usually takes the next)."""
    try:
        return request()
    except TwilioFailure as failure:
        if failure.outcome not in outcomes or failure.code in (20003, 401, 403):
            raise
    return request()


def _minute(at: datetime) -> datetime:
    # Twilio's dates have whole seconds; allow for clocks a little apart.
    return at - timedelta(minutes=1)


class LogOnly:
    """No Twilio account configured: send nothing, log that a message would have gone."""

    live = False

    def _accepted(self, prefix: str, what: str) -> Accepted:
        sid = prefix + secrets.token_hex(16)
        log.info("no Twilio account configured: %s %s not sent (logged only)", what, sid)
        return Accepted(sid, "sent")

    def send_sms(self, *, to: str, body: str, status_callback: str) -> Accepted:
        return self._accepted("SMLOG", "SMS")

    def place_call(self, *, to: str, url: str, status_callback: str) -> Accepted:
        return self._accepted("CALOG", "call")

    def find_sms(self, *, to: str, body: str, since: datetime) -> Accepted | None:
        return None

    def find_call(self, *, to: str, since: datetime) -> Accepted | None:
        return None

    def redirect_call(self, *, sid: str, url: str) -> None:
        log.info("no Twilio account configured: call %s not redirected", sid)

    def add_participant(self, *, conference: str, to: str, join: Joining) -> Accepted:
        return self._accepted("CALOG", f"conference participant ({join.label})")

    def update_participant(
        self, *, conference: str, participant: str, change: ParticipantChange
    ) -> None:
        log.info("no Twilio account configured: participant %s not changed", participant)

    def remove_participant(self, *, conference: str, participant: str) -> None:
        log.info("no Twilio account configured: participant %s not removed", participant)
