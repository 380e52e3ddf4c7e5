"""The short survey by keys, after an agent's call and after a booking the line made by
itself: satisfaction 1-5, then "was your matter settled", thanks and goodbye. Optional: silence
or any other key ends it politely, with no miss loop; a caller who hangs up midway keeps what
they answered. Only the answers are kept: no number. Through the webhooks, on SQLite and
PostgreSQL."""

from __future__ import annotations

import itertools

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ivr import service as calls
from ivr.caller import PhoneCall
from ivr.flow import prompt
from ivr.models import Call, CallSurvey
from tests.conftest import FakeClock
from tests.ivr.conftest import PUBLIC, Line
from tests.ivr.test_line import book_pickup_for_two, heard

_staff = itertools.count(880_001)


def survey_of(line: Line, call: PhoneCall) -> CallSurvey | None:
    record = line.record(call)
    with line.sessions() as db:
        return db.execute(
            select(CallSurvey).where(CallSurvey.call_id == record.id)
        ).scalar_one_or_none()


def talk_with_an_agent(
    sessions: sessionmaker[Session], clock: FakeClock, call: PhoneCall, lang: str = "ja"
) -> list[str]:
    """The caller waits in the queue, an agent answers and, after the talk, hangs up: the
    agent's press of answer claims the call (as the console does), Twilio takes the caller out
    of the queue to /ivr/connect's <Dial>, and when the agent hangs up asks the dial's action
    (/ivr/connect/done, DialCallStatus=completed) what the caller's leg does next. The test
    caller does not simulate <Dial>: the talk is skipped, the action is posted as Twilio does."""
    call.dial()
    if lang == "en":
        call.press("9")
    call.press("0")
    assert call.queue == f"madoguchi-{lang}"
    with sessions() as db:
        assert calls.claim_call(db, call_sid=call.call_sid, staff_id=next(_staff))
        db.commit()
    clock.advance(minutes=3)
    call._queueing = None  # the REST redirect took the caller out of the queue
    done = f"{PUBLIC}/ivr/connect/done?lang={lang}"
    talk = {"DialCallStatus": "completed", "DialCallDuration": "180"}
    return call._act(lambda: call._follow(done, call._params() | talk))


def test_after_an_agents_call_the_caller_answers_the_survey(line: Line) -> None:
    call = line.call()
    talk_with_an_agent(line.sessions, line.clock, call)
    assert heard(call, prompt("ja", "survey_intro"))
    assert call.prompt is not None  # a question waits for keys
    call.press("4")
    assert heard(call, prompt("ja", "survey_settled"))
    call.press("1")
    assert heard(call, prompt("ja", "survey_thanks"))
    assert call.state == "ended"
    survey = survey_of(line, call)
    assert survey is not None
    assert (survey.kind, survey.language, survey.score, survey.settled) == ("agent", "ja", 4, True)
    assert line.record(call).outcome == "handed_to_agent"
    with line.sessions() as db:  # the agent's wrap-up still starts when the talk ended
        ended = db.execute(select(Call.talk_ended_at).where(Call.call_sid == call.call_sid))
        assert ended.scalar_one() is not None
    # Nothing of the caller on the survey: its columns are the answers, the call and the time.
    assert {c.name for c in CallSurvey.__table__.columns} == {
        "id",
        "call_id",
        "kind",
        "language",
        "score",
        "settled",
        "answered_at",
    }


def test_a_caller_who_says_the_matter_is_not_settled_in_english(line: Line) -> None:
    call = line.call()
    talk_with_an_agent(line.sessions, line.clock, call, "en")
    assert heard(call, prompt("en", "survey_intro"))
    call.press("2")
    call.press("2")
    assert heard(call, prompt("en", "survey_thanks"))
    survey = survey_of(line, call)
    assert survey is not None
    assert (survey.language, survey.score, survey.settled) == ("en", 2, False)


def test_a_caller_who_hangs_up_midway_keeps_the_score(line: Line) -> None:
    call = line.call()
    talk_with_an_agent(line.sessions, line.clock, call)
    call.press("5")
    assert heard(call, prompt("ja", "survey_settled"))
    call.hang_up()
    survey = survey_of(line, call)
    assert survey is not None
    assert (survey.score, survey.settled) == (5, None)
    assert line.record(call).outcome == "handed_to_agent"  # the survey changes no outcome


def test_a_silent_caller_hears_goodbye_and_nothing_is_kept(line: Line) -> None:
    call = line.call()
    talk_with_an_agent(line.sessions, line.clock, call)
    call.silence()
    assert heard(call, prompt("ja", "goodbye"))
    assert call.state == "ended"  # no "we did not hear a key", no second asking
    assert not heard(call, prompt("ja", "no_input"))
    assert survey_of(line, call) is None
    assert "survey_score!" not in line.record(call).path


def test_any_other_key_ends_the_survey_politely(line: Line) -> None:
    call = line.call()
    talk_with_an_agent(line.sessions, line.clock, call)
    call.press("0")  # not a person here: the survey is over
    assert heard(call, prompt("ja", "goodbye"))
    assert call.state == "ended"
    assert survey_of(line, call) is None
    assert line.record(call).queue_result is None  # not put in the queue again


def test_after_a_booking_by_itself_the_survey_is_of_self_service(line: Line) -> None:
    call = line.call()
    book_pickup_for_two(line, call)
    assert heard(call, prompt("ja", "after_booking"))
    call.press("9")  # end the call
    assert heard(call, prompt("ja", "survey_intro"))
    call.press("5")
    call.press("1")
    assert heard(call, prompt("ja", "survey_thanks"))
    survey = survey_of(line, call)
    assert survey is not None
    assert (survey.kind, survey.score, survey.settled) == ("self_service", 5, True)
    assert line.record(call).outcome == "booked"


def test_the_menus_without_a_booking_end_without_a_survey(line: Line) -> None:
    call = line.call()
    call.dial()
    call.press("2")  # check a booking
    call.press("99999999")  # no such code (its check digit fails)
    call.hang_up()
    assert survey_of(line, call) is None


def test_no_survey_when_it_was_the_caller_who_hung_up(line: Line) -> None:
    """Twilio told the call's end first (the caller hung up on the agent), then asks the dial's
    action: nobody is there to answer a survey, and the call's working state stays erased."""
    call = line.call()
    call.dial()
    call.press("0")
    with line.sessions() as db:
        assert calls.claim_call(db, call_sid=call.call_sid, staff_id=next(_staff))
        db.commit()
    call._queueing = None  # put through to the agent (the REST redirect)
    call.hang_up()
    talk = {"DialCallStatus": "completed", "DialCallDuration": "60"}
    answer = call._post(f"{PUBLIC}/ivr/connect/done?lang=ja", call._params() | talk)
    assert "<Hangup" in answer.text and "Gather" not in answer.text
    assert survey_of(line, call) is None
    with line.sessions() as db:
        row = db.execute(select(Call).where(Call.call_sid == call.call_sid)).scalar_one()
        assert (row.state_enc, row.talk_ended_at is not None) == (None, True)
