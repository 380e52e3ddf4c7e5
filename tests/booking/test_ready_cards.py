"""The cards that have arrived: the ward's CSV read and checked, the list kept as keyed hashes
only, pickups held to it (refuse and warn), and its rows erased on pickup and under retention."""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from booking import lottery, service
from booking.errors import BookingError
from booking.models import ReadyCard
from booking.service import MemberInput, ResidentInput
from config.db import make_sessionmaker
from tests.booking.test_fairness import notice
from tests.booking.test_lottery import household, new_lottery
from tests.booking.test_pages import FORM, field, hold_first_time
from tests.conftest import FakeClock, SlotMaker, app_for, make_context

VENUES = {"main": "本庁舎", "yotsuya": "四谷特別出張所"}


def pickup(*numbers: str, phone: str = "090-3400-0001") -> ResidentInput:
    return ResidentInput(
        name_kana="カード マチ",
        phone=phone,
        birth_date=date(1972, 5, 5),
        members=[MemberInput(n) for n in numbers],
    )


def mode(db: Session, ready_cards: str) -> None:
    ctx = db.info["booking"]
    db.info["booking"] = dataclasses.replace(ctx, ready_cards=ready_cards)


def arrived(db: Session, *numbers: str, venue: str = "main") -> None:
    body = "交付通知書番号,交付場所\n" + "".join(f"{n},{venue}\n" for n in numbers)
    found = service.read_cards_csv(body.encode(), VENUES)
    assert found.problems == []
    service.import_ready_cards(db, rows=found.rows)


# --- the file --------------------------------------------------------------------------------


def test_a_good_file_is_read_whatever_its_encoding_and_header() -> None:
    a, b = notice(), notice()
    body = f"notice_number,venue\n{a.lower()},main\n{b},四谷特別出張所\n\n{a},main\n"
    for data in (body.encode("utf-8-sig"), body.encode("cp932")):
        found = service.read_cards_csv(data, VENUES)
        assert found.problems == []
        assert [(r.line, r.notice_number, r.venue_id) for r in found.rows] == [
            (2, a, "main"),
            (3, b, "yotsuya"),
        ]
        assert len(found.digest) == 64


def test_each_bad_row_is_named_by_its_line_without_its_number() -> None:
    a = notice()
    body = (
        "交付通知書番号,交付場所\n"
        f"{a},main\n"
        "XX,main\n"  # line 3: not a notice number
        f"{notice()},nowhere\n"  # line 4: no such venue
        "1234 5678 9018,main\n"  # line 5: an individual number
        f"{a},yotsuya\n"  # line 6: the same card at another venue
        "onlyone\n"  # line 7: a column missing
    )
    found = service.read_cards_csv(body.encode(), VENUES)
    assert [p.split(":")[0] for p in found.problems] == [
        "3行目 line 3",
        "4行目 line 4",
        "5行目 line 5",
        "6行目 line 6",
        "7行目 line 7",
    ]
    assert "1234" not in " ".join(found.problems)
    assert "個人番号" in found.problems[2]


def test_a_file_that_is_no_csv_is_refused_not_a_crash() -> None:
    huge = b"A" * 200_000  # past the csv module's field limit
    found = service.read_cards_csv(b"notice_number,venue\nAB1-234567,main\n" + huge, VENUES)
    assert found.problems == ["3行目 line 3: CSVとして読めません the line cannot be read as CSV"]
    found = service.read_cards_csv(b"\xff\xfe\x00\x81", VENUES)
    assert found.rows == [] and found.problems


def test_a_file_without_the_columns_is_refused_whole() -> None:
    found = service.read_cards_csv(b"a,b\nAB1-234567,main\n", VENUES)
    assert found.rows == []
    assert found.problems[0].startswith("1行目 line 1")


def test_the_list_holds_only_keyed_hashes(db: Session) -> None:
    a, b = notice(), notice()
    found = service.read_cards_csv(f"notice_number,venue\n{a},main\n{b},yotsuya\n".encode(), VENUES)
    done = service.import_ready_cards(db, rows=found.rows)
    assert (done.rows, done.venues) == (2, {"main": 1, "yotsuya": 1})
    vault = db.info["booking"].vault
    stored = dict(db.execute(select(ReadyCard.notice_number_hmac, ReadyCard.venue_id)).all())
    assert stored[vault.digest(a)] == "main"
    assert stored[vault.digest(b)] == "yotsuya"
    assert not any(a in h or b in h for h in stored)


def test_a_card_imported_again_moves_to_the_new_venue(db: Session) -> None:
    a = notice()
    arrived(db, a, venue="main")
    arrived(db, a, venue="yotsuya")
    digest = db.info["booking"].vault.digest(a)
    assert db.get(ReadyCard, digest).venue_id == "yotsuya"  # type: ignore[union-attr]


# --- pickups held to the list -----------------------------------------------------------------


@pytest.mark.parametrize("ready_cards", ["off", "warn"])
def test_off_and_warn_book_a_card_not_on_the_list(
    db: Session, make_slot: SlotMaker, ready_cards: str
) -> None:
    mode(db, ready_cards)
    slot = make_slot(2, service="pickup")
    made = service.book(db, slot_id=slot, party=1, resident=pickup(notice()), channel="web")
    assert made.status == "booked"
    expected = [] if ready_cards == "off" else [0]
    assert service.booking_not_ready(db, booking_id=made.id) == expected


def test_refuse_names_the_member_whose_card_has_not_arrived(
    db: Session, make_slot: SlotMaker
) -> None:
    mode(db, "refuse")
    here, elsewhere, missing = notice(), notice(), notice()
    arrived(db, here)
    arrived(db, elsewhere, venue="yotsuya")
    slot = make_slot(3, service="pickup")
    for numbers, member in (((here, missing), 1), ((elsewhere, here), 0)):
        with pytest.raises(BookingError) as refused:
            service.book(db, slot_id=slot, party=2, resident=pickup(*numbers), channel="web")
        assert refused.value.code == "card_not_ready"
        assert refused.value.field == f"members[{member}].notice_number"
        assert refused.value.status == 409
        assert "コールセンター" in refused.value.message("ja")
        assert "call center" in refused.value.message("en")
    made = service.book(db, slot_id=slot, party=1, resident=pickup(here), channel="agent")
    assert made.status == "booked"
    assert service.booking_not_ready(db, booking_id=made.id) == []


def test_refuse_leaves_other_services_alone(db: Session, make_slot: SlotMaker) -> None:
    mode(db, "refuse")
    slot = make_slot(2)
    made = service.book(db, slot_id=slot, party=1, resident=pickup(notice()), channel="web")
    assert made.status == "booked"


def test_refuse_holds_a_booking_from_a_hold_too(db: Session, make_slot: SlotMaker) -> None:
    mode(db, "refuse")
    slot = make_slot(2, service="pickup")
    hold = service.create_hold(db, slot_id=slot, seats=1, channel="ivr")
    with pytest.raises(BookingError, match="card_not_ready"):
        service.book(db, hold_id=hold.id, party=1, resident=pickup(notice()), channel="ivr")
    a = notice()
    arrived(db, a)
    made = service.book(db, hold_id=hold.id, party=1, resident=pickup(a), channel="ivr")
    assert made.status == "booked"


# --- erasure ---------------------------------------------------------------------------------


def _cards(db: Session) -> int:
    return int(db.execute(select(func.count()).select_from(ReadyCard)).scalar_one())


def test_a_card_leaves_the_list_when_picked_up(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    a, b = notice(), notice()
    arrived(db, a, b)
    slot = make_slot(2, service="pickup")
    made = service.book(db, slot_id=slot, party=1, resident=pickup(a), channel="web")
    before = _cards(db)
    service.set_status(db, booking_id=made.id, status="checked_in")
    view, erased = service.complete_pickup(db, booking_id=made.id)
    assert (view.status, erased) == ("completed", 1)
    assert _cards(db) == before - 1
    vault = db.info["booking"].vault
    assert db.get(ReadyCard, vault.digest(a)) is None
    assert db.get(ReadyCard, vault.digest(b)) is not None


def test_cards_leave_the_list_under_the_retention_rule(db: Session, clock: FakeClock) -> None:
    old, new = notice(), notice()
    arrived(db, old)
    clock.advance(days=40)
    arrived(db, new)
    cutoff = clock() - timedelta(days=30)
    assert service.erase_ready_cards(db, before=cutoff) >= 1
    vault = db.info["booking"].vault
    assert db.get(ReadyCard, vault.digest(old)) is None
    assert db.get(ReadyCard, vault.digest(new)) is not None
    assert service.erase_ready_cards(db, before=cutoff, everything=True) >= 1
    assert _cards(db) == 0


# --- the API and the web form, in refuse mode --------------------------------------------------


@pytest.fixture
def refusing_app(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[TestClient]:
    app = app_for(engine, clock, tmp_path)
    app.state.sessions = make_sessionmaker(
        engine, dataclasses.replace(make_context(clock), ready_cards="refuse")
    )
    address = (f"10.252.{secrets.randbelow(256)}.{secrets.randbelow(256)}", 50000)
    with TestClient(app, raise_server_exceptions=False, client=address) as http:
        yield http


def _committed_arrival(http: TestClient, number: str) -> None:
    with http.app.state.sessions() as db:  # type: ignore[attr-defined]
        arrived(db, number)
        db.commit()


def test_the_api_refuses_a_card_not_arrived_with_what_to_do(refusing_app: TestClient) -> None:
    with refusing_app.app.state.sessions() as db:  # type: ignore[attr-defined]
        slot = SlotMaker(db)(2, service="pickup")
        db.commit()
    body = {
        "slot_id": slot,
        "name_kana": "カード マチ",
        "phone": "090-3400-0002",
        "birth_date": "1972-05-05",
        "members": [{"notice_number": notice()}],
    }
    refused = refusing_app.post("/api/v1/bookings", json=body)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("card_not_ready", "members[0].notice_number")
    assert "コールセンター" in error["message"]["ja"]
    assert "call the call center" in error["message"]["en"]
    number = notice()
    _committed_arrival(refusing_app, number)
    booked = refusing_app.post(
        "/api/v1/bookings", json=body | {"members": [{"notice_number": number}]}
    )
    assert booked.status_code == 201, booked.text


def test_the_web_form_says_it_beside_the_notice_number(refusing_app: TestClient) -> None:
    where, details = hold_first_time(refusing_app, "/book/pickup/main/2027-01-14?party=1")
    form = {**FORM, "phone": "090-3400-0003", "csrf": field(details, "csrf")}
    form |= {"party": field(details, "party"), "service": field(details, "service")}
    wrong = refusing_app.post(where, data=form | {"notice_0": notice()}, follow_redirects=False)
    assert wrong.status_code == 409
    beside = re.search(r'id="notice_0-error"[^>]*>(.*?)<', wrong.text, re.S)
    assert beside is not None, wrong.text
    assert "この会場にまだ届いていないようです" in beside.group(1)
    assert 'name="notice_0"' in wrong.text and 'aria-invalid="true"' in wrong.text
    number = notice()
    _committed_arrival(refusing_app, number)
    form |= {"notice_0": number, "csrf": field(wrong.text, "csrf")}
    booked = refusing_app.post(where, data=form, follow_redirects=False)
    assert booked.status_code == 303, booked.text


def test_refuse_holds_a_move_to_another_venue_to_the_list(
    db: Session, make_slot: SlotMaker
) -> None:
    mode(db, "refuse")
    a = notice()
    arrived(db, a)  # at the main office
    slot = make_slot(2, service="pickup")
    made = service.book(db, slot_id=slot, party=1, resident=pickup(a), channel="web")
    later = make_slot(2, service="pickup")  # the main office too: the card is there
    moved = service.reschedule_booking(db, booking_id=made.id, slot_id=later)
    assert moved.slot_id == later
    [elsewhere] = service.availability(
        db, service_id="pickup", venue_id="yotsuya", start=date(2027, 1, 12), limit=1
    )
    with pytest.raises(BookingError) as refused:
        service.reschedule_booking(db, booking_id=made.id, slot_id=elsewhere.id)
    assert refused.value.code == "card_not_ready"
    assert service.get_booking(db, booking_id=made.id).slot_id == later


def test_refuse_holds_a_lottery_application_to_the_list(
    db: Session, make_slot: SlotMaker, clock: FakeClock
) -> None:
    mode(db, "refuse")
    slots = [make_slot(2, service="pickup"), make_slot(2, service="pickup")]
    made = new_lottery(db, clock, slots)
    listed, missing = notice(), notice()
    arrived(db, listed)
    with pytest.raises(BookingError) as refused:
        lottery.apply(
            db,
            lottery_id=made.id,
            party=2,
            resident=household(2, [listed, missing]),
            preferences=slots,
            channel="web",
        )
    assert (refused.value.code, refused.value.field) == (
        "card_not_ready",
        "members[1].notice_number",
    )
    applied = lottery.apply(
        db,
        lottery_id=made.id,
        party=1,
        resident=household(1, [listed]),
        preferences=slots,
        channel="web",
    )
    assert applied.party_size == 1
