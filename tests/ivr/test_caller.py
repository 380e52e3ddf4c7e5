"""The test caller (ivr.caller) and the terminal phone, against a small canned IVR.

The canned IVR checks X-Twilio-Signature with Twilio's own RequestValidator against the public
URL, as the real IVR must, and records every request: so these tests show that what the caller
sends is what Twilio sends, and that it follows TwiML the way Twilio does.
"""

from __future__ import annotations

import re
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped, unused-ignore]

from ivr import terminal
from ivr.caller import CallStateError, InvalidTwiML, PhoneCall, Prompt, WebhookFailed

PUBLIC = "https://ivr.example.jp"
TOKEN = secrets.token_hex(16)  # the account Auth Token the canned IVR checks against
WRONG_TOKEN = secrets.token_hex(16)
GREETING = "お電話ありがとうございます。窓口予約センターです。"
MENU = "予約は1、予約番号の確認は2、English, press 9."
NO_INPUT = "入力がありませんでした。"
TO_AGENT = "オペレーターにおつなぎします。"
HOLD = "順番におつなぎします。"
HOLD_MENU = "折り返しをご希望の方は1を押してください。"
CALL_BACK = "折り返しお電話します。"
STILL_HOLD = "そのままお待ちください。"
THANKS = "ご利用ありがとうございました。"
CODE_ASK = "予約番号を入力し、最後にシャープを押してください。"
CODE_MISSING = "予約番号が確認できませんでした。"
AFTER_QUEUE = "お待たせしました。"


@dataclass(frozen=True)
class Hit:
    """One request the canned IVR accepted (its signature held)."""

    target: str  # path and query, as sent
    params: dict[str, str]
    headers: dict[str, str]


def twiml(body: str, media_type: str = "text/xml") -> Response:
    return Response(
        f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>', media_type=media_type
    )


Handler = Callable[[Hit], Response]


@dataclass
class CannedIvr:
    """A tiny IVR: one handler per path, every request signature-checked like the real one."""

    hits: list[Hit] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    routes: dict[str, Handler] = field(default_factory=dict)

    def app(self) -> FastAPI:
        app = FastAPI()
        validator = RequestValidator(TOKEN)

        @app.post("/{path:path}")
        async def webhook(request: Request) -> Response:
            form = await request.form()
            params = {key: str(value) for key, value in form.items()}
            query = request.url.query
            target = request.url.path + (f"?{query}" if query else "")
            signature = request.headers.get("X-Twilio-Signature", "")
            if not validator.validate(PUBLIC + target, params, signature):
                self.rejected.append(target)
                return Response("bad signature", status_code=403)
            hit = Hit(target, params, dict(request.headers))
            self.hits.append(hit)
            return self.routes[request.url.path](hit)

        return app

    def to(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.target.split("?")[0] == path]


def voice(hit: Hit) -> Response:
    if "lang=en" in hit.target:
        return twiml(
            '<Say language="en-US" voice="Polly.Joanna">Thank you for calling.</Say>'
            f'<Gather numDigits="1" action="{PUBLIC}/ivr/menu?n=1&amp;lang=en"'
            ' actionOnEmptyResult="true"><Say language="en-US">For a booking, press 1.</Say></Gather>'
        )
    return twiml(
        f'<Say language="ja-JP" voice="Polly.Mizuki">{GREETING}</Say>'
        '<Pause length="1"/>'
        f'<Gather input="dtmf" numDigits="1" action="{PUBLIC}/ivr/menu?n=1" method="POST"'
        ' timeout="5" actionOnEmptyResult="true">'
        f'<Say language="ja-JP">{MENU}</Say><Pause length="2"/></Gather>'
    )


def menu(hit: Hit) -> Response:
    digits = hit.params["Digits"]
    if digits == "":
        return twiml(f"<Say>{NO_INPUT}</Say><Redirect>voice</Redirect>")  # relative on purpose
    if digits == "9":
        return twiml('<Redirect method="POST">/ivr/voice?lang=en</Redirect>')
    if digits == "1":
        return twiml(
            f"<Say>{TO_AGENT}</Say>"
            '<Enqueue action="/ivr/queue-done" method="POST" waitUrl="wait"'
            ' waitUrlMethod="POST">agents</Enqueue>'
        )
    if digits == "2":
        return twiml(
            f'<Gather action="code" finishOnKey="#" timeout="10"><Say>{CODE_ASK}</Say></Gather>'
            f"<Say>{CODE_MISSING}</Say><Hangup/>"
        )
    if digits == "3":
        return twiml(
            f'<Enqueue waitUrl="{PUBLIC}/ivr/wait">agents</Enqueue><Say>{AFTER_QUEUE}</Say><Hangup/>'
        )
    return twiml(f"<Say>{NO_INPUT}</Say><Redirect>{PUBLIC}/ivr/voice</Redirect>")


def code(hit: Hit) -> Response:
    return twiml(f"<Say>番号 {hit.params['Digits']} を確認します。</Say><Hangup/>")


def wait(_hit: Hit) -> Response:
    return twiml(
        f"<Say>{HOLD}</Say>"
        f'<Gather numDigits="1" action="/ivr/wait-key"><Say>{HOLD_MENU}</Say>'
        "<Play>https://media.example.jp/hold.mp3</Play></Gather>"
    )


def wait_key(hit: Hit) -> Response:
    if hit.params["Digits"] == "1":
        return twiml(f"<Say>{CALL_BACK}</Say><Leave/>")
    return twiml(f"<Say>{STILL_HOLD}</Say>")  # the document ends: Twilio loops the wait music


def queue_done(hit: Hit) -> Response:
    if hit.params["QueueResult"] == "leave":
        return twiml(f"<Say>{THANKS}</Say><Hangup/>")
    return twiml("<Hangup/>")


def status(_hit: Hit) -> Response:
    return Response(status_code=204)


@dataclass
class Clock:
    """Seconds the test moves by hand (call and queue durations)."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ivr() -> CannedIvr:
    return CannedIvr(
        routes={
            "/ivr/voice": voice,
            "/ivr/menu": menu,
            "/ivr/code": code,
            "/ivr/wait": wait,
            "/ivr/wait-key": wait_key,
            "/ivr/queue-done": queue_done,
            "/ivr/status": status,
        }
    )


@pytest.fixture
def http(ivr: CannedIvr) -> Iterator[TestClient]:
    with TestClient(ivr.app()) as client:
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def call(http: TestClient, clock: Clock) -> PhoneCall:
    return PhoneCall(http, public_base_url=PUBLIC, auth_token=TOKEN, clock=clock)


def serve(ivr: CannedIvr, path: str, body: str, media_type: str = "text/xml") -> None:
    """Make the canned IVR answer path with a fixed body."""
    ivr.routes[path] = lambda _hit: Response(body, media_type=media_type)


# -- what Twilio sends ---------------------------------------------------------------------------


def test_dial_posts_twilio_params_signed_for_the_public_url(
    call: PhoneCall, ivr: CannedIvr
) -> None:
    heard = call.dial()

    assert heard == [GREETING, MENU]
    [hit] = ivr.hits
    assert hit.target == "/ivr/voice"
    assert hit.params == {
        "CallSid": call.call_sid,
        "AccountSid": "AC" + "0" * 32,
        "From": "+819012345678",
        "To": "+81352734111",
        "Caller": "+819012345678",
        "Called": "+81352734111",
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        "FromCountry": "JP",
        "ToCountry": "JP",
    }
    assert re.fullmatch(r"CA[0-9a-f]{32}", call.call_sid)
    assert hit.headers["content-type"] == "application/x-www-form-urlencoded"
    assert hit.headers["x-twilio-signature"] == RequestValidator(TOKEN).compute_signature(
        f"{PUBLIC}/ivr/voice", hit.params
    )
    assert ivr.rejected == []
    assert call.exchanges[0].url == f"{PUBLIC}/ivr/voice"
    assert call.exchanges[0].status_code == 200
    assert "<Gather" in call.exchanges[0].body


def test_a_wrong_auth_token_is_refused_with_403(http: TestClient, ivr: CannedIvr) -> None:
    call = PhoneCall(http, public_base_url=PUBLIC, auth_token=WRONG_TOKEN)

    with pytest.raises(WebhookFailed, match=r"/ivr/voice answered 403:\nbad signature"):
        call.dial()

    assert ivr.rejected == ["/ivr/voice"]
    assert call.state == "ended"


def test_gather_answer_is_signed_with_its_query_and_sent_in_progress(
    call: PhoneCall, ivr: CannedIvr
) -> None:
    call.dial()
    assert call.state == "gathering"
    assert call.prompt == Prompt(
        action=f"{PUBLIC}/ivr/menu?n=1",
        num_digits=1,
        finish_on_key="#",
        timeout=5,
        action_on_empty_result=True,
    )

    heard = call.press("2")

    assert heard == [CODE_ASK]
    hit = ivr.hits[1]
    assert hit.target == "/ivr/menu?n=1"
    assert hit.params["Digits"] == "2"
    assert "FinishedOnKey" not in hit.params
    assert hit.params["CallStatus"] == "in-progress"
    assert hit.params["CallSid"] == ivr.hits[0].params["CallSid"]
    assert ivr.rejected == []
    # A Gather with a relative action and Twilio's defaults.
    assert call.prompt == Prompt(
        action=f"{PUBLIC}/ivr/code",
        num_digits=None,
        finish_on_key="#",
        timeout=10,
        action_on_empty_result=False,
    )


def test_a_withheld_number_is_sent_verbatim(http: TestClient, ivr: CannedIvr) -> None:
    for withheld in ("anonymous", "+266696687"):
        PhoneCall(http, public_base_url=PUBLIC, auth_token=TOKEN, from_number=withheld).dial()
        assert ivr.hits[-1].params["From"] == withheld
        assert ivr.hits[-1].params["Caller"] == withheld


# -- following TwiML -----------------------------------------------------------------------------


def test_queue_flow_gather_enqueue_leave_hangup(
    call: PhoneCall, ivr: CannedIvr, clock: Clock
) -> None:
    call.dial()
    clock.now += 3

    assert call.press("1") == [TO_AGENT, HOLD, HOLD_MENU]
    assert (call.state, call.queue) == ("queued", "agents")
    assert call.prompt is not None
    assert call.prompt.action == f"{PUBLIC}/ivr/wait-key"
    [waited] = ivr.to("/ivr/wait")
    sid = waited.params["QueueSid"]
    assert re.fullmatch(r"QU[0-9a-f]{32}", sid)
    assert {key: waited.params[key] for key in waited.params if key != "QueueSid"} == {
        **{key: ivr.hits[1].params[key] for key in ivr.hits[1].params if key != "Digits"},
        "QueuePosition": "1",
        "QueueTime": "0",
        "AvgQueueTime": "0",
        "CurrentQueueSize": "1",
        "MaxQueueSize": "100",
    }
    clock.now += 20

    assert call.press("1") == [CALL_BACK, THANKS]

    [done] = ivr.to("/ivr/queue-done")
    assert done.params["QueueResult"] == "leave"
    assert done.params["QueueSid"] == sid
    assert done.params["QueueTime"] == "20"
    assert call.state == "ended"
    assert call.queue is None
    [ended] = ivr.to("/ivr/status")
    assert ended.params["CallStatus"] == "completed"
    assert ended.params["CallDuration"] == "23"
    assert [hit.target for hit in ivr.hits] == [
        "/ivr/voice",
        "/ivr/menu?n=1",
        "/ivr/wait",
        "/ivr/wait-key",
        "/ivr/queue-done",
        "/ivr/status",
    ]
    assert call.said == [GREETING, MENU, TO_AGENT, HOLD, HOLD_MENU, CALL_BACK, THANKS]
    assert call.turns == [[GREETING, MENU], [TO_AGENT], [HOLD, HOLD_MENU], [CALL_BACK], [THANKS]]
    assert call.last_said == THANKS
    assert call.utterances[0].language == "ja-JP"
    assert call.utterances[0].voice == "Polly.Mizuki"
    assert ivr.rejected == []


def test_leave_straight_from_the_wait_music(call: PhoneCall, ivr: CannedIvr) -> None:
    serve(ivr, "/ivr/wait", f"<Response><Say>{HOLD}</Say><Leave/></Response>")
    call.dial()

    assert call.press("1") == [TO_AGENT, HOLD, THANKS]

    assert ivr.to("/ivr/queue-done")[0].params["QueueResult"] == "leave"
    assert call.state == "ended"


def test_hold_menu_other_key_stays_queued_then_an_agent_answers(
    call: PhoneCall, ivr: CannedIvr, clock: Clock
) -> None:
    call.dial()
    call.press("1")

    assert call.press("5") == [STILL_HOLD]
    assert (call.state, call.queue) == ("queued", "agents")
    assert call.prompt is None
    with pytest.raises(CallStateError):
        call.press("1")  # keys during plain hold music are not read
    clock.now += 30
    assert call.keep_waiting() == [HOLD, HOLD_MENU]
    assert ivr.to("/ivr/wait")[-1].params["QueueTime"] == "30"
    assert (call.state, call.queue) == ("queued", "agents")

    assert call.agent_answers() == []

    [done] = ivr.to("/ivr/queue-done")
    assert done.params["QueueResult"] == "bridged"
    assert done.params["QueueSid"] == ivr.to("/ivr/wait")[0].params["QueueSid"]
    assert call.state == "ended"
    assert ivr.to("/ivr/status")[0].params["CallStatus"] == "completed"


def test_enqueue_without_action_goes_on_after_the_enqueue(call: PhoneCall, ivr: CannedIvr) -> None:
    call.dial()
    call.press("3")
    assert (call.state, call.queue) == ("queued", "agents")

    assert call.agent_answers() == [AFTER_QUEUE]

    assert ivr.to("/ivr/queue-done") == []
    assert call.state == "ended"
    assert len(ivr.to("/ivr/status")) == 1


def test_hanging_up_in_the_queue_tells_the_enqueue_action_then_the_status_url(
    call: PhoneCall, ivr: CannedIvr, clock: Clock
) -> None:
    call.dial()
    call.press("1")
    clock.now += 42

    call.hang_up()

    assert [hit.target for hit in ivr.hits[-2:]] == ["/ivr/queue-done", "/ivr/status"]
    assert ivr.hits[-2].params["QueueResult"] == "hangup"
    assert ivr.hits[-1].params["CallDuration"] == "42"
    assert call.state == "ended"
    with pytest.raises(CallStateError):
        call.hang_up()


def test_silence_with_action_on_empty_result_posts_empty_digits(
    call: PhoneCall, ivr: CannedIvr
) -> None:
    call.dial()

    heard = call.silence()

    assert ivr.hits[1].target == "/ivr/menu?n=1"
    assert ivr.hits[1].params["Digits"] == ""
    # The relative <Redirect>voice</Redirect> resolves against /ivr/menu?n=1.
    assert ivr.hits[2].target == "/ivr/voice"
    assert ivr.hits[2].params["CallStatus"] == "in-progress"
    assert heard == [NO_INPUT, GREETING, MENU]
    assert call.turns[-2:] == [[NO_INPUT], [GREETING, MENU]]
    assert call.last_said == f"{GREETING} {MENU}"
    assert call.state == "gathering"


def test_silence_without_action_on_empty_result_falls_through(
    call: PhoneCall, ivr: CannedIvr
) -> None:
    call.dial()
    call.press("2")
    before = len(ivr.hits)

    assert call.silence() == [CODE_MISSING]

    assert ivr.to("/ivr/code") == []
    assert [hit.target for hit in ivr.hits[before:]] == ["/ivr/status"]
    assert call.state == "ended"


def test_silence_at_a_last_gather_ends_the_call(call: PhoneCall, ivr: CannedIvr) -> None:
    serve(
        ivr, "/ivr/voice", f'<Response><Gather numDigits="1"><Say>{MENU}</Say></Gather></Response>'
    )
    call.dial()
    assert call.prompt is not None
    assert call.prompt.action == f"{PUBLIC}/ivr/voice"  # no action: the document's own URL

    assert call.silence() == []

    assert call.state == "ended"
    assert ivr.hits[-1].target == "/ivr/status"


def test_finish_key_is_stripped_and_sent_as_finished_on_key(
    call: PhoneCall, ivr: CannedIvr
) -> None:
    call.dial()
    call.press("2")

    assert call.press("12345678#") == ["番号 12345678 を確認します。"]

    [hit] = ivr.to("/ivr/code")
    assert hit.params["Digits"] == "12345678"
    assert hit.params["FinishedOnKey"] == "#"
    assert call.last_said == "番号 12345678 を確認します。"


def test_keys_without_the_finish_key_are_sent_as_they_are(call: PhoneCall, ivr: CannedIvr) -> None:
    call.dial()
    call.press("2")

    call.press("1234")

    [hit] = ivr.to("/ivr/code")
    assert hit.params["Digits"] == "1234"
    assert "FinishedOnKey" not in hit.params


def test_keys_twilio_would_not_read_are_refused_before_sending(
    call: PhoneCall, ivr: CannedIvr
) -> None:
    with pytest.raises(CallStateError):
        call.press("1")  # not dialled yet
    call.dial()

    with pytest.raises(ValueError, match="numDigits=1"):
        call.press("12")
    with pytest.raises(ValueError, match="keys are"):
        call.press("1a")

    assert len(ivr.hits) == 1
    assert call.state == "gathering"


def test_hangup_verb_sends_the_status_callback(
    call: PhoneCall, ivr: CannedIvr, clock: Clock
) -> None:
    call.dial()
    call.press("2")
    clock.now += 7
    call.press("1#")

    [ended] = ivr.to("/ivr/status")
    assert ended.params["CallStatus"] == "completed"
    assert ended.params["CallDuration"] == "7"
    assert ended.headers["x-twilio-signature"] == RequestValidator(TOKEN).compute_signature(
        f"{PUBLIC}/ivr/status", ended.params
    )
    assert call.state == "ended"


def test_the_caller_hangs_up_at_a_menu(call: PhoneCall, ivr: CannedIvr) -> None:
    call.dial()

    call.hang_up()

    assert [hit.target for hit in ivr.hits] == ["/ivr/voice", "/ivr/status"]
    assert call.state == "ended"
    with pytest.raises(CallStateError):
        call.silence()


# -- what Twilio refuses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "media_type", "reason"),
    [
        ("<Response><Say>閉じていない", "text/xml", "not well-formed XML"),
        ("<Speak><Say>こんにちは</Say></Speak>", "text/xml", "the root is <Speak>"),
        ("<Response><Speak>こんにちは</Speak></Response>", "text/xml", "unknown verb <Speak>"),
        (
            '<Response><Gather numDigits="0"><Say>x</Say></Gather></Response>',
            "text/xml",
            "numDigits='0'",
        ),
        (
            '<Response><Gather numDigits="two"><Say>x</Say></Gather></Response>',
            "text/xml",
            "numDigits='two'",
        ),
        (
            '<Response><Gather timeout="-1"><Say>x</Say></Gather></Response>',
            "text/xml",
            "timeout='-1'",
        ),
        (
            "<Response><Gather><Redirect>/x</Redirect></Gather></Response>",
            "text/xml",
            "<Redirect> cannot be nested in <Gather>",
        ),
        ("<Response><Say>こんにちは</Say></Response>", "text/plain", "is not XML"),
        ("<Response><Say>こんにちは</Say></Response>", "application/json", "is not XML"),
    ],
)
def test_invalid_twiml_is_refused(
    call: PhoneCall, ivr: CannedIvr, body: str, media_type: str, reason: str
) -> None:
    serve(ivr, "/ivr/voice", body, media_type)

    with pytest.raises(InvalidTwiML, match=re.escape(reason)) as raised:
        call.dial()

    assert body in str(raised.value)  # the body is in the message, to see what went wrong
    assert call.state == "ended"


def test_application_xml_with_a_charset_is_twiml(call: PhoneCall, ivr: CannedIvr) -> None:
    serve(
        ivr, "/ivr/voice", "<Response><Say>はい</Say></Response>", "application/xml; charset=utf-8"
    )

    assert call.dial() == ["はい"]
    assert call.state == "ended"


def test_a_url_outside_the_public_base_is_refused(call: PhoneCall, ivr: CannedIvr) -> None:
    serve(
        ivr,
        "/ivr/voice",
        "<Response><Redirect>https://evil.example.com/ivr/voice</Redirect></Response>",
    )

    with pytest.raises(InvalidTwiML, match="not under the public base URL"):
        call.dial()

    assert [hit.target for hit in ivr.hits] == ["/ivr/voice"]


def test_a_gather_action_outside_the_public_base_is_refused(
    call: PhoneCall, ivr: CannedIvr
) -> None:
    serve(
        ivr, "/ivr/voice", '<Response><Gather action="http://ivr.example.jp/ivr/menu"/></Response>'
    )

    with pytest.raises(InvalidTwiML, match="not under the public base URL"):
        call.dial()  # http:// is not the https:// public base


def test_a_redirect_loop_is_reported(call: PhoneCall, ivr: CannedIvr) -> None:
    serve(ivr, "/ivr/voice", "<Response><Redirect>/ivr/voice</Redirect></Response>")

    with pytest.raises(InvalidTwiML, match="loop"):
        call.dial()


def test_a_server_error_fails_the_webhook(call: PhoneCall, ivr: CannedIvr) -> None:
    ivr.routes["/ivr/menu"] = lambda _hit: Response("boom", status_code=500)
    call.dial()

    with pytest.raises(WebhookFailed, match=r"answered 500:\nboom"):
        call.press("1")


# -- Twilio's retry ------------------------------------------------------------------------------


def test_retry_last_resends_the_same_signed_request(call: PhoneCall, ivr: CannedIvr) -> None:
    call.dial()
    call.press("2")
    state, prompt, said = call.state, call.prompt, list(call.said)

    response = call.retry_last()

    assert response.status_code == 200
    assert "<Gather" in response.text
    first, again = ivr.hits[-2], ivr.hits[-1]
    assert again.target == first.target == "/ivr/menu?n=1"
    assert again.params == first.params
    assert again.headers["x-twilio-signature"] == first.headers["x-twilio-signature"]
    assert (
        again.headers["i-twilio-idempotency-token"] == first.headers["i-twilio-idempotency-token"]
    )
    assert call.exchanges[-1].params == call.exchanges[-2].params
    assert call.exchanges[-1].signature == call.exchanges[-2].signature
    assert (call.state, call.prompt, call.said) == (state, prompt, said)


def test_retry_last_returns_a_failure_as_it_is(http: TestClient, ivr: CannedIvr) -> None:
    call = PhoneCall(http, public_base_url=PUBLIC, auth_token=WRONG_TOKEN)
    with pytest.raises(WebhookFailed):
        call.dial()

    assert call.retry_last().status_code == 403
    assert ivr.rejected == ["/ivr/voice", "/ivr/voice"]


# -- the terminal phone --------------------------------------------------------------------------


def scripted(*answers: str) -> tuple[Callable[[str], str], list[str]]:
    """An input function that answers in turn, and the prompts it was shown."""
    prompts: list[str] = []
    pending = iter(answers)

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return next(pending)

    return answer, prompts


def test_terminal_call_through_the_queue(http: TestClient, ivr: CannedIvr) -> None:
    answer, prompts = scripted("1", "1")
    printed: list[str] = []

    code = terminal.run(
        "http://testserver",
        public_base_url=PUBLIC,
        auth_token=TOKEN,
        from_number="+819011112222",
        language="ja",
        input_fn=answer,
        print_fn=printed.append,
        http=http,
    )

    assert code == 0
    assert printed == [
        f"IVR: {GREETING}",
        f"IVR: {MENU}",
        f"IVR: {TO_AGENT}",
        f"IVR: {HOLD}",
        f"IVR: {HOLD_MENU}",
        f"IVR: {CALL_BACK}",
        f"IVR: {THANKS}",
        "(call ended)",
    ]
    assert prompts == [terminal.KEYS_PROMPT, terminal.QUEUE_PROMPT]
    assert ivr.hits[0].params["From"] == "+819011112222"
    assert ivr.hits[-1].target == "/ivr/status"


def test_terminal_in_english_presses_9_then_hangs_up(http: TestClient, ivr: CannedIvr) -> None:
    answer, _prompts = scripted("", "q")
    printed: list[str] = []

    code = terminal.run(
        "http://testserver",
        public_base_url=PUBLIC,
        auth_token=TOKEN,
        from_number="anonymous",
        language="en",
        input_fn=answer,
        print_fn=printed.append,
        http=http,
    )

    assert code == 0
    assert ivr.hits[1].params["Digits"] == "9"
    assert ivr.hits[2].target == "/ivr/voice?lang=en"
    assert "IVR: Thank you for calling." in printed
    assert printed[-1] == "(call ended)"
    assert [hit.target for hit in ivr.hits[-3:]] == [
        "/ivr/menu?n=1&lang=en",
        "/ivr/voice",
        "/ivr/status",
    ]
    assert ivr.hits[-3].params["Digits"] == ""  # the empty answer was silence


def test_terminal_end_of_input_hangs_up(http: TestClient, ivr: CannedIvr) -> None:
    def no_more(_prompt: str) -> str:
        raise EOFError

    printed: list[str] = []
    code = terminal.run(
        "http://testserver",
        public_base_url=PUBLIC,
        auth_token=TOKEN,
        from_number="+819012345678",
        language="ja",
        input_fn=no_more,
        print_fn=printed.append,
        http=http,
    )

    assert code == 0
    assert printed[-1] == "(call ended)"
    assert ivr.to("/ivr/status")[0].params["CallStatus"] == "completed"


def test_terminal_reports_an_ivr_failure(http: TestClient, ivr: CannedIvr) -> None:
    serve(ivr, "/ivr/voice", "not TwiML", "text/html")
    printed: list[str] = []

    code = terminal.run(
        "http://testserver",
        public_base_url=PUBLIC,
        auth_token=TOKEN,
        from_number="+819012345678",
        language="ja",
        input_fn=scripted()[0],
        print_fn=printed.append,
        http=http,
    )

    assert code == 1
    assert printed[-1].startswith("(the IVR failed")


def test_terminal_says_when_the_service_is_not_running() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    printed: list[str] = []

    code = terminal.run(
        base_url,
        public_base_url=PUBLIC,
        auth_token=TOKEN,
        from_number="+819012345678",
        language="ja",
        input_fn=scripted()[0],
        print_fn=printed.append,
    )

    assert code == 1
    assert printed == [f'the service is not running at {base_url}: start it with "madoguchi serve"']


def test_ssml_inside_say_is_heard_as_text(call: PhoneCall, ivr: CannedIvr) -> None:
    serve(
        ivr,
        "/ivr/voice",
        '<Response><Say language="ja-JP">番号は<say-as interpret-as="digits">1234</say-as>'
        '<break time="1s"/>です。</Say><Hangup/></Response>',
    )

    assert call.dial() == ["番号は1234です。"]


def test_leave_outside_a_queue_is_refused(call: PhoneCall, ivr: CannedIvr) -> None:
    serve(ivr, "/ivr/voice", "<Response><Say>はい</Say><Leave/></Response>")

    with pytest.raises(InvalidTwiML, match="outside a queue"):
        call.dial()


def test_reject_busy_ends_the_call_as_busy(call: PhoneCall, ivr: CannedIvr) -> None:
    serve(ivr, "/ivr/voice", '<Response><Reject reason="busy"/></Response>')

    assert call.dial() == []

    assert call.state == "ended"
    assert ivr.to("/ivr/status")[0].params["CallStatus"] == "busy"


def test_any_httpx_client_gets_path_and_query_on_its_own_base_url() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/ivr/status":
            return httpx.Response(204)
        return httpx.Response(
            200,
            text="<Response><Redirect>/ivr/next?step=2</Redirect></Response>"
            if request.url.path == "/ivr/voice"
            else "<Response><Say>おわり</Say></Response>",
            headers={"Content-Type": "text/xml"},
        )

    transport = httpx.MockTransport(answer)
    with httpx.Client(transport=transport, base_url="http://127.0.0.1:8000") as client:
        call = PhoneCall(client, public_base_url=PUBLIC + "/", auth_token=TOKEN)
        assert call.dial() == ["おわり"]

    assert [str(request.url) for request in seen] == [
        "http://127.0.0.1:8000/ivr/voice",
        "http://127.0.0.1:8000/ivr/next?step=2",
        "http://127.0.0.1:8000/ivr/status",
    ]
    validator = RequestValidator(TOKEN)
    for request, exchange in zip(seen, call.exchanges, strict=True):
        params = dict(parse_qsl(request.content.decode(), keep_blank_values=True))
        assert exchange.url == PUBLIC + request.url.raw_path.decode()
        assert validator.validate(exchange.url, params, request.headers["X-Twilio-Signature"])
