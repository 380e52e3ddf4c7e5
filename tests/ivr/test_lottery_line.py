"""Applying for the lottery (抽選) on the phone line by itself: the caller hears that the
service's busiest times go by lottery, picks preferred times one by one, keys each person's
notice number, and hears an application number; one application per notice number."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select

from booking import lottery
from booking.models import Slot
from ivr.caller import PhoneCall
from ivr.flow import prompt
from tests.conftest import START, SlotMaker
from tests.ivr.conftest import Line
from tests.ivr.test_line import heard


def open_lottery(line: Line) -> tuple[int, list[int]]:
    """A lottery of two times of its own, taking applications now (three days after the other
    tests' lotteries closed theirs)."""
    line.clock.set(START + timedelta(days=3))
    now = line.clock()
    with line.sessions() as db:
        slots = [SlotMaker(db)(4), SlotMaker(db)(4)]
        sessions = db.execute(select(Slot.session_id).where(Slot.id.in_(slots))).scalars()
        made = lottery.create_lottery(
            db,
            session_ids=list(sessions),
            applications_from=now - timedelta(minutes=1),
            applications_until=now + timedelta(days=1),
            draw_at=now + timedelta(days=2),
        )
        db.commit()
    return made.id, [s.id for s in made.slots]


def apply_by_phone(call: PhoneCall, tails: list[str]) -> None:
    """Menu 1, application help, the lottery; two people; skip the first time, choose the
    second, then the first; key both notice numbers (1 2 3 and a tail), the birth date, the
    caller ID; apply."""
    call.dial()
    call.press("1")
    call.press("2")  # application help
    assert heard(call, prompt("ja", "lottery_choice"))
    call.press("2")  # the lottery
    call.press("2")  # two people
    assert heard(call, "第1希望を選びます。")
    call.press("2")  # not this one
    call.press("1")  # this one
    assert heard(call, prompt("ja", "lottery_times_end"))
    assert heard(call, "第2希望を選びます。")
    call.press("1")
    for tail in tails:
        call.press("102030")  # 1 2 3: each digit and 0
        call.press(tail)
        call.press("1")
    call.press("19580401#")
    call.press("1")
    call.press("1")  # the caller ID is the contact number
    assert heard(call, "抽選に申し込みます。")
    call.press("1")


def test_a_caller_applies_for_the_lottery_by_itself(line: Line) -> None:
    lottery_id, (first, second) = open_lottery(line)
    tails = [f"{secrets.randbelow(10**6):06d}" for _ in range(2)]
    call = line.call()
    apply_by_phone(call, tails)
    assert heard(call, "抽選のお申し込みを承りました。申込番号は")
    with line.sessions() as db:
        [application] = lottery.applications_of(db, lottery_id=lottery_id)
        assert lottery.has_applied(db, lottery_id=lottery_id, notice_number=f"123-{tails[1]}")
    assert application.channel == "ivr"
    assert (application.party_size, application.preferences) == (2, [second, first])
    record = line.record(call)
    assert record.outcome == "self_served"
    assert tails[0] not in record.path  # keys, not data

    # The same person again, on another call: refused, said why.
    again = line.call()
    apply_by_phone(again, [tails[1], f"{secrets.randbelow(10**6):06d}"])
    assert heard(again, "すでに申し込まれています")
    with line.sessions() as db:
        assert len(lottery.applications_of(db, lottery_id=lottery_id)) == 1
        # Drawn, so that no later test's caller hears of this lottery.
        line.clock.set(START + timedelta(days=5, minutes=1))
        assert lottery.run_draw(db, lottery_id=lottery_id) is not None
        db.commit()


def test_a_caller_may_book_a_free_time_instead(line: Line) -> None:
    lottery_id, slots = open_lottery(line)
    call = line.call()
    call.dial()
    call.press("1")
    call.press("2")
    assert heard(call, prompt("ja", "lottery_choice"))
    call.press("1")  # a free time, first come
    call.press("1")  # one person
    call.press("1#")  # the main office
    offered = line.state(call).offered
    assert offered is not None and offered not in slots  # a lottery's time is never offered
    with line.sessions() as db:
        line.clock.set(START + timedelta(days=5, minutes=1))
        assert lottery.run_draw(db, lottery_id=lottery_id) is not None
        db.commit()
