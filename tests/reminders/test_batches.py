"""Messages due together, sent as a batch: claimed in one commit before Twilio is called for any,
sent at once, each answer recorded (sent, retried, left for reconciliation, failed); a batch cut
short is settled by asking Twilio, never resent; the sending number's cap is kept; racing
workers send each message once. Against the local fake of Twilio's REST API."""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from redis import Redis

from reminders import jobs
from reminders import service as reminders
from reminders.models import Message
from reminders.pacing import Pace, SharedPace
from tests.reminders.conftest import Desk, new_mobile

CI_REDIS = os.environ.get("MADOGUCHI_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def confirmations(desk: Desk, count: int) -> tuple[list[str], list[int]]:
    """``count`` residents booked by mobile, their confirmations planned and due now."""
    phones = [new_mobile() for _ in range(count)]
    made = [desk.book(phone) for phone in phones]
    desk.plan()
    return phones, [desk.message(b.id, "confirmation").id for b in made]


def status_of(desk: Desk, message_id: int) -> reminders.MessageView:
    with desk.sessions() as db:
        message = db.get(Message, message_id)
        assert message is not None and message.booking_id is not None
        [found] = [
            m
            for m in reminders.messages_for(db, booking_id=message.booking_id)
            if m.id == message_id
        ]
        return found


def test_a_batch_sorts_each_answer_and_sends_nothing_twice(desk: Desk) -> None:
    phones, ids = confirmations(desk, 6)
    ok_1, ok_2, ok_3, busy, broken, invalid = phones
    desk.twilio.reject(busy, status=503, code=20503, message="Service unavailable")  # retry
    desk.twilio.reject(broken, status=500, code=20500, message="Internal error")  # uncertain
    desk.twilio.reject(invalid)  # 21211: rejected

    summary = jobs.send_batch(*ids)
    assert summary == "1 rejected, 1 retry, 3 sent, 1 uncertain"
    by_phone = dict(zip(phones, ids, strict=True))
    for phone in (ok_1, ok_2, ok_3):
        sent = status_of(desk, by_phone[phone])
        assert (sent.status, sent.attempts) == ("sent", 1)
        assert sent.provider_sid in {m.sid for m in desk.twilio.messages() if m.to == phone}
    waiting = status_of(desk, by_phone[busy])
    assert waiting.status == "scheduled"
    assert waiting.send_after > desk.clock()
    assert desk.armed.sends(waiting.id) == [waiting.send_after]  # tried again later
    unsure = status_of(desk, by_phone[broken])
    assert unsure.status == "claimed"  # never resent blindly: asked about first
    assert unsure.last_error is not None and "500" in unsure.last_error
    assert status_of(desk, by_phone[invalid]).status == "failed"

    assert jobs.send_batch(*ids) == "1 later, at " + waiting.send_after.isoformat()
    assert [desk.sms_to(p) != [] for p in phones] == [True, True, True, False, False, False]
    assert all(len(desk.sms_to(p)) == 1 for p in (ok_1, ok_2, ok_3))


def test_a_batch_cut_short_is_settled_with_twilio_not_resent(desk: Desk) -> None:
    phones, ids = confirmations(desk, 4)
    with desk.sessions() as db:  # the batch's claim, committed before any send
        claimed = reminders.claim_batch(db, message_ids=ids, rules=desk.runtime.rules)
        db.commit()
    assert sorted(o.id for o in claimed if isinstance(o, reminders.Outgoing)) == sorted(ids)
    # Two went out; then the worker was killed, their answers never recorded.
    for out in claimed[:2]:
        assert isinstance(out, reminders.Outgoing)
        jobs._deliver(desk.runtime, out)
    assert jobs.send_batch(*ids) == "nothing to send"  # claimed: never sent blindly again
    assert jobs.reconcile(desk.runtime) >= 4  # (and any other test's claims left behind)
    went = {o.id for o in claimed[:2]}
    for message_id in ids:
        settled = status_of(desk, message_id)
        assert settled.status == ("sent" if message_id in went else "scheduled")
    assert jobs.send_batch(*ids) == "2 sent"  # only the two Twilio never had
    assert [len(desk.sms_to(p)) for p in phones] == [1, 1, 1, 1]


def test_racing_workers_send_each_message_of_a_batch_once(desk: Desk) -> None:
    if desk.runtime.sessions.kw["bind"].dialect.name == "sqlite":
        pytest.skip("racing writers: PostgreSQL (SQLite takes one writer at a time)")
    phones, ids = confirmations(desk, 24)
    desk.twilio.delay = 0.05  # the racers' sends overlap
    start = threading.Barrier(4)

    def worker() -> None:
        start.wait()
        jobs.send_batch(*ids)

    racers = [threading.Thread(target=worker) for _ in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert [len(desk.sms_to(p)) for p in phones] == [1] * 24
    assert {status_of(desk, i).status for i in ids} == {"sent"}


def test_the_pace_reserves_one_moment_per_send_and_never_waits_too_long() -> None:
    now = [100.0]
    pace = Pace(2, clock=lambda: now[0])  # one send every half second
    assert [pace.reserve(1.0) for _ in range(3)] == [0.0, 0.5, 1.0]
    assert pace.reserve(1.0) is None  # 1.5 s away: not now, and nothing reserved
    now[0] += 1.0
    assert pace.reserve(1.0) == 0.5  # the moment after the last reserved (101.5)
    now[0] += 10
    assert pace.reserve(0) == 0.0


def test_the_workers_share_the_numbers_pace_through_redis() -> None:
    number = f"+8150{uuid.uuid4().int % 10**8:08d}"  # a key of this test's own
    redis = Redis.from_url(f"{CI_REDIS}/13")
    first, second = SharedPace(redis, number, 4), SharedPace(redis, number, 4)
    waits = [pace.reserve(5.0) for pace in (first, second, first, second, first)]
    assert waits[0] is not None and waits[0] <= 0.01
    for earlier, later in itertools.pairwise(waits):
        assert earlier is not None and later is not None
        assert 0.2 <= later - earlier <= 0.3  # a quarter second apart, whichever worker asks
    assert first.reserve(0.5) is None  # over a second away now
    redis.delete(first.key)


def test_a_batch_keeps_the_sending_numbers_cap(desk: Desk) -> None:
    phones, ids = confirmations(desk, 10)
    rate = 5.0
    jobs.use(replace(desk.runtime, pace=Pace(rate), claim_timeout=timedelta(minutes=2)))
    started = time.monotonic()
    assert jobs.send_batch(*ids) == "10 sent"
    assert time.monotonic() - started >= (10 - 1) / rate - 0.05
    times = sorted(m.created_at.timestamp() for m in desk.twilio.messages() if m.to in phones)
    # Counted in every one-second window (a send may start a little after its moment, never
    # before: at most one more than the cap in a window).
    assert max(sum(1 for t in times if s <= t < s + 1) for s in times) <= rate + 1
    assert times[-1] - times[0] >= (10 - 1) / rate - 0.1


def test_sends_beyond_the_caps_window_go_back_uncounted(desk: Desk) -> None:
    phones, ids = confirmations(desk, 5)
    # 2 a second, a claim waits at most half a second for its moment: two go now.
    jobs.use(replace(desk.runtime, pace=Pace(2), claim_timeout=timedelta(seconds=2)))
    assert jobs.send_batch(*ids) == "3 held back by the sending cap, 2 sent"
    back = [status_of(desk, i) for i in ids if status_of(desk, i).status == "scheduled"]
    assert len(back) == 3
    assert all(m.attempts == 0 and m.send_after > desk.clock() for m in back)
    assert all(desk.armed.sends(m.id) for m in back)  # armed for when the cap allows
    assert sum(len(desk.sms_to(p)) for p in phones) == 2
