"""The details form in a real browser: every mistake at once, names by the page's language, the
contact languages, and birth dates in a Japanese era, on a phone and on a desktop.

Each test books at its own venue and day (January 2027, clear of test_booking_pages.py):

==============================  ==============================  ===========================
test                            service / venue                 day
==============================  ==============================  ===========================
an empty form                   pickup / totsuka                2027-01-12 (party 2)
three mistakes at once          pickup / ochiai_daini           2027-01-12
checkboxes and era kept         application_help / main         2027-01-12 (party 2)
a Latin name, Japanese page     pin_reset / totsuka             2027-01-13
a Latin name, English page      pin_reset / tsunohazu           2027-01-13
contact in Korean               pin_reset / ochiai_daini        2027-01-14
the desktop and an era date     pin_reset / totsuka             2027-01-14
a small phone (held only)       pin_reset / totsuka             2027-01-15
==============================  ==============================  ===========================
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

import pytest
from playwright.sync_api import Browser, Locator, Page, Response, expect

from booking import service
from tests.e2e.conftest import AssertAccessible, LiveServer, Shot, _new_page
from tests.e2e.test_booking_pages import NOTICE_LABEL, code_on, navigate, press_time, times_path

NAME_JA = "お名前（カタカナ・代表者）"
KATAKANA_ONLY = "お名前はカタカナで入力してください（例：ヤマダ ハナコ）。漢字やローマ字では受け付けできません。"
NOTICE_ERROR = "交付通知書番号は英数字3桁・ハイフン・数字6桁で入力してください（例：AB1-234567）。"
PHONE_ERROR = "電話番号が正しくありません。市外局番から入力してください（例：090-1234-5678）。"
BIRTH_ERROR = "生年月日が正しくありません。"


def open_form(page: Page, server: LiveServer, where: str, lang: str = "") -> None:
    page.goto(server.url(where + (f"&lang={lang}" if lang else "")))
    assert press_time(page, "8:30").status == 200


def submit_details(page: Page) -> Response:
    """Press the form's button (in any language)."""
    return navigate(page, page.locator("form button.primary").click)


def summary(page: Page) -> Locator:
    return page.get_by_role("alert").filter(has=page.get_by_role("heading"))


def summary_targets(page: Page) -> list[str]:
    links = summary(page).get_by_role("link")
    return [str(links.nth(i).get_attribute("href")) for i in range(links.count())]


def assert_marked(page: Page, field_id: str, message: str) -> None:
    """The field is marked wrong, described by its own message, which stands right beside it."""
    field = page.locator(f"#{field_id}")
    expect(field).to_have_attribute("aria-invalid", "true")
    error_id = {"birth_era": "birth_date"}.get(field_id, field_id) + "-error"
    expect(page.locator(f"#{error_id}")).to_have_text(message)
    described = str(field.get_attribute("aria-describedby"))
    assert error_id in described.split(), described
    expect(field).to_have_accessible_description(re.compile(re.escape(message)))


def fill_birth(page: Page, year: str, month: str, day: str, era: str = "") -> None:
    page.locator("#birth_era").select_option(era)
    page.locator("#birth_year").fill(year)
    page.locator("#birth_month").fill(month)
    page.locator("#birth_day").fill(day)


# --- every mistake at once ----------------------------------------------------------------


def test_an_empty_form_shows_every_mistake_at_once(
    live_server: LiveServer, page: Page, screenshot: Shot, assert_accessible: AssertAccessible
) -> None:
    open_form(page, live_server, times_path("pickup", "totsuka", date(2027, 1, 12), 2))
    assert submit_details(page).status == 422
    errors = page.locator(".field-error")
    expect(errors).to_have_count(5)
    assert_marked(page, "notice_0", NOTICE_ERROR)
    assert_marked(page, "notice_1", NOTICE_ERROR)
    assert_marked(page, "name_kana", KATAKANA_ONLY)
    assert_marked(page, "birth_era", BIRTH_ERROR)
    assert_marked(page, "phone", PHONE_ERROR)
    # The summary comes first, is focused and read out, and links to each field in form order.
    expect(summary(page)).to_be_visible()
    expect(summary(page)).to_be_focused()
    expect(summary(page).get_by_role("heading")).to_have_text("入力内容をご確認ください")
    assert summary_targets(page) == ["#notice_0", "#notice_1", "#name_kana", "#birth_era", "#phone"]
    for target in summary_targets(page):
        expect(page.locator(target)).to_have_attribute("aria-invalid", "true")
    items = summary(page).get_by_role("listitem")
    expect(items.nth(1)).to_have_text(f"2人目：{NOTICE_ERROR}")  # whose number it is
    expect(items.nth(4)).to_have_text(PHONE_ERROR)
    summary(page).get_by_role("link").nth(2).click()
    expect(page).to_have_url(re.compile("#name_kana$"))
    screenshot(page, "form-every-mistake")
    assert_accessible(page)


def test_three_mistakes_are_shown_together_and_nothing_typed_is_lost(
    live_server: LiveServer, page: Page, assert_accessible: AssertAccessible
) -> None:
    open_form(page, live_server, times_path("pickup", "ochiai_daini", date(2027, 1, 12)))
    page.get_by_label(NOTICE_LABEL).fill("AB1-2345")
    page.get_by_label(NAME_JA).fill("山田太郎")
    fill_birth(page, "1980", "2", "29")  # not a day of 1980? it was: a leap year
    page.get_by_label("電話番号").fill("090-12")
    page.get_by_label("連絡の言語").select_option("ja")
    assert submit_details(page).status == 422
    expect(page.locator(".field-error")).to_have_count(3)
    assert_marked(page, "notice_0", NOTICE_ERROR)
    assert_marked(page, "name_kana", KATAKANA_ONLY)
    assert_marked(page, "phone", PHONE_ERROR)
    assert summary_targets(page) == ["#notice_0", "#name_kana", "#phone"]
    expect(page.get_by_label(NOTICE_LABEL)).to_have_value("AB1-2345")
    expect(page.get_by_label(NAME_JA)).to_have_value("山田太郎")
    expect(page.locator("#birth_year")).to_have_value("1980")
    expect(page.locator("#birth_day")).to_have_value("29")
    expect(page.get_by_label("電話番号")).to_have_value("090-12")
    assert_accessible(page)

    page.get_by_label(NOTICE_LABEL).fill("AB1-234599")
    page.get_by_label(NAME_JA).fill("ヤマダ タロウ")
    page.get_by_label("電話番号").fill("080-7100-0001")
    assert submit_details(page).status == 200
    with live_server.sessions() as db:
        booked = service.find_booking(db, code=code_on(page), phone="080-7100-0001")
    assert booked.name_kana == "ヤマダ タロウ"
    assert booked.birth_date == date(1980, 2, 29)
    assert [m.notice_number for m in booked.members] == ["AB1-234599"]


def test_checkboxes_and_the_era_are_kept_through_a_mistake(
    live_server: LiveServer, page: Page
) -> None:
    open_form(page, live_server, times_path("application_help", "main", date(2027, 1, 12), 2))
    page.get_by_label(NAME_JA).fill("スズキ ハナコ")
    fill_birth(page, "60", "4", "1", era="showa")
    page.get_by_label("電話番号").fill("080-71")
    page.locator("#braille_1").check()
    page.locator("#ecert_0").uncheck()
    assert submit_details(page).status == 422
    expect(page.locator(".field-error")).to_have_count(1)
    expect(page.locator("#braille_1")).to_be_checked()
    expect(page.locator("#braille_0")).not_to_be_checked()
    expect(page.locator("#ecert_0")).not_to_be_checked()
    expect(page.locator("#ecert_1")).to_be_checked()
    expect(page.locator("#birth_era")).to_have_value("showa")
    expect(page.locator("#birth_year")).to_have_value("60")

    page.get_by_label("電話番号").fill("080-7100-0002")
    assert submit_details(page).status == 200
    with live_server.sessions() as db:
        booked = service.find_booking(db, code=code_on(page), phone="080-7100-0002")
    assert booked.birth_date == date(1985, 4, 1)  # 昭和60年
    assert [(m.braille, m.e_certificate) for m in booked.members] == [(False, False), (True, True)]


# --- names --------------------------------------------------------------------------------


def test_a_japanese_page_asks_katakana_and_turns_hiragana_into_it(
    live_server: LiveServer, page: Page, assert_accessible: AssertAccessible
) -> None:
    open_form(page, live_server, times_path("pin_reset", "totsuka", date(2027, 1, 13)))
    name = page.get_by_label(NAME_JA)
    expect(name).to_have_accessible_description(re.compile("カタカナで入力してください"))
    name.fill("John Smith")
    fill_birth(page, "1970", "7", "7")
    page.get_by_label("電話番号").fill("080-7100-0003")
    assert submit_details(page).status == 422
    assert_marked(page, "name_kana", KATAKANA_ONLY)
    expect(page.locator(".field-error")).to_have_count(1)
    assert_accessible(page)

    page.get_by_label(NAME_JA).fill("やまだ　はなこ")
    assert submit_details(page).status == 200
    with live_server.sessions() as db:
        booked = service.find_booking(db, code=code_on(page), phone="080-7100-0003")
    assert booked.name_kana == "ヤマダ ハナコ"


def test_an_english_page_takes_a_name_in_latin_letters(
    live_server: LiveServer, page: Page, assert_accessible: AssertAccessible
) -> None:
    open_form(page, live_server, times_path("pin_reset", "tsunohazu", date(2027, 1, 13)), "en")
    name = page.get_by_label("Name in katakana or Latin letters (the person booking)")
    expect(name).to_have_accessible_description(re.compile("Latin letters"))
    name.fill("John Smith")
    page.locator("#birth_era").select_option(label="Heisei")
    page.locator("#birth_year").fill("2")
    page.locator("#birth_month").fill("3")
    page.locator("#birth_day").fill("4")
    page.get_by_label("Phone number").fill("080-7100-0004")
    assert_accessible(page)
    assert submit_details(page).status == 200
    with live_server.sessions() as db:
        booked = service.find_booking(db, code=code_on(page), phone="080-7100-0004")
    assert booked.name_kana == "John Smith"
    assert booked.birth_date == date(1990, 3, 4)
    assert booked.language == "en"


# --- the contact language -----------------------------------------------------------------


def test_messages_may_come_in_korean(live_server: LiveServer, page: Page) -> None:
    open_form(page, live_server, times_path("pin_reset", "ochiai_daini", date(2027, 1, 14)))
    choice = page.get_by_label("連絡の言語")
    options = choice.locator("option")
    assert [options.nth(i).get_attribute("value") for i in range(options.count())] == [
        "ja",
        "en",
        "ko",
        "zh",
        "vi",
        "ne",
        "easy",
    ]
    expect(choice.locator("option[value=ko]")).to_have_text("한국어")
    choice.select_option("ko")
    page.get_by_label(NAME_JA).fill("Kim Minji")  # Latin letters: contact is not in Japanese
    fill_birth(page, "1988", "8", "8")
    page.get_by_label("電話番号").fill("080-7100-0005")
    assert submit_details(page).status == 200
    with live_server.sessions() as db:
        booked = service.find_booking(db, code=code_on(page), phone="080-7100-0005")
    assert booked.language == "ko"
    assert booked.name_kana == "Kim Minji"


# --- the birth date: its boxes, and eras --------------------------------------------------


@pytest.fixture
def desktop(browser: Browser, external_requests: list[str]) -> Iterator[Page]:
    """A desktop browser window, 1280 wide, in Japanese."""
    yield from _new_page(
        browser,
        external_requests,
        viewport={"width": 1280, "height": 900},
        device_scale_factor=1,
        is_mobile=False,
        has_touch=False,
    )


def box_widths(page: Page) -> dict[str, float]:
    widths = {}
    for box in ("birth_era", "birth_year", "birth_month", "birth_day"):
        found = page.locator(f"#{box}").bounding_box()
        assert found is not None
        widths[box] = found["width"]
        widths[box + "_y"] = found["y"] + found["height"] / 2
    return widths


def test_on_a_desktop_the_birth_boxes_fit_what_they_hold_and_eras_are_checked(
    live_server: LiveServer, desktop: Page, screenshot: Shot, assert_accessible: AssertAccessible
) -> None:
    page = desktop
    open_form(page, live_server, times_path("pin_reset", "totsuka", date(2027, 1, 14)))
    sizes = box_widths(page)
    assert sizes["birth_year"] < 200
    assert sizes["birth_month"] < 120 and sizes["birth_day"] < 120
    assert sizes["birth_era"] < 200
    # One line: the era, year, month and day boxes share a middle.
    middles = {round(sizes[k + "_y"]) for k in ("birth_era", "birth_year", "birth_month")}
    assert max(middles) - min(middles) <= 2
    assert abs(sizes["birth_day_y"] - sizes["birth_year_y"]) <= 2

    page.get_by_label(NAME_JA).fill("サトウ ケン")
    fill_birth(page, "32", "1", "10", era="heisei")  # 平成 ended in its 31st year
    page.get_by_label("電話番号").fill("080-7100-0006")
    assert submit_details(page).status == 422
    outside = (
        "平成は1989年1月8日から2019年4月30日まで（平成元年〜31年）です。元号と年をご確認ください。"
    )
    assert_marked(page, "birth_era", outside)
    expect(page.locator(".field-error")).to_have_count(1)
    expect(page.locator("#birth_era")).to_have_value("heisei")
    expect(page.locator("#birth_year")).to_have_value("32")
    screenshot(page, "form-desktop-era")
    assert_accessible(page)

    page.locator("#birth_year").fill("3")
    page.locator("#birth_month").fill("5")
    page.locator("#birth_day").fill("6")
    assert submit_details(page).status == 200
    with live_server.sessions() as db:
        booked = service.find_booking(db, code=code_on(page), phone="080-7100-0006")
    assert booked.birth_date == date(1991, 5, 6)  # 平成3年5月6日


@pytest.fixture
def small_phone(browser: Browser, external_requests: list[str]) -> Iterator[Page]:
    """A small phone, 375 wide."""
    yield from _new_page(browser, external_requests, viewport={"width": 375, "height": 740})


def test_on_a_small_phone_the_form_does_not_scroll_sideways(
    live_server: LiveServer, small_phone: Page, screenshot: Shot
) -> None:
    page = small_phone
    open_form(page, live_server, times_path("pin_reset", "totsuka", date(2027, 1, 15)))
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert box_widths(page)["birth_year"] < 120
    screenshot(page, "form-phone-375")
