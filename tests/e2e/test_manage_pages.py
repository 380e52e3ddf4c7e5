"""Managing a booking in a real browser: a move asks once (from → to) before it happens, a
lapsed hold says only that it lapsed, the reminder opt-out is a quiet group of its own, and an
English booking's calendar file is in English.

Each test books at its own branch office and day in January 2027 (the booking pages' tests use
December 2026), with its own phone number:

=================================  ==============================  ===========================
test                               service / venue                 days
=================================  ==============================  ===========================
a move asks once                   pickup / totsuka (party 2)      2027-01-06 → 2027-01-07
a move whose time lapsed or went   pin_reset / ochiai_daiichi      2027-01-06 → 2027-01-07
a lapsed hold (form re-shown)      pin_reset / ochiai_daini        2027-01-08 8:30, 9:00
the countdown runs out             pin_reset / ochiai_daini        2027-01-08 9:30
the reminder opt-out               cert_renewal / totsuka          2027-01-12
an English booking's .ics          cert_renewal / ochiai_daiichi   2027-01-12
=================================  ==============================  ===========================
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from icalendar import Calendar
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import delete

from booking import service
from booking.context import TOKYO
from booking.models import ClientAttempt
from tests.e2e.conftest import AssertAccessible, LiveServer, Shot
from tests.e2e.test_booking_pages import (
    HOLD_LAPSED,
    NEXT_TIMES,
    TAKEN_TITLE,
    Resident,
    book_through,
    fill_details,
    find_booking,
    heading,
    ja_date,
    navigate,
    press_time,
    submit_details,
    time_button,
    times_path,
)

ASK_MOVE = "この日時に変更しますか？"
YES_MOVE = "はい、変更します"
NO_MOVE = "いいえ、今の日時のままにする"
MOVED = "新しい日時に変更しました。"
KEPT_UNTIL = "までお取り置きしています"
KEPT_LAPSED = "お取り置きの時間が過ぎました。"
TOTSUKA = "戸塚特別出張所"
STOP_LABEL = "この電話番号のほかの予約のお知らせも停止する"
STOP_BUTTON = "お知らせを停止する"
# Any kana or kanji: what an English calendar entry must not contain.
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")


@pytest.fixture(autouse=True)
def _no_attempt_limits(live_server: LiveServer) -> Iterator[None]:
    """The per-client limits count every test's lookups and holds from 127.0.0.1 in one window
    of the live server's clock: these tests neither hit them nor use up the others' share."""

    def forget() -> None:
        with live_server.sessions() as db:
            db.execute(delete(ClientAttempt))
            db.commit()

    forget()
    yield
    forget()


def manage(page: Page, server: LiveServer, code: str, phone: str) -> None:
    """Find the booking on /manage, as the resident would."""
    page.goto(server.url("/manage"))
    assert find_booking(page, code, phone=phone).status == 200
    expect(page).to_have_url(server.url("/manage/booking"))


def booked(server: LiveServer, code: str, phone: str) -> service.BookingView:
    with server.sessions() as db:
        return service.find_booking(db, code=code, phone=phone)


def booked_day(server: LiveServer, code: str, phone: str) -> date:
    """The day the booking is on, in Tokyo."""
    return booked(server, code, phone).starts_at.astimezone(TOKYO).date()


def seats_left(server: LiveServer, service_id: str, venue_id: str, when: datetime) -> int:
    """The seats the web can still take at a time (holds count against them)."""
    with server.sessions() as db:
        free = service.availability(
            db,
            service_id=service_id,
            venue_id=venue_id,
            start=when.date(),
            end=when.date(),
            limit=500,
        )
    return next((s.remaining for s in free if s.starts_at == when), 0)


def move_mode(service_id: str, place: str, day: date, party: int = 1) -> str:
    return times_path(service_id, place, day, party) + "&move=1"


# --- 1. a move asks once ----------------------------------------------------------------------

MOVER = Resident("ハヤシ マコト", date(1966, 6, 6), "090-2020-3030")
MOVER_NOTICES = ("GH4-567890", "GH4-567891")
MOVE_FROM = date(2027, 1, 6)
MOVE_TO = date(2027, 1, 7)


def test_a_move_shows_from_and_to_and_waits_for_yes(
    live_server: LiveServer, page: Page, screenshot: Shot, assert_accessible: AssertAccessible
) -> None:
    code = book_through(page, live_server, ("pickup", "totsuka", MOVE_FROM), MOVER, MOVER_NOTICES)
    manage(page, live_server, code, MOVER.phone)
    new_time = datetime(2027, 1, 7, 9, 0, tzinfo=TOKYO)
    free_before = seats_left(live_server, "pickup", "totsuka", new_time)

    page.goto(live_server.url(move_mode("pickup", "totsuka", MOVE_TO, 2)))
    asked = press_time(page, "9:00")
    assert asked.status == 200
    expect(heading(page)).to_have_text(ASK_MOVE)
    before, after = page.locator(".move-from"), page.locator(".move-to")
    expect(before).to_contain_text(f"{ja_date(MOVE_FROM)} 8:30–9:00")
    expect(before).to_contain_text(TOTSUKA)
    expect(before).to_contain_text("2人")
    expect(after).to_contain_text(f"{ja_date(MOVE_TO)} 9:00–9:30")
    expect(after).to_contain_text(TOTSUKA)
    expect(after).to_contain_text("2人")
    # The new time is kept for the party while the resident decides, and says for how long.
    expect(after.locator(".kept")).to_contain_text(f"10:10 {KEPT_UNTIL}")
    expect(after.locator(".countdown")).to_have_text(re.compile("残り"))
    assert seats_left(live_server, "pickup", "totsuka", new_time) == free_before - 2
    assert booked_day(live_server, code, MOVER.phone) == MOVE_FROM  # not yet
    assert_accessible(page)
    screenshot(page, "manage-move-asked")

    # No: the booking stays, and the kept seats go back on sale at once.
    navigate(page, page.get_by_role("button", name=NO_MOVE).click)
    expect(page).to_have_url(live_server.url("/manage/booking"))
    expect(page.locator("dl.visit")).to_contain_text(f"{ja_date(MOVE_FROM)} 8:30–9:00")
    assert seats_left(live_server, "pickup", "totsuka", new_time) == free_before
    # Going back to the question changes nothing either.
    page.go_back()
    expect(page).to_have_url(live_server.url("/manage/booking"))
    expect(page.locator("dl.visit")).to_contain_text(f"{ja_date(MOVE_FROM)} 8:30–9:00")
    assert booked_day(live_server, code, MOVER.phone) == MOVE_FROM

    # Asked again, and yes: moved, with the same two people.
    page.goto(live_server.url(move_mode("pickup", "totsuka", MOVE_TO, 2)))
    assert press_time(page, "9:00").status == 200
    moved = navigate(page, page.get_by_role("button", name=YES_MOVE).click)
    assert moved.status == 200
    expect(page).to_have_url(live_server.url("/manage/booking?moved=1"))
    expect(page.get_by_role("status")).to_have_text(MOVED)
    expect(page.locator("dl.visit")).to_contain_text(f"{ja_date(MOVE_TO)} 9:00–9:30")
    now = booked(live_server, code, MOVER.phone)
    assert now.starts_at == new_time
    assert [m.notice_number for m in now.members] == list(MOVER_NOTICES)
    assert seats_left(live_server, "pickup", "totsuka", new_time) == free_before - 2


# --- 2. a move whose kept time lapsed, or went to someone else ------------------------------

LATE_MOVER = Resident("モリ アキラ", date(1971, 7, 7), "090-4040-5050")
SOMEONE = service.ResidentInput(
    name_kana="ホカノ ヒト", phone="090-6060-7070", birth_date=date(1980, 1, 1)
)


def test_a_lapsed_move_says_so_and_a_time_taken_meanwhile_offers_the_next(
    live_server: LiveServer, page: Page, screenshot: Shot, assert_accessible: AssertAccessible
) -> None:
    where = ("pin_reset", "ochiai_daiichi", MOVE_FROM)
    code = book_through(page, live_server, where, LATE_MOVER)
    manage(page, live_server, code, LATE_MOVER.phone)

    # The question left open past the kept time: only the lapse is said, with the next times.
    page.goto(live_server.url(move_mode("pin_reset", "ochiai_daiichi", MOVE_TO)))
    assert press_time(page, "9:00").status == 200
    expect(heading(page)).to_have_text(ASK_MOVE)
    live_server.clock.advance(minutes=11)
    late = page.reload()
    assert late is not None and late.status == 409
    expect(heading(page)).to_have_text(TAKEN_TITLE)
    expect(page.locator(".notice")).to_contain_text(HOLD_LAPSED)
    expect(page.locator(".notice")).to_contain_text(NEXT_TIMES)
    expect(page.locator("main")).not_to_contain_text(KEPT_UNTIL)
    expect(page.locator("form[action='/manage/move'] button.time")).not_to_have_count(0)
    assert_accessible(page)
    screenshot(page, "manage-move-lapsed")

    # Asked again; while the page is open the hold lapses and someone else takes the time.
    page.goto(live_server.url(move_mode("pin_reset", "ochiai_daiichi", MOVE_TO)))
    target = int(time_button(page, "9:30").get_attribute("value") or 0)
    assert press_time(page, "9:30").status == 200
    expect(page.locator(".move-to")).to_contain_text(f"{ja_date(MOVE_TO)} 9:30–10:00")
    live_server.clock.advance(minutes=11)
    with live_server.sessions() as db:
        service.book(db, slot_id=target, party=1, resident=SOMEONE, channel="agent")
        db.commit()
    refused = navigate(page, page.get_by_role("button", name=YES_MOVE).click)
    assert refused.status == 409
    expect(heading(page)).to_have_text(TAKEN_TITLE)
    expect(page.locator(".notice")).to_contain_text(NEXT_TIMES)
    offered = page.locator("form[action='/manage/move'] button.time")
    expect(offered).not_to_have_count(0)
    assert str(target) not in [o.get_attribute("value") for o in offered.all()]
    assert booked_day(live_server, code, LATE_MOVER.phone) == MOVE_FROM

    # One of the offered times: asked again, then moved.
    assert navigate(page, offered.first.click).status == 200
    expect(heading(page)).to_have_text(ASK_MOVE)
    assert navigate(page, page.get_by_role("button", name=YES_MOVE).click).status == 200
    expect(page.get_by_role("status")).to_have_text(MOVED)
    assert booked_day(live_server, code, LATE_MOVER.phone) == MOVE_TO


# --- 3. a lapsed hold says only that it lapsed ------------------------------------------------

LAPSED_DAY = date(2027, 1, 8)
LAPSER = Resident("キムラ ユキ", date(1984, 4, 4), "080-3030-4040")


def kept_sentence(page: Page) -> Locator:
    return page.locator(".held")


def show_form_again_after_the_lapse(page: Page, server: LiveServer, starts: str) -> None:
    """Hold a time, let the hold lapse while the form is filled in, and send it with a date
    of birth that cannot be: the form comes back, with everything typed kept."""
    page.goto(server.url(times_path("pin_reset", "ochiai_daini", LAPSED_DAY)))
    assert press_time(page, starts).status == 200
    expect(kept_sentence(page)).to_contain_text(KEPT_UNTIL)
    fill_details(page, LAPSER)
    page.get_by_label("月", exact=True).fill("13")
    server.clock.advance(minutes=11)
    assert submit_details(page).status == 422


@pytest.mark.parametrize("script", ["with JavaScript", "without JavaScript"])
def test_a_lapsed_hold_says_only_that_it_lapsed(
    live_server: LiveServer,
    page: Page,
    page_no_js: Page,
    script: str,
    assert_accessible: AssertAccessible,
    screenshot: Shot,
) -> None:
    phone = page if script == "with JavaScript" else page_no_js
    show_form_again_after_the_lapse(phone, live_server, "8:30" if phone is page else "9:00")
    expect(kept_sentence(phone)).to_contain_text(KEPT_LAPSED)
    expect(phone.locator(".held")).not_to_contain_text(KEPT_UNTIL)
    expect(phone.get_by_label("お名前（カタカナ・代表者）")).to_have_value(LAPSER.name_kana)
    if phone is page:
        assert_accessible(phone)
        screenshot(phone, "resident-details-lapsed")


def test_the_countdown_gives_way_to_the_lapse_when_the_time_runs_out(
    live_server: LiveServer, page: Page
) -> None:
    page.goto(live_server.url(times_path("pin_reset", "ochiai_daini", LAPSED_DAY)))
    where = press_time(page, "9:30")
    assert where.status == 200
    live_server.clock.advance(minutes=9, seconds=57)
    assert (page.reload() or where).status == 200  # three seconds left
    expect(kept_sentence(page)).to_contain_text(KEPT_UNTIL)
    expect(kept_sentence(page)).to_contain_text(KEPT_LAPSED, timeout=6_000)
    expect(kept_sentence(page)).not_to_contain_text(KEPT_UNTIL)
    expect(page.locator(".countdown")).to_have_count(0)


# --- 4. the reminder opt-out ------------------------------------------------------------------

QUIET = Resident("サカイ ノゾミ", date(1977, 9, 9), "080-5050-6060")


def test_the_reminder_opt_out_is_a_labelled_quiet_group_apart(
    live_server: LiveServer, page: Page, screenshot: Shot, assert_accessible: AssertAccessible
) -> None:
    code = book_through(page, live_server, ("cert_renewal", "totsuka", date(2027, 1, 12)), QUIET)
    manage(page, live_server, code, QUIET.phone)

    group = page.get_by_role("group", name="お知らせ（SMS・電話）")
    expect(group).to_be_visible()
    box = group.get_by_role("checkbox", name=STOP_LABEL)  # named by its own label
    expect(box).to_be_visible()
    label = group.locator("label", has_text=STOP_LABEL)
    expect(label).to_have_attribute("for", box.get_attribute("id") or "?")
    box_at, label_at = box.bounding_box(), label.bounding_box()
    assert box_at is not None and label_at is not None
    # The label follows its box on the same line, not below it.
    assert label_at["x"] >= box_at["x"] + box_at["width"]
    assert label_at["y"] < box_at["y"] + box_at["height"]
    assert box_at["y"] < label_at["y"] + label_at["height"]

    stop = group.get_by_role("button", name=STOP_BUTTON)
    expect(stop).to_have_class(re.compile(r"\bsecondary\b"))
    move = page.get_by_role("link", name="日時を変更する")
    background = "el => getComputedStyle(el).backgroundColor"
    assert stop.evaluate(background) == "rgb(255, 255, 255)"  # light, outlined
    assert move.evaluate(background) == "rgb(11, 83, 148)"  # the main action, filled
    weight = "el => Number(getComputedStyle(el).fontWeight)"
    assert move.evaluate(weight) > stop.evaluate(weight)
    # Apart from the main actions: below the cancel button, with room between.
    cancel_at = page.get_by_role("link", name="この予約を取り消す").bounding_box()
    group_at = group.bounding_box()
    assert cancel_at is not None and group_at is not None
    assert group_at["y"] >= cancel_at["y"] + cancel_at["height"] + 24
    assert_accessible(page)
    screenshot(page, "manage-booking-opt-out")


# --- 5. an English booking's calendar file ----------------------------------------------------

ENGLISH = Resident("スミス ジョン", date(1990, 12, 1), "080-7070-8080")


def test_an_english_booking_s_calendar_file_is_in_english(
    live_server: LiveServer, page: Page
) -> None:
    page.goto(live_server.url("/?lang=en"))
    page.goto(live_server.url(times_path("cert_renewal", "ochiai_daiichi", date(2027, 1, 12))))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert press_time(page, "8:30").status == 200
    expect(page.locator(".when")).to_contain_text("· 1 person")
    page.get_by_label("Name in katakana or Latin letters (the person booking)").fill(
        ENGLISH.name_kana
    )
    page.get_by_label("Year", exact=True).fill(str(ENGLISH.birth.year))
    page.get_by_label("Month", exact=True).fill(str(ENGLISH.birth.month))
    page.get_by_label("Day", exact=True).fill(str(ENGLISH.birth.day))
    page.get_by_label("Phone number").fill(ENGLISH.phone)
    expect(page.get_by_label("Language for messages")).to_have_value("en")
    assert navigate(page, page.get_by_role("button", name="Book this time").click).status == 200
    code = page.locator(".code-card .code").inner_text().replace(" ", "")
    expect(page.locator("main")).to_contain_text("Certificate renewal · 1 person")

    with page.expect_download() as downloading:
        page.get_by_role("link", name="Add to calendar").click()
    calendar = Calendar.from_ical(Path(downloading.value.path()).read_bytes())
    (event,) = calendar.walk("VEVENT")
    summary, location = str(event["SUMMARY"]), str(event["LOCATION"])
    assert summary == f"Certificate renewal (booking {code})"
    assert location.startswith("Ochiai Daiichi Branch Office")
    assert not JAPANESE.search(summary), summary
    assert not JAPANESE.search(location), location
    assert event["SUMMARY"].params.get("LANGUAGE") == "en"
    assert f"Booking code: {code}" in str(event["DESCRIPTION"])
    assert not JAPANESE.search(str(event["DESCRIPTION"])), event["DESCRIPTION"]
    # One person, said as one; what to bring from the ward's own words.
    assert "Certificate renewal · 1 person\n" in str(event["DESCRIPTION"])
    assert "Bring: Your My Number card, and the expiry notice" in str(event["DESCRIPTION"])
    (alarm,) = event.walk("VALARM")
    assert str(alarm["DESCRIPTION"]).startswith("Tomorrow: Certificate renewal")
    assert event.decoded("DTSTART") == datetime(2027, 1, 12, 8, 30, tzinfo=TOKYO)
