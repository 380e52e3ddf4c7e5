"""Calendar feeds and the ward's calendar import: the feeds parse in a second, independent
iCalendar parser (vobject) and carry UID, DTSTAMP and times in Asia/Tokyo; the bookings feed
needs the venue's secret and holds no names; importing the same calendar twice changes nothing
the second time. SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import pytest
import vobject
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from booking import service as booking
from booking.context import TOKYO
from booking.errors import BookingError
from calendar_sync import service as calendar
from tests.conftest import FakeClock, SlotMaker, app_for

_uids = itertools.count(1)


@pytest.fixture
def http(engine: Engine, clock: FakeClock, tmp_path: Path) -> TestClient:
    return TestClient(app_for(engine, clock, tmp_path))


def parse(body: bytes) -> list[vobject.base.Component]:
    """The feed through vobject: every event, each checked for what RFC 5545 requires."""
    cal = vobject.readOne(body.decode())
    assert cal.name == "VCALENDAR"
    assert cal.version.value == "2.0" and cal.prodid.value
    assert [tz.tzid.value for tz in cal.contents.get("vtimezone", [])] == ["Asia/Tokyo"]
    events = list(cal.contents.get("vevent", []))
    uids = [e.uid.value for e in events]
    assert len(uids) == len(set(uids)), "UIDs repeat"
    for e in events:
        assert e.dtstamp.value.tzinfo is not None
        # vobject reads TZID into its own parameter once it has resolved the VTIMEZONE.
        assert e.dtstart.params["X-VOBJ-ORIGINAL-TZID"] == ["Asia/Tokyo"]
        assert e.dtstart.value.utcoffset().total_seconds() == 9 * 3600
        assert e.dtend.value > e.dtstart.value
    return events


def test_the_free_times_feed_lists_each_open_slot_with_its_free_seats(http: TestClient) -> None:
    answer = http.get("/calendar/venues/yotsuya/free.ics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/calendar")
    events = parse(answer.content)
    assert len(events) > 50  # a branch office's 45 days of slots
    first = events[0]
    assert first.uid.value.startswith("slot-") and first.uid.value.endswith("@madoguchi")
    assert "空き" in first.summary.value
    assert int(first.contents["x-madoguchi-free-seats"][0].value) > 0
    assert http.get("/calendar/venues/nowhere/free.ics").status_code == 404


def test_the_bookings_feed_needs_the_venues_secret_and_holds_no_names(
    http: TestClient, engine: Engine, clock: FakeClock
) -> None:
    sessions = http.app.state.sessions  # type: ignore[attr-defined]
    with sessions() as db:
        slot = SlotMaker(db)(3)
        made = booking.book(
            db,
            slot_id=slot,
            party=2,
            resident=booking.ResidentInput("フィード タロウ", "090-5555-6666", date(1960, 6, 6)),
            channel="web",
        )
        db.commit()
        token = calendar.feed_token(db, made.venue_id)
        other = calendar.feed_token(db, "yotsuya")
    day = made.starts_at.astimezone(TOKYO).date().isoformat()
    path = f"/calendar/venues/{made.venue_id}/bookings.ics"
    assert http.get(path, params={"token": "nope", "day": day}).status_code == 403
    missing = http.get(path, params={"day": day})
    assert (missing.status_code, missing.text) == (403, "wrong or missing feed token")
    assert http.get(path, params={"token": other, "day": day}).status_code == 403  # per venue
    answer = http.get(path, params={"token": token, "day": day})
    assert answer.status_code == 200
    events = parse(answer.content)
    [mine] = [e for e in events if e.uid.value == f"booking-{made.id}@madoguchi"]
    assert made.code in mine.summary.value and "2名" in mine.summary.value
    assert int(mine.sequence.value) == made.version
    assert "フィード" not in answer.text and "5555" not in answer.text


def ward_calendar(
    uid_session: str, uid_closure: str, seats: int = 6, day: int = 24, closed: int = 22
) -> bytes:
    """The ward's calendar: an early session at Yotsuya on 2027-01-<day> (6:00-8:00, hours no
    other session or test uses), Tansumachi closed
    on 2027-01-<closed>, and an event without a UID."""
    return f"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Shinjuku Ward//Holiday sessions//JA
BEGIN:VEVENT
UID:{uid_session}
DTSTAMP:20261201T000000Z
DTSTART;TZID=Asia/Tokyo:202701{day}T060000
DTEND;TZID=Asia/Tokyo:202701{day}T080000
SUMMARY:休日開庁（交付）
X-MADOGUCHI-VENUE:yotsuya
X-MADOGUCHI-SERVICE:pin_reset
X-MADOGUCHI-SEATS:{seats}
X-MADOGUCHI-SLOT-MINUTES:30
END:VEVENT
BEGIN:VEVENT
UID:{uid_closure}
DTSTAMP:20261201T000000Z
DTSTART;VALUE=DATE:202701{closed}
DTEND;VALUE=DATE:202701{closed + 1}
SUMMARY:臨時閉庁（システム更新）
CATEGORIES:閉庁
X-MADOGUCHI-VENUE:tansumachi
END:VEVENT
BEGIN:VEVENT
DTSTAMP:20261201T000000Z
DTSTART;TZID=Asia/Tokyo:20270125T090000
DTEND;TZID=Asia/Tokyo:20270125T120000
SUMMARY:UIDのない予定
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n").encode()


def counts(db: Session) -> tuple[int, int, int]:
    return (
        int(db.execute(text("SELECT count(*) FROM session")).scalar_one()),
        int(db.execute(text("SELECT count(*) FROM slot")).scalar_one()),
        int(db.execute(text("SELECT count(*) FROM closure")).scalar_one()),
    )


def test_importing_the_same_calendar_twice_changes_nothing_the_second_time(db: Session) -> None:
    n = next(_uids)
    ics = ward_calendar(f"holiday-{n}@city.example.jp", f"closure-{n}@city.example.jp")
    before = counts(db)
    first = calendar.import_calendar(db, ics=ics)
    assert (len(first.created), len(first.unchanged), len(first.refused)) == (2, 0, 1), (
        first.refused
    )
    after_first = counts(db)
    assert after_first[0] == before[0] + 1  # the holiday session
    assert after_first[1] == before[1] + 4  # 6:00-8:00 in 30-minute slots
    assert after_first[2] == before[2] + 1  # the closure
    second = calendar.import_calendar(db, ics=ics)
    assert (len(second.created), len(second.unchanged), len(second.refused)) == (0, 2, 1)
    assert counts(db) == after_first
    changed = calendar.import_calendar(
        db, ics=ward_calendar(f"holiday-{n}@city.example.jp", f"closure-{n}@city.example.jp", 9)
    )
    assert len(changed.changed) == 1 and len(changed.unchanged) == 1
    assert counts(db) == after_first  # a changed event waits for a manager
    slots = booking.slots_of_day(db, venue_id="yotsuya", day=date(2027, 1, 24))
    assert [s.capacity for s in slots if s.service_id == "pin_reset"] == [6] * 4


def test_a_file_that_is_not_icalendar_is_refused(db: Session) -> None:
    with pytest.raises(BookingError):
        calendar.import_calendar(db, ics=b"this is not a calendar")
