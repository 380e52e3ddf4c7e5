"""The agent console in a real browser, on the live server: signing in, a call arriving in the
live queue from a simulated Twilio call (no reload), a deactivated agent thrown out, and an agent
kept out of supervisor pages.

Accounts are made per test (login IDs are unique); the live server's clock stays at
2026-12-15 10:00, inside call-center hours.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from agent_console import service as staff
from ivr.caller import PhoneCall
from tests.agent_console.second_factor import code_at, enrol
from tests.e2e.conftest import AssertAccessible, LiveServer, Shot, _new_page

PASSWORD = "console e2e password"  # noqa: S105 (a test password)
_people = itertools.count(1)
DESKTOP = {"viewport": {"width": 1280, "height": 800}, "is_mobile": False, "has_touch": False}
_numbers = itertools.count(1_000)
# Second-factor secrets of the accounts made here (supervisors and auditors need one).
TOTP: dict[str, str] = {}
HOMES = {"counter_manager": "/console/manage", "auditor": "/console/audit"}


# The desk phone agents answer on (with Twilio connected, answering needs one).
DESK_PHONE = "03-5273-4999"


def give_desk_phone(server: LiveServer, login: str) -> None:
    with server.sessions() as db:
        [person] = [s for s in staff.list_staff(db) if s.login_id == login]
        staff.set_desk_phone(db, staff_id=person.id, phone=DESK_PHONE)
        db.commit()


def caller_asks_for_a_person(
    server: LiveServer, http: httpx.Client, number: str, *keys: str
) -> PhoneCall:
    """A resident dials in from ``number`` (known to the fake Twilio, so the console can move
    the call) and presses ``keys`` (0 by default: a person)."""
    call = PhoneCall(
        http,
        public_base_url=server.public_base_url,
        auth_token=server.twilio_token,
        from_number=number,
    )
    call.dial()
    server.twilio.inbound(call.call_sid, number, call.to_number)
    for key in keys or ("0",):
        call.press(key)
    return call


def make_person(server: LiveServer, role: str) -> str:
    login = f"e2e-{role}-{next(_people)}"
    with server.sessions() as db:
        made = staff.create_staff(
            db, login_id=login, display_name=f"{role} {login[-1]}", role=role, password=PASSWORD
        )
        if role in staff.SECOND_FACTOR_ALWAYS:
            TOTP[login] = enrol(db, made.id, server.clock.now)
        db.commit()
    return login


def sign_in(page: Page, server: LiveServer, login: str) -> None:
    """Sign in (with the authenticator's code where the account has one); on the role's home."""
    page.goto(server.url("/console/login"))
    page.get_by_label("ログインID").fill(login)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    if login in TOTP:
        expect(page).to_have_url(server.url("/console/login/code"))
        page.get_by_label("認証アプリの6桁のコード").fill(code_at(TOTP[login], server.clock.now))
        page.get_by_role("button", name="確認").click()
    role = login.split("-")[1]
    expect(page).to_have_url(server.url(HOMES.get(role, "/console/")))


@pytest.fixture
def desk(browser: Browser, external_requests: list[str]) -> Iterator[Page]:
    """A desktop browser for staff (the console is used at a desk, not on a phone)."""
    yield from _new_page(browser, external_requests, **DESKTOP)


def test_a_call_arrives_in_the_live_queue(
    live_server: LiveServer, desk: Page, screenshot: Shot, assert_accessible: AssertAccessible
) -> None:
    page = desk
    login = make_person(live_server, "agent")
    sign_in(page, live_server, login)
    expect(page.get_by_role("heading", level=1)).to_have_text("受付キュー")
    expect(page.locator(".waiting-call")).to_have_count(0)
    assert_accessible(page)

    number = f"+81901{next(_numbers):07d}"  # a valid mobile number (090-1xxx-xxxx)
    with httpx.Client(base_url=live_server.base_url, timeout=10) as http:
        call = PhoneCall(
            http,
            public_base_url=live_server.public_base_url,
            auth_token=live_server.twilio_token,
            from_number=number,
        )
        call.dial()
        call.press("0")  # a person, please
        assert call.state == "queued"
        # No reload: the row appears by itself, from the server-sent events.
        row = page.locator(".waiting-call").filter(has_text=number[-4:])
        expect(row).to_have_count(1)
        expect(row).to_contain_text("日本語")
        expect(row).to_contain_text("メニュー：担当者（0） → 担当者へ")
        screenshot(page, "console-01-queue")
        call.press("1")  # a callback instead of waiting
        call.press("1")
        expect(row).to_have_count(0)
        expect(page.locator(".callback").filter(has_text=number[-4:])).to_have_count(1)


def test_a_deactivated_agent_is_thrown_out(live_server: LiveServer, page: Page, desk: Page) -> None:
    """The agent on a small screen (page), the supervisor at a desk."""
    agent = make_person(live_server, "agent")
    supervisor = make_person(live_server, "supervisor")
    sign_in(page, live_server, agent)
    sign_in(desk, live_server, supervisor)
    desk.get_by_role("link", name="職員").click()
    row = desk.locator(".staff-row", has_text=agent)
    row.get_by_role("button", name="無効にする").click()
    expect(desk.locator(".staff-row", has_text=agent)).to_contain_text("無効")
    # The agent's open console notices at its next tick and leaves for the login page.
    expect(page).to_have_url(live_server.url("/console/login"))
    page.goto(live_server.url("/console/bookings"))
    expect(page).to_have_url(live_server.url("/console/login"))


def test_an_agent_cannot_open_supervisor_pages(live_server: LiveServer, page: Page) -> None:
    sign_in(page, live_server, make_person(live_server, "agent"))
    expect(page.get_by_role("link", name="職員")).to_have_count(0)  # not offered
    answer = page.goto(live_server.url("/console/staff"))  # and refused if typed in
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("このページを開く権限がありません")


def test_an_agent_answers_sees_the_screen_pop_books_logs_and_wraps_up(
    live_server: LiveServer, desk: Page, screenshot: Shot, assert_accessible: AssertAccessible
) -> None:
    page = desk
    login = make_person(live_server, "agent")
    sign_in(page, live_server, login)
    # The agent's desk phone for this shift: the caller is put through to it on answering.
    page.get_by_label("応答する電話").fill("03-5273-4999")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_label("応答する電話")).to_have_value("+81352734999")
    number = f"+81901{next(_numbers):07d}"
    with httpx.Client(base_url=live_server.base_url, timeout=10) as http:
        call = PhoneCall(
            http,
            public_base_url=live_server.public_base_url,
            auth_token=live_server.twilio_token,
            from_number=number,
        )
        call.dial()
        live_server.twilio.inbound(call.call_sid, number, call.to_number)
        call.press("9")  # in English
        call.press("0")
        row = page.locator(".waiting-call").filter(has_text=number[-4:])
        expect(row).to_contain_text("English")
        row.get_by_role("button", name="応答").click()

        # The screen pops: the caller, the way through the IVR, no bookings yet.
        # (The answer's redirect and the queue's own screen pop race: either may land.)
        screen = live_server.url(f"/console/calls/{call.call_sid}")
        expect(page).to_have_url(re.compile(re.escape(screen) + r"(\?audio=connected)?$"))
        # Twilio took the caller out of the queue to TwiML that dials the agent's phone. (When
        # the queue's screen pop landed first, the answer may still be on its way to Twilio.)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not [
            u for s, u in live_server.twilio.redirects if s == call.call_sid
        ]:
            time.sleep(0.05)
        [connect_url] = [u for s, u in live_server.twilio.redirects if s == call.call_sid]
        assert connect_url == f"{live_server.public_base_url}/ivr/connect?lang=en"
        expect(page.get_by_role("heading", level=1)).to_have_text("対応中の電話")
        # 090-1xxx-xxxx, as Japanese readers write it, not E.164.
        expect(page.locator(".caller")).to_have_text(f"0{number[3:5]}-{number[5:9]}-{number[9:]}")
        expect(page.locator(".path")).to_contain_text(
            "メニュー：English（9）メニュー：担当者（0）担当者へ担当者が応答"
        )
        expect(page.get_by_text("この番号の予約はありません。")).to_be_visible()
        assert_accessible(page)
        screenshot(page, "console-02-screen-pop")

        # Book a card pickup for two on the caller's behalf, at a branch office.
        page.get_by_role("link", name="この方の予約を取る").click()
        page.get_by_label("会場").select_option("okubo")
        page.get_by_label("人数").select_option("2")
        page.get_by_label("日付").fill("2027-01-06")
        page.get_by_role("button", name="空きを探す").click()
        slot = page.locator(".slot").first
        expect(slot).to_contain_text("大久保特別出張所")
        screenshot(page, "console-03-times")
        slot.get_by_role("button", name="この時間を押さえる").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("予約の内容")
        page.get_by_label("1人目の交付通知書番号").fill("GH5-111111")
        page.get_by_label("2人目の交付通知書番号").fill("GH5-111112")
        page.get_by_label("代表者のお名前（カタカナ）").fill("スミス ジョン")
        page.get_by_label("代表者の生年月日").fill("1975-05-05")
        expect(page.get_by_label("連絡先の電話番号")).to_have_value(number)  # the caller ID
        page.get_by_label("連絡の言語").select_option("en")
        page.get_by_role("button", name="予約する").click()
        done = page.get_by_role("status")
        expect(done).to_contain_text("予約しました。予約番号")
        code = (done.inner_text().split("予約番号 ")[1]).split(" ")[0]
        booked = page.locator(".booking").filter(has_text=code)
        expect(booked).to_contain_text("大久保特別出張所")
        expect(booked).to_contain_text("予約済み")

        # Log the inquiry, linked to the booking, then wrap up.
        page.get_by_label("用件の分類").select_option("booking")
        page.get_by_label("メモ").fill("英語で予約。交付通知書2通を確認。")
        page.get_by_label("対応結果", exact=True).select_option("booked")
        page.get_by_label("関係する予約").select_option(label=code)
        page.get_by_role("button", name="記録する").click()
        expect(page.locator(".inquiry")).to_contain_text("英語で予約。交付通知書2通を確認。")
        screenshot(page, "console-04-inquiry")
        page.get_by_label("この電話の対応結果").select_option("booked")
        page.get_by_role("button", name="後処理を終えて次の電話へ").click()
        expect(page).to_have_url(live_server.url("/console/"))
        call.agent_answers()  # Twilio: the bridged call ended

    with live_server.sessions() as db:
        from booking import service as booking
        from ivr import service as calls

        made = booking.booking_by_code(db, code=code)
        record = calls.get_call(db, call_sid=call.call_sid)
    assert (made.channel, made.party_size, made.language, made.phone) == ("agent", 2, "en", number)
    assert [m.notice_number for m in made.members] == ["GH5-111111", "GH5-111112"]
    assert record is not None
    assert (record.outcome, record.queue_result) == ("handed_to_agent", "bridged")
    assert record.wrapped_at is not None and record.answered_at is not None


def test_a_manager_cuts_capacity_sees_whom_it_strands_and_moves_them(
    live_server: LiveServer, desk: Page, screenshot: Shot, assert_accessible: AssertAccessible
) -> None:
    from datetime import date

    from booking import service as booking
    from booking.context import TOKYO
    from tests.conftest import SlotMaker

    with live_server.sessions() as db:
        slot = SlotMaker(db)(3)
        made = [
            booking.book(
                db,
                slot_id=slot,
                party=party,
                resident=booking.ResidentInput(
                    "マド グチコ", f"+81901{next(_numbers):07d}", date(1980, 2, 2)
                ),
                channel="web",
            )
            for party in (1, 2)
        ]
        db.commit()
    day = made[0].starts_at.astimezone(TOKYO).date().isoformat()
    page = desk
    sign_in(page, live_server, make_person(live_server, "counter_manager"))
    page.get_by_role("link", name="窓口の一日").click()
    page.get_by_label("会場").select_option("main")
    page.get_by_label("日付").fill(day)
    page.get_by_role("button", name="表示").click()
    page.locator(f"#slot-{slot}").check()
    page.get_by_label("新しい定員").fill("1")
    page.get_by_role("button", name="変更する").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("この変更で席を失う予約（1件）")
    expect(page.locator(".stranded")).to_contain_text(made[1].code)  # the later booking
    screenshot(page, "console-06-stranded")
    page.get_by_role("button", name="近い空き時間へ移してお知らせする").click()
    expect(page.get_by_role("status")).to_contain_text("1件の予約を近い時間へ移し")
    # Where it went, to answer the resident who calls about it.
    expect(page.get_by_role("status")).to_contain_text(made[1].code)
    row = page.locator(".slot-row").filter(has=page.locator(f"#slot-{slot}"))
    expect(row.locator(".capacity")).to_have_text("1")
    expect(row.locator(".booked")).to_have_text("1")
    screenshot(page, "console-05-day-view")
    assert_accessible(page)
    with live_server.sessions() as db:
        assert booking.get_booking(db, booking_id=made[1].id).slot_id != slot
        assert booking.get_booking(db, booking_id=made[0].id).slot_id == slot


def test_the_counter_calls_and_completes_a_walk_in(
    live_server: LiveServer, desk: Page, assert_accessible: AssertAccessible
) -> None:
    """A walk-in's number: issued, called (呼出), then done (完了), as a booking's."""
    page = desk
    sign_in(page, live_server, make_person(live_server, "counter_manager"))
    page.goto(live_server.url("/console/manage/counter?venue=main"))
    page.get_by_label("用件").select_option("application_help")
    page.get_by_role("button", name="番号を発行").click()
    issued = page.get_by_role("status").inner_text()
    found = re.search(r"番号は (\d+) 番", issued)
    assert found is not None, issued
    number = found.group(1)
    page.get_by_role("button", name=f"{number}番を呼出").click()
    expect(page.get_by_role("status")).to_contain_text(f"{number}番の方をお呼びしました")
    page.get_by_role("button", name=f"{number}番を完了").click()
    expect(page.get_by_role("status")).to_contain_text(f"{number}番の方の手続きを完了にしました")
    expect(page.get_by_role("button", name=f"{number}番を完了")).to_have_count(0)
    assert_accessible(page)


def test_a_supervisor_picks_the_month_of_the_report(
    live_server: LiveServer, desk: Page, assert_accessible: AssertAccessible
) -> None:
    page = desk
    sign_in(page, live_server, make_person(live_server, "supervisor"))
    page.goto(live_server.url("/console/reports/monthly?month=2026-12"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("2026年12月")
    page.get_by_label("表示する月").fill("2026-11")
    page.get_by_role("button", name="表示").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("2026年11月")
    expect(page.get_by_label("表示する月")).to_have_value("2026-11")
    assert_accessible(page)
