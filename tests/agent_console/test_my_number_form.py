"""A console form refused for a My Number is given back to be corrected: every field kept but
the number, however it was written; never a password; sent on to where it was going; with a
link to the page it came from (the day view with its filter)."""

from __future__ import annotations

import html
import re

import pytest

from agent_console.my_number import REMOVED, without_my_numbers
from tests.agent_console.test_console import Console, csrf_of
from tests.agent_console.test_safeguards import MY_NUMBERS

DIGITS = "621498320257"


def fields_of(page: str) -> dict[str, str]:
    """The refused form's fields as given back: name -> value (inputs and text areas)."""
    found = {
        m["name"]: html.unescape(m["value"])
        for m in re.finditer(
            r'<input[^>]*name="(?P<name>[^"]+)"[^>]*value="(?P<value>[^"]*)"', page
        )
    }
    for m in re.finditer(r'<textarea[^>]*name="(?P<name>[^"]+)"[^>]*>(?P<value>[^<]*)<', page):
        found[m["name"]] = html.unescape(m["value"])
    return found


def no_number_in(page: str, written: str) -> None:
    for shown in (written, DIGITS, "9832", "９８３２"):
        assert shown not in page


@pytest.mark.parametrize("written", MY_NUMBERS)
def test_a_refused_note_comes_back_without_the_number_and_with_the_rest(
    console: Console, written: str
) -> None:
    agent, _ = console.signed_in("agent")
    home = agent.get("/console/")
    note = f"本人の個人番号は{written}とのこと。折り返しは 03-5273-4111 へ。"
    refused = agent.post(
        "/console/calls/CAnone/inquiries",
        data={"csrf": csrf_of(home.text), "category": "pin", "note": note, "resolution": "open"},
    )
    assert refused.status_code == 422
    no_number_in(refused.text, written)
    kept = fields_of(refused.text)
    assert kept["note"] == f"本人の個人番号は{REMOVED}とのこと。折り返しは 03-5273-4111 へ。"
    assert (kept["category"], kept["resolution"]) == ("pin", "open")
    assert kept["csrf"] == csrf_of(home.text)
    assert 'action="/console/calls/CAnone/inquiries"' in refused.text
    assert 'aria-invalid="true"' in refused.text


def test_a_refused_closure_leads_back_to_the_same_filtered_day(console: Console) -> None:
    manager, _ = console.signed_in("counter_manager")
    page = manager.get("/console/manage")
    form = {
        "csrf": csrf_of(page.text),
        "slot": "1",
        "venue": "main",
        "day": "2026-12-16",
        "service": "pin_reset",
        "from": "13:00",
        "change": "close",
        "reason": f"申出人 {DIGITS} の件",
    }
    refused = manager.post("/console/manage/change", data=form)
    assert refused.status_code == 422
    no_number_in(refused.text, DIGITS)
    assert fields_of(refused.text)["reason"] == f"申出人 {REMOVED} の件"
    back = re.search(r'<a href="([^"]+)">送らずに元の画面に戻る', refused.text)
    assert back is not None
    assert html.unescape(back.group(1)) == (
        "/console/manage?venue=main&day=2026-12-16&service=pin_reset&from=13%3A00"
    )


def test_a_password_is_never_given_back(console: Console) -> None:
    browser = console.browser()
    form = browser.get("/console/login")
    refused = browser.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "login_id": DIGITS, "password": "secret words 123"},
    )
    assert refused.status_code == 422
    assert "secret words 123" not in refused.text
    no_number_in(refused.text, DIGITS)
    assert 'type="password"' in refused.text


def test_a_number_written_so_the_runs_miss_it_empties_the_field() -> None:
    # Circled digits read as digits once normalised; no run of digits finds them here.
    circled = "".join(chr(0x2460 + int(d) - 1) if d != "0" else "⓪" for d in DIGITS)
    assert without_my_numbers(f"番号 {circled}") == ""
    assert without_my_numbers("+81 90 1234 5678 に電話") == "+81 90 1234 5678 に電話"
