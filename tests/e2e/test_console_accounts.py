"""Staff accounts in a real browser: a supervisor makes an account and is told what to hand
over; the newcomer replaces the first password before anything else; a counter manager starts
on the day view; a reset password is replaced again; a supervisor sets up the authenticator and
signs in with its codes (a wrong or replayed code refused, a recovery code good once); and the
audit log shows it all. axe checks every page on the way."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from agent_console import service as staff
from tests.agent_console.second_factor import code_at
from tests.e2e.conftest import AssertAccessible, LiveServer, Shot, _new_page
from tests.e2e.test_console_pages import DESKTOP, PASSWORD, make_person, sign_in

NEW_PASSWORD = "my own long password"  # noqa: S105 (a test password)
_made = itertools.count(1)


@pytest.fixture
def desk(browser: Browser, external_requests: list[str]) -> Iterator[Page]:
    yield from _new_page(browser, external_requests, **DESKTOP)


@pytest.fixture
def other(browser: Browser, external_requests: list[str]) -> Iterator[Page]:
    """A second desk: the newcomer's, or the same person signing in again elsewhere."""
    yield from _new_page(browser, external_requests, **DESKTOP)


def password_step(page: Page, server: LiveServer, login: str, password: str) -> None:
    page.goto(server.url("/console/login"))
    page.get_by_label("ログインID").fill(login)
    page.get_by_label("パスワード").fill(password)
    page.get_by_role("button", name="ログイン").click()


def change_password(page: Page, current: str, new: str) -> None:
    page.get_by_label("現在のパスワード").fill(current)
    page.get_by_label("新しいパスワード（12文字以上）").fill(new)
    page.get_by_label("新しいパスワード（確認のためもう一度）").fill(new)
    page.get_by_role("button", name="変更する").click()


def test_a_new_account_is_confirmed_and_its_first_password_replaced(
    live_server: LiveServer,
    desk: Page,
    other: Page,
    screenshot: Shot,
    assert_accessible: AssertAccessible,
) -> None:
    sign_in(desk, live_server, make_person(live_server, "supervisor"))
    desk.get_by_role("link", name="職員").click()
    login = f"e2e-made-{next(_made)}"
    desk.get_by_label("ログインID").fill(login)
    desk.get_by_label("氏名").fill("鈴木 一郎")
    desk.locator("#new-role").select_option("counter_manager")
    desk.get_by_label("初期パスワード（12文字以上）").fill(PASSWORD)
    desk.get_by_role("button", name="作成").click()
    said = desk.locator("#created")
    expect(said).to_contain_text(
        "鈴木 一郎（ログインID " + login + "）を窓口管理者として作成しました"
    )
    expect(said).to_contain_text("最初のログインで")
    assert_accessible(desk)
    screenshot(desk, "console-accounts-01-created")

    # The newcomer: the password page first, and nothing else until it is done.
    password_step(other, live_server, login, PASSWORD)
    expect(other).to_have_url(live_server.url("/console/account/password"))
    expect(other.get_by_role("status")).to_contain_text("仮のパスワード")
    assert_accessible(other)
    other.goto(live_server.url("/console/manage"))
    expect(other).to_have_url(live_server.url("/console/account/password"))
    change_password(other, PASSWORD, PASSWORD)  # not the temporary one
    expect(other.get_by_role("alert")).to_contain_text("違うもの")
    assert_accessible(other)
    change_password(other, PASSWORD, NEW_PASSWORD)
    # A counter manager starts on the day view, not the call queue.
    expect(other).to_have_url(live_server.url("/console/manage"))

    # The supervisor resets the password: shown once; the next sign-in replaces it again.
    desk.get_by_role("link", name="職員").click()
    desk.locator(".staff-row", has_text=login).get_by_role(
        "button", name="パスワード再設定"
    ).click()
    temporary = desk.locator("#temporary-password").inner_text()
    assert len(temporary) >= staff.MIN_PASSWORD_LENGTH
    assert_accessible(desk)
    screenshot(desk, "console-accounts-02-reset")
    other.goto(live_server.url("/console/manage"))
    expect(other).to_have_url(live_server.url("/console/login"))  # signed out by the reset
    password_step(other, live_server, login, temporary)
    expect(other).to_have_url(live_server.url("/console/account/password"))
    change_password(other, temporary, NEW_PASSWORD + "2")
    expect(other).to_have_url(live_server.url("/console/manage"))


def test_a_supervisor_sets_up_the_authenticator_and_signs_in_with_its_codes(
    live_server: LiveServer,
    desk: Page,
    other: Page,
    screenshot: Shot,
    assert_accessible: AssertAccessible,
) -> None:
    login = f"e2e-first-{next(_made)}"
    with live_server.sessions() as db:  # as `madoguchi staff create` makes the first one
        staff.create_staff(
            db, login_id=login, display_name="佐藤", role="supervisor", password=PASSWORD
        )
        db.commit()
    password_step(desk, live_server, login, PASSWORD)
    expect(desk).to_have_url(live_server.url("/console/account/second-factor"))
    expect(desk.locator(".qr svg")).to_have_count(1)
    assert_accessible(desk)
    screenshot(desk, "console-accounts-03-enrol")
    secret = desk.locator("#totp-secret").get_attribute("data-secret")
    assert secret and re.fullmatch(r"[A-Z2-7]+", secret)
    desk.get_by_label("アプリに表示された6桁のコード").fill(code_at(secret, live_server.clock.now))
    desk.get_by_role("button", name="設定する").click()
    codes = desk.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    assert_accessible(desk)
    screenshot(desk, "console-accounts-04-recovery-codes")
    desk.get_by_role("link", name="控えたので、続ける").click()
    expect(desk).to_have_url(live_server.url("/console/"))

    # Later, elsewhere: the password, then the code; a wrong one and a used one refused.
    live_server.clock.advance(seconds=30)
    password_step(other, live_server, login, PASSWORD)
    expect(other).to_have_url(live_server.url("/console/login/code"))
    assert_accessible(other)
    code_field = other.get_by_label("認証アプリの6桁のコード")
    code_field.fill("000000")
    other.get_by_role("button", name="確認").click()
    expect(other.get_by_role("alert")).to_contain_text("確認コードが違います")
    assert_accessible(other)
    code = code_at(secret, live_server.clock.now)
    code_field.fill(code)
    other.get_by_role("button", name="確認").click()
    expect(other).to_have_url(live_server.url("/console/"))
    other.get_by_role("button", name="ログアウト").click()
    password_step(other, live_server, login, PASSWORD)
    code_field.fill(code)  # the same code, still inside its 30 seconds
    other.get_by_role("button", name="確認").click()
    expect(other.get_by_role("alert")).to_contain_text("確認コードが違います")

    # A recovery code instead: good once.
    code_field.fill(codes[0])
    other.get_by_role("button", name="確認").click()
    expect(other).to_have_url(live_server.url("/console/"))
    other.get_by_role("button", name="ログアウト").click()
    password_step(other, live_server, login, PASSWORD)
    code_field.fill(codes[0])
    other.get_by_role("button", name="確認").click()
    expect(other.get_by_role("alert")).to_contain_text("確認コードが違います")

    # Another supervisor resets it (a lost phone); the audit log shows all of it.
    desk.get_by_role("button", name="ログアウト").click()
    sign_in(desk, live_server, make_person(live_server, "supervisor"))
    desk.get_by_role("link", name="職員").click()
    desk.locator(".staff-row", has_text=login).get_by_role(
        "button", name="2段階認証を再設定"
    ).click()
    expect(desk.locator("#factor-reset")).to_contain_text(login)
    assert_accessible(desk)
    desk.goto(live_server.url(f"/console/audit?login_id={login}"))
    log = desk.locator("main")
    expect(log).to_contain_text("staff.second_factor_enrol")
    expect(log).to_contain_text("staff.recovery_code_used")
    expect(log).to_contain_text("staff.second_factor_failed")
    desk.goto(live_server.url("/console/audit?action=staff.second_factor_reset"))
    expect(desk.locator("main")).to_contain_text("staff.second_factor_reset")
    assert_accessible(desk)
    screenshot(desk, "console-accounts-05-audit")
    password_step(other, live_server, login, PASSWORD)
    expect(other).to_have_url(live_server.url("/console/account/second-factor"))
