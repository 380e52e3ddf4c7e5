"""The terminal phone (`madoguchi call`): ring the running IVR and press keys from the keyboard.

It is the test caller with a keyboard on it, so what a developer hears here is exactly what the
tests check and what Twilio would play: same signed webhooks, same TwiML rules.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from ivr.caller import KEYS, InvalidTwiML, PhoneCall, WebhookFailed

KEYS_PROMPT = "keys (0-9 * #, empty = stay silent, q = hang up) > "
QUEUE_PROMPT = "on hold (a = an agent answers, keys = press, empty = keep waiting, q = hang up) > "
QUEUE_MUSIC_PROMPT = "on hold (a = an agent answers, empty = keep waiting, q = hang up) > "
# The keys that switch the IVR's language at its first menu.
LANGUAGE_KEYS = {
    "en": ("9", "English"),
    "ko": ("8", "Korean"),
    "zh": ("7", "Chinese"),
    "easy": ("6", "やさしい日本語"),
}


def run(
    base_url: str,
    *,
    public_base_url: str,
    auth_token: str,
    from_number: str,
    language: str,
    input_fn: Callable[[str], str] = input,
    print_fn: Callable[[str], None] = print,
    http: httpx.Client | None = None,
) -> int:
    """Call the IVR at base_url until the call ends; 0 on a normal end, 1 if it could not go on."""
    client = http if http is not None else httpx.Client(base_url=base_url, timeout=10)
    call = PhoneCall(
        client, public_base_url=public_base_url, auth_token=auth_token, from_number=from_number
    )

    def show(lines: list[str]) -> None:
        for line in lines:
            print_fn(f"IVR: {line}")

    try:
        show(call.dial())
        if language in LANGUAGE_KEYS and call.state == "gathering":
            key, name = LANGUAGE_KEYS[language]
            print_fn(f"(pressing {key} for {name})")
            show(call.press(key))
        while call.state != "ended":
            _turn(call, input_fn, print_fn, show)
    except httpx.ConnectError:
        print_fn(f'the service is not running at {base_url}: start it with "madoguchi serve"')
        return 1
    except (InvalidTwiML, WebhookFailed) as error:
        print_fn(f"(the IVR failed, Twilio would hang up: {error})")
        return 1
    finally:
        if http is None:
            client.close()
    print_fn("(call ended)")
    return 0


def _turn(
    call: PhoneCall,
    input_fn: Callable[[str], str],
    print_fn: Callable[[str], None],
    show: Callable[[list[str]], None],
) -> None:
    """Ask for one thing the caller does and do it; end of input hangs up."""
    queued = call.state == "queued"
    if queued:
        prompt = QUEUE_PROMPT if call.prompt is not None else QUEUE_MUSIC_PROMPT
    else:
        prompt = KEYS_PROMPT
    try:
        answer = input_fn(prompt).strip().lower()
    except (EOFError, KeyboardInterrupt):
        answer = "q"
    if answer == "q":
        call.hang_up()
    elif queued and answer == "a":
        show(call.agent_answers())
    elif answer == "":
        if call.prompt is not None:
            show(call.silence())
        else:
            show(call.keep_waiting())  # the hold music has no menu: Twilio plays it again
    elif all(key in KEYS for key in answer) and call.prompt is not None:
        try:
            show(call.press(answer))
        except ValueError as error:
            print_fn(f"({error})")
    else:
        print_fn("(not a choice here)")
