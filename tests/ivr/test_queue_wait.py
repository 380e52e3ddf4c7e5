"""The agents' queue through the webhooks, with the Twilio-like caller: the place and the wait
estimate said each time the wait loop runs (from the queue's last hour of answers), the
callback offered only past the ward's threshold, and a callback that keeps the caller's place.

Each test runs on a day of its own (the fake clock), so the last hour's answers are the ones
it made, whatever other tests left in the shared database.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from booking.context import TOKYO
from ivr import service as calls
from ivr.caller import PhoneCall
from ivr.flow import prompt
from tests.ivr.conftest import PUBLIC, TOKEN, Line, new_mobile

OFFER_JA = prompt("ja", "queue_offer_callback")
AGENT = 990_001  # a staff id: the phone line does not look the agent up


def on(day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A weekday morning of February 2027, in Tokyo (no other test's calls on it)."""
    return datetime(2027, 2, day, hour, minute, tzinfo=TOKYO)


def caller(line: Line) -> PhoneCall:
    """A caller whose QueueTime runs on the test's clock."""
    return PhoneCall(
        line.http,
        public_base_url=PUBLIC,
        auth_token=TOKEN,
        from_number=new_mobile(),
        clock=lambda: line.clock().timestamp(),
    )


def queued(line: Line) -> PhoneCall:
    call = caller(line)
    call.dial()
    call.press("0")  # a person
    assert call.state == "queued"
    assert call.queue == "madoguchi-ja"
    return call


def answered(line: Line, when: datetime) -> None:
    """Another caller in the Japanese queue, taken by an agent at ``when``."""
    line.clock.set(when)
    call = queued(line)
    with line.sessions() as db:
        assert calls.claim_call(db, call_sid=call.call_sid, staff_id=AGENT)
        db.commit()


def said(call: PhoneCall) -> str:
    return call.last_said


def test_the_estimate_follows_the_place_and_the_last_hour(line: Line) -> None:
    now = on(3)
    for minutes_ago in (40, 30, 20, 10):
        answered(line, now - timedelta(minutes=minutes_ago))
    line.clock.set(now)
    call = caller(line)
    call.queue_position = 3
    call.dial()
    call.press("0")
    # 4 answers in 40 minutes: one every 800 s; the third in line waits 2,400 s (40 minutes,
    # in 5-minute steps past 15).
    assert "ただいま、3番目にお待ちいただいています。" in said(call)
    assert prompt("ja", "queue_estimate", count=40) in said(call)
    assert OFFER_JA in said(call)  # past 5 minutes
    call.queue_position = 1
    call.keep_waiting()
    assert "ただいま、1番目にお待ちいただいています。" in said(call)
    assert prompt("ja", "queue_estimate", count=14) in said(call)  # 800 s: 13.3, rounded up
    # One more answer: 5 in 45 minutes, one every 675 s; second in line: 1,350 s, 22.5 min.
    answered(line, now + timedelta(minutes=5))
    call.queue_position = 2
    call.keep_waiting()
    assert prompt("ja", "queue_estimate", count=25) in said(call)
    # Fifty minutes on, the hour holds two answers: too few to say an estimate.
    line.clock.set(now + timedelta(minutes=50))
    call.keep_waiting()
    assert "お待ちいただいています" in said(call)
    assert "見込み" not in said(call)
    assert OFFER_JA in said(call)  # no estimate, but waited past 5 minutes
    assert line.record(call).wait_seconds == 50 * 60


def test_the_callback_is_offered_only_past_the_threshold(line: Line) -> None:
    now = on(4)
    for minutes_ago in range(10, 0, -1):  # 10 answers in the last 10 minutes
        answered(line, now - timedelta(minutes=minutes_ago))
    line.clock.set(now)
    call = caller(line)
    call.dial()
    call.press("0")
    # One answer every 600/9 s: the next in line waits 67 s, said as 2 minutes: no offer.
    assert prompt("ja", "queue_estimate", count=2) in said(call)
    assert OFFER_JA not in said(call)
    call.queue_position = 5  # 333 s: past the 5 minutes
    call.keep_waiting()
    assert prompt("ja", "queue_estimate", count=6) in said(call)
    assert OFFER_JA in said(call)
    call.queue_position = 4  # 267 s: under them again
    call.keep_waiting()
    assert prompt("ja", "queue_estimate", count=5) in said(call)
    assert OFFER_JA not in said(call)
    # Key 1 works whether offered or not: the callback keeps the place.
    call.press("1")
    call.press("1")
    assert "折り返しのお電話を承りました。" in said(call)
    with line.sessions() as db:
        [mine] = [c for c in calls.open_callbacks(db) if c.phone == call.from_number]
    assert mine.place_at == now
    assert mine.kept_place


def test_key_1_after_the_offer_asks_a_callback_that_keeps_the_place(line: Line) -> None:
    entered = on(5)
    line.clock.set(entered)
    call = queued(line)
    assert "ただいま、1番目にお待ちいただいています。" in said(call)
    assert "見込み" not in said(call)  # no answers this hour: no estimate
    assert OFFER_JA not in said(call)  # and not waited 5 minutes yet
    line.clock.advance(minutes=6)
    call.keep_waiting()
    assert OFFER_JA in said(call)
    call.press("1")
    call.press("1")  # this phone's number
    assert "折り返しのお電話を承りました。" in said(call)
    assert call.state == "ended"
    with line.sessions() as db:
        [mine] = [c for c in calls.open_callbacks(db) if c.phone == call.from_number]
    assert mine.reason == "queue_wait"
    assert mine.place_at == entered
    assert mine.requested_at == entered + timedelta(minutes=6)
    record = line.record(call)
    assert (record.outcome, record.queue_result) == ("callback_requested", "leave")


def test_a_callback_not_from_the_queue_takes_its_place_when_asked(line: Line) -> None:
    asked = on(8)
    line.clock.set(asked)
    number = new_mobile()
    with line.sessions() as db:
        calls.ask_agents_to_call(db, phone=number, language="ja", reason="after_hours")
        db.commit()
        [mine] = [c for c in calls.open_callbacks(db) if c.phone == number]
    assert mine.place_at == asked
    assert not mine.kept_place


def test_the_english_queue_says_its_estimate_in_english(line: Line) -> None:
    now = on(9)
    line.clock.set(now)
    call = caller(line)
    call.dial()
    call.press("9")
    for minutes_ago in (3, 2, 1):  # another English caller each minute
        line.clock.set(now - timedelta(minutes=minutes_ago))
        other = caller(line)
        other.dial()
        other.press("9")
        other.press("0")
        with line.sessions() as db:
            assert calls.claim_call(db, call_sid=other.call_sid, staff_id=AGENT)
            db.commit()
    line.clock.set(now)
    call.press("0")
    assert call.queue == "madoguchi-en"
    # 3 answers in 3 minutes: one every 90 s.
    assert "We expect to answer in about 2 minutes." in said(call)
    assert prompt("en", "queue_offer_callback") not in said(call)


def test_callbacks_that_kept_a_place_ahead_count_in_the_place_said(line: Line) -> None:
    first = on(10)
    line.clock.set(first)
    ahead = queued(line)
    line.clock.advance(minutes=1)
    behind = queued(line)
    behind.queue_position = 2  # Twilio's place for them: second in its queue
    behind.keep_waiting()
    assert "ただいま、2番目にお待ちいただいています。" in said(behind)
    # The caller ahead leaves the line for a callback that keeps their place: the agents serve
    # it before the caller behind, so the caller behind still hears 2nd (Twilio now says 1st).
    line.clock.advance(minutes=5)
    ahead.keep_waiting()
    ahead.press("1")
    ahead.press("1")
    assert ahead.state == "ended"
    behind.queue_position = 1
    behind.keep_waiting()
    assert "ただいま、2番目にお待ちいただいています。" in said(behind)
    # Once an agent takes the callback on, it is no longer ahead.
    with line.sessions() as db:
        [kept] = [c for c in calls.open_callbacks(db) if c.phone == ahead.from_number]
        assert calls.claim_callback(db, callback_id=kept.id, staff_id=AGENT) is not None
        db.commit()
    behind.keep_waiting()
    assert "ただいま、1番目にお待ちいただいています。" in said(behind)
