"""The booking pages in every language of the list, in a real browser with axe: a resident
opens the start page in their language, chooses the certificate renewal, the 柏木 branch, a day
in January, a time, fills in the form and books; every step in that language, with the ward's
names for it, WCAG 2.1 A/AA clean, and the booking keeps the language for its messages.

The live server is shared with the other browser tests; these book cert_renewal / kashiwagi at
8:30 on their own January day each (no other test books there), each with its own phone.
The start page of each language is saved for the README (docs/screenshots/booking-<lang>.png).
"""

from __future__ import annotations

import re
from datetime import date
from importlib.resources import files
from pathlib import Path

import pytest
from babel.dates import format_skeleton
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from playwright.sync_api import Page, expect

from booking import service
from booking.languages import CODES, info
from config.sample import sample_ward
from tests.e2e.conftest import AssertAccessible, LiveServer
from tests.e2e.test_booking_pages import code_on, heading, navigate, press_time, times_path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DAYS: dict[str, date] = dict(
    zip(CODES, [date(2027, 1, d) for d in (18, 19, 20, 21, 22, 25, 26)], strict=True)
)
PHONES: dict[str, str] = dict(
    zip(CODES, [f"080-7373-{4100 + i}" for i in range(len(CODES))], strict=True)
)
BIRTH = date(1988, 4, 7)


def catalogue(language: str) -> Catalog:
    source = files("booking.pages").joinpath(f"locale/{language}/LC_MESSAGES/messages.po")
    with source.open("rb") as handle:
        return read_po(handle, locale=info(language).babel)


def said(language: str, message: str) -> str:
    """A message of the pages as the language's catalogue has it."""
    if language == "en":
        return message
    found = catalogue(language).get(message)
    assert found is not None, message
    return str(found.string)


def ward_name(kind: str, key: str, language: str) -> str:
    """A service's or venue's name as the sample ward gives it in the language."""
    items = {item["id"]: item for item in sample_ward()[kind]}
    texts = items[key]["texts"]
    for code in (language, "en", "ja") if language != "easy" else ("easy", "ja"):
        if texts.get(code, {}).get("name"):
            return str(texts[code]["name"])
    return str(items[key][f"name_{'ja' if language in ('ja', 'easy') else 'en'}"])


@pytest.mark.parametrize("language", CODES)
def test_a_resident_books_in_each_language(
    live_server: LiveServer, page: Page, assert_accessible: AssertAccessible, language: str
) -> None:
    day = DAYS[language]
    lang = info(language).html

    # Start: what the visit is for.
    page.goto(live_server.url(f"/?lang={language}"))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(heading(page)).to_have_text(said(language, "Book an appointment"))
    others = page.get_by_role("navigation", name=said(language, "Language")).get_by_role("link")
    expect(others).to_have_count(len(CODES) - 1)
    assert_accessible(page)
    if language not in ("ja", "en", "ko"):
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=DOCS / f"booking-{language}.png", full_page=True)

    # Service: the places that offer it, by the ward's names in the language.
    renewal = ward_name("services", "cert_renewal", language)
    page.get_by_role("link", name=re.compile("^" + re.escape(renewal))).click()
    expect(page).to_have_url(live_server.url("/book/cert_renewal"))
    expect(heading(page)).to_have_text(said(language, "Choose a place"))
    assert_accessible(page)
    kashiwagi = ward_name("venues", "kashiwagi", language)
    page.get_by_role("link", name=re.compile("^" + re.escape(kashiwagi))).click()
    expect(page).to_have_url(live_server.url("/book/cert_renewal/kashiwagi"))

    # Month: January, as Babel writes a month for the language.
    page.goto(live_server.url("/book/cert_renewal/kashiwagi?month=2027-01"))
    expect(heading(page)).to_have_text(said(language, "Choose a day"))
    month = format_skeleton("yMMMM", day, locale=info(language).babel)
    if language == "en":
        month = "January 2027"
    expect(page.get_by_role("heading", name=month)).to_be_visible()
    assert_accessible(page)

    # Times, then the form.
    page.goto(live_server.url(times_path("cert_renewal", "kashiwagi", day)))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    assert_accessible(page)
    # 8:30 as the language writes a time (08:30 in Chinese and Vietnamese).
    starts = page.locator("button.time .clock").first.inner_text().split("–")[0].strip()
    assert starts in ("8:30", "08:30", "8:30 AM"), starts
    assert press_time(page, starts).status == 200
    expect(heading(page)).to_have_text(said(language, "Your details"))
    expect(page.locator("#language_choice")).to_have_value(language)
    japanese = language in ("ja", "easy")
    page.locator("#name_kana").fill("ヤマダ ハナコ" if japanese else "NGUYEN AN")
    page.locator("#birth_year").fill(str(BIRTH.year))
    page.locator("#birth_month").fill(str(BIRTH.month))
    page.locator("#birth_day").fill(str(BIRTH.day))
    page.locator("#phone").fill(PHONES[language])
    assert_accessible(page)

    # Confirmation.
    book = page.get_by_role("button", name=said(language, "Book this time"))
    assert navigate(page, book.click).status == 200
    expect(page).to_have_url(live_server.url("/booking/done"))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(heading(page)).to_have_text(said(language, "Your booking is confirmed"))
    expect(page.locator("dl.visit")).to_contain_text(kashiwagi)
    code = code_on(page)
    assert_accessible(page)

    with live_server.sessions() as db:
        booked = service.find_booking(db, code=code, phone=PHONES[language])
    assert booked.language == language
    assert (booked.service_id, booked.venue_id) == ("cert_renewal", "kashiwagi")
