"""The e2e harness itself: live server, Chromium, screenshots, offline guard and axe-core.

Swagger UI's /docs loads its JavaScript and CSS from a CDN, which these tests block (they run
offline), so /docs is checked as the HTML page the server sends, not as the rendered UI.
"""

from __future__ import annotations

import struct
from datetime import date, datetime

import pytest
from playwright.sync_api import Page
from sqlalchemy import text

from booking.context import TOKYO
from tests.e2e.conftest import (
    Accessibility,
    AssertAccessible,
    LiveServer,
    Shot,
)

SERVICES = {"pickup", "application_help", "pin_reset", "cert_renewal"}

INACCESSIBLE = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>予約</title></head>
<body><main>
  <h1>予約の確認</h1>
  <p style="color:#c8c8c8;background:#ffffff">予約番号を入力してください</p>
  <input type="text" id="code">
</main></body></html>"""

ACCESSIBLE = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>予約の確認</title></head>
<body><main>
  <h1>予約の確認</h1>
  <p style="color:#333333;background:#ffffff">予約番号を入力してください</p>
  <label for="code">予約番号</label>
  <input type="text" id="code" name="code" inputmode="numeric" autocomplete="off">
  <button type="submit">確認する</button>
</main></body></html>"""


def test_docs_page_is_served(live_server: LiveServer, page: Page) -> None:
    response = page.goto(live_server.url("/docs"))
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    assert page.title() == "Madoguchi - Swagger UI"
    assert page.locator("#swagger-ui").count() == 1


def test_screenshot_is_a_full_page_png(
    live_server: LiveServer, page: Page, screenshot: Shot
) -> None:
    page.goto(live_server.url("/api/v1/venues"))  # Chromium shows the JSON as text
    assert "main" in page.inner_text("body")
    path = screenshot(page, "harness-venues")
    data = path.read_bytes()
    assert path.parent.name == "screenshots"
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    # A page without <meta name="viewport"> is laid out 980 px wide on a phone, as on a real
    # one; the PNG has the layout's CSS pixels at device scale factor 2.
    assert width == 2 * page.evaluate("document.documentElement.clientWidth")
    assert height >= 844 * 2
    assert len(data) > 10_000


def test_page_is_a_japanese_phone(page: Page) -> None:
    page.set_content(
        '<meta name="viewport" content="width=device-width, initial-scale=1"><p>電話</p>'
    )
    seen = page.evaluate(
        "({width: window.innerWidth, height: window.innerHeight, ratio: devicePixelRatio,"
        " touch: navigator.maxTouchPoints > 0, language: navigator.language,"
        " zone: Intl.DateTimeFormat().resolvedOptions().timeZone})"
    )
    assert seen == {
        "width": 390,
        "height": 844,
        "ratio": 2,
        "touch": True,
        "language": "ja-JP",
        "zone": "Asia/Tokyo",
    }


def test_api_from_the_page_context(live_server: LiveServer, page: Page) -> None:
    response = page.request.get(live_server.url("/api/v1/services"))
    assert response.status == 200, response.text()
    services = response.json()
    assert len(services) == 4
    assert {s["id"] for s in services} == SERVICES


def test_no_js_page_loads_healthz(live_server: LiveServer, page_no_js: Page) -> None:
    response = page_no_js.goto(live_server.url("/healthz"))
    assert response is not None and response.status == 200
    assert response.json() == {  # alive: no database asked (that is /readyz)
        "status": "ok",
        "speech": {
            "ja": "keys only (no vosk model)",
            "en": "keys only (no vosk model)",
            "ko": "keys only (no vosk model)",
            "zh": "keys only (no vosk model)",
        },
    }
    page_no_js.set_content(
        '<p id="js">off</p><script>document.getElementById("js").textContent = "on"</script>'
    )
    assert page_no_js.inner_text("#js") == "off"


def test_the_app_runs_on_the_fake_clock(live_server: LiveServer, page: Page) -> None:
    def earliest() -> date:
        response = page.request.get(
            live_server.url("/api/v1/availability"), params={"service": "pickup", "limit": 1}
        )
        assert response.status == 200, response.text()
        return datetime.fromisoformat(response.json()[0]["start"]).astimezone(TOKYO).date()

    assert earliest() == date(2026, 12, 16)  # bookable from the day after "now", 2026-12-15
    live_server.clock.advance(days=7)
    assert earliest() >= date(2026, 12, 23)
    with live_server.sessions() as db:
        venues = db.execute(text("SELECT count(*) FROM venue")).scalar_one()
    assert len(page.request.get(live_server.url("/api/v1/venues")).json()) == venues


def test_pages_are_kept_offline(page: Page, external_requests: list[str]) -> None:
    page.set_content('<img src="https://cdn.example.com/logo.png" alt="ロゴ">')
    page.wait_for_load_state("load")
    assert external_requests == ["https://cdn.example.com/logo.png"]


def test_axe_reports_violations(page: Page, accessibility: Accessibility) -> None:
    page.set_content(INACCESSIBLE)
    violations = accessibility(page)
    found = {v["id"] for v in violations}
    assert {"label", "color-contrast"} <= found, found
    for v in violations:
        assert {"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"} & set(v["tags"])


def test_assert_accessible_lists_each_violation(
    page: Page, assert_accessible: AssertAccessible
) -> None:
    page.set_content(INACCESSIBLE)
    with pytest.raises(AssertionError) as failure:
        assert_accessible(page)
    message = str(failure.value)
    assert "- label (critical)" in message
    assert "- color-contrast (serious)" in message
    assert "#code" in message


def test_a_well_formed_page_passes(page: Page, assert_accessible: AssertAccessible) -> None:
    page.set_content(ACCESSIBLE)
    assert_accessible(page)
