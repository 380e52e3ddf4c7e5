"""Callers put through to agents by a Twilio conference, against the fake Twilio: the caller's
TwiML joins the call's conference, the agent's desk phone is called into it with the fields
Twilio expects, an agent's phone that does not answer puts the caller back in the queue; the
supervisors' listen / whisper / join / leave, the agent's hold and raised hand, each audited,
and Twilio failing shown as a clear message with nothing recorded."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from agent_console import service as staff
from ivr import service as calls
from ivr.caller import PhoneCall
from ivr.fake_conferences import Conference, Participant
from ivr.fake_twilio import FakeTwilio
from ivr.models import Call
from tests.agent_console.test_console import Console, csrf_of
from tests.agent_console.test_phones import (
    DESK,
    a_caller_waiting,
    agent_with_desk_phone,
    answer,
    twilio,
    twilio_fetches,
)
from tests.ivr.conftest import PUBLIC, TOKEN

__all__ = ["twilio"]  # the fake Twilio fixture, shared with test_phones
SUPERVISOR_DESK = "+81352734888"
WARD = "+81353334111"


@dataclass
class Talk:
    """A caller talking with an agent through the call's conference."""

    http: TestClient
    call: PhoneCall
    agent: TestClient
    room: Conference
    agent_leg: Participant


def put_through(console: Console, http: TestClient, twilio: FakeTwilio) -> Talk:
    talk = ringing(console, http, twilio)
    twilio.answer(talk.agent_leg.call_sid)
    return talk


def enqueued_at(console: Console, call_sid: str) -> datetime | None:
    with console.app_sessions() as db:
        at: datetime | None = db.execute(
            select(Call.enqueued_at).where(Call.call_sid == call_sid)
        ).scalar_one()
        return at


def ringing(console: Console, http: TestClient, twilio: FakeTwilio) -> Talk:
    """An agent answers a waiting caller: the caller is in the conference, the agent's phone
    rings."""
    agent, _ = agent_with_desk_phone(console)
    call = a_caller_waiting(console, http, twilio)
    assert answer(agent, call).headers["location"].endswith("?audio=connected")
    [(sid, url)] = [(s, u) for s, u in twilio.redirects if s == call.call_sid]
    twiml = twilio_fetches(http, url, {"CallSid": call.call_sid})
    room = twilio.join(sid, ET.tostring(twiml, encoding="unicode"))
    [leg] = [p for p in room.participants.values() if p.label == "agent"]
    return Talk(http, call, agent, room, leg)


def supervisor_with_desk_phone(console: Console) -> tuple[TestClient, str]:
    supervisor, login = console.signed_in("supervisor")
    home = supervisor.get("/console/")
    supervisor.post("/console/me/phone", data={"csrf": csrf_of(home.text), "phone": "03-5273-4888"})
    return supervisor, login


def press(client: TestClient, page: str, action: str, **fields: str) -> str:
    """Send a form of the page (with its CSRF token); the page it ends on."""
    csrf = csrf_of(client.get(page).text)
    done = client.post(action, data={"csrf": csrf, **fields})
    assert done.status_code == 200, done.text
    return str(done.text)


def hands(supervisor: TestClient) -> int:
    """The raised hands the queue page shows a supervisor."""
    found = re.search(r"手を挙げているオペレーター：(\d+)人", supervisor.get("/console/").text)
    return int(found[1]) if found else 0


def audited(console: Console, call_sid: str) -> list[tuple[str, str]]:
    with console.app_sessions() as db:
        entries = staff.search_audit(db, subject_kind="call", subject_id=call_sid)
    return [(e.login_id, e.action) for e in reversed(entries)]


def test_answering_joins_the_caller_to_a_conference_the_agent_is_called_into(
    console: Console, twilio: FakeTwilio
) -> None:
    agent, _ = agent_with_desk_phone(console)
    with TestClient(console.app) as http:
        call = a_caller_waiting(console, http, twilio)
        answer(agent, call)
        [(sid, url)] = twilio.redirects
        assert sid == call.call_sid
        assert parse_qs(urlsplit(url).query) == {"lang": ["ja"]}  # no number in the URL
        twiml = twilio_fetches(http, url, {"CallSid": call.call_sid})
        assert "担当者におつなぎします" in "".join(s.text or "" for s in twiml.iter("Say"))
        [dial] = twiml.iter("Dial")
        assert dial.attrib["action"] == f"{PUBLIC}/ivr/connect/done?lang=ja"
        [conference] = dial.iter("Conference")
        assert conference.text == f"madoguchi-{call.call_sid}"
        assert conference.attrib["startConferenceOnEnter"] == "false"  # music until the agent
        assert conference.attrib["endConferenceOnExit"] == "true"
        music = twilio_fetches(http, conference.attrib["waitUrl"], {"CallSid": call.call_sid})
        assert "しばらくお待ちください" in "".join(s.text or "" for s in music.iter("Say"))
        room = twilio.join(call.call_sid, ET.tostring(twiml, encoding="unicode"))
        # The agent's desk phone, called into the same conference by the REST API.
        [leg] = [p for p in room.everyone if p.call_sid != call.call_sid]
        assert (leg.to, leg.from_, leg.label) == (DESK, WARD, "agent")
        assert leg.start_conference_on_enter and leg.end_conference_on_exit
        assert leg.status_callback == (f"{PUBLIC}/ivr/connect/agent?call={call.call_sid}&lang=ja")
        assert leg.timeout == 20 and not leg.muted and not leg.coaching
        assert room.status == "init"
        twilio.answer(leg.call_sid)
        assert room.status == "in-progress"
        with console.app_sessions() as db:
            [live] = [c for c in calls.live_calls(db) if c.call_sid == call.call_sid]
        assert (live.call_sid, live.agent_leg_sid) == (call.call_sid, leg.call_sid)
        # The agent hangs up: the conference ends, the caller's Dial action ends the talk.
        twilio.hang_up(leg.call_sid)
        assert room.status == "completed" and room.participants == {}
        over = twilio_fetches(
            http, dial.attrib["action"], {"CallSid": call.call_sid, "DialCallStatus": "completed"}
        )
        # The caller's leg goes on: the optional survey asks for a score (1-5).
        [survey] = [e for e in over if e.tag == "Gather"]
        assert survey.attrib["action"].startswith(f"{PUBLIC}/ivr/step/survey_score")
        with console.app_sessions() as db:
            assert call.call_sid not in [c.call_sid for c in calls.live_calls(db)]
            row = calls.lock_call(db, call.call_sid)
            assert row is not None and row.talk_ended_at is not None


def test_an_agent_phone_that_does_not_answer_puts_the_caller_back_in_the_queue(
    console: Console, twilio: FakeTwilio
) -> None:
    with TestClient(console.app) as http:
        talk = ringing(console, http, twilio)
        agent, call, room, leg = talk.agent, talk.call, talk.room, talk.agent_leg
        entered = enqueued_at(console, call.call_sid)
        screen = f"/console/calls/{call.call_sid}"
        press(agent, screen, f"{screen}/hand", **{"raise": "1"})  # while it rings
        twilio.no_answer(leg.call_sid)
        callback = str(leg.status_callback)
        still_ringing = {"CallSid": leg.call_sid, "CallStatus": "ringing"}
        path = callback.removeprefix(PUBLIC)

        def post(form: dict[str, str]) -> int:
            signature = RequestValidator(TOKEN).compute_signature(callback, form)
            sent = http.post(path, data=form, headers={"X-Twilio-Signature": signature})
            return int(sent.status_code)

        assert post(still_ringing) == 204
        assert len(twilio.redirects) == 1  # ringing changes nothing
        assert post({"CallSid": leg.call_sid, "CallStatus": "no-answer"}) == 204
        (sid, back) = twilio.redirects[-1]
        assert sid == call.call_sid and back.endswith("/ivr/connect/done?lang=ja&missed=1")
        again = twilio_fetches(http, back, {"CallSid": call.call_sid})
        assert next(again.iter("Enqueue")).text == "madoguchi-ja"
        with console.app_sessions() as db:
            [waiting] = [c for c in calls.waiting_calls(db) if c.call_sid == call.call_sid]
        # The caller keeps their place: the time they first entered the queue.
        assert waiting.enqueued_at == enqueued_at(console, call.call_sid) == entered
        assert agent.get(f"/console/calls/{call.call_sid}").status_code == 403
        # The next agent answers afresh: their own leg, no hand raised from before.
        other, _ = agent_with_desk_phone(console)
        assert answer(other, call).headers["location"].endswith("?audio=connected")
        with console.app_sessions() as db:
            [live] = [c for c in calls.live_calls(db) if c.call_sid == call.call_sid]
        assert live.hand_raised_at is None and live.agent_leg_sid not in (None, leg.call_sid)
        assert room.status == "completed"  # the caller left the first conference, ending it
        fresh = twilio.conference(f"madoguchi-{call.call_sid}")
        assert fresh is not None and fresh is not room
        assert [p.call_sid for p in fresh.everyone] == [live.agent_leg_sid]


def test_twilio_refusing_to_call_the_agent_puts_the_caller_back_and_says_so(
    console: Console, twilio: FakeTwilio
) -> None:
    agent, _ = agent_with_desk_phone(console)
    twilio.reject(DESK, status=400, code=13224, message="Invalid phone number")
    with TestClient(console.app) as http:
        call = a_caller_waiting(console, http, twilio)
        answered = answer(agent, call)
        assert answered.headers["location"] == "/console/?requeued=1"
        assert (
            "お客様は順番を保ったまま、キューに戻りました" in agent.get("/console/?requeued=1").text
        )
        into, back = twilio.redirects
        assert into[1].endswith("/ivr/connect?lang=ja")
        assert back == (call.call_sid, f"{PUBLIC}/ivr/connect/done?lang=ja&missed=1")
        with console.app_sessions() as db:  # at once: the next agent may answer
            assert call.call_sid in [c.call_sid for c in calls.waiting_calls(db)]


def test_a_supervisor_listens_whispers_joins_and_leaves_on_one_leg(
    console: Console, twilio: FakeTwilio
) -> None:
    with TestClient(console.app) as http:
        talk = put_through(console, http, twilio)
        supervisor, login = supervisor_with_desk_phone(console)
        sid = talk.call.call_sid
        page = supervisor.get("/console/live").text
        assert "通話モニター" in page and sid in page
        heard = press(supervisor, "/console/live", f"/console/live/{sid}/listen")
        assert "デスク電話で通話を聞いています" in heard
        [leg] = [p for p in talk.room.participants.values() if p.label and "supervisor" in p.label]
        assert (leg.to, leg.from_) == (SUPERVISOR_DESK, WARD)
        assert leg.muted and not leg.coaching and not leg.start_conference_on_enter
        assert not leg.end_conference_on_exit  # the supervisor leaving ends nothing
        twilio.answer(leg.call_sid)
        press(supervisor, "/console/live", f"/console/live/{sid}/whisper")
        assert (leg.muted, leg.coaching, leg.call_sid_to_coach) == (
            False,
            True,
            talk.agent_leg.call_sid,
        )
        press(supervisor, "/console/live", f"/console/live/{sid}/join")
        assert (leg.muted, leg.coaching, leg.call_sid_to_coach) == (False, False, None)
        # One phone call all along: modes changed the participant, never called again.
        assert len([p for p in talk.room.everyone if p.to == SUPERVISOR_DESK]) == 1
        with console.app_sessions() as db:
            [live] = [c for c in calls.live_calls(db) if c.call_sid == sid]
        assert set(live.monitors.values()) == {"join"}
        left = press(supervisor, "/console/live", f"/console/live/{sid}/leave")
        assert "通話から退出しました" in left
        assert leg.call_sid not in talk.room.participants and leg.status == "complete"
        assert talk.room.status == "in-progress"  # the caller and the agent talk on
        mine = [a for who, a in audited(console, sid) if who == login]
        assert mine == ["call.listen", "call.whisper", "call.join", "call.monitor_leave"]


def test_twilio_failing_a_supervisor_action_records_nothing_and_says_so(
    console: Console, twilio: FakeTwilio
) -> None:
    with TestClient(console.app) as http:
        talk = put_through(console, http, twilio)
        supervisor, login = supervisor_with_desk_phone(console)
        sid = talk.call.call_sid
        # Twilio certainly did not take it (503): tried once more at once, then given up.
        twilio.fail_next(2, status=503, code=20503, message="Service unavailable")
        failed = press(supervisor, "/console/live", f"/console/live/{sid}/listen")
        assert "操作（聞く）はできませんでした" in failed and 'role="alert"' in failed
        assert [p.label for p in talk.room.participants.values()].count("agent") == 1
        assert len(talk.room.participants) == 2  # no supervisor leg
        with console.app_sessions() as db:
            assert calls.monitor_of(db, call_sid=sid, staff_id=_id(console, login)) is None
        assert all(who != login or a == "page.refused" for who, a in audited(console, sid))


def _id(console: Console, login: str) -> int:
    with console.app_sessions() as db:
        return int(next(s.id for s in staff.list_staff(db) if s.login_id == login))


def test_only_supervisors_reach_the_live_page_and_its_controls(
    console: Console, twilio: FakeTwilio
) -> None:
    with TestClient(console.app) as http:
        talk = put_through(console, http, twilio)
        assert talk.agent.get("/console/live").status_code == 403
        csrf = csrf_of(talk.agent.get("/console/").text)
        refused = talk.agent.post(f"/console/live/{talk.call.call_sid}/listen", data={"csrf": csrf})
        assert refused.status_code == 403
        supervisor, _ = supervisor_with_desk_phone(console)
        stale = supervisor.post(f"/console/live/{talk.call.call_sid}/listen", data={"csrf": "x"})
        assert stale.status_code == 403  # CSRF
        assert len(talk.room.everyone) == 2


def test_the_agent_holds_the_caller_with_the_wards_words(
    console: Console, twilio: FakeTwilio
) -> None:
    with TestClient(console.app) as http:
        talk = put_through(console, http, twilio)
        sid = talk.call.call_sid
        screen = f"/console/calls/{sid}"
        assert ">保留</button>" in talk.agent.get(screen).text
        held = press(talk.agent, screen, f"{screen}/hold", hold="1")
        assert "お客様は保留中です" in held and "保留解除" in held
        caller = talk.room.participants[sid]
        assert caller.hold and caller.hold_url == f"{PUBLIC}/ivr/hold?lang=ja"
        music = twilio_fetches(http, str(caller.hold_url), {"CallSid": sid})
        assert "しばらくお待ちください" in "".join(s.text or "" for s in music.iter("Say"))
        twilio.fail_next(2)  # an update is safe to send twice: it was, and failed twice
        failed = press(talk.agent, screen, f"{screen}/hold", hold="0")
        assert "保留を切り替えられませんでした" in failed and caller.hold
        back = press(talk.agent, screen, f"{screen}/hold", hold="0")
        assert "お客様は保留中です" not in back and not caller.hold
        assert [a for _, a in audited(console, sid) if a.startswith("call.")].count(
            "call.hold"
        ) == 1
        assert "call.unhold" in [a for _, a in audited(console, sid)]


def test_a_raised_hand_comes_first_until_the_agent_lowers_it(
    console: Console, twilio: FakeTwilio
) -> None:
    with TestClient(console.app) as http:
        first = put_through(console, http, twilio)
        second = put_through(console, http, twilio)
        supervisor, _ = supervisor_with_desk_phone(console)
        hands_before = hands(supervisor)
        order = [first.call.call_sid, second.call.call_sid]
        page = supervisor.get("/console/live").text
        assert page.index(order[0]) < page.index(order[1])  # the longest talk first
        assert 'class="live-call hand-raised"' not in page
        screen = f"/console/calls/{order[1]}"
        raised = press(second.agent, screen, f"{screen}/hand", **{"raise": "1"})
        assert "手を挙げています" in raised and "手を下ろす" in raised
        page = supervisor.get("/console/live").text
        assert page.index(order[1]) < page.index(order[0])  # the raised hand first
        assert 'class="live-call hand-raised"' in page
        assert hands(supervisor) == hands_before + 1
        assert "手を挙げているオペレーター" not in first.agent.get("/console/").text
        # Whispering does not lower it; only the agent does.
        press(supervisor, "/console/live", f"/console/live/{order[1]}/whisper")
        assert 'class="live-call hand-raised"' in supervisor.get("/console/live").text
        csrf = csrf_of(first.agent.get("/console/").text)
        not_theirs = first.agent.post(f"{screen}/hand", data={"csrf": csrf, "raise": "0"})
        assert not_theirs.status_code == 403
        press(second.agent, screen, f"{screen}/hand", **{"raise": "0"})
        assert 'class="live-call hand-raised"' not in supervisor.get("/console/live").text
        actions = [a for _, a in audited(console, order[1])]
        assert actions.count("call.hand_raise") == 1 and actions.count("call.hand_lower") == 1


def test_the_talk_ending_lowers_the_hand(console: Console, twilio: FakeTwilio) -> None:
    with TestClient(console.app) as http:
        talk = put_through(console, http, twilio)
        screen = f"/console/calls/{talk.call.call_sid}"
        supervisor, _ = supervisor_with_desk_phone(console)
        hands_before = hands(supervisor)
        press(talk.agent, screen, f"{screen}/hand", **{"raise": "1"})
        assert hands(supervisor) == hands_before + 1
        twilio.hang_up(talk.call.call_sid)  # the caller hangs up: the conference ends
        done = f"{PUBLIC}/ivr/connect/done?lang=ja"
        twilio_fetches(http, done, {"CallSid": talk.call.call_sid, "DialCallStatus": "completed"})
        assert talk.call.call_sid not in supervisor.get("/console/live").text
        assert hands(supervisor) == hands_before


def test_a_conference_end_in_words_we_do_not_know_never_puts_a_caller_who_talked_back_in_line(
    console: Console, twilio: FakeTwilio
) -> None:
    with TestClient(console.app) as http:
        talk = put_through(console, http, twilio)
        twilio.hang_up(talk.agent_leg.call_sid)  # the agent hangs up: the conference ends
        done = f"{PUBLIC}/ivr/connect/done?lang=ja"
        # No DialCallStatus at all (or a word Twilio adds one day): the talk is over.
        over = twilio_fetches(http, done, {"CallSid": talk.call.call_sid})
        assert not list(over.iter("Enqueue"))
        assert next(g.attrib["action"] for g in over.iter("Gather")).startswith(
            f"{PUBLIC}/ivr/step/survey_score"
        )
        with console.app_sessions() as db:
            assert talk.call.call_sid not in [c.call_sid for c in calls.waiting_calls(db)]
            row = calls.lock_call(db, talk.call.call_sid)
            assert row is not None and row.talk_ended_at is not None
