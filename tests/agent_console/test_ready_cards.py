"""The cards that have arrived in the console: the managers' upload (checked whole, audited,
stored as hashes), a pickup booked for a caller refused or warned about, the counter's
warning at check-in, and a card's row erased with a record when it is picked up."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

from agent_console import service as staff
from booking import service as booking
from booking.context import TOKYO
from booking.models import ReadyCard
from config.db import make_sessionmaker
from ivr.caller import PhoneCall
from tests.agent_console.test_console import Console, csrf_of, events
from tests.booking.test_fairness import notice
from tests.conftest import FakeClock, SlotMaker, app_for, make_context
from tests.ivr.conftest import PUBLIC, TOKEN, new_mobile


def console_in(engine: Engine, clock: FakeClock, tmp_path: Path, mode: str) -> Iterator[Console]:
    app = app_for(engine, clock, tmp_path, twilio_auth_token=TOKEN, public_base_url=PUBLIC)
    context = dataclasses.replace(make_context(clock), ready_cards=mode)
    app.state.sessions = make_sessionmaker(engine, context)
    with TestClient(app):
        yield Console(app.state.sessions, engine, clock, app)


@pytest.fixture
def refusing(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[Console]:
    yield from console_in(engine, clock, tmp_path, "refuse")


@pytest.fixture
def warning(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[Console]:
    yield from console_in(engine, clock, tmp_path, "warn")


def arrived(console: Console, *numbers: str, venue: str = "main") -> None:
    body = "交付通知書番号,交付場所\n" + "".join(f"{n},{venue}\n" for n in numbers)
    with console.app_sessions() as db:
        _found, done = booking.import_cards_file(db, data=body.encode())
        assert done is not None
        db.commit()


def held_pickup(console: Console, agent: TestClient) -> tuple[str, Response, Response]:
    """A caller handed to the agent, a pickup time at the main office held for them: the
    call's id, its screen and the booking form."""
    with TestClient(console.app) as http:
        call = PhoneCall(http, public_base_url=PUBLIC, auth_token=TOKEN, from_number=new_mobile())
        call.dial()
        call.press("0")
    home = agent.get("/console/")
    agent.post(f"/console/calls/{call.call_sid}/answer", data={"csrf": csrf_of(home.text)})
    screen = agent.get(f"/console/calls/{call.call_sid}")
    times = agent.get(
        f"/console/calls/{call.call_sid}/book", params={"service": "pickup", "venue": "main"}
    )
    slot_id = re.search(r'name="slot_id" value="(\d+)"', times.text)
    assert slot_id, times.text[:500]
    held = agent.post(
        f"/console/calls/{call.call_sid}/book/hold",
        data={"csrf": csrf_of(screen.text), "slot_id": slot_id.group(1), "party": "1"},
    )
    return call.call_sid, screen, held


def book_for_caller(agent: TestClient, screen: Response, held: Response, number: str) -> Response:
    answer: Response = agent.post(
        str(held.url),
        data={
            "csrf": csrf_of(screen.text),
            "phone": new_mobile(),
            "name_kana": "カード マツ",
            "birth_date": "1970-04-04",
            "notice_0": number,
        },
    )
    return answer


# --- the upload ------------------------------------------------------------------------------


def test_managers_upload_the_list_and_it_is_audited(refusing: Console) -> None:
    console = refusing
    agent, _ = console.signed_in("agent")
    assert agent.get("/console/manage/cards").status_code == 403
    manager, login = console.signed_in("counter_manager")
    page = manager.get("/console/manage/cards")
    assert page.status_code == 200
    assert "一覧にない番号の受け取りの予約は、どの窓口でもお断りします" in page.text
    assert "この会場の受け取りの予約は、いまはすべてお断りになります" in page.text  # none at some
    a, b = notice(), notice()
    good = f"交付通知書番号,交付場所\n{a},main\n{b},四谷特別出張所\n".encode("cp932")
    done = manager.post(
        "/console/manage/cards",
        data={"csrf": csrf_of(page.text)},
        files={"file": ("arrived.csv", good, "text/csv")},
    )
    assert done.status_code == 200, done.text[:500]
    assert "2件を取り込みました" in done.text
    with console.app_sessions() as db:
        vault = db.info["booking"].vault
        assert db.get(ReadyCard, vault.digest(a)).venue_id == "main"  # type: ignore[union-attr]
        assert db.get(ReadyCard, vault.digest(b)).venue_id == "yotsuya"  # type: ignore[union-attr]
    [event] = events(console, login_id=login, action="cards.import")
    digest = hashlib.sha256(good).hexdigest()
    assert event.detail == f"sha256={digest} rows=2 venues=main:1,yotsuya:1"
    assert a not in event.detail

    c = notice()
    bad = f"交付通知書番号,交付場所\n{c},main\nAB,main\n".encode()
    refused = manager.post(
        "/console/manage/cards",
        data={"csrf": csrf_of(done.text)},
        files={"file": ("arrived.csv", bad, "text/csv")},
    )
    assert refused.status_code == 422
    assert "取り込んでいません" in refused.text and "3行目 line 3" in refused.text
    with console.app_sessions() as db:
        assert db.get(ReadyCard, vault.digest(c)) is None
    assert len(events(console, login_id=login, action="cards.import")) == 1


# --- a pickup booked for a caller ---------------------------------------------------------------


def test_a_caller_whose_card_has_not_arrived_is_refused_in_the_form(refusing: Console) -> None:
    agent, _ = refusing.signed_in("agent")
    _sid, screen, held = held_pickup(refusing, agent)
    refused = book_for_caller(agent, screen, held, notice())
    assert "この会場にまだ届いていないようです" in refused.text
    assert "コールセンターにお電話ください" in refused.text
    assert 'name="notice_0"' in refused.text  # the form again, to mend the number
    number = notice()
    arrived(refusing, number)
    booked = book_for_caller(agent, screen, held, number)
    assert re.search(r"予約しました。予約番号 \d{8}", booked.text), booked.text[:800]
    assert "届いたカードの一覧にありません" not in booked.text


def test_warn_books_and_tells_the_agent(warning: Console) -> None:
    agent, _ = warning.signed_in("agent")
    _sid, screen, held = held_pickup(warning, agent)
    booked = book_for_caller(agent, screen, held, notice())
    assert re.search(r"予約しました。予約番号 \d{8}", booked.text), booked.text[:800]
    assert "ご注意：1人目の方の交付通知書番号は、この会場に届いたカードの一覧にありません" in (
        booked.text
    )


# --- the counter -------------------------------------------------------------------------------


def test_the_counter_is_warned_at_check_in_and_the_card_leaves_the_list_when_done(
    warning: Console,
) -> None:
    console = warning
    listed, missing = notice(), notice()
    arrived(console, listed)
    with console.app_sessions() as db:
        slot = SlotMaker(db)(4, service="pickup")
        made = [
            booking.book(
                db,
                slot_id=slot,
                party=1,
                resident=booking.ResidentInput(
                    "マド グチコ", new_mobile(), date(1980, 2, 2), members=[booking.MemberInput(n)]
                ),
                channel="web",
            )
            for n in (listed, missing)
        ]
        db.commit()
    console.clock.set(made[0].starts_at.astimezone(TOKYO))
    clerk, _login = console.signed_in("counter_manager")
    page = clerk.get("/console/manage/counter", params={"venue": "main"})
    base = {"csrf": csrf_of(page.text), "venue": "main"}
    fine = clerk.post("/console/manage/counter/check-in", data=base | {"code": made[0].code})
    assert "を受け付けました" in fine.text and "ご注意" not in fine.text
    warned = clerk.post("/console/manage/counter/check-in", data=base | {"code": made[1].code})
    assert "を受け付けました" in warned.text
    assert "ご注意：1人目の方の交付通知書番号は、この会場に届いたカードの一覧にありません" in (
        warned.text
    )

    with console.app_sessions() as db:
        before = staff.erasures(db, limit=1)
        vault = db.info["booking"].vault
    done = clerk.post(f"/console/manage/counter/bookings/{made[0].id}/done", data=base)
    assert "完了にしました" in done.text
    with console.app_sessions() as db:
        assert db.get(ReadyCard, vault.digest(listed)) is None
        [record] = staff.erasures(db, limit=1)
    assert record.scope == "pickup"
    assert record.counts == {"交付済みのカード ready cards picked up": 1}
    assert not before or record.id != before[0].id
    # A booking whose card was never on the list: completed, no record.
    clerk.post(f"/console/manage/counter/bookings/{made[1].id}/done", data=base)
    with console.app_sessions() as db:
        assert staff.erasures(db, limit=1)[0].id == record.id
