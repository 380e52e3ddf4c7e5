"""End-to-end fixtures: the real app served by uvicorn, driven by the system Chromium.

- ``live_server``: the app from ``config.app.create_app`` on 127.0.0.1 and a free port, over a
  migrated SQLite file with the sample ward, its sessions on a FakeClock (2026-12-15 10:00 Tokyo).
- ``browser``: one Chromium for the whole run (Debian's ``/usr/bin/chromium``, or
  ``MADOGUCHI_CHROMIUM``); without it the e2e tests are skipped, and fail under CI (``CI`` set).
- ``page`` / ``page_no_js``: a phone-sized Japanese context per test. Requests to any host but
  the live server are aborted (the tests run offline) and listed in ``external_requests``.
- ``screenshot``, ``accessibility``, ``assert_accessible``: full-page PNGs in
  ``tests/e2e/screenshots/`` and axe-core's WCAG 2.1 A/AA findings.

Every test under this directory gets the ``e2e`` marker: ``pytest -m "not e2e"`` leaves them out.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from cryptography.fernet import Fernet
from playwright.sync_api import Browser, Page, Route, sync_playwright
from sqlalchemy.orm import Session, sessionmaker

from booking import schedule
from config.app import create_app
from config.db import make_engine, make_sessionmaker
from config.migrate import upgrade
from config.sample import sample_ward
from config.settings import Settings
from ivr.fake_twilio import FakeTwilio
from ivr.telephony import TwilioApi
from tests.conftest import START, FakeClock, make_context
from tests.live import listening_socket, serving

E2E_DIR = Path(__file__).parent
SCREENSHOTS = E2E_DIR / "screenshots"
MARKER = "e2e: end-to-end browser tests (live server + Chromium; tests/e2e)"

CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium in a closed network: without the background-networking flags its own
# connections (component updates, sync, QUIC probes) are refused and can stall the start.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "ja-JP",
    "timezone_id": "Asia/Tokyo",
}
LIVE_TWILIO_TOKEN = "e2e0" * 8
# What the app believes it is published at: plain HTTP, so the console's cookies are not
# Secure-only for the browser on 127.0.0.1.
LIVE_PUBLIC_URL = "http://madoguchi.test"
TIMEOUT_MS = 10_000  # Playwright's default is 30 s; everything here is local

WCAG_TAGS = frozenset({"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"})

Violation = dict[str, Any]
Shot = Callable[[Page, str], Path]
Accessibility = Callable[[Page], list[Violation]]
AssertAccessible = Callable[[Page], None]


# --- marker -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too, so that --strict-markers accepts it before pyproject lists it.
    config.addinivalue_line("markers", MARKER)


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


# --- live server --------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveServer:
    """The running app: where it listens, the clock its sessions use, and those sessions."""

    base_url: str
    clock: FakeClock
    sessions: sessionmaker[Session]
    twilio: FakeTwilio  # Twilio's REST API, where the console puts callers through
    twilio_token: str = LIVE_TWILIO_TOKEN
    public_base_url: str = LIVE_PUBLIC_URL

    def url(self, path: str) -> str:
        return self.base_url + path


def _wait_healthy(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            status = httpx.get(url, timeout=2, trust_env=False).status_code
        except httpx.TransportError as exc:
            last = exc
        else:
            if status == 200:
                return
            last = status
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s (last: {last!r})")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{data_dir / 'madoguchi.db'}"
    upgrade(url)
    clock = FakeClock()
    engine = make_engine(url)
    sessions = make_sessionmaker(engine, make_context(clock))
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
        twilio_auth_token=LIVE_TWILIO_TOKEN,
        public_base_url=LIVE_PUBLIC_URL,
        # Every browser test reaches this one server from 127.0.0.1 within the fake clock's
        # hour: the limit per address would otherwise refuse the later tests' holds (429).
        web_bookings_per_hour=1000,
    )
    app = create_app(settings)
    app.state.sessions = sessions
    app.state.console_tick_seconds = 0.2  # the console's live queue, quick for the tests
    twilio = FakeTwilio(auth_token=LIVE_TWILIO_TOKEN).start()
    app.state.phone_api = TwilioApi(
        account_sid=twilio.account_sid,
        auth_token=LIVE_TWILIO_TOKEN,
        from_number="+81353334111",
        base_url=twilio.base_url,
        timeout=5,
    )

    sock, base_url = listening_socket()
    try:
        with serving(app, sock, name="e2e-uvicorn"):
            _wait_healthy(base_url + "/healthz")
            yield LiveServer(base_url=base_url, clock=clock, sessions=sessions, twilio=twilio)
    finally:
        twilio.stop()
        engine.dispose()


@pytest.fixture(autouse=True)
def _reset_live_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that moves the live server's clock does not move it for the next one."""
    yield
    if "live_server" in request.fixturenames:
        server: LiveServer = request.getfixturevalue("live_server")
        server.clock.set(START)


# --- browser ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = os.environ.get("MADOGUCHI_CHROMIUM", CHROMIUM)
    if not (Path(executable).is_file() and os.access(executable, os.X_OK)):
        message = (
            f"Chromium not found at {executable} (install Debian's `chromium` package, "
            "or set MADOGUCHI_CHROMIUM to a Chromium binary)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def external_requests() -> list[str]:
    """URLs the test's pages tried to fetch from anywhere but loopback (all aborted)."""
    return []


def _new_page(browser: Browser, blocked: list[str], **options: Any) -> Iterator[Page]:
    context = browser.new_context(**{**PHONE, **options})
    context.set_default_timeout(TIMEOUT_MS)

    def offline(route: Route) -> None:
        if urlsplit(route.request.url).hostname in {"127.0.0.1", "localhost"}:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", offline)
    violations: list[str] = []
    try:
        page = context.new_page()
        # The Content-Security-Policy must not block anything the pages do.
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        yield page
    finally:
        context.close()
    assert violations == [], f"the pages broke their Content-Security-Policy: {violations}"


@pytest.fixture
def page(browser: Browser, external_requests: list[str]) -> Iterator[Page]:
    """A phone (390x844 at 2x, touch, ja-JP) with JavaScript."""
    yield from _new_page(browser, external_requests)


@pytest.fixture
def page_no_js(browser: Browser, external_requests: list[str]) -> Iterator[Page]:
    """The same phone with JavaScript off: what the pages must still do without it."""
    yield from _new_page(browser, external_requests, java_script_enabled=False)


# --- screenshots and accessibility --------------------------------------------------------


def take_screenshot(page: Page, name: str) -> Path:
    """A full-page PNG at tests/e2e/screenshots/<name>.png (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path


_AXE = Axe()
_AXE_OPTIONS = {"runOnly": {"type": "tag", "values": sorted(WCAG_TAGS)}}


def wcag_violations(page: Page) -> list[Violation]:
    """axe-core's violations of WCAG 2.1 level A and AA on the page as it is now."""
    results = _AXE.run(page, options={**_AXE_OPTIONS, "resultTypes": ["violations"]})
    violations: list[Violation] = results.response["violations"]
    return [v for v in violations if WCAG_TAGS.intersection(v.get("tags", []))]


def describe(violations: list[Violation]) -> str:
    lines = []
    for v in violations:
        nodes = v.get("nodes") or [{}]
        target = ", ".join(str(t) for t in nodes[0].get("target", []))
        lines.append(f"- {v['id']} ({v.get('impact')}): {v.get('help', '')} [{target}]")
    return "\n".join(lines)


def check_accessible(page: Page) -> None:
    """Fail with each WCAG 2.1 A/AA violation: rule id, impact and the first node's target."""
    violations = wcag_violations(page)
    assert not violations, (
        f"{len(violations)} WCAG 2.1 A/AA violation(s) on {page.url}:\n{describe(violations)}"
    )


@pytest.fixture
def screenshot() -> Shot:
    return take_screenshot


@pytest.fixture
def accessibility() -> Accessibility:
    return wcag_violations


@pytest.fixture
def assert_accessible() -> AssertAccessible:
    return check_accessible
