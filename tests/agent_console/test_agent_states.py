"""Agents' states, the rules: ready / not ready chosen, on a call and wrap-up from the calls,
the wrap-up's limit, calls refused to an agent who is not ready (and to a second tab of one
agent, on PostgreSQL), time per state and occupancy. On SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from agent_console import agent_states
from agent_console import service as staff
from agent_console.models import AgentState, AgentStateSpan, StaffSession
from booking.context import TOKYO
from ivr import service as calls
from ivr.models import Call
from tests.conftest import FakeClock

PASSWORD = "agent states password"  # noqa: S105 (a test password)
LIMIT = timedelta(seconds=120)
_ids = itertools.count(1)


def agent(db: Session) -> tuple[int, int]:
    """A new agent, signed in: their staff id and session id."""
    login = f"states{next(_ids)}-{id(db)}"
    made = staff.create_staff(
        db, login_id=login, display_name=f"状態 {login}", role="agent", password=PASSWORD
    )
    signed = staff.sign_in(db, login_id=login, password=PASSWORD)
    seat = staff.session_for(db, signed.token)
    assert seat is not None
    return made.id, seat.session_id


def waiting_call(db: Session) -> str:
    """A caller in the agents' queue now: its CallSid."""
    now = db.info["booking"].now()
    sid = f"CAstates{next(_ids):06d}{id(db) % 100000:05d}"
    db.add(
        Call(
            call_sid=sid,
            caller_kind="withheld",
            language="ja",
            outcome="in_progress",
            path="menu",
            expect="queue",
            seq=1,
            last_reply="",
            queue="madoguchi-ja",
            started_at=now,
            enqueued_at=now,
            updated_at=now,
        )
    )
    db.flush()
    return sid


def end_talk(db: Session, sid: str) -> None:
    call = calls.lock_call(db, sid)
    assert call is not None
    calls.end_talk(db, call=call)
    db.flush()


def now_of(db: Session, staff_id: int) -> staff.AgentNow:
    found = staff.state_now(db, staff_id=staff_id, limit=LIMIT)
    assert found is not None
    return found


def at(clock: FakeClock, hour: int, minute: int, second: int = 0) -> None:
    clock.set(datetime(2026, 12, 16, hour, minute, second, tzinfo=TOKYO))


def test_signing_in_makes_an_agent_ready_and_signing_out_offline(
    db: Session, clock: FakeClock
) -> None:
    at(clock, 9, 0)
    staff_id, session_id = agent(db)
    assert now_of(db, staff_id).state == "ready"
    at(clock, 9, 30)
    staff.sign_out(db, session_id=session_id)
    assert now_of(db, staff_id).state == "offline"
    spans = db.execute(select(AgentStateSpan).where(AgentStateSpan.staff_id == staff_id)).scalars()
    assert [(s.state, s.ended_at) for s in spans] == [
        ("ready", datetime(2026, 12, 16, 9, 30, tzinfo=TOKYO))
    ]


def test_a_call_puts_the_agent_on_a_call_then_in_wrap_up_then_back_to_their_choice(
    db: Session, clock: FakeClock
) -> None:
    at(clock, 10, 0)
    staff_id, _ = agent(db)
    sid = waiting_call(db)
    at(clock, 10, 1)
    assert calls.claim_call(db, call_sid=sid, staff_id=staff_id)
    on_call = now_of(db, staff_id)
    assert (on_call.state, on_call.call_sid, on_call.label) == ("on_call", sid, "通話中")
    assert on_call.since == datetime(2026, 12, 16, 10, 1, tzinfo=TOKYO)
    # Not ready chosen during the call: it is where the agent goes after the wrap-up.
    staff.choose_state(db, staff_id=staff_id, state="not_ready", reason="break")
    at(clock, 10, 5)
    end_talk(db, sid)
    wrap = now_of(db, staff_id)
    assert (wrap.state, wrap.chosen) == ("wrap_up", "not_ready")
    assert wrap.wrap_deadline == datetime(2026, 12, 16, 10, 7, tzinfo=TOKYO)
    at(clock, 10, 6)
    assert calls.wrap_up(db, call_sid=sid, staff_id=staff_id, disposition="resolved")
    after = now_of(db, staff_id)
    assert (after.state, after.reason, after.label) == ("not_ready", "break", "離席（休憩）")
    assert after.since == datetime(2026, 12, 16, 10, 6, tzinfo=TOKYO)  # since the wrap-up
    at(clock, 10, 20)
    staff.choose_state(db, staff_id=staff_id, state="ready")
    assert now_of(db, staff_id).state == "ready"
    with pytest.raises(staff.StaffError):
        staff.choose_state(db, staff_id=staff_id, state="not_ready", reason="nap")
    with pytest.raises(staff.StaffError):
        staff.choose_state(db, staff_id=staff_id, state="on_call")


def test_the_wrap_up_limit_passing_wraps_up_for_the_agent(db: Session, clock: FakeClock) -> None:
    at(clock, 11, 0)
    staff_id, _ = agent(db)
    sid = waiting_call(db)
    assert calls.claim_call(db, call_sid=sid, staff_id=staff_id)
    at(clock, 11, 3)
    end_talk(db, sid)
    at(clock, 11, 4, 59)
    assert now_of(db, staff_id).state == "wrap_up"
    assert calls.close_lapsed_wrap_ups(db, limit=LIMIT, staff_id=staff_id) == []
    at(clock, 11, 5, 30)
    # Ready again at the limit, before anything has closed the call...
    back = now_of(db, staff_id)
    assert (back.state, back.since) == ("ready", datetime(2026, 12, 16, 11, 5, tzinfo=TOKYO))
    # ...and the call is wrapped up for them, at the limit, marked as timed out.
    assert calls.close_lapsed_wrap_ups(db, limit=LIMIT, staff_id=staff_id) == [sid]
    record = calls.agent_call(db, call_sid=sid)
    assert record is not None
    assert record.wrapped_at == datetime(2026, 12, 16, 11, 5, tzinfo=TOKYO)
    assert record.disposition == calls.TIMED_OUT
    assert calls.my_open_call(db, staff_id=staff_id) is None
    # The agent's own wrap-up now changes nothing.
    assert not calls.wrap_up(db, call_sid=sid, staff_id=staff_id, disposition="resolved")


def test_an_agent_who_is_not_ready_cannot_take_a_call(db: Session, clock: FakeClock) -> None:
    at(clock, 12, 0)
    staff_id, session_id = agent(db)
    staff.make_sure_ready(db, staff_id=staff_id, limit=LIMIT)  # ready: no refusal
    staff.choose_state(db, staff_id=staff_id, state="not_ready", reason="meeting")
    with pytest.raises(staff.NotReady, match="離席（会議）"):
        staff.make_sure_ready(db, staff_id=staff_id, limit=LIMIT)
    staff.choose_state(db, staff_id=staff_id, state="ready")
    sid = waiting_call(db)
    assert calls.claim_call(db, call_sid=sid, staff_id=staff_id)
    with pytest.raises(staff.NotReady, match="通話中"):
        staff.make_sure_ready(db, staff_id=staff_id, limit=LIMIT)
    end_talk(db, sid)
    with pytest.raises(staff.NotReady, match="後処理中"):
        staff.make_sure_ready(db, staff_id=staff_id, limit=LIMIT)
    at(clock, 12, 2, 1)  # the limit passed: the call is closed and the agent may take the next
    staff.make_sure_ready(db, staff_id=staff_id, limit=LIMIT)
    staff.sign_out(db, session_id=session_id)
    with pytest.raises(staff.NotReady):
        staff.make_sure_ready(db, staff_id=staff_id, limit=LIMIT)


def test_a_lapsed_session_makes_the_agent_offline_from_when_last_seen(
    db: Session, clock: FakeClock
) -> None:
    at(clock, 13, 0)
    staff_id, _ = agent(db)
    at(clock, 13, 40)  # the console closed at 13:00 without signing out: idle 40 minutes
    assert now_of(db, staff_id).state == "offline"
    assert staff.settle_lapsed(db) >= 1
    span = db.execute(
        select(AgentStateSpan).where(AgentStateSpan.staff_id == staff_id)
    ).scalar_one()
    assert span.ended_at == datetime(2026, 12, 16, 13, 0, tzinfo=TOKYO)
    times = [
        t
        for t in staff.time_in_states(
            db,
            start=datetime(2026, 12, 16, 13, 0, tzinfo=TOKYO),
            end=datetime(2026, 12, 16, 14, 0, tzinfo=TOKYO),
            limit=LIMIT,
        )
        if t.staff_id == staff_id
    ]
    assert times == []  # nothing counted while nobody was there


def test_time_per_state_sums_and_occupancy(db: Session, clock: FakeClock) -> None:
    at(clock, 14, 0)
    staff_id, _ = agent(db)  # ready from 14:00
    first = waiting_call(db)
    at(clock, 14, 10)
    assert calls.claim_call(db, call_sid=first, staff_id=staff_id)
    at(clock, 14, 15)
    end_talk(db, first)  # 5 minutes on the call
    at(clock, 14, 16)
    assert calls.wrap_up(db, call_sid=first, staff_id=staff_id, disposition="resolved")
    at(clock, 14, 30)
    staff.choose_state(db, staff_id=staff_id, state="not_ready", reason="break")
    at(clock, 14, 45)
    staff.choose_state(db, staff_id=staff_id, state="ready")
    second = waiting_call(db)
    at(clock, 14, 50)
    assert calls.claim_call(db, call_sid=second, staff_id=staff_id)
    at(clock, 14, 52)
    end_talk(db, second)
    at(clock, 15, 10)  # the second wrap-up ran out at 14:54 (the limit: 2 minutes)
    [mine] = [
        t
        for t in staff.time_in_states(
            db,
            start=datetime(2026, 12, 16, 14, 0, tzinfo=TOKYO),
            end=datetime(2026, 12, 16, 15, 0, tzinfo=TOKYO),
            limit=LIMIT,
        )
        if t.staff_id == staff_id
    ]
    minutes = 60.0
    assert mine.on_call == 7 * minutes  # 5 + 2
    assert mine.wrap_up == 3 * minutes  # 1 + 2 (the limit)
    assert mine.not_ready == {"break": 15 * minutes}
    # Ready 14:00-14:30 and 14:45-15:00 less the calls' 10 minutes.
    assert mine.ready == 35 * minutes
    assert mine.calls == 2
    assert mine.occupancy == pytest.approx(10 / 45)
    assert staff.occupancy([mine]) == pytest.approx(10 / 45)
    # An open span counts up to now, and no further.
    at(clock, 15, 30)
    [later] = [
        t
        for t in staff.time_in_states(
            db,
            start=datetime(2026, 12, 16, 15, 0, tzinfo=TOKYO),
            end=datetime(2026, 12, 16, 16, 0, tzinfo=TOKYO),
            limit=LIMIT,
        )
        if t.staff_id == staff_id
    ]
    assert (later.ready, later.on_call, later.wrap_up) == (30 * minutes, 0.0, 0.0)


# --- two tabs of one agent ----------------------------------------------------------------------


def _two_tabs(
    factory: sessionmaker[Session], check: Callable[[Session, int], None]
) -> tuple[int, list[str], list[str]]:
    """One agent, two waiting calls; two tabs of the agent answer one each at the same moment
    (``check`` runs before each claim). The calls the agent ended up with, and the refusals."""
    with factory() as db:
        staff_id, _ = agent(db)
        sids = [waiting_call(db), waiting_call(db)]
        db.commit()
    start = threading.Barrier(2, timeout=30)
    taken: list[str] = []
    refused: list[str] = []

    def tab(sid: str) -> None:
        with factory() as db:
            start.wait()
            try:
                check(db, staff_id)
            except staff.NotReady as refusal:
                refused.append(str(refusal))
                db.rollback()
                return
            if calls.claim_call(db, call_sid=sid, staff_id=staff_id):
                taken.append(sid)
            db.commit()

    threads = [threading.Thread(target=tab, args=(sid,)) for sid in sids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with factory() as db:  # leave no caller waiting for later tests to meet
        db.execute(
            update(Call)
            .where(Call.call_sid.in_(sids))
            .values(ended_at=db.info["booking"].now(), wrapped_at=db.info["booking"].now())
        )
        db.commit()
    return staff_id, taken, refused


def test_two_tabs_of_one_agent_cannot_take_two_calls(
    engine: Engine, committed: sessionmaker[Session]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises whole transactions: no race to lose")
    _staff_id, taken, refused = _two_tabs(
        committed, lambda db, me: staff.make_sure_ready(db, staff_id=me, limit=LIMIT)
    )
    assert len(taken) == 1
    assert len(refused) == 1 and "通話中" in refused[0]


def test_the_two_tabs_test_catches_a_check_without_the_lock(
    engine: Engine, committed: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the state row's lock both tabs find the agent ready: the test can fail."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises whole transactions: no race to lose")
    checked = threading.Barrier(2, timeout=30)

    def unlocked(db: Session, staff_id: int) -> object:
        found = db.execute(
            select(AgentState).where(AgentState.staff_id == staff_id)
        ).scalar_one_or_none()
        return found

    monkeypatch.setattr(agent_states, "_lock", unlocked)

    def check_then_wait(db: Session, me: int) -> None:
        staff.make_sure_ready(db, staff_id=me, limit=LIMIT)
        checked.wait()  # both have checked before either claims

    _staff_id, taken, refused = _two_tabs(committed, check_then_wait)
    assert (len(taken), refused) == (2, [])


def test_a_supervisor_takes_calls_only_once_they_choose_ready(
    db: Session, clock: FakeClock
) -> None:
    at(clock, 16, 0)
    login = f"boss{next(_ids)}-{id(db)}"
    made = staff.create_staff(
        db, login_id=login, display_name="監督 " + login, role="supervisor", password=PASSWORD
    )
    signed = staff.sign_in(db, login_id=login, password=PASSWORD)
    db.execute(
        update(StaffSession).where(StaffSession.staff_id == made.id).values(pending=None)
    )  # the second factor given
    assert staff.session_for(db, signed.token) is not None
    # Watching the wallboard is not waiting for calls: not counted, and refused a call.
    boss = now_of(db, made.id)
    assert (boss.state, boss.label) == ("offline", "受付停止")
    assert made.id not in {a.staff_id for a in staff.states_now(db, limit=LIMIT)}
    with pytest.raises(staff.NotReady, match="受付可"):
        staff.make_sure_ready(db, staff_id=made.id, limit=LIMIT)
    staff.choose_state(db, staff_id=made.id, state="ready")
    assert made.id in {a.staff_id for a in staff.states_now(db, limit=LIMIT) if a.ready}
    staff.make_sure_ready(db, staff_id=made.id, limit=LIMIT)


def test_signing_in_again_after_a_lapse_nobody_noticed_counts_no_time_in_between(
    db: Session, clock: FakeClock
) -> None:
    at(clock, 17, 0)
    login = f"again{next(_ids)}-{id(db)}"
    made = staff.create_staff(
        db, login_id=login, display_name="再 " + login, role="agent", password=PASSWORD
    )
    staff.sign_in(db, login_id=login, password=PASSWORD)
    # The browser closed at 17:00; nothing settled the lapse before the next sign-in.
    at(clock, 19, 0)
    staff.sign_in(db, login_id=login, password=PASSWORD)
    assert now_of(db, made.id).state == "ready"
    spans = db.execute(
        select(AgentStateSpan)
        .where(AgentStateSpan.staff_id == made.id)
        .order_by(AgentStateSpan.started_at)
    ).scalars()
    assert [(s.started_at, s.ended_at) for s in spans] == [
        (datetime(2026, 12, 16, 17, 0, tzinfo=TOKYO), datetime(2026, 12, 16, 17, 0, tzinfo=TOKYO)),
        (datetime(2026, 12, 16, 19, 0, tzinfo=TOKYO), None),
    ]
