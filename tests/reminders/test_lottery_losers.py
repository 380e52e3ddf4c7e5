"""A lottery's losers told once: the draw puts them on their day's waitlist in its order, and the
planner makes one "not drawn" message each from that (an SMS with their waitlist page's link and
their place to a mobile, a call to a landline), however often the draw job and the planner run.
A seat freed later is offered to the first of them. SQLite and PostgreSQL, through the local
fake of Twilio, on the real clock (the lottery's times are moved to make its draw due)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, time, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from booking import lottery, lottery_jobs, schedule, waitlist
from booking import service as booking
from booking.models import Lottery, Slot, WaitlistEntry
from ivr.flow import prompt
from reminders import jobs
from reminders import service as reminders
from reminders.models import Message
from reminders.service import offer_link
from reminders.texts import compose_lost
from tests.booking.test_lottery import household, leave_losers
from tests.reminders.conftest import PUBLIC, RULES, Desk, new_landline, new_mobile

SERVICE = "cert_renewal"


@pytest.fixture
def told(desk: Desk) -> Desk:
    """The desk, its texts carrying links to the public site, its draw jobs on its database."""
    jobs.use(replace(desk.runtime, rules=replace(RULES, site_url=PUBLIC)))
    lottery_jobs.use(desk.sessions)
    return desk


def lone_slot(db: Session) -> int:
    """One seat at 23:00 on a day with no other time of this service at the main office: the
    losers' whole-day entries have no other free seat to be offered at once."""
    day = date(2027, 2, 1)
    while db.execute(
        select(Slot.id).where(
            Slot.venue_id == "main",
            Slot.service_id == SERVICE,
            Slot.starts_at >= waitlist.day_bounds(day)[0],
            Slot.starts_at < waitlist.day_bounds(day)[1],
        )
    ).first():
        day += timedelta(days=1)
    session = schedule.open_extra_session(
        db,
        venue_id="main",
        service_id=SERVICE,
        day=day,
        opens=time(23, 0),
        closes=time(23, 30),
        slot_minutes=30,
        seats=1,
        kind="extra",
    )
    return int(db.execute(select(Slot.id).where(Slot.session_id == session.id)).scalar_one())


def drawn(desk: Desk, phones: list[tuple[str, str]]) -> tuple[int, int]:
    """A lottery for one seat, households of one with these (phone, language), its draw due
    and run by its job twice: (lottery, slot)."""
    with desk.sessions() as db:
        slot = lone_slot(db)
        session_id = db.execute(select(Slot.session_id).where(Slot.id == slot)).scalar_one()
        now = desk.clock()
        made = lottery.create_lottery(
            db,
            session_ids=[session_id],
            applications_from=now - timedelta(minutes=1),
            applications_until=now + timedelta(hours=1),
            draw_at=now + timedelta(hours=2),
        )
        for phone, language in phones:
            lottery.apply(
                db,
                lottery_id=made.id,
                party=1,
                resident=replace(household(1), phone=phone, language=language),
                preferences=[slot],
                channel="web",
            )
        # The window closed and the draw time came.
        db.execute(
            update(Lottery)
            .where(Lottery.id == made.id)
            .values(applications_until=now - timedelta(seconds=2), draw_at=now)
        )
        db.commit()
    assert lottery_jobs.draw(made.id).startswith("drawn: ")
    assert lottery_jobs.draw(made.id) == "nothing to draw"
    return made.id, slot


def losers(desk: Desk, lottery_id: int) -> list[booking.WaitlistView]:
    with desk.sessions() as db:
        ids = db.execute(
            select(WaitlistEntry.id)
            .where(WaitlistEntry.lottery_id == lottery_id)
            .order_by(WaitlistEntry.id)
        ).scalars()
        return [booking.waitlist_entry(db, entry_id=i) for i in list(ids)]


def lost_messages(desk: Desk, entry_id: int) -> list[Message]:
    with desk.sessions() as db:
        return list(
            db.execute(
                select(Message).where(
                    Message.waitlist_entry_id == entry_id, Message.kind == "lottery_lost"
                )
            ).scalars()
        )


def test_each_loser_is_told_once_by_sms_or_a_call_with_their_place(told: Desk) -> None:
    applicants = [
        (new_mobile(), "en"),
        (new_mobile(), "ja"),
        (new_landline(), "ja"),
        (new_mobile(), "ko"),
    ]
    lottery_id, _ = drawn(told, applicants)
    try:
        waiting = losers(told, lottery_id)
        with told.sessions() as db:
            outcome = {a.id: a for a in lottery.applications_of(db, lottery_id=lottery_id)}
            record = lottery.public_record(db, lottery_id=lottery_id)
        assert record is not None
        assert sorted(a.outcome for a in outcome.values()) == ["lost", "lost", "lost", "won"]
        assert len(waiting) == 3
        assert [e.ahead for e in waiting] == [0, 1, 2]  # the draw's order, one after another
        told.plan()
        told.plan()  # planning again makes nothing more
        language_of = dict(applicants)
        for entry in waiting:
            [message] = lost_messages(told, entry.id)  # once
            assert entry.phone is not None and entry.ahead is not None
            if entry.phone_line_type == "mobile":
                assert message.channel == "sms"
                assert jobs.send(message.id) == "sent"
                assert jobs.send(message.id) == "nothing to send"
                [body] = told.sms_to(entry.phone)
                assert f"{PUBLIC}/w/{entry.token}" in body
                place = {"en": f"number {entry.ahead + 1}", "ja": f"{entry.ahead + 1}番目"}
                place["ko"] = f"{entry.ahead + 1}번째"
                assert place[language_of[entry.phone]] in body, body
            else:
                assert message.channel == "voice"
                assert jobs.send(message.id) == "sent"
                [url] = told.calls_to(entry.phone)
                said = " ".join(told.resident(entry.phone).pick_up(url))
                assert "抽選に外れました" in said
                ahead = prompt("ja", "lottery_lost_ahead", count=entry.ahead)
                assert ahead in said, said
        # The winner hears they were drawn (and what a confirmation says).
        [winner] = [a.booking_id for a in outcome.values() if a.booking_id is not None]
        with told.sessions() as db:
            won = booking.get_booking(db, booking_id=winner)
        [drawn_message] = [m for m in told.messages(winner) if m.kind == "drawn"]
        assert jobs.send(drawn_message.id) == "sent" and won.phone is not None
        if won.phone_line_type == "mobile":
            [body] = told.sms_to(won.phone)
            drawn_words = {"en": "you were drawn", "ja": "当選しました", "ko": "당첨되셨습니다"}
            assert drawn_words[language_of[won.phone]] in body and won.code in body, body
        else:
            [url] = told.calls_to(won.phone)
            said = " ".join(told.resident(won.phone).pick_up(url))
            assert "抽選に当選し" in said and "ご予約は" in said, said
    finally:
        leave_losers(told.sessions, lottery_id)


def test_a_seat_freed_later_is_offered_to_the_first_loser(told: Desk) -> None:
    applicants = [(new_mobile(), "ja") for _ in range(3)]
    lottery_id, slot = drawn(told, applicants)
    try:
        first, second = losers(told, lottery_id)
        with told.sessions() as db:
            [winner] = [
                a.booking_id
                for a in lottery.applications_of(db, lottery_id=lottery_id)
                if a.booking_id is not None
            ]
            booking.cancel_booking(db, booking_id=winner)
            lottery.release_seats(db, lottery_id=lottery_id)
            db.commit()
        told.plan()
        with told.sessions() as db:
            assert booking.waitlist_entry(db, entry_id=first.id).offered_slot_id == slot
            assert booking.waitlist_entry(db, entry_id=second.id).status == "waiting"
            kinds = db.execute(
                select(Message.kind).where(Message.waitlist_entry_id == first.id)
            ).scalars()
            assert sorted(kinds) == ["lottery_lost", "waitlist_offer"]
    finally:
        leave_losers(told.sessions, lottery_id)


@pytest.mark.parametrize("language", ["ja", "en", "ko"])
def test_a_losers_text_fits_three_segments_with_its_link_and_place(language: str) -> None:
    text = compose_lost(
        language,
        day=date(2027, 1, 12),
        venue="本庁舎 マイナンバーカード交付窓口"
        if language != "en"
        else "Main Office, My Number Card Counter",
        place=120,
        link=offer_link("https://yoyaku.city.shinjuku.example.jp", "0" * 32),
        phone="+81353334111",
    )
    assert text.endswith("03-5333-4111")  # the call center's number, last, where it fits
    assert f"/w/{'0' * 32}" in text and "120" in text
    assert reminders.sms_segments(text) <= 3, (len(text), text)
