"""The resident pages in every language of the list, and the ward's choice of them
(MADOGUCHI_LANGUAGES): the switch lists only the ward's languages, and a switch to another
one goes back to the page without it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from booking.languages import CODES, NAMES, info
from tests.booking.test_pages import FORM, field, hold_first_time
from tests.conftest import FakeClock, app_for

# The card pickup, as the sample ward names it in each language.
PICKUP = {
    "ja": "マイナンバーカードの受け取り（交付）",
    "en": "Card pickup",
    "ko": "마이넘버카드 수령(교부)",
    "zh": "领取个人编号卡（交付）",
    "vi": "Nhận thẻ My Number",
    "ne": "माई नम्बर कार्ड लिने",
    "easy": "マイナンバーカードを もらう",
}
# January 2027 on the month calendar, as Babel writes it for each language.
JANUARY = {
    "ja": "2027年1月",
    "en": "January 2027",
    "ko": "2027년 1월",
    "zh": "2027年1月",
    "vi": "tháng 1 năm 2027",
    "ne": "2027 जनवरी",
    "easy": "2027年1月",
}


@pytest.fixture
def browser(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(app_for(engine, clock, tmp_path)) as http:
        yield http


@pytest.fixture
def few(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[TestClient]:
    """A ward that offers English and Chinese beside Japanese."""
    with TestClient(app_for(engine, clock, tmp_path, languages="en,zh")) as http:
        yield http


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def switch_of(html: str) -> list[str]:
    nav = re.search(r'<nav aria-label="[^"]*" class="languages">(.*?)</nav>', html, re.S)
    assert nav
    return re.findall(r"[?&]lang=(\w+)", nav.group(1))


@pytest.mark.parametrize("language", CODES)
def test_the_start_page_in_each_language(browser: TestClient, language: str) -> None:
    page = browser.get(f"/?lang={language}")
    assert page.status_code == 200
    assert f'<html lang="{info(language).html}">' in page.text
    assert PICKUP[language] in text_of(page.text)
    assert switch_of(page.text) == [code for code in CODES if code != language]
    for code in CODES:
        if code != language:
            assert NAMES[code] in page.text


@pytest.mark.parametrize("language", CODES)
def test_the_month_is_written_as_the_language_writes_it(browser: TestClient, language: str) -> None:
    page = browser.get(f"/book/pickup/main?month=2027-01&lang={language}")
    assert page.status_code == 200
    assert JANUARY[language] in text_of(page.text)


def test_the_switch_lists_only_the_wards_languages(few: TestClient) -> None:
    page = few.get("/?lang=zh")
    assert page.status_code == 200
    assert switch_of(page.text) == ["ja", "en"]
    assert "Tiếng Việt" not in page.text


def test_a_language_the_ward_does_not_offer_goes_back_to_the_page(few: TestClient) -> None:
    refused = few.get("/book/pickup?lang=vi", follow_redirects=False)
    assert refused.status_code == 303
    assert refused.headers["location"].endswith("/book/pickup")
    assert "lang" not in refused.cookies
    followed = few.get("/book/pickup?lang=vi")
    assert '<html lang="ja">' in followed.text
    # Nor is one remembered from before the ward changed its list.
    few.cookies.set("lang", "ne")
    assert '<html lang="ja">' in few.get("/").text
    assert few.get("/?lang=fr", follow_redirects=False).status_code == 303


def test_the_form_offers_and_takes_only_the_wards_contact_languages(few: TestClient) -> None:
    where, details = hold_first_time(few, "/book/cert_renewal/tsunohazu/2027-01-27?party=1")
    offered = re.findall(r'<option value="(\w+)" lang="[^"]+"', details)
    assert offered == ["ja", "en", "zh"]
    form = {**FORM, "csrf": field(details, "csrf"), "language": "vi"}
    form |= {"party": field(details, "party"), "service": field(details, "service")}
    refused = few.post(where, data=form, follow_redirects=False)
    assert refused.status_code == 422
    assert "言語の指定が正しくありません。" in refused.text
    form |= {"language": "zh", "csrf": field(refused.text, "csrf")}
    booked = few.post(where, data=form, follow_redirects=False)
    assert booked.status_code == 303


@pytest.mark.parametrize(("language", "said"), [("easy", "平成(へいせい)は"), ("zh", "平成为")])
def test_an_era_mistake_is_written_in_the_pages_language(
    browser: TestClient, language: str, said: str
) -> None:
    day = {"easy": "2027-01-28", "zh": "2027-01-29"}[language]
    url = f"/book/cert_renewal/tsunohazu/{day}?party=1&lang={language}"
    where, details = hold_first_time(browser, url)
    form = {**FORM, "csrf": field(details, "csrf"), "language": language}
    form |= {"party": field(details, "party"), "service": field(details, "service")}
    form |= {"birth_era": "heisei", "birth_year": "40"}
    refused = browser.post(where, data=form, follow_redirects=False)
    assert refused.status_code == 422
    assert said in text_of(refused.text)


def test_the_api_refuses_a_language_the_ward_does_not_send_texts_in(few: TestClient) -> None:
    body = {
        "slot_id": 1,
        "party_size": 1,
        "name_kana": "グエン アン",
        "phone": "080-7373-4199",
        "birth_date": "1988-04-07",
        "language": "vi",
    }
    refused = few.post("/api/v1/bookings", json=body)
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_language", "language")
