"""The waitlist with `madoguchi worker` for real (RQ on Redis, PostgreSQL, the fake Twilio): a
cancellation's offer is texted to the first waiting; left unanswered, the worker's pump passes it
to the next, who is texted in turn; each text goes once."""

from __future__ import annotations

from datetime import date, time, timedelta

from sqlalchemy import select, update

from booking import schedule
from booking import service as booking
from booking.models import Hold, Slot, WaitlistEntry
from booking.service import ResidentInput
from tests.reminders.conftest import new_mobile
from tests.reminders.test_worker import Ward, ci_redis, database, ward  # noqa: F401 (fixtures)


def texts_to(site: Ward, phone: str) -> list[str]:
    return [m.body or "" for m in site.twilio.messages() if m.to == phone]


def test_a_worker_texts_an_offer_and_passes_it_on_when_unanswered(
    ward: Ward,  # noqa: F811 (the fixture imported above)
) -> None:
    ward.start_worker()
    with ward.sessions() as db:
        day = db.info["booking"].today() + timedelta(days=5)
        opened = schedule.open_extra_session(
            db,
            venue_id="main",
            service_id="application_help",
            day=day,
            opens=time(20),
            closes=time(20, 30),
            slot_minutes=30,
            seats=1,
        )
        slot = db.execute(select(Slot.id).where(Slot.session_id == opened.id)).scalar_one()
        made = booking.book(
            db,
            slot_id=slot,
            party=1,
            resident=ResidentInput("マチ タロウ", new_mobile(), date(1970, 1, 1)),
            channel="web",
        )
        db.commit()
    phones = [new_mobile(), new_mobile()]
    entries = []
    with ward.sessions() as db:
        for phone in phones:
            entries.append(
                booking.join_waitlist(
                    db,
                    venue_id="main",
                    service_id="application_help",
                    day=day,
                    slot_id=slot,
                    party=1,
                    phone=phone,
                    language="ja",
                    channel="web",
                )
            )
        db.commit()

    with ward.sessions() as db:
        booking.cancel_booking(db, booking_id=made.id)
        db.commit()  # wakes the pump: the offer's text is planned and sent
    ward.wait_for(lambda: len(texts_to(ward, phones[0])) == 1, 60, "the first offer's text")
    assert f"/w/{entries[0].token}" in texts_to(ward, phones[0])[0]

    with ward.sessions() as db:  # the offer's time runs out, unanswered
        past = db.info["booking"].now() - timedelta(seconds=1)
        hold_id = db.execute(
            select(WaitlistEntry.hold_id).where(WaitlistEntry.id == entries[0].id)
        ).scalar_one()
        db.execute(update(Hold).where(Hold.id == hold_id).values(expires_at=past))
        db.commit()
    ward.wait_for(lambda: len(texts_to(ward, phones[1])) == 1, 60, "the next offer's text")
    with ward.sessions() as db:
        first, second = (booking.waitlist_entry(db, entry_id=e.id) for e in entries)
    assert (first.status, second.status) == ("lapsed", "offered")
    assert [len(texts_to(ward, p)) for p in phones] == [1, 1]
