"""Staff accounts over HTTP: the confirmation after creating one, the forced change of a
temporary password, each role's home after signing in, a supervisor's password reset, and the
second factor (TOTP and recovery codes)."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import text

from agent_console import service as staff
from config.settings import Settings
from tests.agent_console.second_factor import code_at
from tests.agent_console.test_console import (
    PASSWORD,
    Console,
    csrf_of,
    events,
    give_code,
    sign_in,
)

NEW_PASSWORD = "a different long password"  # noqa: S105 (a test password)
_made = itertools.count(1)


def staff_id(console: Console, login: str) -> int:
    with console.app_sessions() as db:
        return next(p.id for p in staff.list_staff(db) if p.login_id == login)


def create_in_console(console: Console, supervisor: TestClient, role: str) -> httpx.Response:
    page = supervisor.get("/console/staff")
    made: httpx.Response = supervisor.post(
        "/console/staff",
        data={
            "csrf": csrf_of(page.text),
            "action": "create",
            "login_id": f"made{next(_made)}-{role}",
            "display_name": "山田 花子",
            "role": role,
            "password": PASSWORD,
        },
        follow_redirects=False,
    )
    return made


def change_password(
    browser: TestClient, current: str, new: str, again: str | None = None
) -> httpx.Response:
    form = browser.get("/console/account/password")
    changed: httpx.Response = browser.post(
        "/console/account/password",
        data={
            "csrf": csrf_of(form.text),
            "current": current,
            "new": new,
            "again": new if again is None else again,
        },
        follow_redirects=False,
    )
    return changed


# --- a. a clear confirmation after creating an account -----------------------------------------


def test_creating_an_account_says_who_which_role_and_what_to_hand_over(console: Console) -> None:
    supervisor, _ = console.signed_in("supervisor")
    made = create_in_console(console, supervisor, "counter_manager")
    assert made.status_code == 303
    shown = supervisor.get(made.headers["location"])
    confirmation = re.search(
        r'<div class="panel" role="status" id="created">(.*?)</div>', shown.text, re.S
    )
    assert confirmation, "no confirmation after creating the account"
    said = confirmation.group(1)
    assert "山田 花子" in said and "窓口管理者" in said and "初期パスワード" in said
    assert "最初のログインで" in said


# --- c. the first password is changed before anything else ---------------------------------------


def test_an_account_made_by_a_supervisor_changes_its_password_first(console: Console) -> None:
    supervisor, _ = console.signed_in("supervisor")
    made = create_in_console(console, supervisor, "agent")
    created = made.headers["location"].split("created=")[1]
    login = next(p.login_id for p in _people(console) if str(p.id) == created)
    newcomer = console.browser()
    signed = sign_in(newcomer, login)
    assert signed.headers["location"] == "/console/account/password"
    for path in ("/console/", "/console/bookings", "/console/faq", "/console/manage"):
        held = newcomer.get(path, follow_redirects=False)
        assert held.status_code == 303, path
        assert held.headers["location"] == "/console/account/password", path
    # The same rules as any password, and not the temporary one.
    assert "12文字以上" in change_password(newcomer, PASSWORD, "short").text
    assert "違うもの" in change_password(newcomer, PASSWORD, PASSWORD).text
    assert "2回とも" in change_password(newcomer, PASSWORD, NEW_PASSWORD, "mismatch!!!!!!").text
    assert "現在のパスワードが違います" in change_password(newcomer, "wrong", NEW_PASSWORD).text
    done = change_password(newcomer, PASSWORD, NEW_PASSWORD)
    assert done.status_code == 303 and done.headers["location"] == "/console/"
    assert newcomer.get("/console/").status_code == 200
    assert sign_in(console.browser(), login, NEW_PASSWORD).headers["location"] == "/console/"
    assert events(console, action="staff.password_change", subject_id=str(staff_id(console, login)))


def test_accounts_made_on_the_command_line_are_not_held(console: Console) -> None:
    login = console.person("agent")  # its owner chose the password
    assert sign_in(console.browser(), login).headers["location"] == "/console/"


def _people(console: Console) -> list[staff.Staff]:
    with console.app_sessions() as db:
        return staff.list_staff(db)


# --- d. each role starts on its own page ------------------------------------------------------------


def test_each_role_lands_on_its_own_home(console: Console) -> None:
    homes = {"agent": "/console/", "counter_manager": "/console/manage"}
    for role, home in homes.items():
        login = console.person(role)
        assert sign_in(console.browser(), login).headers["location"] == home, role


# --- b. a supervisor resets a forgotten password ----------------------------------------------------


def test_a_supervisor_resets_a_password_which_is_shown_once_and_changed_next(
    console: Console,
) -> None:
    agent, login = console.signed_in("agent")
    supervisor, _ = console.signed_in("supervisor")
    target = staff_id(console, login)
    page = supervisor.get("/console/staff")
    reset = supervisor.post(f"/console/staff/{target}/password", data={"csrf": csrf_of(page.text)})
    assert reset.status_code == 200
    shown = re.search(r'id="temporary-password">([^<]+)<', reset.text)
    assert shown, "the temporary password is not shown"
    temporary = shown.group(1)
    assert len(temporary) >= staff.MIN_PASSWORD_LENGTH
    assert temporary not in supervisor.get("/console/staff").text  # shown once
    # The agent's open session ended; the old password no longer works.
    assert agent.get("/console/", follow_redirects=False).headers["location"] == "/console/login"
    assert sign_in(console.browser(), login).status_code == 401
    again = console.browser()
    assert sign_in(again, login, temporary).headers["location"] == "/console/account/password"
    assert change_password(again, temporary, NEW_PASSWORD).headers["location"] == "/console/"
    resets = events(console, action="staff.password_reset", subject_id=str(target))
    assert len(resets) == 1 and temporary not in resets[0].detail


def test_only_supervisors_reset_passwords(console: Console) -> None:
    agent, _ = console.signed_in("agent")
    victim = console.person("agent")
    page = agent.get("/console/")
    refused = agent.post(
        f"/console/staff/{staff_id(console, victim)}/password", data={"csrf": csrf_of(page.text)}
    )
    assert refused.status_code == 403
    assert sign_in(console.browser(), victim).status_code == 303  # untouched


# --- e. the second factor ---------------------------------------------------------------------------


def enrol_in_console(console: Console, browser: TestClient) -> tuple[str, list[str]]:
    """Set up the authenticator on the enrolment page: the secret read from the page, the
    first code typed; the recovery codes shown."""
    page = browser.get("/console/account/second-factor")
    assert "<svg" in page.text  # the QR code of the otpauth URI
    secret = re.search(r'data-secret="([A-Z2-7]+)"', page.text)
    assert secret, "no secret shown as text"
    earlier = console.clock.now - timedelta(seconds=30)
    done = browser.post(
        "/console/account/second-factor",
        data={"csrf": csrf_of(page.text), "code": code_at(secret.group(1), earlier)},
    )
    assert done.status_code == 200, done.text
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.text)
    return secret.group(1), codes


def test_a_supervisor_made_on_the_command_line_enrols_at_the_first_sign_in(
    console: Console,
) -> None:
    login = f"first{next(_made)}"
    with console.app_sessions() as db:  # what `madoguchi staff create` does
        staff.create_staff(
            db, login_id=login, display_name="佐藤", role="supervisor", password=PASSWORD
        )
        db.commit()
    browser = console.browser()
    assert sign_in(browser, login).headers["location"] == "/console/account/second-factor"
    for path in ("/console/", "/console/staff", "/console/audit"):
        held = browser.get(path, follow_redirects=False)
        assert held.headers["location"] == "/console/account/second-factor", path
    wrong = browser.post(
        "/console/account/second-factor",
        data={
            "csrf": csrf_of(browser.get("/console/account/second-factor").text),
            "code": "000000",
        },
    )
    assert wrong.status_code == 422 and "確認コードが違います" in wrong.text
    secret, codes = enrol_in_console(console, browser)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert browser.get("/console/staff").status_code == 200
    with console.app_sessions() as db:  # the secret is kept encrypted, the codes hashed
        row = db.execute(
            text("SELECT totp_secret_enc FROM staff_user WHERE login_id = :l"), {"l": login}
        ).scalar_one()
        assert secret not in row
        hashes = db.execute(text("SELECT code_hash FROM staff_recovery_code")).scalars().all()
        assert all(h.startswith("$argon2id$") for h in hashes)
        assert not any(c in h for c in codes for h in hashes)
    assert events(console, action="staff.second_factor_enrol", login_id=login)

    # The next sign-in asks for the code; nothing opens before it.
    again = console.browser()
    assert sign_in(again, login).headers["location"] == "/console/login/code"
    assert again.get("/console/", follow_redirects=False).headers["location"] == (
        "/console/login/code"
    )
    now_code = code_at(secret, console.clock.now)
    assert give_code(again, now_code).headers["location"] == "/console/"
    # The same code again, inside its window: refused.
    replay = console.browser()
    sign_in(replay, login)
    refused = give_code(replay, now_code)
    assert refused.status_code == 401 and "確認コードが違います" in refused.text
    # The next step's code (±1 step) is accepted.
    later = code_at(secret, console.clock.now + timedelta(seconds=30))
    assert give_code(replay, later).headers["location"] == "/console/"


def test_a_recovery_code_works_once(console: Console) -> None:
    browser, login = console.signed_in("agent")  # an agent may enrol too, by choice
    _, codes = enrol_in_console(console, browser)
    first = console.browser()
    sign_in(first, login)
    assert give_code(first, codes[0].upper()).headers["location"] == "/console/"
    used = events(console, action="staff.recovery_code_used", login_id=login)
    assert len(used) == 1 and used[0].detail == "left=9"
    second = console.browser()
    sign_in(second, login)
    assert give_code(second, codes[0]).status_code == 401


def test_wrong_codes_lock_the_account_like_wrong_passwords(console: Console) -> None:
    login = console.person("supervisor")
    browser = console.browser()
    sign_in(browser, login)
    for _ in range(staff.MAX_FAILED_LOGINS - 1):
        assert give_code(browser, "123456").status_code == 401
    locked = give_code(browser, "123456")
    assert "ロックされています" in locked.text
    # The half-open session ended; the right password and code are refused for a while.
    assert browser.get("/console/", follow_redirects=False).headers["location"] == "/console/login"
    assert sign_in(console.browser(), login).status_code == 401
    assert len(events(console, action="staff.second_factor_failed", login_id=login)) == 5


def test_a_supervisor_resets_a_second_factor(console: Console) -> None:
    auditor, login = console.signed_in("auditor")
    supervisor, _ = console.signed_in("supervisor")
    target = staff_id(console, login)
    page = supervisor.get("/console/staff")
    assert "設定済み" in page.text
    reset = supervisor.post(
        f"/console/staff/{target}/second-factor", data={"csrf": csrf_of(page.text)}
    )
    assert reset.status_code == 200 and 'id="factor-reset"' in reset.text
    assert auditor.get("/console/audit", follow_redirects=False).headers["location"] == (
        "/console/login"
    )
    again = console.browser()
    assert sign_in(again, login).headers["location"] == "/console/account/second-factor"
    assert events(console, action="staff.second_factor_reset", subject_id=str(target))


def test_the_roles_needing_a_second_factor_are_a_setting() -> None:
    assert Settings(environment="test").second_factor_role_set == {"supervisor", "auditor"}
    wider = Settings(environment="test", second_factor_roles="agent")
    assert wider.second_factor_role_set == {"agent", "supervisor", "auditor"}
    with pytest.raises(ValueError, match="operator"):
        Settings(environment="test", second_factor_roles="agent,operator")


def test_agents_need_a_second_factor_where_the_ward_says_so(console: Console) -> None:
    console.app.state.settings = Settings(
        **{**console.app.state.settings.model_dump(), "second_factor_roles": "agent"}
    )
    login = console.person("agent")
    assert sign_in(console.browser(), login).headers["location"] == "/console/account/second-factor"


def _most_at_once(verify: Callable[[str, str], object], monkeypatch: pytest.MonkeyPatch) -> int:
    """How many of six checks started together ran at the same time (argon2 made slow)."""
    running, most = 0, 0
    counting = threading.Lock()

    def slow(_self: PasswordHasher, _hash: str | bytes, _password: str | bytes) -> bool:
        nonlocal running, most
        with counting:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with counting:
            running -= 1
        return True

    monkeypatch.setattr(PasswordHasher, "verify", slow)
    together = threading.Barrier(6)

    def check() -> None:
        together.wait()
        verify("hash", "password")

    threads = [threading.Thread(target=check) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return most


def test_one_password_check_at_a_time_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each check runs argon2's lanes on 4 threads: ten sign-ins at once must not become 40
    # busy threads beside the phone line's one.
    assert _most_at_once(staff._hasher.verify, monkeypatch) == 1
    # A hasher of the library's own runs them together (so the count above can fail).
    plain = PasswordHasher()
    assert _most_at_once(lambda hashed, given: plain.verify(hashed, given), monkeypatch) > 1
