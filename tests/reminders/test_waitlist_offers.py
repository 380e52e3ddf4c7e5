"""A waitlist offer's text: planned once from the offer, claimed before it is sent, with the link
to the offer's page; dropped once the offer is taken or passed on; an unanswered offer passed on
by the pump to the next, whose text follows in the same run; a landline's offer a call (press 1
to book, 2 to let it go to the next). SQLite and PostgreSQL, through the local fake of Twilio."""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from booking import service as booking
from booking import waitlist
from booking.context import TOKYO
from booking.models import Hold, Slot, WaitlistEntry
from booking.service import ResidentInput
from ivr import service as calls
from ivr.flow import prompt
from reminders import jobs
from reminders import service as reminders
from reminders.models import Message
from reminders.service import offer_link
from reminders.texts import compose_offer
from tests.conftest import SlotMaker
from tests.reminders.conftest import PUBLIC, RULES, Desk, new_landline, new_mobile

_free_dial = itertools.count(random.SystemRandom().randrange(100_000, 900_000, 1000))


@pytest.fixture
def offers(desk: Desk) -> Desk:
    """The desk, its texts carrying links to the public site (as config.worker sets them)."""
    jobs.use(replace(desk.runtime, rules=replace(RULES, site_url=PUBLIC)))
    return desk


def full_slot(desk: Desk) -> tuple[int, booking.BookingView]:
    with desk.sessions() as db:
        slot = SlotMaker(db)(1)
        made = booking.book(
            db,
            slot_id=slot,
            party=1,
            resident=ResidentInput("マチ タロウ", new_mobile(), date(1970, 1, 1)),
            channel="web",
        )
        db.commit()
    return slot, made


def wait(desk: Desk, slot: int, phone: str, language: str = "ja") -> booking.WaitlistView:
    with desk.sessions() as db:
        day = slot_day(db, slot)
        entry = booking.join_waitlist(
            db,
            venue_id="main",
            service_id="application_help",
            day=day,
            slot_id=slot,
            party=1,
            phone=phone,
            language=language,
            channel="web",
        )
        db.commit()
    return entry


def slot_day(db: Session, slot: int) -> date:
    return waitlist.local_day(
        db.execute(select(Slot.starts_at).where(Slot.id == slot)).scalar_one()
    )


def cancel(desk: Desk, booking_id: int) -> None:
    with desk.sessions() as db:
        booking.cancel_booking(db, booking_id=booking_id)
        db.commit()


def offer_messages(desk: Desk, entry_id: int) -> list[Message]:
    with desk.sessions() as db:
        return list(
            db.execute(select(Message).where(Message.waitlist_entry_id == entry_id)).scalars()
        )


def entry(desk: Desk, entry_id: int) -> booking.WaitlistView:
    with desk.sessions() as db:
        return booking.waitlist_entry(db, entry_id=entry_id)


def test_an_offer_is_texted_once_with_the_link_to_its_page(offers: Desk) -> None:
    slot, made = full_slot(offers)
    phone = new_mobile()
    waiting = wait(offers, slot, phone, language="en")
    cancel(offers, made.id)

    planned = offers.plan()
    [message] = offer_messages(offers, waiting.id)
    assert (message.kind, message.channel, message.booking_id) == ("waitlist_offer", "sms", None)
    assert (message.id, message.send_after) in planned.due
    offers.plan()
    assert len(offer_messages(offers, waiting.id)) == 1  # planned once

    assert jobs.send(message.id) == "sent"
    assert jobs.send(message.id) == "nothing to send"
    [body] = offers.sms_to(phone)
    assert f"{PUBLIC}/w/{waiting.token}" in body
    offered = entry(offers, waiting.id)
    assert offered.offer_expires_at is not None
    assert re.search(r"until \w{3} \w{3} \d+ \d+:\d\d", body), body


def test_a_text_for_an_offer_already_taken_is_dropped_not_sent(offers: Desk) -> None:
    slot, made = full_slot(offers)
    phone = new_mobile()
    waiting = wait(offers, slot, phone)
    cancel(offers, made.id)
    offers.plan()
    [message] = offer_messages(offers, waiting.id)
    with offers.sessions() as db:  # an agent took it for the resident on the phone
        booking.take_waitlist_offer(
            db,
            token=waiting.token,
            resident=ResidentInput("マチ ハナコ", phone, date(1980, 2, 2)),
            channel="agent",
        )
        db.commit()

    assert jobs.send(message.id) == "nothing to send"
    assert offers.sms_to(phone) == []
    [dropped] = offer_messages(offers, waiting.id)
    assert dropped.status == "dropped"


def test_the_pump_passes_an_unanswered_offer_to_the_next_and_texts_them(offers: Desk) -> None:
    slot, made = full_slot(offers)
    first, second = wait(offers, slot, new_mobile()), wait(offers, slot, new_mobile())
    cancel(offers, made.id)
    offers.plan()
    with offers.sessions() as db:  # the offer's time runs out
        past = offers.clock() - timedelta(seconds=1)
        hold_id = db.execute(
            select(WaitlistEntry.hold_id).where(WaitlistEntry.id == first.id)
        ).scalar_one()
        db.execute(update(Hold).where(Hold.id == hold_id).values(expires_at=past))
        db.commit()

    jobs.pump()

    assert (entry(offers, first.id).status, entry(offers, second.id).status) == (
        "lapsed",
        "offered",
    )
    [message] = offer_messages(offers, second.id)
    assert offers.armed.sends(message.id)  # armed in the same run
    [first_message] = offer_messages(offers, first.id)
    assert jobs.send(first_message.id) == "nothing to send"  # never a text for a lapsed offer


def test_an_offer_no_text_or_call_reaches_goes_to_the_agents_to_call(offers: Desk) -> None:
    slot, made = full_slot(offers)
    phone = f"+81120{next(_free_dial):06d}"  # toll-free: neither a text nor a call reaches it
    waiting = wait(offers, slot, phone)
    cancel(offers, made.id)

    offers.plan()

    assert offer_messages(offers, waiting.id) == []
    with offers.sessions() as db:
        asked = [c for c in calls.open_callbacks(db) if c.phone == phone]
    assert [c.reason for c in asked] == ["waitlist_offer"]


# --- a landline's offer: a call we place (press 1 to book, 2 to let it go) ---------------------


def landline_offer(desk: Desk) -> tuple[str, booking.WaitlistView, booking.WaitlistView, str]:
    """A full slot, a landline first on its waitlist and a mobile after: the booking cancelled,
    the landline's offer called. (landline, its entry, the next entry, the call's URL.)"""
    slot, made = full_slot(desk)
    phone = new_landline()
    first = wait(desk, slot, phone)
    second = wait(desk, slot, new_mobile())
    cancel(desk, made.id)
    desk.plan()
    with desk.sessions() as db:
        [message] = db.execute(
            select(Message).where(Message.waitlist_entry_id == first.id)
        ).scalars()
    assert message.channel == "voice"
    assert jobs.send(message.id) == "sent"
    [url] = desk.calls_to(phone)
    return phone, first, second, url


def test_a_landline_hears_its_offer_and_books_it_with_1(desk: Desk) -> None:
    phone, first, _, url = landline_offer(desk)
    resident = desk.resident(phone)
    said = " ".join(resident.pick_up(url))
    assert "キャンセル待ちのご案内" in said and "お取り置きしています" in said
    resident.press("1")
    resident.press("19700101#")  # the birth date
    resident.press("1")  # read back: right
    resident.press("1")  # the number called is the contact number
    assert any("ご予約の内容を確認します" in s for s in resident.said)
    resident.press("1")  # book
    assert any("予約番号は" in s for s in resident.said)
    with desk.sessions() as db:
        entry = booking.waitlist_entry(db, entry_id=first.id)
        assert entry.status == "booked" and entry.booking_id is not None
        made = booking.get_booking(db, booking_id=entry.booking_id)
    assert (made.channel, made.phone, made.slot_id) == ("ivr", phone, entry.offered_slot_id)


def test_a_landline_lets_its_offer_go_with_2_and_the_next_is_offered(desk: Desk) -> None:
    phone, first, second, url = landline_offer(desk)
    resident = desk.resident(phone)
    resident.pick_up(url)
    resident.press("2")
    assert any(prompt("ja", "waitlist_declined") in s for s in resident.said)
    with desk.sessions() as db:
        assert booking.waitlist_entry(db, entry_id=first.id).status == "left"
        assert booking.waitlist_entry(db, entry_id=second.id).status == "offered"


@pytest.mark.parametrize("language", ["ja", "en", "ko"])
def test_an_offers_text_fits_three_segments_with_its_link(language: str) -> None:
    at = datetime(2027, 1, 12, 9, 30, tzinfo=TOKYO)
    text = compose_offer(
        language,
        starts_at=at,
        venue="本庁舎 マイナンバーカード交付窓口"
        if language != "en"
        else "Main Office, My Number Card Counter",
        party=6,
        until=at - timedelta(days=1),
        link=offer_link("https://yoyaku.city.shinjuku.example.jp", "0" * 32),
        phone="+81353334111",
    )
    assert text.endswith("03-5333-4111")  # the call center's number, last, where it fits
    assert f"/w/{'0' * 32}" in text
    assert reminders.sms_segments(text) <= 3, (len(text), text)
