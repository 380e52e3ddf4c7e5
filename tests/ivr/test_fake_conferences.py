"""The fake Twilio's conferences and participants, through twilio-python's own client (as the
console reaches Twilio): made by calling a participant out, listed, updated (mute, hold,
coach), removed; Twilio's errors where a request is wrong; the caller's own leg joined from
its TwiML."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from ivr.fake_twilio import FakeTwilio
from ivr.telephony import _ToBase

TOKEN = "c0ffee00c0ffee00c0ffee00c0ffee00"  # noqa: S105 (the fake's token)
WARD = "+81353334111"
DESK = "+81352734999"
SUPERVISOR = "+81352734888"
CALLER = "CA" + "1" * 32
ROOM = f"madoguchi-{CALLER}"
TWIML = (
    '<Response><Dial action="https://x/ivr/connect/done"><Conference beep="false"'
    ' startConferenceOnEnter="false" endConferenceOnExit="true">'
    f"{ROOM}</Conference></Dial></Response>"
)


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(auth_token=TOKEN) as twilio:
        yield twilio


@pytest.fixture
def client(fake: FakeTwilio) -> Client:
    return Client(fake.account_sid, TOKEN, http_client=_ToBase(fake.base_url, timeout=2))


def test_the_caller_waits_alone_until_the_agent_who_starts_it_answers(
    fake: FakeTwilio, client: Client
) -> None:
    room = fake.join(CALLER, TWIML)
    assert room.status == "init"  # the caller does not start it: wait music
    agent = client.conferences(ROOM).participants.create(
        from_=WARD,
        to=DESK,
        label="agent",
        start_conference_on_enter=True,
        end_conference_on_exit=True,
        status_callback="https://x/ivr/connect/agent",
        status_callback_event=["initiated", "answered", "completed"],
        timeout=20,
    )
    assert agent.label == "agent" and agent.status == "queued"
    assert agent.conference_sid == room.sid and agent.call_sid.startswith("CA")
    assert agent.start_conference_on_enter and agent.end_conference_on_exit
    [placed] = fake.calls()
    assert (placed.sid, placed.to, placed.from_) == (agent.call_sid, DESK, WARD)
    fake.answer(agent.call_sid)
    fetched = client.conferences(room.sid).fetch()
    assert (fetched.status, fetched.friendly_name) == ("in-progress", ROOM)
    both = client.conferences(room.sid).participants.list()
    assert {p.call_sid for p in both} == {CALLER, agent.call_sid}
    [kept] = [p for p in room.everyone if p.call_sid == agent.call_sid]
    assert kept.timeout == 20 and kept.status_callback == "https://x/ivr/connect/agent"
    assert kept.status_callback_event == ["initiated", "answered", "completed"]


def test_mute_hold_and_coach_are_updated_by_call_sid_or_label(
    fake: FakeTwilio, client: Client
) -> None:
    room = fake.join(CALLER, TWIML)
    agent = client.conferences(ROOM).participants.create(
        from_=WARD, to=DESK, label="agent", start_conference_on_enter=True
    )
    fake.answer(agent.call_sid)
    listener = client.conferences(room.sid).participants.create(
        from_=WARD, to=SUPERVISOR, label="supervisor-7", muted=True
    )
    assert listener.muted and not listener.coaching
    coach = (
        client.conferences(room.sid)
        .participants("supervisor-7")
        .update(muted=False, coaching=True, call_sid_to_coach=agent.call_sid)
    )
    assert (coach.muted, coach.coaching, coach.call_sid_to_coach) == (
        False,
        True,
        agent.call_sid,
    )
    joined = client.conferences(room.sid).participants(listener.call_sid).update(coaching=False)
    assert not joined.coaching and joined.call_sid_to_coach is None
    held = (
        client.conferences(room.sid)
        .participants(CALLER)
        .update(hold=True, hold_url="https://x/ivr/hold?lang=ja")
    )
    assert held.hold
    [caller] = [p for p in room.everyone if p.call_sid == CALLER]
    assert caller.hold_url == "https://x/ivr/hold?lang=ja"
    assert not client.conferences(room.sid).participants(CALLER).update(hold=False).hold


def test_twilios_errors_for_wrong_requests(fake: FakeTwilio, client: Client) -> None:
    room = fake.join(CALLER, TWIML)
    with pytest.raises(TwilioRestException) as no_coached:
        client.conferences(room.sid).participants.create(from_=WARD, to=DESK, coaching=True)
    assert no_coached.value.status == 400
    with pytest.raises(TwilioRestException) as nobody:
        client.conferences(room.sid).participants("CA" + "9" * 32).update(muted=True)
    assert (nobody.value.status, nobody.value.code) == (404, 20404)
    with pytest.raises(TwilioRestException) as no_to:
        client.conferences(room.sid).participants.create(from_=WARD, to="")
    assert no_to.value.status == 400
    ended = client.conferences(room.sid).update(status="completed")
    assert ended.status == "completed"
    assert fake.conference(ROOM) is room and room.participants == {}
    with pytest.raises(TwilioRestException) as over:
        client.conferences(room.sid).participants.create(from_=WARD, to=DESK)
    assert (over.value.status, over.value.code) == (404, 20404)
    with pytest.raises(TwilioRestException) as gone:
        client.conferences(room.sid).participants(CALLER).update(hold=True)
    assert gone.value.status == 404


def test_removing_a_participant_and_an_end_on_exit_leaving(
    fake: FakeTwilio, client: Client
) -> None:
    room = fake.join(CALLER, TWIML)
    agent = client.conferences(ROOM).participants.create(
        from_=WARD, to=DESK, label="agent", end_conference_on_exit=True
    )
    fake.answer(agent.call_sid)
    listener = client.conferences(room.sid).participants.create(
        from_=WARD, to=SUPERVISOR, label="supervisor-7", muted=True
    )
    fake.answer(listener.call_sid)
    assert client.conferences(room.sid).participants("supervisor-7").delete() is True
    left = {p.call_sid for p in client.conferences(room.sid).participants.list()}
    assert left == {CALLER, agent.call_sid}
    assert client.conferences(room.sid).fetch().status == "in-progress"
    fake.hang_up(agent.call_sid)  # the agent ends it for everyone
    after = client.conferences(room.sid).fetch()
    assert after.status == "completed" and after.call_sid_ending_conference == agent.call_sid
    assert client.conferences(room.sid).participants.list() == []


def test_conferences_are_listed_by_name_and_status_page_by_page(
    fake: FakeTwilio, client: Client
) -> None:
    for n in range(3):
        fake.join(f"CA{n:032d}", TWIML.replace(ROOM, f"room-{n}"))
    client.conferences(fake.conference("room-1").sid).update(status="completed")  # type: ignore[union-attr]
    assert [c.friendly_name for c in client.conferences.list(page_size=1)] == [
        "room-2",
        "room-1",
        "room-0",
    ]
    live = client.conferences.list(status="init")
    assert {c.friendly_name for c in live} == {"room-0", "room-2"}
    [one] = client.conferences.list(friendly_name="room-1")
    assert one.status == "completed"


def test_an_unanswered_participant_never_joins(fake: FakeTwilio, client: Client) -> None:
    room = fake.join(CALLER, TWIML)
    agent = client.conferences(ROOM).participants.create(from_=WARD, to=DESK, label="agent")
    fake.no_answer(agent.call_sid)
    assert [p.call_sid for p in client.conferences(room.sid).participants.list()] == [CALLER]
    assert room.status == "init"


def test_fail_next_answers_conference_requests_with_the_error(
    fake: FakeTwilio, client: Client
) -> None:
    room = fake.join(CALLER, TWIML)
    fake.fail_next(1, status=503, code=20503, message="Service unavailable")
    with pytest.raises(TwilioRestException) as down:
        client.conferences(room.sid).participants.create(from_=WARD, to=DESK)
    assert (down.value.status, down.value.code) == (503, 20503)
    assert list(room.participants) == [CALLER]  # nothing changed
    fake.fail_next(1)
    with pytest.raises(TwilioRestException):
        client.conferences(room.sid).participants(CALLER).delete()
    assert list(room.participants) == [CALLER]


def test_a_call_given_new_twiml_leaves_its_conference(fake: FakeTwilio, client: Client) -> None:
    fake.inbound(CALLER, "+819011112222", WARD)
    room = fake.join(CALLER, TWIML)
    agent = client.conferences(ROOM).participants.create(from_=WARD, to=DESK, label="agent")
    client.calls(CALLER).update(url="https://x/ivr/connect/done?missed=1", method="POST")
    assert CALLER not in room.participants
    assert room.status == "completed"  # the caller ended it on leaving (endConferenceOnExit)
    assert client.calls(CALLER).fetch().status != "completed"  # the call itself goes on
    assert [p.status for p in room.everyone if p.call_sid == agent.call_sid] == ["complete"]
    again = fake.join(CALLER, TWIML)  # back later: a new conference of the same name
    assert again.sid != room.sid and fake.conference(ROOM) is again
