"""Application help (申請補助) recorded when the counter completes the visit: sent or not, the
applicant's copy, one ward's copy per application sent; the day's handover sheet per staff
member, confirmed by two people and frozen; the figures of a month. SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from booking import service
from booking.context import TOKYO
from booking.errors import BookingError
from booking.models import Slot
from booking.service import ResidentInput
from tests.booking.test_race import only_booking_errors, race
from tests.conftest import FakeClock, SlotMaker

# Staff ids of these tests' own (the console's accounts are other tests' business).
_staff = itertools.count(900_000)
RACERS = 8


def book(db: Session, slot_id: int, party: int = 1) -> service.BookingView:
    resident = ResidentInput("マドグチ ハナコ", "090-1212-3434", date(1975, 5, 5))
    return service.book(db, slot_id=slot_id, party=party, resident=resident, channel="web")


def arrived(db: Session, clock: FakeClock, made: service.BookingView) -> None:
    clock.set(made.starts_at.astimezone(TOKYO) + timedelta(minutes=1))
    service.check_in(db, code=made.code, venue_id=made.venue_id)


def sheet_of(db: Session, staff_id: int, day: date, confirmed: bool) -> service.SheetView:
    [found] = [
        s
        for s in service.handover_sheets(db, venue_id="main", day=day)
        if s.staff_id == staff_id and (s.id is not None) == confirmed
    ]
    return found


def test_completing_a_help_visit_records_what_was_sent_and_printed(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    slot = make_slot(4)
    pair, alone, idle = book(db, slot, party=2), book(db, slot), book(db, slot)
    arrived(db, clock, pair)
    for made in (alone, idle):
        service.check_in(db, code=made.code, venue_id="main")
    clerk = next(_staff)
    code = service.complete_help_booking(
        db, booking_id=pair.id, staff_id=clerk, sent=True, copy_given=True
    )
    assert code == pair.code
    assert service.get_booking(db, booking_id=pair.id).status == "completed"
    # Sent, but the applicant left without their copy; and one sent nothing at all.
    service.complete_help_booking(
        db, booking_id=alone.id, staff_id=clerk, sent=True, copy_given=False
    )
    with pytest.raises(BookingError) as nothing_printed:
        service.complete_help_booking(
            db, booking_id=idle.id, staff_id=clerk, sent=False, copy_given=True
        )
    assert nothing_printed.value.code == "help_copy_without_sending"
    assert service.get_booking(db, booking_id=idle.id).status == "checked_in"  # unchanged
    service.complete_help_booking(
        db, booking_id=idle.id, staff_id=clerk, sent=False, copy_given=False
    )
    with pytest.raises(BookingError) as twice:
        service.complete_help_booking(
            db, booking_id=pair.id, staff_id=clerk, sent=True, copy_given=True
        )
    assert twice.value.code == "invalid_status_change"  # recorded once
    walk = service.walk_in(db, venue_id="main", service_id="application_help", party=1)
    service.complete_help_walk_in(
        db, venue_id="main", number=walk.number, staff_id=clerk, sent=True, copy_given=True
    )
    with pytest.raises(BookingError) as again:
        service.complete_help_walk_in(
            db, venue_id="main", number=walk.number, staff_id=clerk, sent=True, copy_given=True
        )
    assert again.value.code == "help_already_recorded"
    day = clock.now.astimezone(TOKYO).date()
    sheet = sheet_of(db, clerk, day, confirmed=False)
    assert [v.label for v in sheet.visits] == [
        f"予約番号 {pair.code}",
        f"予約番号 {alone.code}",
        f"予約番号 {idle.code}",
        f"当日受付 {walk.number}番",
    ]
    assert [(v.sent, v.copy_given, v.ward_copies) for v in sheet.visits] == [
        (True, True, 2),  # one application, and one ward's copy, a person
        (True, False, 1),
        (False, False, 0),
        (True, True, 1),
    ]
    assert sheet.copies == 4 and sheet.not_sent == 1 and len(sheet.handed) == 3
    names = db.execute(text("SELECT * FROM application_help LIMIT 1")).keys()
    assert not {"name_kana_enc", "phone_enc", "birth_date_enc"} & set(names)  # no personal data


def test_other_services_are_not_completed_as_help(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    made = book(db, make_slot(1, service="pin_reset"))
    arrived(db, clock, made)
    with pytest.raises(BookingError) as refused:
        service.complete_help_booking(
            db, booking_id=made.id, staff_id=next(_staff), sent=True, copy_given=True
        )
    assert refused.value.code == "not_application_help"
    assert service.get_booking(db, booking_id=made.id).status == "checked_in"


def test_a_sheet_is_confirmed_by_two_people_and_frozen_later_copies_go_on_a_new_one(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    slot = make_slot(3)
    first, second, late = book(db, slot), book(db, slot), book(db, slot)
    arrived(db, clock, first)
    for made in (second, late):
        service.check_in(db, code=made.code, venue_id="main")
    clerk, ward = next(_staff), next(_staff)
    for made in (first, second):
        service.complete_help_booking(
            db, booking_id=made.id, staff_id=clerk, sent=True, copy_given=True
        )
    day = clock.now.astimezone(TOKYO).date()
    shown = sheet_of(db, clerk, day, confirmed=False)
    ids = [v.id for v in shown.visits]
    with pytest.raises(BookingError) as alone:
        service.confirm_handover(
            db, venue_id="main", day=day, staff_id=clerk, receiver_id=clerk, visit_ids=ids
        )
    assert alone.value.code == "handover_same_person"
    with pytest.raises(BookingError) as stale:  # a sheet shown before the last record
        service.confirm_handover(
            db, venue_id="main", day=day, staff_id=clerk, receiver_id=ward, visit_ids=ids[:1]
        )
    assert stale.value.code == "handover_changed"
    confirmed = service.confirm_handover(
        db, venue_id="main", day=day, staff_id=clerk, receiver_id=ward, visit_ids=ids
    )
    assert confirmed.id is not None and confirmed.receiver_id == ward
    assert confirmed.copies == 2 and confirmed.confirmed_at == clock.now
    with pytest.raises(BookingError) as done:
        service.confirm_handover(
            db, venue_id="main", day=day, staff_id=clerk, receiver_id=ward, visit_ids=ids
        )
    assert done.value.code == "handover_nothing"
    # Recorded after the hand-over: on a new sheet; the confirmed one stays as it was.
    service.complete_help_booking(
        db, booking_id=late.id, staff_id=clerk, sent=True, copy_given=True
    )
    assert sheet_of(db, clerk, day, confirmed=True) == confirmed
    fresh = sheet_of(db, clerk, day, confirmed=False)
    assert [v.label for v in fresh.visits] == [f"予約番号 {late.code}"] and fresh.copies == 1
    stored = db.execute(
        text("SELECT copies FROM handover_sheet WHERE id = :s"), {"s": confirmed.id}
    ).scalar_one()
    assert stored == 2


def test_the_period_counts_visits_completed_and_copies_by_venue(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    slot = make_slot(4)
    made = [book(db, slot) for _ in range(4)]
    day = made[0].starts_at.astimezone(TOKYO).date()
    [before] = service.application_help_period(db, first=day, last=day) or [
        service.HelpMonth("main")
    ]
    arrived(db, clock, made[0])
    for other in made[1:3]:
        service.check_in(db, code=other.code, venue_id="main")  # made[3] never came
    clerk, ward = next(_staff), next(_staff)
    service.complete_help_booking(
        db, booking_id=made[0].id, staff_id=clerk, sent=True, copy_given=True
    )
    service.complete_help_booking(
        db, booking_id=made[1].id, staff_id=clerk, sent=False, copy_given=False
    )
    ids = [v.id for v in sheet_of(db, clerk, day, confirmed=False).visits]
    service.confirm_handover(
        db, venue_id="main", day=day, staff_id=clerk, receiver_id=ward, visit_ids=ids
    )
    walk = service.walk_in(db, venue_id="main", service_id="application_help", party=1)
    service.complete_help_walk_in(
        db, venue_id="main", number=walk.number, staff_id=clerk, sent=True, copy_given=False
    )
    [after] = service.application_help_period(db, first=day, last=day)
    grown = {
        name: getattr(after, name) - getattr(before, name)
        for name in (
            "visits",
            "completed",
            "sent",
            "not_sent",
            "copies_given",
            "copies_handed_over",
            "copies_waiting",
        )
    }
    assert grown == {
        "visits": 4,  # three bookings that came (one still at the counter) and the walk-in
        "completed": 3,
        "sent": 2,
        "not_sent": 1,
        "copies_given": 1,
        "copies_handed_over": 1,
        "copies_waiting": 1,
    }


def test_racing_confirmations_of_one_sheet_confirm_it_once(
    committed: sessionmaker[Session], clock: FakeClock
) -> None:
    """A double click, or the sheet confirmed on two screens at once: one sheet, the copies on
    it once; the others find nothing left to hand over."""
    clerk = next(_staff)
    with committed() as db:
        slot = SlotMaker(db)(2)
        made = [book(db, slot) for _ in range(2)]
        arrived(db, clock, made[0])
        service.check_in(db, code=made[1].code, venue_id="main")
        for b in made:
            service.complete_help_booking(
                db, booking_id=b.id, staff_id=clerk, sent=True, copy_given=True
            )
        day = clock.now.astimezone(TOKYO).date()
        ids = [v.id for v in sheet_of(db, clerk, day, confirmed=False).visits]
        db.commit()
    receivers = [next(_staff) for _ in range(RACERS)]

    def work(db: Session, i: int) -> object:
        return service.confirm_handover(
            db, venue_id="main", day=day, staff_id=clerk, receiver_id=receivers[i], visit_ids=ids
        )

    outcomes = race(committed, RACERS, work)
    won = [o.value for o in outcomes if o.error is None]
    assert len(won) == 1
    only_booking_errors(outcomes, "handover_nothing")
    with committed() as db:
        sheets = [
            s for s in service.handover_sheets(db, venue_id="main", day=day) if s.staff_id == clerk
        ]
        stored = db.execute(
            text("SELECT count(*), sum(copies) FROM handover_sheet WHERE staff_id = :s"),
            {"s": clerk},
        ).one()
    assert [(s.id is not None, s.copies) for s in sheets] == [(True, 2)]
    assert tuple(stored) == (1, 2)


def test_a_double_click_on_a_help_walk_in_records_it_once(
    committed: sessionmaker[Session], clock: FakeClock
) -> None:
    clerk = next(_staff)
    with committed() as db:
        slot = SlotMaker(db)(1)
        starts = db.execute(select(Slot.starts_at).where(Slot.id == slot)).scalar_one()
        db.commit()
    clock.set(starts.astimezone(TOKYO) + timedelta(minutes=1))
    with committed() as db:
        number = service.walk_in(db, venue_id="main", service_id="application_help", party=1).number
        db.commit()

    def work(db: Session, _i: int) -> object:
        return service.complete_help_walk_in(
            db, venue_id="main", number=number, staff_id=clerk, sent=True, copy_given=True
        )

    outcomes = race(committed, RACERS, work)
    assert sum(o.error is None for o in outcomes) == 1
    only_booking_errors(outcomes, "help_already_recorded")
    with committed() as db:
        recorded = db.execute(
            text("SELECT count(*) FROM application_help WHERE staff_id = :s"), {"s": clerk}
        ).scalar_one()
    assert recorded == 1
