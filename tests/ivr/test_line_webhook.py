"""The LINE webhook: signatures, redeliveries, follow and unfollow, the menu."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import anyio
from sqlalchemy import select

from booking import service as booking
from booking.context import TOKYO
from booking.models import Slot
from ivr.line_api import sign
from ivr.models import LineUser
from tests.ivr.line_resident import SECRET, LineApp, line_app

__all__ = ["line_app"]


def test_an_unsigned_or_wrongly_signed_webhook_is_refused(line_app: LineApp) -> None:
    resident = line_app.resident()
    event = resident.event("follow")
    assert line_app.post([event], signature="").status_code == 403
    assert line_app.post([event], signature="bm90IHRoZSBzaWduYXR1cmU=").status_code == 403
    assert line_app.fake.delivered == []


def test_a_new_friend_is_welcomed_with_the_menu(line_app: LineApp) -> None:
    resident = line_app.resident()
    (reply,) = resident.follow()
    assert reply.kind == "reply"
    assert "予約する" in reply.texts and "予約の確認" in reply.texts


def test_a_redelivered_event_is_answered_once(line_app: LineApp) -> None:
    resident = line_app.resident()
    event = resident.event("message", message={"type": "text", "id": "1", "text": "予約する"})
    assert line_app.post([event]).status_code == 200
    again = dict(event, deliveryContext={"isRedelivery": True})
    assert line_app.post([again]).status_code == 200
    assert len(line_app.fake.delivered) == 1  # neither a second reply nor a push


def test_an_unfollow_marks_the_resident_as_not_following(line_app: LineApp) -> None:
    resident = line_app.resident()
    resident.follow()
    assert resident.unfollow() == []
    with line_app.sessions() as db:
        rows = db.execute(select(LineUser.following)).scalars().all()
    assert False in rows


def test_english_is_one_tap_away(line_app: LineApp) -> None:
    resident = line_app.resident()
    resident.follow()
    resident.taps("English")
    assert "Book" in resident.texts()


def test_the_rich_menus_tiles_are_answered(line_app: LineApp) -> None:
    resident = line_app.resident()
    resident.follow()
    for data, expected in (("a=crowd", "窓口"), ("a=faq", "知りたいこと"), ("a=check", "予約")):
        resident.send(resident.event("postback", postback={"data": data}))
        assert expected in resident.said(), resident.said()
    resident.send(resident.event("postback", postback={"data": "a=faq"}))
    first = resident.choices()[0]
    resident.taps(first)
    assert resident.texts()[0].startswith(first)  # the answer, under its question


def test_a_button_from_an_old_message_shows_the_menu(line_app: LineApp) -> None:
    resident = line_app.resident()
    resident.follow()
    resident.send(resident.event("postback", postback={"data": "a=slot&v=1"}))
    assert "読み取れませんでした" in resident.said()
    assert "予約する" in resident.choices()


def test_a_reply_line_refuses_goes_as_a_push(line_app: LineApp) -> None:
    resident = line_app.resident()
    line_app.fake.fail_next = 1  # the reply meets a 500: not retried (its token is single-use)
    resident.follow()
    assert [d.kind for d in resident.last] == ["push"]
    assert resident.last[0].to == resident.user_id and resident.last[0].retry_key
    assert "予約する" in resident.texts()


def test_line_has_its_answer_before_the_reply_goes(line_app: LineApp) -> None:
    """LINE waits a few seconds at most for a webhook's 200: it goes out first, the reply
    after (here the fake answers the reply a second and a half late)."""
    resident = line_app.resident()
    body = json.dumps({"destination": "Ubot", "events": [resident.event("follow")]}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"x-line-signature", sign(SECRET, body).encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/line/webhook",
        "raw_path": b"/line/webhook",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("10.252.0.1", 50000),
        "server": ("testserver", 443),
        "state": {},
    }
    line_app.fake.delay_seconds = 1.5
    answered: list[tuple[int, float]] = []

    async def call() -> float:
        start = time.monotonic()

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                answered.append((int(str(message["status"])), time.monotonic() - start))

        await line_app.http.app(scope, receive, send)  # type: ignore[arg-type]
        return time.monotonic() - start

    whole = anyio.run(call)
    ((status, at),) = answered
    assert status == 200
    assert at < 1.0 < whole  # the 200 well before the reply was through
    assert [d.kind for d in line_app.fake.delivered] == ["reply"]


def test_a_redelivery_racing_the_first_delivery_is_answered_once(line_app: LineApp) -> None:
    resident = line_app.resident()
    resident.follow()
    before = len(line_app.fake.delivered)
    event = resident.event("message", message={"type": "text", "id": "2", "text": "予約する"})
    start = threading.Barrier(2)
    answers: list[int] = []

    def deliver() -> None:
        start.wait()
        answers.append(line_app.post([event]).status_code)

    racers = [threading.Thread(target=deliver) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert answers == [200, 200]
    assert len(line_app.fake.delivered) - before == 1


def test_a_sticker_is_answered_with_the_menu(line_app: LineApp) -> None:
    resident = line_app.resident()
    sticker = {"type": "sticker", "id": "3", "packageId": "446", "stickerId": "1988"}
    resident.send(resident.event("message", message=sticker))
    assert "予約する" in resident.choices()


def test_the_counter_wait_tile_says_who_waits_now(line_app: LineApp) -> None:
    """窓口の混雑: the day's queue per venue open today, as the crowding pages publish it."""
    with line_app.sessions() as db:
        first = (
            db.execute(
                select(Slot.starts_at)
                .where(Slot.venue_id == "main", Slot.service_id == "pickup", Slot.is_open)
                .order_by(Slot.starts_at)
            )
            .scalars()
            .first()
        )
        assert first is not None
        line_app.clock.set(first.astimezone(TOKYO) + timedelta(minutes=1))
        booking.walk_in(db, venue_id="main", service_id="pickup", party=2)
        db.commit()
    resident = line_app.resident()
    resident.follow()
    resident.send(resident.event("postback", postback={"data": "a=crowd"}))
    said = resident.said()
    assert "いまの窓口の混み具合" in said
    assert "待っている人 1人" in said, said
