"""The signed offline roster: a counter downloads the day's bookings, marks check-ins while
offline, uploads the file later; applied once, refused if altered. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from booking import service as booking
from booking.context import TOKYO
from calendar_sync import roster
from tests.conftest import FakeClock, SlotMaker


def two_bookings(db: Session, make_slot: SlotMaker) -> list[booking.BookingView]:
    slot = make_slot(3)
    return [
        booking.book(
            db,
            slot_id=slot,
            party=party,
            resident=booking.ResidentInput("オフライン ハナコ", "090-4545-6767", date(1966, 6, 6)),
            channel="web",
        )
        for party in (1, 2)
    ]


def mark(text: str, code: str) -> str:
    """What the counter does offline: a mark in the last column of one booking's row."""
    return "\n".join(
        line + "済" if line.split(",")[1:2] == [code] else line for line in text.splitlines()
    )


def test_check_ins_from_an_offline_day_are_applied_once(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    first, second = two_bookings(db, make_slot)
    day = first.starts_at.astimezone(TOKYO).date()
    text = roster.roster_csv(db, venue_id=first.venue_id, day=day)
    # No name and no phone number in it (other tests' rows of that day may hold any digits, so
    # the whole number is looked for, in each form, not a part of it).
    assert first.code in text and "オフライン" not in text
    assert not any(phone in text for phone in ("090-4545-6767", "09045456767", "+819045456767"))
    assert text.splitlines()[-1].startswith("# signature=")
    returned = mark(text, first.code)
    report = roster.upload_check_ins(db, text=returned)
    assert report.applied == [first.code] and report.refused == []
    assert booking.get_booking(db, booking_id=first.id).status == "checked_in"
    assert booking.get_booking(db, booking_id=second.id).status == "booked"
    again = roster.upload_check_ins(db, text=returned)
    # (Other tests' committed bookings of that day may be listed, checked in: ours only.)
    assert again.applied == [] and first.code in again.unchanged
    assert second.code not in again.unchanged


def test_an_altered_roster_is_refused(db: Session, make_slot: SlotMaker) -> None:
    first, _ = two_bookings(db, make_slot)
    day = first.starts_at.astimezone(TOKYO).date()
    text = roster.roster_csv(db, venue_id=first.venue_id, day=day)
    lines = text.splitlines()
    forged = "\n".join([*lines[:-1], "999999,12345678,09:00,pickup,1,済", lines[-1]])
    with pytest.raises(roster.RosterRefused):
        roster.upload_check_ins(db, text=forged)
    other_code = first.code[:-1] + str((int(first.code[-1]) + 1) % 10)  # a different code
    code_changed = text.replace(f"{first.code},", f"{other_code},", 1)
    assert code_changed != text
    with pytest.raises(roster.RosterRefused):
        roster.upload_check_ins(db, text=mark(code_changed, other_code))
    with pytest.raises(roster.RosterRefused):
        roster.upload_check_ins(db, text="code,checked_in\n12345678,済\n")
