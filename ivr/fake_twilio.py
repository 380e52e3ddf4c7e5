"""A local fake of Twilio's REST API (2010-04-01 Messages, Calls, Conferences and their
Participants) for tests and benchmarks (like ``ivr.caller``, the fake of Twilio's voice side).

It is a real HTTP server on 127.0.0.1, so the official ``twilio`` client can be pointed at it
by rewriting ``https://api.twilio.com`` to ``FakeTwilio.base_url`` in its HTTP client. Kept free
of pytest so bench scripts can import it too.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ivr.fake_conferences import CONFERENCE_PATH, Conference, Conferences, Participant
from ivr.fake_rest import ApiError as _ApiError
from ivr.fake_rest import Error, Form, Json, page_of
from ivr.fake_rest import one as _one

_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/(Messages|Calls)(?:/([^/]+))?\.json$")
_FAKE_AUTH = "fake-token"
_MESSAGE_NULLS = "date_sent error_code error_message messaging_service_sid".split()
_CALL_NULLS = (
    "start_time end_time duration parent_call_sid answered_by caller_name forwarded_from"
    " group_sid trunk_sid phone_number_sid annotation"
).split()


@dataclass
class Sent:
    """One message (kind "sms") or call (kind "call") the fake accepted."""

    sid: str
    kind: str
    to: str
    from_: str
    body: str | None
    url: str | None
    status_callback: str | None
    created_at: datetime
    status: str = "queued"
    twiml: str | None = None
    status_callback_event: list[str] = field(default_factory=list)


def _dates_match(created: datetime, query: Form, name: str) -> bool:
    """Apply Twilio's ``Name``, ``Name>`` (on or after) and ``Name<`` (on or before) filters."""
    for key, values in query.items():
        # twilio-python sends "DateSent>"; a hand-written "DateSent>=" parses to the same key,
        # while a percent-encoded ">=" arrives as "DateSent>=".
        op = key[len(name) :].rstrip("=") if key.startswith(name) else None
        if op not in ("", ">", "<"):
            continue
        for raw in values:
            ref, have = _when(raw, created, whole_day=op == "")
            if not {">": have >= ref, "<": have <= ref, "": have == ref}[op]:
                return False
    return True


def _when(raw: str, created: datetime, whole_day: bool) -> tuple[date, date]:
    # YYYY-MM-DD compares dates, a timestamp compares instants (the client sends even a date as
    # "...T00:00:00Z"), except that an exact filter always means that day. Both sides get the
    # same type because comparing a date with a datetime raises.
    try:
        ref = datetime.fromisoformat(raw) if len(raw) > 10 else date.fromisoformat(raw)
    except ValueError:
        raise _ApiError(400, 20001, f"Invalid date filter {raw!r}") from None
    if isinstance(ref, datetime) and not whole_day:
        return (ref if ref.tzinfo else ref.replace(tzinfo=UTC)), created.replace(microsecond=0)
    return (ref.date() if isinstance(ref, datetime) else ref), created.date()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler sleeping in accept_then_hang must not block stop()
    request_queue_size = 128  # the default backlog of 5 drops concurrent connects (1 s SYN retry)
    fake: FakeTwilio

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out closed its socket before the late answer: expected, stay quiet.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # Keep-alive, as Twilio's API does: a client's session sends request after request on one
    # connection (HTTP/1.0 would open one per request, and a thread of ours for each).
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm holds the
    # body until the client's delayed ACK (40 ms) on a kept-alive connection.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test and benchmark output clean

    def do_GET(self) -> None:
        """Serve GET and POST alike (self.command tells them apart)."""
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        auth = self.headers.get("Authorization")
        fake = self.server.fake
        with fake.lock:
            fake.requests += 1
        if (delay := fake.delay) > 0:
            time.sleep(delay)  # a slow peer, before doing anything
        try:
            status, payload, hang = fake._route(self.command, url.path, query, form, auth)
        except _ApiError as e:
            status, payload, hang = e.status, e.payload, 0.0
        if hang > 0:
            time.sleep(hang)  # already recorded: the client sees a timeout for a sent message
        data = json.dumps(payload).encode() if status != 204 else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET
    do_DELETE = do_GET


class FakeTwilio:
    """Fake Twilio API server; ``with FakeTwilio() as fake:`` starts and stops it."""

    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = _FAKE_AUTH) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.base_url = ""
        self.lock = threading.Lock()  # guards sent, redirects, requests and the error knobs
        self.sent: list[Sent] = []
        self.redirects: list[tuple[str, str]] = []
        self._inbound: dict[str, Sent] = {}
        self.requests = 0
        # Plain floats: one attribute store/load is atomic and handlers read each once per request.
        self.delay = 0.0
        self.accept_then_hang = 0.0
        self._failures: list[Error] = []
        self._rejected: dict[str, Error] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.rooms = Conferences(self)

    def start(self) -> FakeTwilio:
        """Serve on a free port in a daemon thread; sets base_url."""
        if self._server is None:
            server = _Server(("127.0.0.1", 0), _Handler)
            server.fake = self
            self.base_url = f"http://127.0.0.1:{server.server_port}"
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
            self._server = server
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def messages(self) -> list[Sent]:
        """Accepted messages, oldest first (a copy)."""
        with self.lock:
            return [s for s in self.sent if s.kind == "sms"]

    def calls(self) -> list[Sent]:
        """Accepted calls, oldest first (a copy)."""
        with self.lock:
            return [s for s in self.sent if s.kind == "call"]

    def inbound(self, sid: str, from_: str, to: str) -> None:
        """A call that came in to the ward's number (as Twilio knows it, so it can be updated:
        the console redirects a queued caller to the agent's phone). Not listed in calls()."""
        with self.lock:
            self._inbound[sid] = Sent(sid, "call", to, from_, None, None, None, datetime.now(UTC))

    def fail_next(
        self, n: int, status: int = 500, code: int = 20500, message: str = "Internal error"
    ) -> None:
        """Answer the next n POSTs (creates and call updates) with this error, changing
        nothing (adds to pending ones)."""
        with self.lock:
            self._failures.extend([(status, code, message)] * n)

    def reject(
        self,
        to: str,
        status: int = 400,
        code: int = 21211,
        message: str = "Invalid 'To' Phone Number",
    ) -> None:
        """Answer every create to this number with this error."""
        with self.lock:
            self._rejected[to] = (status, code, message)

    # --- conferences: Twilio's voice side, played by tests (see ivr.fake_conferences) ---

    def conference(self, name: str) -> Conference | None:
        """The newest conference of this friendly name (or SID), ended or not."""
        return self.rooms.named(name)

    def join(self, call_sid: str, twiml: str) -> Conference:
        """The call runs this ``<Dial><Conference>`` TwiML: it is in the conference."""
        return self.rooms.join(call_sid, twiml)

    def answer(self, call_sid: str) -> Participant:
        """A participant we called out to picks up."""
        return self.rooms.answer(call_sid)

    def no_answer(self, call_sid: str) -> Participant:
        """A participant we called out to never picks up."""
        return self.rooms.no_answer(call_sid)

    def hang_up(self, call_sid: str) -> None:
        """A participant leaves the conference (hangs up)."""
        self.rooms.hang_up(call_sid)

    def calls_out(self, sid: str, *, to: str, from_: str, status_callback: str | None) -> None:
        """A call Twilio places for a conference participant (the caller holds the lock)."""
        now = datetime.now(UTC)
        self.sent.append(Sent(sid, "call", to, from_, None, None, status_callback, now))

    # --- request handling (runs on handler threads) ---

    def _route(
        self, method: str, path: str, query: Form, form: Form, auth: str | None
    ) -> tuple[int, Json, float]:
        credentials = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if auth != f"Basic {credentials}":
            raise _ApiError(401, 20003, "Authenticate")
        if (room := CONFERENCE_PATH.match(path)) is not None:
            if room[1] != self.account_sid:
                raise _ApiError(404, 20404, f"The requested resource {path} was not found")
            return self.rooms.route(method, path, room, query, form)
        match = _PATH.match(path)
        if match is None or match[1] != self.account_sid:
            raise _ApiError(404, 20404, f"The requested resource {path} was not found")
        kind = "sms" if match[2] == "Messages" else "call"
        sid = match[3]
        if sid is None:
            if method == "POST":
                created = self._create(kind, form)
                return 201, created, self.accept_then_hang
            return 200, self._list(kind, path, query), 0.0
        with self.lock:
            item = next((s for s in self.sent if s.sid == sid and s.kind == kind), None)
            if item is None and kind == "call":
                item = self._inbound.get(sid)
            if item is None:
                raise _ApiError(404, 20404, f"The requested resource {path} was not found")
            if method == "POST":
                if kind != "call":
                    raise _ApiError(405, 20004, "Method not allowed")
                if self._failures:
                    raise _ApiError(*self._failures.pop(0))
                self._update_call(item, form)
            return 200, self._resource(item), 0.0

    def _create(self, kind: str, form: Form) -> Json:
        to, from_, url, twiml = (_one(form, k) for k in ("To", "From", "Url", "Twiml"))
        body = _one(form, "Body")
        with self.lock:
            if self._failures:
                raise _ApiError(*self._failures.pop(0))
            sms = kind == "sms"
            if not to:
                raise _ApiError(400, 21604 if sms else 21201, "A 'To' phone number is required.")
            if not from_ and not (sms and _one(form, "MessagingServiceSid")):
                raise _ApiError(400, 21603 if sms else 21213, "A 'From' phone number is required.")
            if sms and not body and not form.get("MediaUrl"):
                raise _ApiError(400, 21602, "Message body is required.")
            if not sms and not url and not twiml and not _one(form, "ApplicationSid"):
                raise _ApiError(400, 21205, "Url parameter is required.")
            if to in self._rejected:
                raise _ApiError(*self._rejected[to])
            sent = Sent(
                sid=("SM" if sms else "CA") + uuid.uuid4().hex,
                kind=kind,
                to=to,
                from_=from_ or "",
                body=body if sms else None,
                url=None if sms else url,
                status_callback=_one(form, "StatusCallback"),
                created_at=datetime.now(UTC),
                twiml=None if sms else twiml,
                status_callback_event=form.get("StatusCallbackEvent", []),
            )
            self.sent.append(sent)
            return self._resource(sent)

    def _update_call(self, call: Sent, form: Form) -> None:
        # Caller holds the lock.
        if url := _one(form, "Url"):
            call.url = url
            self.redirects.append((call.sid, url))
        if twiml := _one(form, "Twiml"):
            call.twiml = twiml
        if url or twiml:
            self.rooms.redirected(call.sid)
        if (status := _one(form, "Status")) in ("completed", "canceled"):
            call.status = status

    def _list(self, kind: str, path: str, query: Form) -> Json:
        sms = kind == "sms"
        to, from_, status = (_one(query, k) for k in ("To", "From", "Status"))
        with self.lock:
            items = [
                self._resource(s)
                for s in reversed(self.sent)  # Twilio lists newest first
                if s.kind == kind
                and to in (None, s.to)
                and from_ in (None, s.from_)
                and status in (None, s.status)
                and _dates_match(s.created_at, query, "DateSent" if sms else "StartTime")
            ]
        return page_of("messages" if sms else "calls", items, path, query)

    def _resource(self, s: Sent) -> Json:
        created = format_datetime(s.created_at)  # RFC 2822, "+0000" like Twilio
        collection = "Messages" if s.kind == "sms" else "Calls"
        uri = f"/2010-04-01/Accounts/{self.account_sid}/{collection}/{s.sid}"
        common: Json = {"sid": s.sid, "account_sid": self.account_sid, "to": s.to, "from": s.from_}
        common |= {"status": s.status, "date_created": created, "date_updated": created}
        common |= {"direction": "outbound-api", "api_version": "2010-04-01", "price": None}
        common |= {"price_unit": "JPY", "uri": f"{uri}.json"}
        if s.kind == "sms":
            extra: Json = {"body": s.body, "num_segments": "1", "num_media": "0"}
            extra["subresource_uris"] = {"media": f"{uri}/Media.json"}
            return common | dict.fromkeys(_MESSAGE_NULLS) | extra
        extra = {"queue_time": "0", "to_formatted": s.to, "from_formatted": s.from_}
        return common | dict.fromkeys(_CALL_NULLS) | extra | {"subresource_uris": {}}
