"""The booking hot path on PostgreSQL: what reaches the server for one booking, and in what form
(STYLE 11: one round trip under the slot's lock; statements built once)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH
from sqlalchemy import event
from sqlalchemy.orm import Session

from booking import making, service
from booking.views import ResidentInput
from tests.conftest import SlotMaker


def test_the_booking_statement_is_short_enough_for_psycopg_to_parse_it_once(
    pg_engine: Any,
) -> None:
    """psycopg converts a statement's placeholders anew on every call past 4 kB (a quarter of a
    booking's client CPU, measured): the booking statement, as the driver sees it, stays under."""
    sql = str(making._BOOK_PG.compile(dialect=pg_engine.dialect))
    assert len(sql.encode()) <= MAX_CACHED_STATEMENT_LENGTH
    assert "--" not in sql


def test_a_booking_on_postgresql_is_one_statement(db: Session, make_slot: SlotMaker) -> None:
    """The slot's rules, the seats, the rows and the phone number's active limit: one statement
    (no separate count of the phone's bookings before it)."""
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("the one-statement booking is PostgreSQL's")
    slot = make_slot(5)
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    resident = ResidentInput(name_kana="イッカイ", phone="08011112222", birth_date=date(1990, 1, 1))
    bind = db.connection()
    event.listen(bind, "before_cursor_execute", record)
    try:
        service.book(db, slot_id=slot, party=1, resident=resident, channel="web")
    finally:
        event.remove(bind, "before_cursor_execute", record)
    statements = [s for s in seen if "SAVEPOINT" not in s.upper()]
    assert len(statements) == 1, statements
    assert statements[0].startswith("WITH claimed AS")
