"""The manager's day view and the My Number refusal, in a real browser on the live server.

The day view (a venue's ~120 slots of four services): filtered by service and by starting
time through the address (bookmarkable, kept across a change), with counts of what is shown;
its change panel stays within the screen beside any row chosen. The My Number refusal: the
form comes back with the number taken out and the rest kept, and is sent on from there.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import date, time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from agent_console import service as staff
from booking import service as booking
from booking.context import TOKYO
from tests.e2e.conftest import AssertAccessible, LiveServer, Shot, _new_page
from tests.e2e.test_console_pages import DESK_PHONE, HOMES, caller_asks_for_a_person

PASSWORD = "console day password"  # noqa: S105 (a test password)
DESKTOP = {"viewport": {"width": 1280, "height": 800}, "is_mobile": False, "has_touch": False}
DAY = date(2026, 12, 16)  # the live server's clock is 2026-12-15 10:00: all of it ahead
_people = itertools.count(1)
_numbers = itertools.count(5_000)


@pytest.fixture
def desk(browser: Browser, external_requests: list[str]) -> Iterator[Page]:
    """A desktop browser (1280x800): the console is used at a desk."""
    yield from _new_page(browser, external_requests, **DESKTOP)


def signed_in(page: Page, server: LiveServer, role: str) -> None:
    login = f"e2e-day-{role}-{next(_people)}"
    with server.sessions() as db:
        made = staff.create_staff(
            db, login_id=login, display_name=login, role=role, password=PASSWORD
        )
        if role == "agent":  # with Twilio connected, an agent answers through a phone
            staff.set_desk_phone(db, staff_id=made.id, phone=DESK_PHONE)
        db.commit()
    page.goto(server.url("/console/login"))
    page.get_by_label("ログインID").fill(login)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    expect(page).to_have_url(server.url(HOMES.get(role, "/console/")))  # each role's home


def slots_on(server: LiveServer, day: date, venue: str = "main") -> list[booking.SlotDay]:
    with server.sessions() as db:
        return booking.slots_of_day(db, venue_id=venue, day=day)


def starts(slot: booking.SlotDay) -> str:
    return slot.starts_at.astimezone(TOKYO).strftime("%H:%M")


def shown(page: Page) -> list[tuple[str, str]]:
    """The rows on the page: (starting time, service name)."""
    rows = page.locator(".slot-row")
    times = rows.locator("td.time").all_inner_texts()
    return [
        (t[:5], s) for t, s in zip(times, rows.locator("td.service").all_inner_texts(), strict=True)
    ]


def show(page: Page) -> None:
    """The filters sent: the new page loaded before the rows are read."""
    with page.expect_navigation():
        page.get_by_role("button", name="表示", exact=True).click()


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def test_the_day_is_filtered_by_service_and_time_and_the_address_keeps_it(
    live_server: LiveServer, desk: Page, screenshot: Shot, assert_accessible: AssertAccessible
) -> None:
    page = desk
    signed_in(page, live_server, "counter_manager")
    every = slots_on(live_server, DAY)
    page.goto(live_server.url(f"/console/manage?venue=main&day={DAY}"))
    expect(page.locator(".slot-row")).to_have_count(len(every))
    expect(page.locator("#day-count")).to_contain_text(f"{len(every)}枠を表示")

    # One service: only its rows, and how many of the day's they are.
    pins = [s for s in every if s.service_id == "pin_reset"]
    page.get_by_role("checkbox", name=re.compile("^暗証番号の再設定")).check()
    show(page)
    expect(page.locator(".slot-row")).to_have_count(len(pins))
    assert {name for _, name in shown(page)} == {"暗証番号の再設定"}
    expect(page.locator("#day-count")).to_contain_text(
        f"{len(pins)}枠を表示（この日の全{len(every)}枠のうち）"
    )
    assert query_of(page)["service"] == ["pin_reset"]

    # And a time range: slots starting from 13:00 and before 15:00.
    page.get_by_label("から", exact=True).fill("13:00")
    page.get_by_label("より前", exact=True).fill("15:00")
    show(page)
    wanted = [s for s in pins if time(13) <= s.starts_at.astimezone(TOKYO).time() < time(15)]
    assert wanted and len(wanted) < len(pins)
    assert [t for t, _ in shown(page)] == [starts(s) for s in wanted]
    expect(page.locator("#day-count")).to_contain_text(f"{len(wanted)}枠を表示")
    assert_accessible(page)
    screenshot(page, "console-day-filtered")

    # The address is the view: reloaded (or bookmarked), the same rows.
    page.reload()
    assert [t for t, _ in shown(page)] == [starts(s) for s in wanted]
    expect(page.get_by_label("から", exact=True)).to_have_value("13:00")

    # The morning, same service.
    with page.expect_navigation():
        page.get_by_role("link", name=re.compile("^午前")).click()
    morning = [s for s in pins if s.starts_at.astimezone(TOKYO).time() < time(12)]
    assert [t for t, _ in shown(page)] == [starts(s) for s in morning]
    assert query_of(page)["service"] == ["pin_reset"] and "from" not in query_of(page)


def test_values_that_cannot_be_read_are_noted_and_left_out(
    live_server: LiveServer, desk: Page, assert_accessible: AssertAccessible
) -> None:
    page = desk
    signed_in(page, live_server, "counter_manager")
    every = slots_on(live_server, DAY)
    answer = page.goto(
        live_server.url(f"/console/manage?venue=main&day={DAY}&service=nope&from=25:00&to=abc")
    )
    assert answer is not None and answer.status == 200
    notes = page.get_by_role("alert")
    expect(notes).to_contain_text("用件「nope」はないため")
    expect(notes).to_contain_text("開始の時刻「25:00」を読めないため")
    expect(notes).to_contain_text("終了の時刻「abc」を読めないため")
    expect(page.locator(".slot-row")).to_have_count(len(every))
    assert_accessible(page)
    page.goto(live_server.url(f"/console/manage?venue=main&day={DAY}&from=15:00&to=10:00"))
    expect(page.get_by_role("alert")).to_contain_text("終了（10:00）が開始（15:00）より前")
    expect(page.locator(".slot-row")).to_have_count(len(every))


def in_view(page: Page, name: str) -> bool:
    box = page.get_by_role("button", name=name).bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None
    return box["y"] >= 0 and box["y"] + box["height"] <= size["height"]


def test_the_change_panel_is_beside_a_chosen_row_and_a_change_keeps_the_filter(
    live_server: LiveServer, desk: Page, screenshot: Shot, assert_accessible: AssertAccessible
) -> None:
    page = desk
    signed_in(page, live_server, "counter_manager")
    day = date(2026, 12, 17)
    every = slots_on(live_server, day)
    page.goto(live_server.url(f"/console/manage?venue=main&day={day}"))
    # The day's last row, far down the unfiltered table: the change button is on screen.
    last = every[-1]
    page.locator(f"#slot-{last.id}").check()
    assert in_view(page, "変更する")
    expect(page.locator("#picked")).to_contain_text("1枠を選択中")
    expect(page.get_by_label("新しい定員")).to_have_value(str(last.capacity))
    screenshot(page, "console-day-chosen")

    # Filtered to one service in the afternoon, a slot's capacity changed: back to the same view.
    page.goto(
        live_server.url(
            f"/console/manage?venue=main&day={day}&service=cert_renewal&from=12:00&to=16:00"
        )
    )
    rows = [
        s
        for s in every
        if s.service_id == "cert_renewal"
        and time(12) <= s.starts_at.astimezone(TOKYO).time() < time(16)
    ]
    chosen = rows[-1]
    page.locator(f"#slot-{chosen.id}").check()
    assert in_view(page, "変更する")
    page.get_by_label("新しい定員").fill(str(chosen.capacity + 1))
    page.get_by_role("button", name="変更する").click()
    expect(page.get_by_role("status")).to_contain_text("定員を変更しました")
    assert query_of(page)["service"] == ["cert_renewal"]
    assert (query_of(page)["from"], query_of(page)["to"]) == (["12:00"], ["16:00"])
    assert [t for t, _ in shown(page)] == [starts(s) for s in rows]
    row = page.locator(".slot-row").filter(has=page.locator(f"#slot-{chosen.id}"))
    expect(row.locator(".capacity")).to_have_text(str(chosen.capacity + 1))
    assert_accessible(page)


def test_a_change_that_strands_a_booking_comes_back_to_the_filtered_view(
    live_server: LiveServer, desk: Page
) -> None:
    from tests.conftest import SlotMaker

    with live_server.sessions() as db:
        slot = SlotMaker(db)(1, service="pin_reset")
        made = booking.book(
            db,
            slot_id=slot,
            party=1,
            resident=booking.ResidentInput(
                "マド グチコ", f"+81901{next(_numbers):07d}", date(1980, 2, 2)
            ),
            channel="web",
        )
        db.commit()
    day = made.starts_at.astimezone(TOKYO).date()
    page = desk
    signed_in(page, live_server, "counter_manager")
    page.goto(live_server.url(f"/console/manage?venue=main&day={day}&service=pin_reset"))
    page.locator(f"#slot-{slot}").check()
    page.get_by_label("新しい定員").fill("0")
    page.get_by_role("button", name="変更する").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("この変更で席を失う予約（1件）")
    page.get_by_role("button", name="そのまま残す（定員超過を承知）").click()
    expect(page.get_by_role("status")).to_contain_text("1件の予約はそのまま残しました")
    assert query_of(page)["service"] == ["pin_reset"]
    assert {name for _, name in shown(page)} == {"暗証番号の再設定"}


MY_NUMBER = "6214 9832 0257"


def test_a_note_with_a_my_number_comes_back_without_it_and_is_sent_on(
    live_server: LiveServer, desk: Page, screenshot: Shot, assert_accessible: AssertAccessible
) -> None:
    page = desk
    signed_in(page, live_server, "agent")
    number = f"+81901{next(_numbers):07d}"
    with httpx.Client(base_url=live_server.base_url, timeout=10) as http:
        call = caller_asks_for_a_person(live_server, http, number)
        page.locator(".waiting-call").filter(has_text=number[-4:]).get_by_role(
            "button", name="応答"
        ).click()
        screen = live_server.url(f"/console/calls/{call.call_sid}")
        expect(page).to_have_url(re.compile(re.escape(screen) + r"(\?audio=\w+)?$"))

        page.get_by_label("用件の分類").select_option("pin")
        page.get_by_label("メモ").fill(f"暗証番号を忘れた。本人が番号 {MY_NUMBER} を言いかけた。")
        page.get_by_role("button", name="記録する").click()

        # Refused, and given back: the note without the number, focused and marked.
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "マイナンバー（個人番号）は入力できません"
        )
        note = page.get_by_label("メモ")
        expect(note).to_have_value("暗証番号を忘れた。本人が番号 ［番号削除］ を言いかけた。")
        expect(note).to_have_attribute("aria-invalid", "true")
        expect(note).to_be_focused()
        html = page.content()
        for written in (MY_NUMBER, MY_NUMBER.replace(" ", ""), "9832"):
            assert written not in html
        back = page.get_by_role("link", name="送らずに元の画面に戻る")
        assert (back.get_attribute("href") or "").startswith(f"/console/calls/{call.call_sid}")
        assert_accessible(page)
        screenshot(page, "console-my-number")

        # Corrected and sent: the inquiry is logged on the call, its category as chosen.
        note.fill("暗証番号を忘れた。個人番号はお伺いしていないと伝えた。")
        page.get_by_role("button", name="直した内容で送る").click()
        expect(page).to_have_url(screen)
        expect(page.locator(".inquiry")).to_contain_text(
            "暗証番号を忘れた。個人番号はお伺いしていないと伝えた。"
        )
        with live_server.sessions() as db:
            history = staff.inquiries_for(db, phone=number, call_id=None)
        assert [(i.category, i.note) for i in history] == [
            ("暗証番号", "暗証番号を忘れた。個人番号はお伺いしていないと伝えた。")
        ]
        call.agent_answers()
