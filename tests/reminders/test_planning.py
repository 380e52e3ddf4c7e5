"""Planning notifications from the booking outbox, on SQLite and PostgreSQL: what goes to whom,
by which channel, when; once per booking version; stale ones dropped."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from sqlalchemy.orm import Session

from booking import service
from booking.context import TOKYO
from booking.service import ResidentInput
from reminders import service as reminders
from reminders.service import ReminderRules
from tests.conftest import FakeClock, SlotMaker

RULES = ReminderRules(
    day_before_at=time(18, 0), morning_at=None, quiet_from=time(21, 0), quiet_until=time(8, 0)
)
MOBILE = "090-2222-3333"
LANDLINE = "03-5273-4111"


def resident(phone: str, language: str = "ja") -> ResidentInput:
    return ResidentInput("ヨテイ ハナコ", phone, date(1970, 1, 1), language=language)


def plan(db: Session, rules: ReminderRules = RULES) -> reminders.Planned:
    # Other tests' committed bookings are in the outbox too: plan them all (rolled back after).
    return reminders.plan_from_outbox(db, rules, limit=100_000)


def mine(db: Session, booking_id: int) -> list[tuple[str, str, int, str, datetime]]:
    return [
        (m.kind, m.channel, m.booking_version, m.status, m.send_after.astimezone(TOKYO))
        for m in reminders.messages_for(db, booking_id=booking_id)
    ]


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TOKYO)


def test_a_mobile_booking_gets_a_confirmation_and_a_reminder_once(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    made = service.book(db, slot_id=make_slot(2), party=1, resident=resident(MOBILE), channel="web")
    first = plan(db)
    assert first.planned >= 2
    visit = made.starts_at.astimezone(TOKYO).date()
    assert mine(db, made.id) == [
        ("confirmation", "sms", 1, "scheduled", clock.now),
        ("reminder", "sms", 1, "scheduled", local(visit.replace(day=visit.day - 1), 18)),
    ]
    assert plan(db).planned == 0  # the outbox is drained: nothing planned twice
    assert len(mine(db, made.id)) == 2
    [message] = [m for m in reminders.messages_for(db, booking_id=made.id) if m.kind == "reminder"]
    assert message.to == "+819022223333"


def test_a_landline_gets_a_reminder_call_and_no_sms(db: Session, make_slot: SlotMaker) -> None:
    made = service.book(
        db, slot_id=make_slot(2), party=1, resident=resident(LANDLINE), channel="ivr"
    )
    plan(db)
    assert [(k, c) for k, c, *_ in mine(db, made.id)] == [("reminder", "voice")]


def test_a_number_that_takes_neither_gets_nothing(db: Session, make_slot: SlotMaker) -> None:
    made = service.book(
        db, slot_id=make_slot(2), party=1, resident=resident("0120-123-456"), channel="agent"
    )
    plan(db)
    assert mine(db, made.id) == []


def test_a_move_drops_the_old_reminder_and_plans_for_the_new_time(
    db: Session, make_slot: SlotMaker
) -> None:
    made = service.book(db, slot_id=make_slot(2), party=1, resident=resident(MOBILE), channel="web")
    plan(db)
    moved = service.reschedule_booking(db, booking_id=made.id, slot_id=make_slot(2))
    plan(db)
    rows = mine(db, made.id)
    assert [(k, v, s) for k, _, v, s, _ in rows] == [
        ("confirmation", 1, "dropped"),  # not sent yet: the move notice says it all
        ("reminder", 1, "dropped"),
        ("moved", 2, "scheduled"),
        ("reminder", 2, "scheduled"),
    ]
    new_visit = moved.starts_at.astimezone(TOKYO).date()
    assert rows[-1][4].date() < new_visit


def test_a_cancel_drops_the_reminders_and_confirms_the_cancel(
    db: Session, make_slot: SlotMaker
) -> None:
    made = service.book(db, slot_id=make_slot(2), party=1, resident=resident(MOBILE), channel="web")
    plan(db)
    service.cancel_booking(db, booking_id=made.id)
    plan(db)
    assert [(k, v, s) for k, _, v, s, _ in mine(db, made.id)] == [
        ("confirmation", 1, "dropped"),
        ("reminder", 1, "dropped"),
        ("cancelled", 2, "scheduled"),
    ]


def test_changes_before_planning_plan_only_for_the_latest_version(
    db: Session, make_slot: SlotMaker
) -> None:
    made = service.book(db, slot_id=make_slot(2), party=1, resident=resident(MOBILE), channel="web")
    service.reschedule_booking(db, booking_id=made.id, slot_id=make_slot(2))
    plan(db)
    assert [(k, v) for k, _, v, *_ in mine(db, made.id)] == [("moved", 2), ("reminder", 2)]


def test_nothing_goes_out_in_quiet_hours(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 12, 15, 22, 30, tzinfo=TOKYO))
    made = service.book(db, slot_id=make_slot(2), party=1, resident=resident(MOBILE), channel="web")
    plan(db)
    confirmation = mine(db, made.id)[0]
    assert confirmation[0] == "confirmation"
    assert confirmation[4] == datetime(2026, 12, 16, 8, 0, tzinfo=TOKYO)  # when quiet hours end
    assert reminders.after_quiet_hours(local(date(2026, 12, 16), 7, 59), RULES) == local(
        date(2026, 12, 16), 8
    )
    noon = local(date(2026, 12, 16), 12)
    assert reminders.after_quiet_hours(noon, RULES) == noon


def test_the_morning_reminder_when_the_ward_wants_one(db: Session, make_slot: SlotMaker) -> None:
    morning = ReminderRules(time(18, 0), time(7, 0), quiet_from=time(22, 0), quiet_until=time(6, 0))
    made = service.book(db, slot_id=make_slot(2), party=1, resident=resident(MOBILE), channel="web")
    plan(db, morning)
    visit = made.starts_at.astimezone(TOKYO)
    kinds = [k for k, *_ in mine(db, made.id)]
    if visit.time() > time(7, 0):  # the test slots are outside office hours, some before 7:00
        assert kinds == ["confirmation", "reminder", "reminder_morning"]
    else:
        assert kinds == ["confirmation", "reminder"]


@pytest.mark.parametrize("kind", sorted(reminders.texts()))
@pytest.mark.parametrize("language", ["ja", "en"])
def test_every_text_fits_two_sms_segments(kind: str, language: str) -> None:
    longest = (
        "本庁舎 マイナンバーカード交付窓口"
        if language == "ja"
        else "Main Office, My Number Card Counter"
    )
    text = reminders.render(
        kind,
        language,
        code="29532630",
        starts_at=datetime(2026, 12, 16, 8, 30, tzinfo=TOKYO),
        venue=longest,
    )
    assert "29532630" in text
    assert ("12/16(水)8:30" if language == "ja" else "Wed Dec 16 8:30") in text
    assert reminders.sms_segments(text) <= 2, (len(text), text)


def test_segments_count_like_a_phone() -> None:
    assert reminders.sms_segments("a" * 160) == 1
    assert reminders.sms_segments("a" * 161) == 2
    assert reminders.sms_segments("あ" * 70) == 1
    assert reminders.sms_segments("あ" * 71) == 2
    assert reminders.sms_segments("あ" * 135) == 3
