"""A test caller that talks to the IVR exactly as Twilio's voice webhooks do.

The test suite and the terminal phone (`madoguchi call`) both drive the IVR through it, so the
IVR is exercised the way production exercises it: every request is a form-encoded POST signed
with X-Twilio-Signature and carrying the parameters Twilio sends, every answer must be TwiML
Twilio would accept, and the TwiML is followed verb by verb with Twilio's rules (a Gather's
fall-through, an Enqueue's wait music and action, the status callback when the call ends).
What Twilio would reject or log as an error is raised, so a test fails where a real call would.
"""

from __future__ import annotations

import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin, urlsplit

import httpx
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped, unused-ignore]

CallState = Literal["new", "gathering", "queued", "ended"]

VERBS = frozenset(
    "Say Play Pause Gather Redirect Enqueue Leave Hangup Dial Record Reject Sms Message Start"
    " Stop".split()
)
GATHER_NESTED = frozenset({"Say", "Play", "Pause"})
# SSML Twilio accepts inside <Say>: the text is still what the caller hears.
SSML = frozenset(
    {"break", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as", "sub", "w"}
)
KEYS = frozenset("0123456789*#")
XML_TYPES = frozenset({"text/xml", "application/xml"})
# More documents than this for one thing the caller does is a Redirect loop, not a call flow.
MAX_DOCUMENTS = 50
USER_AGENT = "TwilioProxy/1.1"


class InvalidTwiML(AssertionError):
    """An answer Twilio would refuse (error 12100 and friends): the message says why."""


class WebhookFailed(AssertionError):
    """A webhook answered with a non-2xx status: Twilio would play its error message."""


class CallStateError(AssertionError):
    """The test asked for something the call cannot do now (press with no Gather pending...)."""


@dataclass(frozen=True)
class Prompt:
    """One <Gather> waiting for keys, with Twilio's defaults filled in."""

    action: str
    num_digits: int | None
    finish_on_key: str
    timeout: int
    action_on_empty_result: bool


@dataclass(frozen=True)
class Exchange:
    """One webhook request and its answer, as Twilio's debugger would log it."""

    url: str
    params: dict[str, str]
    status_code: int
    body: str
    signature: str


@dataclass(frozen=True)
class MediaStream:
    """A <Start><Stream> the call runs: where Twilio would send the caller's audio, under which
    name, with which custom parameters (they come back in the stream's start message)."""

    name: str
    url: str
    parameters: dict[str, str]


@dataclass(frozen=True)
class Utterance:
    """One <Say>, with the language and voice it was spoken in (for bilingual checks)."""

    text: str
    language: str | None
    voice: str | None
    rate: str | None = None  # an SSML <prosody rate> around the text (slower speech)


@dataclass(frozen=True)
class _Request:
    """The last request sent, kept so retry_last can send it byte for byte again."""

    url: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class _Rest:
    """Verbs of a document still to run, and the document's URL (relative URLs resolve on it)."""

    verbs: tuple[ET.Element, ...]
    url: str


@dataclass(frozen=True)
class _Queueing:
    """The caller is in a queue: what Twilio needs to play the wait music and leave it."""

    name: str
    action: str | None
    wait_url: str | None
    sid: str
    since: float
    after: _Rest  # the verbs after <Enqueue>: where a call without an action goes on


class PhoneCall:
    """One inbound call to the IVR, driven by the test (or the terminal) one key at a time."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        public_base_url: str,
        auth_token: str,
        from_number: str = "+819012345678",
        to_number: str = "+81352734111",
        call_sid: str | None = None,
        account_sid: str = "AC" + "0" * 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._base = public_base_url.rstrip("/")
        base = urlsplit(self._base)
        if base.scheme not in {"http", "https"} or not base.netloc:
            raise ValueError(f"public_base_url must be an absolute http(s) URL: {public_base_url}")
        self._validator = RequestValidator(auth_token)
        self._clock = clock
        self.from_number = from_number
        self.to_number = to_number
        self.call_sid = call_sid or "CA" + secrets.token_hex(16)
        self.account_sid = account_sid
        self.queue_position = 1
        self.said: list[str] = []
        self.utterances: list[Utterance] = []
        self.turns: list[list[str]] = []
        self.exchanges: list[Exchange] = []
        self.prompt: Prompt | None = None
        self._after_gather: _Rest | None = None
        self._queueing: _Queueing | None = None
        self._dialled = False
        self._answered = False
        self._ended = False
        self._started = 0.0
        self._heard: list[str] = []
        self._documents = 0
        self._last: _Request | None = None
        self._outbound = False
        self.streams: dict[str, MediaStream] = {}  # running now, by name
        self.streams_started: list[MediaStream] = []

    # -- what the test sees ------------------------------------------------------------------

    @property
    def state(self) -> CallState:
        """Where the call rests between two things the caller does."""
        if self._ended:
            return "ended"
        if self._queueing is not None:
            return "queued"
        if self.prompt is not None:
            return "gathering"
        return "new"

    @property
    def queue(self) -> str | None:
        """The queue's name while the caller waits in it."""
        return self._queueing.name if self._queueing is not None else None

    @property
    def last_said(self) -> str:
        """The latest document's Says, joined: what the caller heard last."""
        return " ".join(self.turns[-1]) if self.turns else ""

    # -- what the caller does ----------------------------------------------------------------

    def dial(self) -> list[str]:
        """Ring the IVR: Twilio POSTs the number's voice URL with CallStatus=ringing."""
        if self._dialled:
            raise CallStateError("this call was already dialled")
        self._dialled = True
        self._started = self._clock()
        return self._act(lambda: self._follow(f"{self._base}/ivr/voice", self._params()))

    def pick_up(self, url: str) -> list[str]:
        """A call the ward placed (a reminder) is answered: Twilio fetches the call's Url, with
        the ward's number as From and this resident as To."""
        if self._dialled:
            raise CallStateError("this call was already dialled")
        self._dialled = True
        self._outbound = True
        self._started = self._clock()
        return self._act(lambda: self._follow(url, self._params()))

    @property
    def stream(self) -> MediaStream | None:
        """The media stream running now (the one listening to the question asked), if any."""
        return self.streams_started[-1] if self.streams and self.streams_started else None

    def redirected(self, url: str) -> list[str]:
        """The ward's server moved the live call through Twilio's REST API: Twilio drops what
        it was doing (the pending <Gather>) and runs the TwiML at ``url``."""
        if not self._dialled or self._ended:
            raise CallStateError(f"there is no live call to redirect (state {self.state})")
        self.prompt = None
        self._after_gather = None
        return self._act(lambda: self._follow(url, self._params()))

    def press(self, digits: str) -> list[str]:
        """Answer the pending Gather with keys; a trailing finish key is sent as FinishedOnKey."""
        prompt = self._pending_prompt()
        if not digits or any(key not in KEYS for key in digits):
            raise ValueError(f"keys are 0-9, * and #, got {digits!r} (silence() sends none)")
        collected, finished = _collect(digits, prompt)
        if not collected and not prompt.action_on_empty_result:
            return self._act(self._fall_through)  # a lone finish key is no input to Twilio
        params = self._params() | {"Digits": collected}
        if finished:
            params["FinishedOnKey"] = finished
        return self._act(lambda: self._answer_gather(prompt, params))

    def silence(self) -> list[str]:
        """The Gather times out: Twilio posts empty Digits only with actionOnEmptyResult."""
        prompt = self._pending_prompt()
        if prompt.action_on_empty_result:
            params = self._params() | {"Digits": ""}
            return self._act(lambda: self._answer_gather(prompt, params))
        return self._act(self._fall_through)

    def keep_waiting(self) -> list[str]:
        """While queued, the wait music ran out: Twilio requests the waitUrl again."""
        if self._queueing is None or self._ended:
            raise CallStateError(f"the caller is not in a queue (state {self.state})")
        self.prompt = None
        self._after_gather = None
        return self._act(self._wait)

    def agent_answers(self) -> list[str]:
        """An agent dequeues the caller; when that call ends Twilio posts QueueResult=bridged."""
        if self._queueing is None or self._ended:
            raise CallStateError(f"the caller is not in a queue (state {self.state})")
        return self._act(lambda: self._dequeue("bridged"))

    def hang_up(self) -> None:
        """The caller hangs up: Twilio tells the Enqueue action (if queued) and the status URL."""
        if not self._dialled or self._ended:
            raise CallStateError(f"there is no call to hang up (state {self.state})")
        queueing = self._queueing
        if queueing is not None and queueing.action is not None:
            # Twilio posts QueueResult=hangup and ignores the answer: the caller has gone.
            self._post(queueing.action, self._params() | self._queue_result(queueing, "hangup"))
        self._end("completed")

    def retry_last(self) -> httpx.Response:
        """Send the last request again, unchanged: Twilio's retry after a slow answer."""
        if self._last is None:
            raise CallStateError("nothing was sent yet")
        return self._send(self._last)

    # -- following TwiML ---------------------------------------------------------------------

    def _act(self, step: Callable[[], None]) -> list[str]:
        """Run one thing the caller does; on an IVR error the call is over, as on Twilio."""
        self._heard = []
        self._documents = 0
        try:
            step()
        except (InvalidTwiML, WebhookFailed):
            self._ended = True
            self.prompt = None
            self._queueing = None
            raise
        return self._heard

    def _pending_prompt(self) -> Prompt:
        if self._ended or self.prompt is None:
            raise CallStateError(f"no <Gather> is waiting for keys (state {self.state})")
        return self.prompt

    def _answer_gather(self, prompt: Prompt, params: dict[str, str]) -> None:
        self.prompt = None
        self._after_gather = None
        self._follow(prompt.action, params)

    def _fall_through(self) -> None:
        """No input and no actionOnEmptyResult: Twilio goes on with the verbs after <Gather>."""
        rest = self._after_gather
        self.prompt = None
        self._after_gather = None
        if rest is not None:
            self._run(rest)

    def _follow(self, url: str, params: dict[str, str]) -> None:
        """POST a webhook and run the TwiML it answers."""
        self._documents += 1
        if self._documents > MAX_DOCUMENTS:
            raise InvalidTwiML(
                f"more than {MAX_DOCUMENTS} documents without input: a loop at {url}"
            )
        response = self._post(url, params)
        root = _parse(response)
        self._run(_Rest(tuple(root), url))

    def _run(self, rest: _Rest) -> None:
        """Run verbs in order until the call waits for the caller, moves on, or ends."""
        turn: list[str] = []
        for index, verb in enumerate(rest.verbs):
            after = _Rest(rest.verbs[index + 1 :], rest.url)
            tag = verb.tag
            if tag == "Say":
                self._say(verb, turn)
            elif tag in {"Play", "Pause", "Sms", "Message"}:
                continue
            elif tag == "Start":
                for stream in verb.iter("Stream"):
                    started = MediaStream(
                        name=stream.get("name", ""),
                        url=stream.get("url", ""),
                        parameters={
                            p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")
                        },
                    )
                    self.streams[started.name] = started
                    self.streams_started.append(started)
            elif tag == "Stop":
                for stream in verb.iter("Stream"):
                    self.streams.pop(stream.get("name", ""), None)
            elif tag == "Gather":
                for child in verb:
                    if child.tag == "Say":
                        self._say(child, turn)
                self._close(turn)
                self.prompt = _prompt(verb, self._resolve(verb.get("action") or rest.url, rest.url))
                self._after_gather = after
                return
            elif tag == "Redirect":
                self._close(turn)
                self._follow(self._resolve(verb.text or "", rest.url), self._params())
                return
            elif tag == "Enqueue":
                self._close(turn)
                self._enqueue(verb, after)
                return
            elif tag == "Leave":
                self._close(turn)
                if self._queueing is None:
                    raise InvalidTwiML(f"<Leave> outside a queue's wait music at {rest.url}")
                self._dequeue("leave")
                return
            elif tag == "Hangup":
                self._close(turn)
                self._end("completed")
                return
            elif tag == "Reject":
                self._close(turn)  # Twilio ends a rejected call as busy or no-answer
                self._end("busy" if verb.get("reason") == "busy" else "no-answer")
                return
            else:
                raise NotImplementedError(f"the test caller does not simulate <{tag}>")
        self._close(turn)
        if self._queueing is None:
            self._end("completed")  # the document ran out: Twilio hangs up
        # In a queue, Twilio would loop the waitUrl: the call rests there until the test acts.

    def _say(self, verb: ET.Element, turn: list[str]) -> None:
        text = "".join(verb.itertext()).strip()
        self.said.append(text)
        prosody = verb.find("prosody")
        rate = prosody.get("rate") if prosody is not None else None
        self.utterances.append(Utterance(text, verb.get("language"), verb.get("voice"), rate))
        self._heard.append(text)
        turn.append(text)

    def _close(self, turn: list[str]) -> None:
        """A document that said something is one turn; a bare Redirect is not."""
        if turn:
            self.turns.append(list(turn))

    def _enqueue(self, verb: ET.Element, after: _Rest) -> None:
        if self._queueing is not None:
            raise InvalidTwiML(f"<Enqueue> while already queued at {after.url}")
        action = verb.get("action")
        wait_url = verb.get("waitUrl")
        self._queueing = _Queueing(
            name=(verb.text or "").strip(),
            action=self._resolve(action, after.url) if action else None,
            wait_url=self._resolve(wait_url, after.url) if wait_url else None,
            sid="QU" + secrets.token_hex(16),
            since=self._clock(),
            after=after,
        )
        self._wait()

    def _wait(self) -> None:
        """Play the wait music: Twilio POSTs the waitUrl with the caller's place in the queue."""
        queueing = self._queueing
        if queueing is None or queueing.wait_url is None:
            return  # Twilio's own hold music: nothing to hear, nothing to press
        position = str(self.queue_position)
        params = self._params() | {
            "QueuePosition": position,
            "QueueSid": queueing.sid,
            "QueueTime": self._seconds_since(queueing.since),
            "AvgQueueTime": "0",
            "CurrentQueueSize": position,
            "MaxQueueSize": "100",
        }
        self._follow(queueing.wait_url, params)

    def _dequeue(self, result: str) -> None:
        """The caller leaves the queue: the Enqueue's action, or the verbs after it."""
        queueing = self._queueing
        if queueing is None:
            raise CallStateError("the caller is not in a queue")
        self._queueing = None
        self.prompt = None
        self._after_gather = None
        if queueing.action is not None:
            self._follow(queueing.action, self._params() | self._queue_result(queueing, result))
        else:
            self._run(queueing.after)

    def _queue_result(self, queueing: _Queueing, result: str) -> dict[str, str]:
        return {
            "QueueResult": result,
            "QueueSid": queueing.sid,
            "QueueTime": self._seconds_since(queueing.since),
        }

    def _end(self, status: str) -> None:
        """The call is over: Twilio POSTs the status callback with the call's duration."""
        self._ended = True
        self.prompt = None
        self._after_gather = None
        self._queueing = None
        self.streams.clear()  # a call's streams end with it
        params = self._params() | {
            "CallStatus": status,
            "CallDuration": self._seconds_since(self._started),
        }
        self._post(f"{self._base}/ivr/status", params)

    # -- HTTP --------------------------------------------------------------------------------

    def _params(self) -> dict[str, str]:
        """What Twilio sends on every voice webhook; ringing only on the very first."""
        status = "in-progress" if self._answered else "ringing"
        self._answered = True
        # On a call we placed, the resident (from_number here) is the one called.
        ours, theirs = self.to_number, self.from_number
        caller, called = (ours, theirs) if self._outbound else (theirs, ours)
        return {
            "CallSid": self.call_sid,
            "AccountSid": self.account_sid,
            "From": caller,
            "To": called,
            "Caller": caller,
            "Called": called,
            "CallStatus": status,
            "Direction": "outbound-api" if self._outbound else "inbound",
            "ApiVersion": "2010-04-01",
            "FromCountry": "JP",
            "ToCountry": "JP",
        }

    def _seconds_since(self, moment: float) -> str:
        return str(max(0, int(self._clock() - moment)))

    def _resolve(self, url: str, document_url: str) -> str:
        """An absolute URL under the public base, as Twilio would request it."""
        target = urljoin(document_url, url.strip()).split("#", 1)[0]
        if self._local(target) is None:
            raise InvalidTwiML(f"{target!r} is not under the public base URL {self._base}")
        return target

    def _local(self, url: str) -> str | None:
        """Path and query of an absolute URL under the public base (None when outside it)."""
        parts = urlsplit(url)
        base = urlsplit(self._base)
        if (parts.scheme, parts.netloc.lower()) != (base.scheme, base.netloc.lower()):
            return None
        path = parts.path or "/"
        if base.path and path != base.path and not path.startswith(base.path + "/"):
            return None
        return path + (f"?{parts.query}" if parts.query else "")

    def _post(self, url: str, params: dict[str, str]) -> httpx.Response:
        """Sign and send a webhook; anything but 2xx fails the call."""
        signature: str = self._validator.compute_signature(url, params)
        request = _Request(
            url=url,
            params=dict(params),
            headers={
                "X-Twilio-Signature": signature,
                "I-Twilio-Idempotency-Token": secrets.token_hex(16),
                "User-Agent": USER_AGENT,
                "Accept": "*/*",
            },
        )
        self._last = request
        response = self._send(request)
        if not response.is_success:
            raise WebhookFailed(
                f"POST {url} answered {response.status_code}:\n{_excerpt(response.text)}"
            )
        return response

    def _send(self, request: _Request) -> httpx.Response:
        local = self._local(request.url)
        if local is None:
            raise InvalidTwiML(f"{request.url!r} is not under the public base URL {self._base}")
        response = self._http.post(local, data=request.params, headers=request.headers)
        self.exchanges.append(
            Exchange(
                url=request.url,
                params=dict(request.params),
                status_code=response.status_code,
                body=response.text,
                signature=request.headers["X-Twilio-Signature"],
            )
        )
        return response


def _collect(digits: str, prompt: Prompt) -> tuple[str, str]:
    """The keys Twilio reads: up to numDigits, or up to the finish key (returned apart)."""
    collected = ""
    for index, key in enumerate(digits):
        if prompt.finish_on_key and key == prompt.finish_on_key:
            finished, leftover = key, digits[index + 1 :]
            break
        collected += key
        if prompt.num_digits is not None and len(collected) == prompt.num_digits:
            finished, leftover = "", digits[index + 1 :]
            break
    else:
        finished, leftover = "", ""
    if leftover:
        raise ValueError(
            f"the Gather ends before {leftover!r} (numDigits={prompt.num_digits}, "
            f"finishOnKey={prompt.finish_on_key!r}): Twilio would not read those keys"
        )
    return collected, finished


def _prompt(gather: ET.Element, action: str) -> Prompt:
    """Twilio's reading of a <Gather>, its defaults filled in (the action already resolved)."""
    num_digits = gather.get("numDigits")
    return Prompt(
        action=action,
        num_digits=int(num_digits) if num_digits is not None else None,
        finish_on_key=gather.get("finishOnKey", "#"),
        timeout=int(gather.get("timeout", "5")),
        action_on_empty_result=gather.get("actionOnEmptyResult", "false") == "true",
    )


def _excerpt(body: str, limit: int = 2000) -> str:
    return body if len(body) <= limit else body[:limit] + "…"


def _parse(response: httpx.Response) -> ET.Element:
    """The TwiML of an answer, checked the way Twilio checks it before running a verb."""
    body = response.text
    content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type not in XML_TYPES:
        raise InvalidTwiML(f"Content-Type {content_type or 'none'!r} is not XML:\n{_excerpt(body)}")
    if b"<!DOCTYPE" in response.content or b"<!ENTITY" in response.content:
        raise InvalidTwiML(f"TwiML has no DTD or entities:\n{_excerpt(body)}")
    try:
        # The body comes from our own IVR and has no DTD (checked above): plain ElementTree is safe.
        root = ET.fromstring(response.content)  # noqa: S314
    except ET.ParseError as error:
        raise InvalidTwiML(f"not well-formed XML ({error}):\n{_excerpt(body)}") from error
    problems = list(_problems(root))
    if problems:
        raise InvalidTwiML("; ".join(problems) + f":\n{_excerpt(body)}")
    return root


def _problems(root: ET.Element) -> list[str]:
    """Everything wrong with a document, so one failure shows them all."""
    if root.tag != "Response":
        return [f"the root is <{root.tag}>, not <Response>"]
    problems: list[str] = []
    if (root.text or "").strip():
        problems.append(f"stray text {(root.text or '').strip()!r} in <Response>")
    for verb in root:
        if (verb.tail or "").strip():
            problems.append(f"stray text {(verb.tail or '').strip()!r} after <{verb.tag}>")
        if verb.tag not in VERBS:
            problems.append(f"unknown verb <{verb.tag}>")
            continue
        problems.extend(_verb_problems(verb))
        if verb.tag == "Gather":
            for child in verb:
                if child.tag not in GATHER_NESTED:
                    problems.append(f"<{child.tag}> cannot be nested in <Gather>")
                else:
                    problems.extend(_verb_problems(child))
    return problems


def _verb_problems(verb: ET.Element) -> list[str]:
    tag = verb.tag
    problems: list[str] = []
    for attribute in ("method", "waitUrlMethod"):
        if verb.get(attribute, "POST") != "POST":
            problems.append(f"<{tag} {attribute}={verb.get(attribute)!r}>: this IVR posts only")
    if tag == "Say":
        if not "".join(verb.itertext()).strip():
            problems.append("an empty <Say>")
        problems.extend(
            f"<{child.tag}> is not SSML Twilio reads in <Say>"
            for child in verb.iter()
            if child is not verb and child.tag not in SSML
        )
    elif tag == "Gather":
        for attribute in ("numDigits", "timeout"):
            value = verb.get(attribute)
            if value is not None and not _positive_int(value):
                problems.append(f"<Gather {attribute}={value!r}> is not a positive integer")
        finish = verb.get("finishOnKey", "#")
        if finish and (len(finish) != 1 or finish not in KEYS):
            problems.append(f"<Gather finishOnKey={finish!r}> is not one key (error 13310)")
        if verb.get("actionOnEmptyResult", "false") not in {"true", "false"}:
            problems.append("<Gather actionOnEmptyResult> is not true or false (error 13338)")
        if "dtmf" not in verb.get("input", "dtmf").split():
            problems.append(f"<Gather input={verb.get('input')!r}> does not read keys")
    elif tag == "Pause":
        length = verb.get("length")
        if length is not None and not _positive_int(length):
            problems.append(f"<Pause length={length!r}> is not a positive integer")
    elif tag == "Redirect" and not (verb.text or "").strip():
        problems.append("a <Redirect> without a URL")
    elif tag == "Enqueue" and not (verb.text or "").strip() and not verb.get("workflowSid"):
        problems.append("an <Enqueue> without a queue name")
    elif tag == "Start":
        streams = list(verb)
        if len(streams) != 1 or streams[0].tag != "Stream":
            problems.append("<Start> holds other than one <Stream>")
        else:
            stream = streams[0]
            if not stream.get("url", "").startswith(("wss://", "ws://")):
                problems.append(f"<Stream url={stream.get('url')!r}> is not a WebSocket URL")
            if stream.get("track", "inbound_track") not in {
                "inbound_track",
                "outbound_track",
                "both_tracks",
            }:
                problems.append(f"<Stream track={stream.get('track')!r}> is not a track")
            for child in stream:
                if child.tag != "Parameter" or not child.get("name"):
                    problems.append(f"<{child.tag}> in <Stream> is not a named <Parameter>")
    elif tag == "Stop":
        if not all(child.tag == "Stream" and child.get("name") for child in verb):
            problems.append("<Stop> holds other than named <Stream>s")
    elif tag == "Reject" and verb.get("reason", "rejected") not in {"rejected", "busy"}:
        problems.append(f"<Reject reason={verb.get('reason')!r}> is not rejected or busy")
    return problems


def _positive_int(value: str) -> bool:
    return value.isascii() and value.isdigit() and int(value) > 0
