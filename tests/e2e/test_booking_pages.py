"""The resident booking pages in a real browser: a phone in Japanese, on the live server.

The live server's database lives for the whole run, so each test books at its own service,
venue and day (all in December 2026, the month the calendar opens on):

=============================  ============================  ===========================
test                           service / venue               day
=============================  ============================  ===========================
household of three             pickup / main                 2026-12-16 (party 3)
the QR code                    cert_renewal / main           2026-12-16
the countdown                  pin_reset / main              2026-12-16
a mistake in the form          pickup / main                 2026-12-17 (party 2)
the error in the description   pickup / main                 2026-12-18
race for the last seat         pin_reset / yotsuya           2026-12-18 (1 seat a slot)
JavaScript off                 pin_reset / tansumachi        2026-12-21
a lapsed hold                  cert_renewal / enokicho       2026-12-22
accessibility                  pickup / wakamatsucho         2026-12-23, -24, -25
light pages                    application_help / main       2026-12-24
find, move and cancel          pickup / main                 2026-12-28 (party 3)
the printed confirmation       cert_renewal / main           2026-12-16 9:00
=============================  ============================  ===========================

Each booking uses its own phone number (a phone may hold only a few active bookings).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, Response, expect

from booking import service
from booking.context import TOKYO
from tests.e2e.conftest import AssertAccessible, LiveServer, Shot, _new_page

WEEKDAYS_JA = "月火水木金土日"
BOOK = "この内容で予約する"
NOTICE_LABEL = "交付通知書番号（はがきに記載）"
NOTICE_ERROR = "交付通知書番号は英数字3桁・ハイフン・数字6桁で入力してください（例：AB1-234567）。"
TAKEN_TITLE = "選んだ時間は予約できなくなりました"
LAST_SEAT_TAKEN = "直前にほかの方が最後の席を予約しました。"
HOLD_LAPSED = "お取り置きの10分間が過ぎました。"
NEXT_TIMES = "次に空いている時間はこちらです。"
MAIN_OFFICE = "本庁舎 マイナンバーカード交付窓口"
MAIN_ADDRESS = "新宿区歌舞伎町1-4-1 本庁舎1階"
FIND = "予約を確認する"
PAGE_BUDGET = 60_000  # bytes of response bodies (HTML + CSS + anything else) for one page


@dataclass(frozen=True)
class Resident:
    """The person booking, as typed into the details form."""

    name_kana: str
    birth: date
    phone: str


# --- helpers ------------------------------------------------------------------------------


def ja_date(day: date) -> str:
    """A day as the Japanese pages write it: 2026年12月16日(水)."""
    return f"{day.year}年{day.month}月{day.day}日({WEEKDAYS_JA[day.weekday()]})"


def times_path(service_id: str, place: str, day: date, party: int = 1) -> str:
    return f"/book/{service_id}/{place}/{day.isoformat()}?party={party}"


def heading(page: Page) -> Locator:
    return page.get_by_role("heading", level=1)


def time_button(page: Page, starts: str) -> Locator:
    """The button for the time starting at ``starts`` (e.g. "8:30") on a times page."""
    return page.locator("button.time").filter(
        has=page.locator(".clock", has_text=re.compile(rf"(^|\s){re.escape(starts)}([–\s]|$)"))
    )


def navigate(page: Page, action: Callable[[], None]) -> Response:
    """Do ``action`` (a click that submits or follows a link) and return the page's response."""
    with page.expect_navigation() as navigation:
        action()
    response = navigation.value
    assert response is not None
    return response


def press_time(page: Page, starts: str) -> Response:
    """Press a time on a times page (a POST to /hold): the details form or a 'taken' page."""
    button = time_button(page, starts)
    expect(button).to_have_count(1)
    return navigate(page, button.click)


def slot_id_of(page: Page, starts: str) -> str:
    value = time_button(page, starts).get_attribute("value")
    assert value is not None
    return value


def fill_details(page: Page, resident: Resident, notices: tuple[str, ...] = ()) -> None:
    fields = page.get_by_label(NOTICE_LABEL)
    expect(fields).to_have_count(len(notices))
    for i, number in enumerate(notices):
        fields.nth(i).fill(number)
    page.get_by_label("お名前（カタカナ・代表者）").fill(resident.name_kana)
    page.get_by_label("年", exact=True).fill(str(resident.birth.year))
    page.get_by_label("月", exact=True).fill(str(resident.birth.month))
    page.get_by_label("日", exact=True).fill(str(resident.birth.day))
    page.get_by_label("電話番号").fill(resident.phone)


def submit_details(page: Page) -> Response:
    return navigate(page, page.get_by_role("button", name=BOOK).click)


def code_on(page: Page) -> str:
    """The booking code on the confirmation page (shown as "1234 5678"), without the space."""
    shown = page.locator(".code-card .code")
    expect(shown).to_have_text(re.compile(r"^\d{4} \d{4}$"))
    return shown.inner_text().replace(" ", "")


def book_through(
    page: Page,
    server: LiveServer,
    where: tuple[str, str, date],
    resident: Resident,
    notices: tuple[str, ...] = (),
    starts: str = "8:30",
) -> str:
    """Open the day's times, press one, fill in the form and book: the booking code."""
    service_id, place, day = where
    page.goto(server.url(times_path(service_id, place, day, max(1, len(notices)))))
    assert press_time(page, starts).status == 200
    fill_details(page, resident, notices)
    done = submit_details(page)
    assert done.status == 200
    expect(page).to_have_url(server.url("/booking/done"))
    return code_on(page)


def show_wrong_notice(page: Page, server: LiveServer, place: str, day: date) -> Locator:
    """Hold a pickup for one, type a notice number one digit short and submit: the field."""
    page.goto(server.url(times_path("pickup", place, day)))
    assert press_time(page, "8:30").status == 200
    fill_details(page, Resident("サトウ ジロウ", date(1990, 2, 3), "070-3456-7890"), ("AB1-23456",))
    assert submit_details(page).status == 422
    return page.get_by_label(NOTICE_LABEL)


@pytest.fixture
def other_phone(browser: Browser, external_requests: list[str]) -> Iterator[Page]:
    """A second phone: its own browser context (cookies, CSRF token), like another person's."""
    yield from _new_page(browser, external_requests)


# --- 1. the whole booking ------------------------------------------------------------------

HOUSEHOLD_DAY = date(2026, 12, 16)
HOUSEHOLD = Resident("ヤマダ ハナコ", date(1958, 4, 1), "090-1234-5678")
HOUSEHOLD_NOTICES = ("AB1-234567", "AB1-234568", "AB1-234569")


def test_a_household_of_three_books_a_card_pickup(
    live_server: LiveServer, page: Page, screenshot: Shot, external_requests: list[str]
) -> None:
    start = page.goto(live_server.url("/"))
    assert start is not None and start.status == 200
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(heading(page)).to_have_text("来庁予約")
    screenshot(page, "resident-01-start")

    page.get_by_role("link", name=re.compile("マイナンバーカードの受け取り（交付）")).click()
    expect(page).to_have_url(live_server.url("/book/pickup"))
    expect(heading(page)).to_have_text("会場を選ぶ")
    screenshot(page, "resident-02-venues")

    page.get_by_role("link", name=re.compile("^" + MAIN_OFFICE)).click()
    expect(page).to_have_url(live_server.url("/book/pickup/main"))
    expect(heading(page)).to_have_text("日にちを選ぶ")
    expect(page.get_by_role("heading", name="2026年12月")).to_be_visible()
    page.get_by_label("来庁される人数").select_option("3")
    page.get_by_role("button", name="表示").click()
    expect(page).to_have_url(re.compile(r"[?&]party=3(&|$)"))
    expect(page.get_by_label("来庁される人数")).to_have_value("3")
    day = page.get_by_role("link", name=f"{ja_date(HOUSEHOLD_DAY)} 空きあり")  # ○
    expect(day).to_have_text("16○")
    expect(day).to_have_attribute("href", times_path("pickup", "main", HOUSEHOLD_DAY, 3))
    screenshot(page, "resident-03-calendar")

    day.click()
    expect(heading(page)).to_have_text(ja_date(HOUSEHOLD_DAY))
    expect(time_button(page, "8:30")).to_have_text(re.compile(r"8:30–8:45\s+残り6席"))
    screenshot(page, "resident-04-times")

    details = press_time(page, "8:30")
    assert details.status == 200
    expect(page).to_have_url(re.compile(r"/hold/[^/?]+\?place=main$"))
    expect(heading(page)).to_have_text("お客様情報の入力")
    expect(page.locator(".held .when")).to_have_text(f"{ja_date(HOUSEHOLD_DAY)} 8:30–8:45 · 3人")
    expect(page.locator(".held")).to_contain_text("この時間は 10:10 までお取り置きしています。")
    fill_details(page, HOUSEHOLD, HOUSEHOLD_NOTICES)
    screenshot(page, "resident-05-details")

    assert submit_details(page).status == 200
    expect(page).to_have_url(live_server.url("/booking/done"))
    expect(heading(page)).to_have_text("予約が完了しました")
    code = code_on(page)
    assert re.fullmatch(r"\d{8}", code)
    qr = page.locator(".qr svg")
    expect(qr).to_be_visible()
    expect(qr.locator("title")).to_have_text(code)  # the QR code carries this booking's code
    visit = page.locator("dl.visit")
    expect(visit).to_contain_text(f"{ja_date(HOUSEHOLD_DAY)} 8:30–8:45")
    expect(visit).to_contain_text(MAIN_OFFICE)
    expect(visit).to_contain_text(MAIN_ADDRESS)
    expect(visit).to_contain_text("マイナンバーカードの受け取り（交付） · 3人")
    screenshot(page, "resident-06-done")

    with page.expect_download() as downloading:
        page.get_by_role("link", name="カレンダーに追加").click()
    download = downloading.value
    assert download.suggested_filename == "madoguchi-booking.ics"
    ics = Path(download.path()).read_text(encoding="utf-8")
    unfolded = ics.replace("\r\n ", "")  # iCalendar folds long lines
    assert unfolded.startswith("BEGIN:VCALENDAR")
    assert f"UID:booking-{code}@madoguchi" in unfolded
    assert "DTSTART:20261215T233000Z" in unfolded  # 2026-12-16 8:30 in Tokyo
    assert "DTEND:20261215T234500Z" in unfolded
    assert MAIN_OFFICE in unfolded
    assert "BEGIN:VALARM" in unfolded

    with live_server.sessions() as db:
        booked = service.find_booking(db, code=code, phone=HOUSEHOLD.phone)
    assert booked.status == "booked"
    assert booked.channel == "web"
    assert (booked.service_id, booked.venue_id, booked.party_size) == ("pickup", "main", 3)
    assert booked.starts_at == datetime(2026, 12, 16, 8, 30, tzinfo=TOKYO)
    assert booked.name_kana == HOUSEHOLD.name_kana
    assert booked.birth_date == HOUSEHOLD.birth
    assert [m.notice_number for m in booked.members] == list(HOUSEHOLD_NOTICES)
    assert external_requests == []


def test_the_qr_code_is_a_standard_qr_code(live_server: LiveServer, page: Page) -> None:
    qr_booker = Resident("コバヤシ ユウ", date(1995, 5, 5), "080-1111-2222")
    book_through(page, live_server, ("cert_renewal", "main", date(2026, 12, 16)), qr_booker)
    svg = page.locator(".qr svg")
    # Drawn with a viewBox in module units (so CSS sizes it): "0 0 modules modules".
    view_box = (svg.get_attribute("viewBox") or "0 0 0 0").split()
    modules = round(float(view_box[2]))  # quiet zone included
    # A standard QR code is 21x21 modules or more, with a quiet zone of 4 on each side;
    # a Micro QR code is 11 to 17 modules with a quiet zone of 2.
    assert modules >= 21 + 2 * 4, f"{modules} modules: a Micro QR code"


# --- 2. a mistake in the form ---------------------------------------------------------------

MISTAKE_DAY = date(2026, 12, 17)
MISTAKEN = Resident("スズキ イチロウ", date(1975, 11, 3), "080-2345-6789")


def test_a_mistake_is_explained_next_to_its_field_and_nothing_is_lost(
    live_server: LiveServer, page: Page, screenshot: Shot
) -> None:
    page.goto(live_server.url(times_path("pickup", "main", MISTAKE_DAY, 2)))
    assert press_time(page, "8:30").status == 200
    fill_details(page, MISTAKEN, ("AB1-234570", "AB1-23457"))  # the second is a digit short
    page.get_by_label("連絡の言語").select_option("en")

    wrong = submit_details(page)
    assert wrong.status == 422
    notices = page.get_by_label(NOTICE_LABEL)
    error = page.locator(".field-error")
    expect(error).to_have_count(1)  # only the wrong field is marked
    expect(error).to_have_text(NOTICE_ERROR)
    expect(error).to_have_id("notice_1-error")
    expect(notices.nth(1)).to_have_attribute("aria-invalid", "true")
    expect(notices.nth(0)).not_to_have_attribute("aria-invalid", "true")
    # Next to its field: the element right after the second person's input, just below it.
    follows = notices.nth(1).evaluate("el => el.nextElementSibling && el.nextElementSibling.id")
    assert follows == "notice_1-error"
    field_box, error_box = notices.nth(1).bounding_box(), error.bounding_box()
    assert field_box is not None and error_box is not None
    assert 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) < 24
    # Nothing typed is lost, the wrong number included (to correct, not retype).
    expect(notices.nth(0)).to_have_value("AB1-234570")
    expect(notices.nth(1)).to_have_value("AB1-23457")
    expect(page.get_by_label("お名前（カタカナ・代表者）")).to_have_value(MISTAKEN.name_kana)
    expect(page.get_by_label("年", exact=True)).to_have_value("1975")
    expect(page.get_by_label("月", exact=True)).to_have_value("11")
    expect(page.get_by_label("日", exact=True)).to_have_value("3")
    expect(page.get_by_label("電話番号")).to_have_value(MISTAKEN.phone)
    expect(page.get_by_label("連絡の言語")).to_have_value("en")
    expect(page.locator(".held .when")).to_have_text(f"{ja_date(MISTAKE_DAY)} 8:30–8:45 · 2人")
    screenshot(page, "resident-details-error")

    notices.nth(1).fill("AB1-234571")  # corrected; the rest is sent as it was kept
    assert submit_details(page).status == 200
    code = code_on(page)
    with live_server.sessions() as db:
        booked = service.find_booking(db, code=code, phone=MISTAKEN.phone)
    assert [m.notice_number for m in booked.members] == ["AB1-234570", "AB1-234571"]
    assert booked.language == "en"


def test_the_error_is_read_out_with_its_field(live_server: LiveServer, page: Page) -> None:
    field = show_wrong_notice(page, live_server, "main", date(2026, 12, 18))
    expect(field).to_have_attribute("aria-invalid", "true")
    described = re.compile(re.escape(NOTICE_ERROR))
    expect(field).to_have_accessible_description(described, timeout=1_000)  # rendered already


LIVE_REGION = """el => {
  for (let n = el; n; n = n.parentElement) {
    const live = n.getAttribute("aria-live");
    if (live) return live;
    const role = n.getAttribute("role");
    if (role === "timer" || role === "marquee") return "off";
    if (role === "status" || role === "log") return "polite";
    if (role === "alert") return "assertive";
  }
  return "off";
}"""


def test_the_countdown_does_not_speak_every_second(live_server: LiveServer, page: Page) -> None:
    page.goto(live_server.url(times_path("pin_reset", "main", date(2026, 12, 16))))
    assert press_time(page, "8:30").status == 200
    countdown = page.locator(".countdown")
    expect(countdown).to_have_text(re.compile(r"残り"))
    shown = countdown.inner_text()
    expect(countdown).not_to_have_text(shown)  # it ticks
    assert countdown.evaluate(LIVE_REGION) == "off"


# --- 3. two phones race for the last seat ---------------------------------------------------

RACE_DAY = date(2026, 12, 18)


def test_two_phones_race_for_the_last_seat(
    live_server: LiveServer, page: Page, other_phone: Page, screenshot: Shot
) -> None:
    url = live_server.url(times_path("pin_reset", "yotsuya", RACE_DAY))
    first, second = page, other_phone
    for phone in (first, second):
        phone.goto(url)
        expect(time_button(phone, "8:30")).to_contain_text("残り1席")
    slot_id = slot_id_of(first, "8:30")
    assert slot_id_of(second, "8:30") == slot_id  # the same time on both phones

    # Phone A presses first and is given the seat, kept while it fills in the form.
    held = press_time(first, "8:30")
    assert held.status == 200
    expect(heading(first)).to_have_text("お客様情報の入力")
    expect(first.locator(".held .when")).to_have_text(f"{ja_date(RACE_DAY)} 8:30–9:00 · 1人")

    # Phone B presses the same time on its (now stale) page: told, and offered the next times.
    taken = press_time(second, "8:30")
    assert taken.status == 409
    expect(heading(second)).to_have_text(TAKEN_TITLE)
    expect(second.locator(".notice")).to_contain_text(LAST_SEAT_TAKEN)
    expect(second.locator(".notice")).to_contain_text(NEXT_TIMES)
    offered = second.locator('ul.times button[name="slot_id"]')
    expect(offered).not_to_have_count(0)
    assert slot_id not in [o.get_attribute("value") for o in offered.all()]
    next_time = second.locator("button.time").first
    expect(next_time).to_contain_text(f"{ja_date(RACE_DAY)} 9:00")
    expect(next_time).to_contain_text("四谷特別出張所")
    expect(next_time).to_contain_text("残り1席")
    screenshot(second, "resident-last-seat-taken")

    # One press on an offered time keeps it for phone B; phone A's time is still its own.
    again = navigate(second, next_time.click)
    assert again.status == 200
    expect(second.locator(".held .when")).to_have_text(f"{ja_date(RACE_DAY)} 9:00–9:30 · 1人")
    still = first.reload()
    assert still is not None and still.status == 200
    expect(first.locator(".held .when")).to_have_text(f"{ja_date(RACE_DAY)} 8:30–9:00 · 1人")


# --- 4. English -----------------------------------------------------------------------------


def test_the_english_switch_is_remembered(live_server: LiveServer, page: Page) -> None:
    page.goto(live_server.url("/"))
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    switch = page.get_by_role("navigation", name="言語").get_by_role("link", name="English")
    expect(switch).to_be_visible()
    switch.click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(heading(page)).to_have_text("Book an appointment")
    pickup = page.get_by_role("link", name=re.compile("^Card pickup"))
    expect(pickup).to_be_visible()
    expect(page.get_by_role("link", name="日本語", exact=True)).to_be_visible()  # and the way back

    pickup.click()  # the next page's address has no ?lang=: the choice was remembered
    expect(page).to_have_url(live_server.url("/book/pickup"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(heading(page)).to_have_text("Choose a place")
    expect(page.get_by_role("link", name=re.compile("^Main Office"))).to_be_visible()
    page.goto(live_server.url("/"))
    expect(page.locator("html")).to_have_attribute("lang", "en")


# --- 5. JavaScript off ----------------------------------------------------------------------

NO_JS_DAY = date(2026, 12, 21)
NO_JS = Resident("タナカ ミチコ", date(1949, 7, 20), "03-5273-4111")


def test_the_whole_booking_works_without_javascript(
    live_server: LiveServer, page_no_js: Page, screenshot: Shot
) -> None:
    page = page_no_js
    page.goto(live_server.url("/"))
    page.get_by_role("link", name=re.compile("^暗証番号の再設定")).click()
    page.get_by_role("link", name=re.compile("^箪笥町特別出張所")).click()
    expect(page).to_have_url(live_server.url("/book/pin_reset/tansumachi"))
    page.get_by_role("link", name=f"{ja_date(NO_JS_DAY)} 空きあり").click()
    expect(heading(page)).to_have_text(ja_date(NO_JS_DAY))
    assert press_time(page, "8:30").status == 200
    expect(heading(page)).to_have_text("お客様情報の入力")
    expect(page.locator(".countdown")).to_have_text("")  # the countdown script did not run
    fill_details(page, NO_JS)  # no notice numbers for a PIN reset
    assert submit_details(page).status == 200
    expect(page).to_have_url(live_server.url("/booking/done"))
    code = code_on(page)
    expect(page.locator("dl.visit")).to_contain_text("箪笥町特別出張所")
    screenshot(page, "resident-done-no-js")
    with live_server.sessions() as db:
        booked = service.find_booking(db, code=code, phone=NO_JS.phone)
    assert (booked.service_id, booked.venue_id) == ("pin_reset", "tansumachi")
    assert booked.starts_at == datetime(2026, 12, 21, 8, 30, tzinfo=TOKYO)


# --- 6. a lapsed hold ------------------------------------------------------------------------

LAPSE_DAY = date(2026, 12, 22)


def test_a_lapsed_hold_offers_the_next_free_times(
    live_server: LiveServer, page: Page, screenshot: Shot
) -> None:
    page.goto(live_server.url(times_path("cert_renewal", "enokicho", LAPSE_DAY)))
    assert press_time(page, "8:30").status == 200
    expect(page.locator(".held")).to_contain_text("10:10 までお取り置きしています")

    live_server.clock.advance(minutes=11)
    late = page.reload()
    assert late is not None and late.status == 409
    expect(heading(page)).to_have_text(TAKEN_TITLE)
    expect(page.locator(".notice")).to_contain_text(HOLD_LAPSED)
    expect(page.locator(".notice")).to_contain_text(NEXT_TIMES)
    offered = page.locator("button.time")
    expect(offered).not_to_have_count(0)
    expect(offered.first).to_contain_text(ja_date(LAPSE_DAY))
    expect(offered.first).to_contain_text("榎町特別出張所")
    screenshot(page, "resident-hold-lapsed")

    # The offer is one press away: the time is kept again.
    assert navigate(page, offered.first.click).status == 200
    expect(heading(page)).to_have_text("お客様情報の入力")


# --- 7. accessibility ------------------------------------------------------------------------

A11Y = Resident("イトウ サクラ", date(1988, 8, 8), "080-9876-5432")


def _a11y_details_error(page: Page, server: LiveServer) -> None:
    field = show_wrong_notice(page, server, "wakamatsucho", date(2026, 12, 23))
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#notice_0-error")).to_have_text(NOTICE_ERROR)


def _a11y_done(page: Page, server: LiveServer) -> None:
    where = ("pickup", "wakamatsucho", date(2026, 12, 24))
    book_through(page, server, where, A11Y, ("CD2-345678",))


def _a11y_taken(page: Page, server: LiveServer) -> None:
    page.goto(server.url(times_path("pickup", "wakamatsucho", date(2026, 12, 25))))
    assert press_time(page, "8:30").status == 200
    server.clock.advance(minutes=11)
    late = page.reload()
    assert late is not None and late.status == 409


A11Y_STEPS: dict[str, Callable[[Page, LiveServer], object]] = {
    "start": lambda page, server: page.goto(server.url("/")),
    "venues": lambda page, server: page.goto(server.url("/book/pickup")),
    "calendar": lambda page, server: page.goto(server.url("/book/pickup/wakamatsucho?party=1")),
    "times": lambda page, server: page.goto(
        server.url(times_path("pickup", "wakamatsucho", date(2026, 12, 23)))
    ),
    "details-error": _a11y_details_error,
    "done": _a11y_done,
    "taken": _a11y_taken,
}


@pytest.mark.parametrize("step", list(A11Y_STEPS))
def test_pages_meet_wcag_21_aa(
    live_server: LiveServer, page: Page, assert_accessible: AssertAccessible, step: str
) -> None:
    A11Y_STEPS[step](page, live_server)
    expect(page.locator("main h1")).to_be_visible()
    assert_accessible(page)


# --- 8. light pages --------------------------------------------------------------------------

LIGHT = Resident("ワタナベ ケン", date(1970, 1, 15), "090-5555-0101")


def test_pages_are_light_and_stay_on_the_machine(
    live_server: LiveServer, page: Page, external_requests: list[str]
) -> None:
    """Each page of a booking, fetched whole (the harness's routing turns the cache off)."""
    seen: list[Response] = []

    def record(response: Response) -> None:
        seen.append(response)

    page.on("response", record)
    weights: dict[str, dict[str, int]] = {}

    def weigh(name: str) -> None:
        page.wait_for_load_state("load")
        weights[name] = {r.url: 0 if 300 <= r.status < 400 else len(r.body()) for r in seen}
        seen.clear()

    page.goto(live_server.url("/"))
    weigh("start")
    page.get_by_role("link", name=re.compile("^カード申請のお手伝い")).click()
    weigh("venues")
    page.get_by_role("link", name=re.compile("^" + MAIN_OFFICE)).click()
    weigh("calendar")
    page.get_by_role("link", name=f"{ja_date(date(2026, 12, 24))} 空きあり").click()
    weigh("times")
    press_time(page, "8:30")
    weigh("details")
    expect(page.get_by_label("カードに点字表記を希望する")).not_to_be_checked()
    expect(page.get_by_label("電子証明書の搭載を希望する")).to_be_checked()
    fill_details(page, LIGHT)
    submit_details(page)
    weigh("done")
    code_on(page)

    assert external_requests == []
    for name, fetched in weights.items():
        assert all(url.startswith(live_server.base_url) for url in fetched), (name, fetched)
        total = sum(fetched.values())
        assert total < PAGE_BUDGET, f"{name}: {total} bytes ({fetched})"
    start = weights["start"]
    assert sorted(start) == [live_server.url("/"), live_server.url("/static/site.css")]


# --- 9. find, move and cancel a booking ----------------------------------------------------

MANAGE_DAY = date(2026, 12, 28)
MANAGER = Resident("ナカムラ ヨシコ", date(1962, 10, 10), "090-7777-3333")
MANAGER_NOTICES = ("EF3-456789", "EF3-456790", "EF3-456791")  # a household of three


def find_booking(page: Page, code: str, phone: str = "", birth: date | None = None) -> Response:
    """Fill in the lookup form (code, and the phone number or the birth date) and submit."""
    page.get_by_label("予約番号（8桁）").fill(code)
    page.get_by_label("電話番号").fill(phone)
    if birth is not None:
        page.get_by_label("年", exact=True).fill(str(birth.year))
        page.get_by_label("月", exact=True).fill(str(birth.month))
        page.get_by_label("日", exact=True).fill(str(birth.day))
    return navigate(page, page.get_by_role("button", name=FIND).click)


def test_find_move_and_cancel_a_booking(
    live_server: LiveServer,
    page: Page,
    other_phone: Page,
    screenshot: Shot,
    assert_accessible: AssertAccessible,
) -> None:
    where = ("pickup", "main", MANAGE_DAY)
    code = book_through(page, live_server, where, MANAGER, MANAGER_NOTICES)

    # From the start page, as a resident coming back days later would.
    page.goto(live_server.url("/"))
    page.get_by_role("link", name="予約の確認・変更・取消").click()
    expect(page).to_have_url(live_server.url("/manage"))
    assert_accessible(page)

    # A wrong phone number: told beside the code, and what was typed is still there.
    wrong = find_booking(page, code, phone="090-0000-0000")
    assert wrong.status == 404
    expect(page.locator("#code-error")).to_contain_text("予約が見つかりません")
    expect(page.get_by_label("予約番号（8桁）")).to_have_value(code)
    expect(page.get_by_label("電話番号")).to_have_value("090-0000-0000")
    screenshot(page, "manage-01-not-found")

    found = find_booking(page, code, phone=MANAGER.phone)
    assert found.status == 200
    expect(page).to_have_url(live_server.url("/manage/booking"))
    expect(heading(page)).to_have_text("ご予約の内容")
    visit = page.locator("dl.visit")
    expect(visit).to_contain_text(f"{code[:4]} {code[4:]}")
    expect(visit).to_contain_text("予約済み")
    expect(visit).to_contain_text(f"{ja_date(MANAGE_DAY)} 8:30–8:45")
    expect(visit).to_contain_text(MAIN_OFFICE)
    expect(visit).to_contain_text("3人")
    assert_accessible(page)
    screenshot(page, "manage-02-booking")

    # The birth date finds it too (on another phone: the family member without the phone).
    other_phone.goto(live_server.url("/manage"))
    assert find_booking(other_phone, code, birth=MANAGER.birth).status == 200
    expect(other_phone.locator("dl.visit")).to_contain_text(f"{ja_date(MANAGE_DAY)} 8:30–8:45")

    # Move: the calendar and times in move mode, for the same three people.
    page.get_by_role("link", name="日時を変更する").click()
    expect(heading(page)).to_have_text("新しい日にちを選ぶ")
    expect(page.get_by_label("来庁される人数")).to_have_count(0)  # a move keeps the party
    expect(page.locator("main")).to_contain_text("3人分の空きを表示しています")
    page.get_by_role("link", name=f"{ja_date(MANAGE_DAY)} 空きあり").click()
    expect(heading(page)).to_have_text(ja_date(MANAGE_DAY))
    expect(time_button(page, "8:30")).to_contain_text("残り3席")  # its own 3 seats still kept
    assert press_time(page, "9:30").status == 200  # asked once, the new time kept meanwhile
    expect(heading(page)).to_have_text("この日時に変更しますか？")
    moved = navigate(page, page.get_by_role("button", name="はい、変更します").click)
    assert moved.status == 200
    expect(page).to_have_url(live_server.url("/manage/booking?moved=1"))
    expect(page.get_by_role("status")).to_have_text("新しい日時に変更しました。")
    expect(page.locator("dl.visit")).to_contain_text(f"{ja_date(MANAGE_DAY)} 9:30–9:45")
    screenshot(page, "manage-03-moved")
    with live_server.sessions() as db:
        booked = service.find_booking(db, code=code, phone=MANAGER.phone)
    assert booked.status == "booked"
    assert booked.starts_at == datetime(2026, 12, 28, 9, 30, tzinfo=TOKYO)
    assert [m.notice_number for m in booked.members] == list(MANAGER_NOTICES)

    # Cancel: asked first, and "no" changes nothing.
    page.get_by_role("link", name="この予約を取り消す").click()
    expect(heading(page)).to_have_text("この予約を取り消しますか？")
    expect(page.locator("dl.visit")).to_contain_text(f"{ja_date(MANAGE_DAY)} 9:30–9:45")
    assert_accessible(page)
    screenshot(page, "manage-04-cancel-asked")
    page.get_by_role("link", name="いいえ、予約はそのままにする").click()
    expect(page.locator("dl.visit")).to_contain_text("予約済み")

    page.get_by_role("link", name="この予約を取り消す").click()
    cancelled = navigate(page, page.get_by_role("button", name="はい、取り消します").click)
    assert cancelled.status == 200
    expect(page.get_by_role("status")).to_have_text("予約を取り消しました。")
    expect(page.locator("dl.visit")).to_contain_text("取消済み")
    expect(page.get_by_role("link", name="この予約を取り消す")).to_have_count(0)
    expect(page.get_by_role("link", name="日時を変更する")).to_have_count(0)
    screenshot(page, "manage-05-cancelled")
    with live_server.sessions() as db:
        assert service.find_booking(db, code=code, phone=MANAGER.phone).status == "cancelled"

    # The other phone's stale confirmation page cannot cancel twice or move a cancelled booking.
    other_phone.reload()
    expect(other_phone.locator("dl.visit")).to_contain_text("取消済み")


# --- 10. the printed confirmation ------------------------------------------------------------

PRINTER = Resident("オガワ ミノル", date(1980, 3, 3), "080-4444-1212")


def test_the_printed_confirmation_keeps_the_code_and_drops_the_buttons(
    live_server: LiveServer, page: Page, screenshot: Shot
) -> None:
    where = ("cert_renewal", "main", date(2026, 12, 16))
    code = book_through(page, live_server, where, PRINTER, starts="9:00")
    page.emulate_media(media="print")
    expect(page.locator(".code-card .code")).to_have_text(f"{code[:4]} {code[4:]}")
    expect(page.locator(".qr svg")).to_be_visible()
    expect(page.locator("dl.visit")).to_be_visible()
    expect(page.locator("dl.visit")).to_contain_text("お持ちいただくもの")
    expect(page.get_by_role("link", name="カレンダーに追加")).to_be_hidden()
    expect(page.get_by_role("link", name="印刷")).to_be_hidden()
    expect(page.get_by_role("navigation", name="言語")).to_be_hidden()
    expect(page.get_by_role("link", name="予約の確認・変更・取消")).to_be_hidden()
    screenshot(page, "resident-done-printed")
