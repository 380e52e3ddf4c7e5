"""Checking, moving and cancelling in the LINE chat: a booking made in LINE is listed at once;
another is found by its code and birth date and linked; only a linked booking is changed."""

from __future__ import annotations

from sqlalchemy import select

from booking import service as booking
from booking.models import Booking
from tests.ivr.conftest import new_mobile
from tests.ivr.line_resident import LineApp, Resident, line_app
from tests.ivr.test_line_booking import book_pickup_for_two

__all__ = ["line_app"]


def _booking(line_app: LineApp, code: str) -> booking.BookingView:
    with line_app.sessions() as db:
        booking_id = db.execute(select(Booking.id).where(Booking.code == code)).scalar_one()
        return booking.get_booking(db, booking_id=booking_id)


def test_a_booking_made_in_line_is_listed_and_cancelled(line_app: LineApp) -> None:
    resident = line_app.resident()
    code, _ = book_pickup_for_two(resident, new_mobile())
    resident.says("予約の確認")
    assert f"予約番号 {code}" in resident.said()
    resident.taps("取り消す")
    assert "取り消します。よろしいですか" in resident.said()
    resident.taps("取り消す")
    assert "予約を取り消しました" in resident.said()
    assert _booking(line_app, code).status == "cancelled"


def test_a_booking_made_in_line_is_moved(line_app: LineApp) -> None:
    resident = line_app.resident()
    code, _ = book_pickup_for_two(resident, new_mobile())
    before = _booking(line_app, code)
    resident.says("予約の確認")
    resident.taps("日時を変更")
    assert "新しい日時を選びます" in resident.said()
    resident.taps(resident.choices()[-1])  # a later day
    resident.taps(resident.buttons()[-1])
    assert "に変更します。よろしいですか" in resident.said()
    resident.taps("変更する")
    assert "に変更しました" in resident.said()
    after = _booking(line_app, code)
    assert after.status == "booked"
    assert after.slot_id != before.slot_id
    assert after.code == before.code


def test_a_booking_is_found_by_code_and_birth_date_and_linked(line_app: LineApp) -> None:
    maker = line_app.resident()
    code, _ = book_pickup_for_two(maker, new_mobile())
    other: Resident = line_app.resident()  # the same resident on a new phone
    other.follow()
    other.says("予約の確認")
    assert "結びついた予約はありません" in other.said()
    other.says("12345678")
    assert "8桁の数字" in other.said()  # the check digit catches a slip
    other.says(code)
    other.says("1958-04-02")
    assert "見つかりませんでした" in other.said()
    other.says(code)
    other.says("1958-04-01")
    assert "このLINEに結びつけました" in other.said()
    assert f"予約番号 {code}" in other.said()
    with line_app.sessions() as db:
        found = _booking(line_app, code)
        assert booking.line_user_of(db, booking_id=found.id) == other.user_id


def test_a_booking_not_linked_cannot_be_cancelled_by_a_forged_button(line_app: LineApp) -> None:
    maker = line_app.resident()
    code, _ = book_pickup_for_two(maker, new_mobile())
    found = _booking(line_app, code)
    stranger = line_app.resident()
    stranger.follow()
    stranger.send(stranger.event("postback", postback={"data": f"a=cancel_yes&v={found.id}"}))
    assert "読み取れませんでした" in stranger.said()
    assert _booking(line_app, code).status == "booked"


def test_lookups_are_limited(line_app: LineApp) -> None:
    maker = line_app.resident()
    code, _ = book_pickup_for_two(maker, new_mobile())
    guesser = line_app.resident()
    guesser.follow()
    guesser.says("予約の確認")
    for _ in range(10):
        guesser.says(code)
        guesser.says("1990-01-01")
    guesser.says(code)
    guesser.says("1958-04-01")
    assert "確認の回数が多すぎます" in guesser.said()
