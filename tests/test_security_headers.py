"""Security headers on every page, and templates that a strict Content-Security-Policy allows
(no inline script, no inline event handlers)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import FakeClock, app_for

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = [
    *ROOT.glob("agent_console/templates/*.html"),
    *ROOT.glob("booking/pages/templates/*.html"),
]


@pytest.fixture
def http(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(app_for(engine, clock, tmp_path)) as client:
        yield client


@pytest.mark.parametrize("path", ["/", "/console/login", "/api/v1/services", "/healthz"])
def test_every_page_carries_the_headers(http: TestClient, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in response.headers  # plain HTTP: no HSTS


def test_hsts_only_behind_tls(http: TestClient) -> None:
    behind = http.get("/", headers={"X-Forwarded-Proto": "https"})
    assert behind.headers["strict-transport-security"].startswith("max-age=31536000")


def test_static_files_may_be_cached_and_scripts_are_served(http: TestClient) -> None:
    for path in ("/static/site.css", "/static/countdown.js", "/console/static/queue.js"):
        response = http.get(path)
        assert response.status_code == 200, path
        assert response.headers.get("cache-control") != "no-store"


def test_the_api_pages_may_load_their_cdn(http: TestClient) -> None:
    assert "cdn.jsdelivr.net" in http.get("/docs").headers["content-security-policy"]


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_templates_have_no_inline_script(template: Path) -> None:
    html = template.read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert "javascript:" not in html


def test_the_phone_line_never_asks_for_a_my_number() -> None:
    """Minimal collection: no prompt in any language asks for the individual number."""
    import tomllib

    for language in ("ja", "en", "ko"):
        prompts = tomllib.loads((ROOT / "ivr" / "prompts" / f"{language}.toml").read_text("utf-8"))
        for key, said in prompts.items():
            lowered = str(said).lower()
            for asking in ("個人番号", "12桁", "individual number", "개인번호", "12자리"):
                assert asking not in lowered, (language, key)
