"""The counter's tickets (整理券): issued with a mobile number for the alerts, printed at the
receipt printer's width with the QR code of the resident's status page; that page (public) in
the resident's language, reloading by itself until they are called to their desk; a number
left there; a booked resident's page once checked in."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from booking import service as booking
from booking.context import TOKYO
from tests.agent_console.test_console import Console, csrf_of
from tests.agent_console.test_counter import a_full_slot


def issued(console: Console) -> tuple[TestClient, dict[str, str], booking.BookingView]:
    _, made = a_full_slot(console, [1], spare=3)
    console.clock.set(made[0].starts_at.astimezone(TOKYO) + timedelta(minutes=1))
    clerk, _ = console.signed_in("counter_manager")
    page = clerk.get("/console/manage/counter", params={"venue": made[0].venue_id, "desk": "3"})
    assert 'name="desk" value="3"' in page.text
    return clerk, {"csrf": csrf_of(page.text), "venue": made[0].venue_id, "desk": "3"}, made[0]


def test_a_ticket_is_issued_printed_and_followed_by_its_resident(console: Console) -> None:
    clerk, base, made = issued(console)
    walk = clerk.post(
        "/console/manage/counter/walk-in",
        data=base
        | {"service": "application_help", "party": "2", "phone": "090-5555-0101", "language": "en"},
        follow_redirects=False,
    )
    assert walk.status_code == 303
    said = parse_qs(urlsplit(walk.headers["location"]).query)
    number = said["ticket"][0]
    assert said["desk"] == ["3"]
    page = clerk.get(walk.headers["location"])
    assert f"{number}番の整理券を表示・印刷" in page.text

    ticket = clerk.get(
        f"/console/manage/counter/walk-ins/{number}/ticket", params={"venue": made.venue_id}
    )
    assert ticket.status_code == 200
    assert "size: 80mm auto" in ticket.text and "<svg" in ticket.text
    assert f'<p class="number">{number}<span>番</span></p>' in ticket.text
    link = re.search(r"https?://[^<\"]+/queue/([\w-]+)", ticket.text)
    assert link is not None
    token = link.group(1)
    assert "090" not in ticket.text  # nothing personal on the ticket
    narrow = clerk.get(
        f"/console/manage/counter/walk-ins/{number}/ticket",
        params={"venue": made.venue_id, "width": "58"},
    )
    assert "size: 58mm auto" in narrow.text

    resident = TestClient(console.app, base_url="https://madoguchi.example.jp")
    first = resident.get(f"/queue/{token}", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].endswith("?lang=en")
    status = resident.get(first.headers["location"])
    assert f"Ticket {number}" in status.text
    assert 'http-equiv="refresh"' in status.text
    assert "Ahead of you" in status.text and "We will text" in status.text
    assert status.headers["cache-control"] == "no-store"
    still = resident.get(f"/queue/{token}", params={"still": "1"})
    assert 'http-equiv="refresh"' not in still.text

    clerk.post(f"/console/manage/counter/walk-ins/{number}/call", data=base)
    called = resident.get(f"/queue/{token}")
    assert "please go to counter 3 now" in called.text
    clerk.post(f"/console/manage/counter/walk-ins/{number}/done", data=base)
    done = resident.get(f"/queue/{token}")
    assert "no longer in the queue" in done.text
    assert 'http-equiv="refresh"' not in done.text
    assert resident.get("/queue/not-a-ticket-of-ours-at-all").status_code == 404


def test_a_resident_leaves_a_mobile_on_the_status_page(console: Console) -> None:
    clerk, base, _ = issued(console)
    walk = clerk.post(
        "/console/manage/counter/walk-in", data=base | {"service": "application_help"}
    )
    number = re.search(r"当日受付の番号は (\d+) 番です", walk.text)
    assert number is not None
    with console.app_sessions() as db:
        token = booking.ticket_of_number(
            db, venue_id=base["venue"], number=int(number.group(1))
        ).token
    resident = TestClient(console.app, base_url="https://madoguchi.example.jp")
    page = resident.get(f"/queue/{token}")
    assert "順番が近づいたらSMSで知らせる" in page.text
    landline = resident.post(
        f"/queue/{token}/phone", data={"csrf": csrf_of(page.text), "phone": "03-5273-4111"}
    )
    assert landline.status_code == 409 and "携帯電話" in landline.text
    left = resident.post(
        f"/queue/{token}/phone", data={"csrf": csrf_of(landline.text), "phone": "080-7777-0202"}
    )
    assert left.status_code == 200 and "*******0202" in left.text
    assert "080-7777" not in left.text


def test_a_booked_resident_sees_their_place_once_checked_in(console: Console) -> None:
    clerk, base, made = issued(console)
    with console.app_sessions() as db:
        token = booking.booking_queue_token(db, booking_id=made.id)
    resident = TestClient(console.app, base_url="https://madoguchi.example.jp")
    assert "窓口で受付をすると" in resident.get(f"/queue/{token}").text
    clerk.post("/console/manage/counter/check-in", data=base | {"code": made.code})
    waiting = resident.get(f"/queue/{token}")
    assert "前に待っている方" in waiting.text
    clerk.post(f"/console/manage/counter/bookings/{made.id}/call", data=base)
    assert "3番窓口へお越しください" in resident.get(f"/queue/{token}").text
    assert resident.get(f"/queue/b{made.id}-{'0' * 24}").status_code == 404
