"""TwilioApi's conference calls against the fake Twilio: what each sends, and which failures it
tries once more (only where a second request cannot ring a second phone)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ivr.fake_twilio import FakeTwilio
from ivr.telephony import Joining, LogOnly, ParticipantChange, TwilioApi, TwilioFailure

TOKEN = "c0ffee00c0ffee00c0ffee00c0ffee00"  # noqa: S105 (the fake's token)
WARD = "+81353334111"
DESK = "+81352734999"
CALLER = "CA" + "2" * 32
ROOM = f"madoguchi-{CALLER}"
TWIML = f"<Response><Dial><Conference>{ROOM}</Conference></Dial></Response>"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(auth_token=TOKEN) as twilio:
        twilio.join(CALLER, TWIML)
        yield twilio


@pytest.fixture
def api(fake: FakeTwilio) -> TwilioApi:
    return TwilioApi(
        account_sid=fake.account_sid,
        auth_token=TOKEN,
        from_number=WARD,
        base_url=fake.base_url,
        timeout=2,
    )


def agents(fake: FakeTwilio) -> list[str]:
    room = fake.conference(ROOM)
    assert room is not None
    return [p.call_sid for p in room.everyone if p.to == DESK]


def test_adding_sends_what_twilio_needs(fake: FakeTwilio, api: TwilioApi) -> None:
    join = Joining(label="agent", end_on_exit=True, status_callback="https://x/cb", timeout=15)
    leg = api.add_participant(conference=ROOM, to=DESK, join=join)
    [made] = [p for p in fake.conference(ROOM).everyone if p.call_sid == leg.sid]  # type: ignore[union-attr]
    assert (made.from_, made.label, made.timeout, made.early_media) == (WARD, "agent", 15, False)
    assert made.start_conference_on_enter and made.end_conference_on_exit and not made.muted
    assert made.status_callback_event == ["initiated", "answered", "completed"]


def test_an_add_twilio_may_have_taken_is_never_sent_twice(fake: FakeTwilio, api: TwilioApi) -> None:
    fake.fail_next(1, status=500)  # uncertain: the phone may be ringing already
    with pytest.raises(TwilioFailure) as failed:
        api.add_participant(conference=ROOM, to=DESK, join=Joining(label="agent"))
    assert failed.value.outcome == "uncertain"
    assert fake.requests == 1


def test_an_add_twilio_certainly_refused_is_tried_once_more(
    fake: FakeTwilio, api: TwilioApi
) -> None:
    fake.fail_next(1, status=503, code=20503, message="Service unavailable")
    leg = api.add_participant(conference=ROOM, to=DESK, join=Joining(label="agent"))
    assert agents(fake) == [leg.sid] and fake.requests == 2


def test_updates_and_removals_are_safe_to_send_again(fake: FakeTwilio, api: TwilioApi) -> None:
    fake.fail_next(1, status=500)
    api.update_participant(conference=ROOM, participant=CALLER, change=ParticipantChange(hold=True))
    room = fake.conference(ROOM)
    assert room is not None and room.participants[CALLER].hold
    leg = api.add_participant(conference=ROOM, to=DESK, join=Joining(label="agent"))
    api.remove_participant(conference=ROOM, participant=leg.sid)
    api.remove_participant(conference=ROOM, participant=leg.sid)  # gone already: not a failure
    assert leg.sid not in room.participants


def test_without_an_account_nothing_is_sent() -> None:
    quiet = LogOnly()
    leg = quiet.add_participant(conference=ROOM, to=DESK, join=Joining(label="agent"))
    assert leg.sid.startswith("CALOG")
    quiet.update_participant(conference=ROOM, participant=leg.sid, change=ParticipantChange())
    quiet.remove_participant(conference=ROOM, participant=leg.sid)
