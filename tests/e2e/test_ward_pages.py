"""Who runs the service, and what residents are told before they give their details, in a real
browser: the ward's name, logo, call center and hours on every page; the purposes of use and the
retention period on the form (利用目的の明示); the privacy page; how to reach each venue; what the
ward asks of proxies; and the agent's words to read to a caller.

Most tests run on a server of their own (``ward_server``), whose settings and ward data a test
may change and restore; the console's booking on behalf of a caller uses the shared live server
(its simulated Twilio), at a venue and day no other test uses (kashiwagi, 2027-01-07).
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agent_console import service as staff
from booking import schedule
from booking.models import Booking, Service, Venue, WardProfile
from booking.pages.ward import WardCache
from config.app import create_app
from config.db import make_engine, make_sessionmaker
from config.migrate import upgrade
from config.sample import sample_ward
from config.settings import Settings
from ivr.caller import PhoneCall
from tests.conftest import FakeClock, make_context
from tests.e2e.conftest import AssertAccessible, LiveServer, Shot, _new_page, _wait_healthy
from tests.e2e.test_booking_pages import (
    Resident,
    code_on,
    fill_details,
    navigate,
    press_time,
    submit_details,
    times_path,
)
from tests.e2e.test_console_pages import DESKTOP, PASSWORD
from tests.live import listening_socket, serving

WARD = "新宿区"
PHONE_SHOWN = "03-1234-5678"
PHONE_LINK = "tel:+81312345678"
HOURS = "平日 8:30〜17:15（土日・祝日・年末年始を除く）"
PRIVACY = "個人情報の取扱い"
MAIN_ACCESS = "西武新宿線「西武新宿駅」徒歩3分"
MAIN_BARRIER_FREE = "正面入口にスロープ"
MAIN_PARKING = "障害者用区画2台"
PIN_RESET_BRING = "マイナンバーカードと本人確認書類。"
PROXY_BOX = "代理人が来庁します"
_agents = itertools.count(1)


class Ticker:
    """A monotonic clock for the ward cache that the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class WardServer:
    base_url: str
    app: FastAPI
    sessions: sessionmaker[Session]
    ticker: Ticker

    def url(self, path: str) -> str:
        return self.base_url + path

    def change(self, edit: Callable[[Session], None]) -> None:
        with self.sessions() as db:
            edit(db)
            db.commit()


@pytest.fixture(scope="module")
def ward_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WardServer]:
    data_dir: Path = tmp_path_factory.mktemp("ward")
    url = f"sqlite:///{data_dir / 'madoguchi.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine, make_context(FakeClock()))
    with sessions() as db:
        schedule.install_ward(db, sample_ward())
        schedule.extend_schedule(db)
        db.commit()
    settings = Settings(
        database_url=url,
        environment="test",
        data_dir=data_dir,
        data_keys=Fernet.generate_key().decode(),
        lookup_key=secrets.token_hex(16),
        twilio_auth_token="ward" * 8,
        public_base_url="http://madoguchi.test",
    )
    app = create_app(settings)
    app.state.sessions = sessions
    ticker = Ticker()
    app.state.ward_cache = WardCache(clock=ticker)
    sock, base_url = listening_socket()
    try:
        with serving(app, sock, name="ward-uvicorn"):
            _wait_healthy(base_url + "/healthz")
            yield WardServer(base_url, app, sessions, ticker)
    finally:
        engine.dispose()


def assert_ward_shown(page: Page, *, hours: str = HOURS) -> None:
    """The header names the ward with its logo; the footer gives the call center's number as
    Japanese readers write it (a tel: link), its hours, and the privacy page."""
    expect(page.locator("header .ward-name")).to_have_text(WARD)
    # The ward's logo file, inline: no request more for the page.
    expect(page.locator("header .ward-name img")).to_have_attribute(
        "src", re.compile(r"^data:image/svg\+xml;base64,")
    )
    phone = page.locator("footer").get_by_role("link", name=PHONE_SHOWN)
    expect(phone).to_have_attribute("href", PHONE_LINK)
    expect(page.locator("footer")).to_contain_text(hours)
    privacy = page.locator("footer").get_by_role("link", name=PRIVACY)
    expect(privacy).to_have_attribute("href", "/privacy")


def book_on(
    page: Page,
    server: WardServer,
    where: tuple[str, str, date],
    phone: str,
    starts: str = "8:30",
    *,
    proxy: bool = False,
) -> str:
    service_id, place, day = where
    page.goto(server.url(times_path(service_id, place, day)))
    assert press_time(page, starts).status == 200
    fill_details(page, Resident("ヤマダ タロウ", date(1950, 4, 1), phone))
    if proxy:
        page.get_by_label(PROXY_BOX).check()
    assert submit_details(page).status == 200
    return code_on(page)


def sign_in_agent(page: Page, sessions: sessionmaker[Session], url: Callable[[str], str]) -> None:
    login = f"ward-agent-{next(_agents)}-{secrets.token_hex(3)}"
    with sessions() as db:
        made = staff.create_staff(
            db, login_id=login, display_name="agent", role="agent", password=PASSWORD
        )
        # With Twilio connected, an agent answers through a phone of their own.
        staff.set_desk_phone(db, staff_id=made.id, phone="03-5273-4999")
        db.commit()
    page.goto(url("/console/login"))
    page.get_by_label("ログインID").fill(login)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    expect(page).to_have_url(url("/console/"))


# --- who runs the service ---------------------------------------------------------------------


def test_every_resident_page_says_who_runs_the_service(
    ward_server: WardServer, page: Page, assert_accessible: AssertAccessible, screenshot: Shot
) -> None:
    day = date(2026, 12, 16)
    steps = [
        ("/", "ward-01-start"),
        ("/book/pin_reset", "ward-02-venues"),
        ("/book/pin_reset/main?month=2026-12", "ward-03-calendar"),
        (times_path("pin_reset", "main", day), "ward-04-times"),
    ]
    for path, name in steps:
        assert (response := page.goto(ward_server.url(path))) is not None
        assert response.status == 200, path
        assert_ward_shown(page)
        assert_accessible(page)
        screenshot(page, name)
    assert press_time(page, "8:30").status == 200  # the details form
    assert_ward_shown(page)
    assert_accessible(page)
    screenshot(page, "ward-05-details")
    fill_details(page, Resident("ヤマダ タロウ", date(1950, 4, 1), "090-3100-0001"))
    assert submit_details(page).status == 200
    code_on(page)
    assert_ward_shown(page)
    assert_accessible(page)
    screenshot(page, "ward-06-done")
    navigate(page, page.locator("footer").get_by_role("link", name=PRIVACY).click)
    expect(page).to_have_url(ward_server.url("/privacy"))
    assert_ward_shown(page)
    assert_accessible(page)


def test_the_ward_data_is_read_again_after_a_minute(ward_server: WardServer, page: Page) -> None:
    page.goto(ward_server.url("/"))
    assert_ward_shown(page)
    old = sample_ward()["ward"]

    def hours(text: str) -> Callable[[Session], None]:
        def edit(db: Session) -> None:
            profile = db.get(WardProfile, 1)
            assert profile is not None
            ja = {**old["texts"]["ja"], "hours": text}
            profile.profile = {**profile.profile, "texts": {**old["texts"], "ja": ja}}

        return edit

    ward_server.change(hours("平日 9:00〜16:00"))
    try:
        page.reload()
        assert_ward_shown(page)  # kept for a minute: one read per process, not per page
        ward_server.ticker.now += 61
        page.reload()
        assert_ward_shown(page, hours="平日 9:00〜16:00")
    finally:
        ward_server.change(hours(old["texts"]["ja"]["hours"]))
        ward_server.ticker.now += 61


# --- purposes of use, retention, the privacy page -----------------------------------------------


def test_the_form_says_what_each_detail_is_for_and_how_long_it_is_kept(
    ward_server: WardServer, page: Page, assert_accessible: AssertAccessible, screenshot: Shot
) -> None:
    page.goto(ward_server.url(times_path("pickup", "main", date(2026, 12, 16))))
    assert press_time(page, "8:30").status == 200
    purpose = page.locator("section.purpose")
    # Stated before the first field a resident types.
    first_field = page.locator("form input:not([type=hidden])").first
    assert purpose.bounding_box()["y"] < first_field.bounding_box()["y"]  # type: ignore[index]
    expect(purpose.locator("#purpose-name")).to_have_text(
        "窓口で、ご本人であることを確認するため。"
    )
    expect(purpose.locator("#purpose-phone")).to_contain_text("前日のお知らせ")
    expect(purpose.locator("#purpose-phone")).to_contain_text("ご連絡するため")
    expect(purpose.locator("#purpose-birth")).to_contain_text("電話やウェブで予約を確認・変更する")
    expect(purpose.locator("#purpose-notice")).to_contain_text("カードを準備しておくため")
    expect(purpose.locator(".retention")).to_contain_text("来庁予定日")
    expect(purpose.locator(".retention")).to_contain_text("30日後に消去します")
    expect(purpose.locator(".handler")).to_contain_text("新宿区 戸籍住民課が管理します")
    expect(purpose).to_contain_text("マイナンバー（個人番号）はお伺いしません。")
    assert_accessible(page)
    screenshot(page, "ward-07-purposes")

    settings = ward_server.app.state.settings
    ward_server.app.state.settings = settings.model_copy(update={"retention_days": 90})
    try:
        page.reload()
        expect(purpose.locator(".retention")).to_contain_text("90日後に消去します")
        page.goto(ward_server.url("/privacy"))
        expect(page.locator(".retention")).to_contain_text("来庁予定日から90日後に消去します")
    finally:
        ward_server.app.state.settings = settings


def test_a_service_without_notice_numbers_does_not_explain_them(
    ward_server: WardServer, page: Page
) -> None:
    page.goto(ward_server.url(times_path("pin_reset", "main", date(2026, 12, 17))))
    assert press_time(page, "8:30").status == 200
    expect(page.locator("section.purpose #purpose-name")).to_be_visible()
    expect(page.locator("section.purpose #purpose-notice")).to_have_count(0)


def test_the_privacy_page_in_japanese_and_english(
    ward_server: WardServer, page: Page, assert_accessible: AssertAccessible, screenshot: Shot
) -> None:
    page.goto(ward_server.url("/privacy"))
    expect(page.get_by_role("heading", level=1)).to_have_text(PRIVACY)
    for heading in ("お伺いする情報と利用目的", "保存期間", "取り扱う者と委託", "お問い合わせ"):
        expect(page.get_by_role("heading", level=2, name=heading)).to_be_visible()
    main = page.locator("main")
    expect(main).to_contain_text("窓口で、ご本人であることを確認するため。")
    expect(main.locator(".retention")).to_contain_text("来庁予定日から30日後に消去します")
    expect(main.locator(".handler")).to_contain_text("コールセンター事業者")
    expect(main).to_contain_text("再委託")
    expect(main.locator(".no-my-number")).to_contain_text(
        "マイナンバー（個人番号）はお伺いしません"
    )
    expect(main.locator(".privacy-contact")).to_contain_text(
        "個人情報の取扱いについてのお問い合わせ：新宿区 戸籍住民課"
    )
    assert_accessible(page)
    screenshot(page, "ward-08-privacy-ja")

    page.goto(ward_server.url("/privacy?lang=en"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "How we handle your personal information"
    )
    main = page.locator("main")
    expect(main.locator(".retention")).to_contain_text("erased 30 days after the day of your visit")
    expect(main.locator(".handler")).to_contain_text("Family Register and Residents Division")
    expect(main.locator(".no-my-number")).to_contain_text("We never ask for your My Number")
    expect(page.locator("header .ward-name")).to_have_text("Shinjuku City")
    assert_accessible(page)
    screenshot(page, "ward-09-privacy-en")

    page.goto(ward_server.url("/privacy?lang=ko"))
    expect(page.get_by_role("heading", level=1)).to_have_text("개인정보의 취급")
    expect(page.locator("header .ward-name")).to_have_text("신주쿠구")

    # A language the ward does not offer (MADOGUCHI_LANGUAGES), or none of the list: back to
    # the same page without it (a 303), in the language remembered, rather than failing.
    response = page.goto(ward_server.url("/privacy?lang=fr"))
    assert response is not None and response.status == 200
    assert response.request.redirected_from is not None
    expect(page).to_have_url(ward_server.url("/privacy"))
    expect(page.get_by_role("heading", level=1)).to_have_text("개인정보의 취급")
    page.goto(ward_server.url("/privacy?lang=ja"))  # the language cookie back to Japanese


# --- venues, the confirmation, proxies ------------------------------------------------------------


def test_each_venue_says_how_to_get_there(
    ward_server: WardServer, page: Page, assert_accessible: AssertAccessible
) -> None:
    page.goto(ward_server.url("/book/pin_reset"))
    main = page.locator("ul.choices li").filter(has_text="本庁舎")
    expect(main.locator(".venue-access")).to_have_text(
        "交通：" + MAIN_ACCESS + "、JR「新宿駅」東口から徒歩7分"
    )
    expect(main.locator(".venue-barrier_free")).to_contain_text(MAIN_BARRIER_FREE)
    expect(main.locator(".venue-parking")).to_contain_text(MAIN_PARKING)
    expect(page.locator(".venue-access")).to_have_count(11)  # every venue, from the ward's file
    assert_accessible(page)


def test_the_confirmation_gives_address_access_and_what_to_bring_from_the_ward_data(
    ward_server: WardServer, page: Page, assert_accessible: AssertAccessible
) -> None:
    book_on(page, ward_server, ("pin_reset", "main", date(2026, 12, 18)), "090-3100-0002")
    visit = page.locator("dl.visit")
    expect(visit.locator(".venue-address")).to_have_text("新宿区歌舞伎町1-4-1 本庁舎1階")
    expect(visit.locator(".venue-access")).to_contain_text(MAIN_ACCESS)
    expect(visit.locator(".venue-barrier_free")).to_contain_text(MAIN_BARRIER_FREE)
    expect(visit.locator(".venue-parking")).to_contain_text(MAIN_PARKING)
    expect(visit.locator(".bring")).to_have_text(PIN_RESET_BRING)
    expect(visit.locator(".proxy-note")).to_have_count(0)
    assert_accessible(page)

    ward = sample_ward()
    main_texts = next(v["texts"] for v in ward["venues"] if v["id"] == "main")
    pin_texts = next(s["texts"] for s in ward["services"] if s["id"] == "pin_reset")

    def edit(access: str, bring: str) -> Callable[[Session], None]:
        def apply(db: Session) -> None:
            venue, item = db.get(Venue, "main"), db.get(Service, "pin_reset")
            assert venue is not None and item is not None
            venue.texts = {**main_texts, "ja": {**main_texts["ja"], "access": access}}
            item.texts = {**pin_texts, "ja": {**pin_texts["ja"], "bring": bring}}

        return apply

    ward_server.change(
        edit("都営新宿線「新宿三丁目駅」徒歩5分", "カードと写真付きの本人確認書類。")
    )
    try:
        page.reload()
        expect(visit.locator(".venue-access")).to_have_text("都営新宿線「新宿三丁目駅」徒歩5分")
        expect(visit.locator(".bring")).to_have_text("カードと写真付きの本人確認書類。")
    finally:
        ward_server.change(edit(main_texts["ja"]["access"], pin_texts["ja"]["bring"]))


def test_the_service_page_gives_the_wards_rules_for_proxies_and_children(
    ward_server: WardServer, page: Page
) -> None:
    page.goto(ward_server.url("/"))
    rules = page.locator("section.rules")
    expect(rules.locator(".rule-proxy")).to_contain_text("委任状をお持ちください")
    expect(rules.locator(".rule-children")).to_contain_text("15歳未満の方と成年被後見人の方は")
    pin_reset = page.locator(".choice").filter(has_text="暗証番号の再設定")
    expect(pin_reset).to_contain_text(PIN_RESET_BRING)


def test_a_proxy_booked_on_the_web_is_stored_and_shown_to_the_counter(
    ward_server: WardServer, page: Page, assert_accessible: AssertAccessible, screenshot: Shot
) -> None:
    page.goto(ward_server.url(times_path("pin_reset", "main", date(2026, 12, 21))))
    assert press_time(page, "8:30").status == 200
    box = page.get_by_label(PROXY_BOX)
    expect(box).not_to_be_checked()
    expect(page.locator("#proxy-hint")).to_contain_text("委任状")
    page.get_by_label("電話番号").fill("090-3100-0003")  # a mistake elsewhere keeps the box
    box.check()
    assert submit_details(page).status == 422
    expect(page.get_by_label(PROXY_BOX)).to_be_checked()
    fill_details(page, Resident("ヤマダ ハナコ", date(1960, 2, 3), "090-3100-0003"))
    assert submit_details(page).status == 200
    code = code_on(page)
    expect(page.locator("dl.visit .proxy-note")).to_contain_text("代理人が来庁します。")
    expect(page.locator("dl.visit .proxy-note")).to_contain_text("委任状")
    assert_accessible(page)
    screenshot(page, "ward-10-done-proxy")
    with ward_server.sessions() as db:
        stored = db.execute(select(Booking.id, Booking.proxy).where(Booking.code == code)).one()
    assert stored.proxy is True

    # The counter sees it on the console's booking page.
    sign_in_agent(page, ward_server.sessions, ward_server.url)
    page.goto(ward_server.url(f"/console/bookings/{stored.id}"))
    expect(page.locator("dd.proxy")).to_contain_text("代理人が来庁します")
    assert_accessible(page)


# --- the console: what the agent reads to the caller ---------------------------------------------


def test_the_agent_reads_the_purposes_to_the_caller_and_books_a_proxy(
    live_server: LiveServer,
    browser_desk: Page,
    assert_accessible: AssertAccessible,
    screenshot: Shot,
) -> None:
    page = browser_desk
    sign_in_agent(page, live_server.sessions, live_server.url)
    number = "+819031009999"
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
        call.press("0")  # an agent, please
        row = page.locator(".waiting-call").filter(has_text=number[-4:])
        row.get_by_role("button", name="応答").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("対応中の電話")
        page.get_by_role("link", name="この方の予約を取る").click()
        page.get_by_label("会場").select_option("kashiwagi")
        page.get_by_label("日付").fill("2027-01-07")
        page.get_by_role("button", name="空きを探す").click()
        page.locator(".slot").first.get_by_role("button", name="この時間を押さえる").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("予約の内容")

        read_out = page.locator("section.read-out")
        expect(read_out.locator(".read-out-ja")).to_contain_text("お名前（カタカナ）、生年月日")
        expect(read_out.locator(".read-out-ja")).to_contain_text("交付通知書の番号")
        expect(read_out.locator(".read-out-ja")).to_contain_text("来庁予定日から30日後に消去します")
        expect(read_out.locator(".read-out-en")).to_contain_text("erase them 30 days after")
        # Read before the first question: above the form's first field.
        first_field = page.get_by_label("1人目の交付通知書番号")
        assert read_out.bounding_box()["y"] < first_field.bounding_box()["y"]  # type: ignore[index]
        expect(page.get_by_label("連絡の言語")).to_have_value("en")  # the caller's language
        assert_accessible(page)
        screenshot(page, "ward-11-console-read-out")

        first_field.fill("KW1-700001")
        page.get_by_label("代表者のお名前（カタカナ）").fill("スミス ジョン")
        page.get_by_label("代表者の生年月日").fill("1975-05-05")
        page.get_by_label(PROXY_BOX).check()
        page.get_by_role("button", name="予約する").click()
        done = page.get_by_role("status")
        expect(done).to_contain_text("予約しました。予約番号")
        code = done.inner_text().split("予約番号 ")[1].split(" ")[0]
    with live_server.sessions() as db:
        stored = db.execute(select(Booking.id, Booking.proxy).where(Booking.code == code)).one()
    assert stored.proxy is True
    page.goto(live_server.url(f"/console/bookings/{stored.id}"))
    expect(page.locator("dd.proxy")).to_contain_text("代理人が来庁します")


@pytest.fixture
def browser_desk(browser: Browser, external_requests: list[str]) -> Iterator[Page]:
    """A desktop browser, as the console is used."""
    yield from _new_page(browser, external_requests, **DESKTOP)
