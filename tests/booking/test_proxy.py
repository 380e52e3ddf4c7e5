"""A booking says whether a proxy (代理人) comes in the resident's place, so the counter can
prepare: by the engine on both of its paths (PostgreSQL's one statement, and the hold), through
the JSON API, and kept when the booking moves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from booking import service
from booking.errors import BookingError
from booking.models import Booking
from booking.service import ResidentInput
from tests.conftest import FakeClock, SlotMaker, app_for

API = "/api/v1"


def resident(phone: str, *, proxy: bool = False) -> ResidentInput:
    return ResidentInput(
        name_kana="ヤマダ タロウ",
        phone=phone,
        birth_date=date(1950, 4, 1),
        proxy=proxy,
    )


def stored_proxy(db: Session, booking_id: int) -> bool:
    return bool(db.execute(select(Booking.proxy).where(Booking.id == booking_id)).scalar_one())


@pytest.mark.parametrize("proxy", [True, False])
def test_a_booking_keeps_whether_a_proxy_comes(
    db: Session, make_slot: SlotMaker, *, proxy: bool
) -> None:
    made = service.book(
        db,
        slot_id=make_slot(2),
        party=1,
        resident=resident("090-2100-0001", proxy=proxy),
        channel="web",
    )
    assert made.proxy is proxy
    assert stored_proxy(db, made.id) is proxy
    assert service.get_booking(db, booking_id=made.id).proxy is proxy


def test_a_booking_from_a_hold_keeps_the_proxy(db: Session, make_slot: SlotMaker) -> None:
    hold = service.create_hold(db, slot_id=make_slot(2), seats=1, channel="web")
    made = service.book(
        db,
        hold_id=hold.id,
        party=1,
        resident=resident("090-2100-0002", proxy=True),
        channel="web",
    )
    assert made.proxy is True
    assert stored_proxy(db, made.id) is True


def test_without_a_word_no_proxy_comes(db: Session, make_slot: SlotMaker) -> None:
    made = service.book(
        db,
        slot_id=make_slot(2),
        party=1,
        resident=ResidentInput(
            name_kana="ヤマダ ハナコ", phone="090-2100-0003", birth_date=date(1960, 1, 2)
        ),
        channel="ivr",
    )
    assert made.proxy is False
    assert stored_proxy(db, made.id) is False


def test_a_moved_booking_still_says_a_proxy_comes(db: Session, make_slot: SlotMaker) -> None:
    first, second = make_slot(2), make_slot(2)
    made = service.book(
        db, slot_id=first, party=1, resident=resident("090-2100-0004", proxy=True), channel="web"
    )
    moved = service.reschedule_booking(db, booking_id=made.id, slot_id=second)
    assert moved.slot_id == second
    assert moved.proxy is True


def test_a_retry_with_another_answer_about_the_proxy_is_refused(
    db: Session, make_slot: SlotMaker
) -> None:
    """The proxy is part of the request: the same retry key cannot quietly change it."""
    slot = make_slot(2)
    kwargs: dict[str, Any] = {"slot_id": slot, "party": 1, "channel": "web"}
    service.book(
        db, resident=resident("090-2100-0005", proxy=True), idempotency_key="k-proxy", **kwargs
    )
    again = service.book(
        db, resident=resident("090-2100-0005", proxy=True), idempotency_key="k-proxy", **kwargs
    )
    assert again.proxy is True
    with pytest.raises(BookingError) as refused:
        service.book(db, resident=resident("090-2100-0005"), idempotency_key="k-proxy", **kwargs)
    assert refused.value.code == "idempotency_conflict"


# --- the JSON API ---------------------------------------------------------------------------


@pytest.fixture
def client(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[TestClient]:
    app = app_for(engine, clock, tmp_path)
    with TestClient(app, raise_server_exceptions=False, client=("10.254.0.21", 50000)) as http:
        yield http


def test_the_api_books_with_a_proxy_and_says_so(
    client: TestClient, committed: Any, engine: Engine
) -> None:
    with committed() as db:
        slot = SlotMaker(db)(2)
        db.commit()
    body = {
        "slot_id": slot,
        "name_kana": "ヤマダ タロウ",
        "phone": "090-2100-0006",
        "birth_date": "1950-04-01",
        "proxy": True,
    }
    answer = client.post(f"{API}/bookings", json=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["proxy"] is True
    with committed() as db:
        stored = db.execute(
            select(Booking.proxy).where(Booking.code == answer.json()["code"])
        ).scalar_one()
    assert stored is True
    plain = client.post(
        f"{API}/bookings",
        json={**body, "slot_id": slot, "phone": "090-2100-0007", "proxy": False},
    )
    assert plain.status_code == 201, plain.text
    assert plain.json()["proxy"] is False
