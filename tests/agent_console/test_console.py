"""The agent console over HTTP, on SQLite and PostgreSQL: staff sign-in and its guards, roles,
the audit log and its tamper check, and the queue fed by a simulated Twilio call."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from agent_console import service as staff
from agent_console.models import AuditEvent
from booking import service as booking
from booking.personal import display_phone
from ivr.caller import PhoneCall
from reminders import service as reminders
from tests.agent_console.second_factor import code_at, enrol
from tests.conftest import FakeClock, SlotMaker, app_for
from tests.ivr.conftest import PUBLIC, TOKEN, new_mobile
from tests.reminders.conftest import RULES

PASSWORD = "correct horse battery"  # noqa: S105 (a test password)
_logins = itertools.count(1)


@dataclass
class Console:
    app_sessions: sessionmaker[Session]
    engine: Engine
    clock: FakeClock
    app: FastAPI
    totp: dict[str, str] = field(default_factory=dict)  # login ID → second-factor secret

    def person(self, role: str) -> str:
        """A new staff account: its login ID. Roles that need a second factor get one set up
        (its secret in ``totp``)."""
        login = f"{role}{next(_logins)}"
        with self.app_sessions() as db:
            made = staff.create_staff(
                db, login_id=login, display_name=f"{role} san", role=role, password=PASSWORD
            )
            if role in staff.SECOND_FACTOR_ALWAYS:
                self.totp[login] = enrol(db, made.id, self.clock.now)
            db.commit()
        return login

    def browser(self) -> TestClient:
        return TestClient(self.app, base_url="https://console.example.jp")

    def signed_in(self, role: str) -> tuple[TestClient, str]:
        login = self.person(role)
        browser = self.browser()
        assert sign_in(browser, login).status_code == 303
        if login in self.totp:
            assert give_code(browser, code_at(self.totp[login], self.clock.now)).status_code == 303
        return browser, login


def ask_for_a_callback(console: Console) -> PhoneCall:
    """A resident calls out of hours and asks to be called back (the number they call from)."""
    console.clock.set(console.clock.now.replace(hour=20))
    try:
        with TestClient(console.app) as http:
            call = PhoneCall(
                http, public_base_url=PUBLIC, auth_token=TOKEN, from_number=new_mobile()
            )
            call.dial()
            call.press("0")
            call.press("1")
            call.press("1")
    finally:
        console.clock.set(console.clock.now.replace(hour=10))
    return call


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(browser: TestClient, login: str, password: str = PASSWORD) -> httpx.Response:
    form = browser.get("/console/login")
    answer: httpx.Response = browser.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "login_id": login, "password": password},
        follow_redirects=False,
    )
    return answer


def give_code(browser: TestClient, code: str) -> httpx.Response:
    """The second step of signing in: the authenticator's (or a recovery) code."""
    form = browser.get("/console/login/code")
    answer: httpx.Response = browser.post(
        "/console/login/code",
        data={"csrf": csrf_of(form.text), "code": code},
        follow_redirects=False,
    )
    return answer


def search_by_phone(browser: TestClient, phone: str) -> httpx.Response:
    """The booking search by phone: a POST, so the number stays out of the URL."""
    form = browser.get("/console/bookings")
    found: httpx.Response = browser.post(
        "/console/bookings", data={"csrf": csrf_of(form.text), "phone": phone}
    )
    return found


def events(console: Console, **where: str) -> list[AuditEvent]:
    with console.app_sessions() as db:
        query = select(AuditEvent).order_by(AuditEvent.id)
        for name, value in where.items():
            query = query.where(getattr(AuditEvent, name) == value)
        return list(db.execute(query).scalars())


@pytest.fixture
def console(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[Console]:
    app = app_for(engine, clock, tmp_path, twilio_auth_token=TOKEN, public_base_url=PUBLIC)
    with TestClient(app):
        yield Console(app.state.sessions, engine, clock, app)


# --- signing in -------------------------------------------------------------------------------


def test_staff_sign_in_with_their_own_id_and_the_cookie_is_guarded(console: Console) -> None:
    login = console.person("agent")
    browser = console.browser()
    assert browser.get("/console/", follow_redirects=False).headers["location"] == "/console/login"
    answer = sign_in(browser, login)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "console=" in cookie and "HttpOnly" in cookie and "Secure" in cookie
    assert "SameSite=strict" in cookie
    home = browser.get("/console/")
    assert home.status_code == 200
    assert "受付キュー" in home.text and "agent san" in home.text
    assert home.headers["cache-control"] == "no-store"
    assert [e.action for e in events(console, login_id=login)] == ["staff.login"]


def test_wrong_passwords_lock_the_account_for_a_while(console: Console) -> None:
    login = console.person("agent")
    browser = console.browser()
    for _ in range(staff.MAX_FAILED_LOGINS):
        refused = sign_in(browser, login, "wrong password!!")
        assert refused.status_code == 401
        assert "ログインIDまたはパスワードが違います" in refused.text
    locked = sign_in(browser, login)  # the right password, but locked now
    assert locked.status_code == 401
    assert "ロックされています" in locked.text
    console.clock.advance(minutes=staff.LOCK_MINUTES + 1)
    assert sign_in(browser, login).status_code == 303
    failed = events(console, login_id=login, action="staff.login_failed")
    assert len(failed) == staff.MAX_FAILED_LOGINS + 1
    unknown = sign_in(browser, "nobody-by-this-id")
    assert "ログインIDまたはパスワードが違います" in unknown.text


def test_a_login_form_without_its_token_is_refused(console: Console) -> None:
    login = console.person("agent")
    browser = console.browser()
    answer = browser.post("/console/login", data={"login_id": login, "password": PASSWORD})
    assert "有効期限が切れました" in answer.text
    assert not browser.cookies.get("console")


def test_idle_sessions_end(console: Console) -> None:
    browser, _ = console.signed_in("agent")
    console.clock.advance(minutes=staff.IDLE_MINUTES - 1)
    assert browser.get("/console/").status_code == 200  # activity keeps it alive
    console.clock.advance(minutes=staff.IDLE_MINUTES - 1)
    assert browser.get("/console/").status_code == 200
    console.clock.advance(minutes=staff.IDLE_MINUTES + 1)
    gone = browser.get("/console/", follow_redirects=False)
    assert gone.headers["location"] == "/console/login"


def test_a_deactivated_agent_is_out_at_once(console: Console) -> None:
    agent, agent_login = console.signed_in("agent")
    supervisor, _ = console.signed_in("supervisor")
    assert agent.get("/console/").status_code == 200
    page = supervisor.get("/console/staff")
    assert agent_login in page.text
    with console.app_sessions() as db:
        agent_id = next(p.id for p in staff.list_staff(db) if p.login_id == agent_login)
    done = supervisor.post(
        "/console/staff",
        data={"csrf": csrf_of(page.text), "action": "deactivate", "staff_id": str(agent_id)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    thrown_out = agent.get("/console/", follow_redirects=False)
    assert thrown_out.headers["location"] == "/console/login"
    assert sign_in(console.browser(), agent_login).status_code == 401
    assert events(console, action="staff.deactivate", subject_id=str(agent_id))


def test_an_agent_cannot_open_supervisor_or_auditor_pages(console: Console) -> None:
    agent, login = console.signed_in("agent")
    for path in ("/console/staff", "/console/audit", "/console/audit.csv"):
        refused = agent.get(path)
        assert refused.status_code == 403, path
        assert "権限がありません" in refused.text
    refused_posts = agent.post("/console/staff", data={"action": "create"})
    assert refused_posts.status_code == 403
    assert len(events(console, login_id=login, action="page.refused")) == 4


def test_supervisors_create_accounts_and_change_roles_with_a_valid_form(console: Console) -> None:
    supervisor, _ = console.signed_in("supervisor")
    page = supervisor.get("/console/staff")
    forged = supervisor.post(
        "/console/staff",
        data={"csrf": "forged", "action": "create", "login_id": "x1", "password": PASSWORD},
    )
    assert forged.status_code == 403
    login = f"newcomer{next(_logins)}"
    short = supervisor.post(
        "/console/staff",
        data={
            "csrf": csrf_of(page.text),
            "action": "create",
            "login_id": login,
            "role": "agent",
            "password": "short",
        },
    )
    assert short.status_code == 422 and "12文字以上" in short.text
    assert f'value="{login}"' in short.text  # what was typed is kept
    made = supervisor.post(
        "/console/staff",
        data={
            "csrf": csrf_of(page.text),
            "action": "create",
            "login_id": login,
            "display_name": "新人",
            "role": "agent",
            "password": PASSWORD,
        },
        follow_redirects=False,
    )
    assert made.status_code == 303
    newcomer = console.browser()
    assert sign_in(newcomer, login).status_code == 303
    # The supervisor chose the first password: it is replaced before anything else.
    form = newcomer.get("/console/account/password")
    newcomer.post(
        "/console/account/password",
        data={
            "csrf": csrf_of(form.text),
            "current": PASSWORD,
            "new": PASSWORD + "!",
            "again": PASSWORD + "!",
        },
    )
    assert newcomer.get("/console/audit").status_code == 403
    with console.app_sessions() as db:
        newcomer_id = next(p.id for p in staff.list_staff(db) if p.login_id == login)
    supervisor.post(
        "/console/staff",
        data={
            "csrf": csrf_of(page.text),
            "action": "role",
            "staff_id": str(newcomer_id),
            "role": "auditor",
        },
    )
    # The new role, at once: an auditor's, which first asks for a second factor to be set up.
    promoted = newcomer.get("/console/audit", follow_redirects=False)
    assert promoted.headers["location"] == "/console/account/second-factor"


# --- residents' data and the audit log ----------------------------------------------------------


def test_looking_up_a_caller_writes_an_audit_event(console: Console) -> None:
    phone = new_mobile()
    with console.app_sessions() as db:
        slot = SlotMaker(db)(2)
        made = booking.book(
            db,
            slot_id=slot,
            party=1,
            resident=booking.ResidentInput("テスト ハナコ", phone, date(1960, 1, 1)),
            channel="web",
        )
        db.commit()
    agent, login = console.signed_in("agent")
    page = search_by_phone(agent, phone)
    assert page.status_code == 200
    assert made.code in page.text
    assert page.text.count(phone) == 1  # in the search box only: the results show it masked
    logged = events(console, login_id=login, action="booking.search")
    assert len(logged) == 1
    assert logged[0].subject_kind == "phone"
    assert phone not in logged[0].subject_id and phone[-8:] not in logged[0].detail
    assert str(made.id) in logged[0].detail
    by_code = agent.get("/console/bookings", params={"code": made.code})
    assert made.code in by_code.text
    assert events(console, login_id=login, action="booking.search", subject_kind="booking")


def _tamper(console: Console, event_id: int, detail: str) -> None:
    """Edit an event as someone with database access would: around the append-only trigger."""
    with console.engine.begin() as conn:
        if console.engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
            conn.execute(
                text("UPDATE audit_event SET detail = :d WHERE id = :id"),
                {"d": detail, "id": event_id},
            )
            conn.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only"))
        else:
            conn.execute(text("DROP TRIGGER audit_event_no_update"))
            conn.execute(
                text("UPDATE audit_event SET detail = :d WHERE id = :id"),
                {"d": detail, "id": event_id},
            )
            conn.execute(
                text(
                    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
                    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"
                )
            )


def test_the_audit_log_cannot_be_edited_and_an_edit_is_detected(console: Console) -> None:
    agent, login = console.signed_in("agent")
    search_by_phone(agent, new_mobile())
    event = events(console, login_id=login, action="booking.search")[-1]
    with console.app_sessions() as db:
        assert staff.check_chain(db).intact
    with pytest.raises(DBAPIError, match="append-only"), console.engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET detail = 'x' WHERE id = :id"), {"id": event.id})
    with pytest.raises(DBAPIError, match="append-only"), console.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": event.id})

    _tamper(console, event.id, "0 found; nothing to see")
    try:
        with console.app_sessions() as db:
            report = staff.check_chain(db)
        assert not report.intact
        assert any(f"event {event.id}: its content does not match" in b for b in report.breaks)
        auditor, _ = console.signed_in("auditor")
        page = auditor.get("/console/audit")
        assert "異常があります" in page.text
    finally:
        _tamper(console, event.id, event.detail)  # put it back for the tests after this one
    with console.app_sessions() as db:
        assert staff.check_chain(db).intact


def test_auditors_search_and_export_the_log(console: Console) -> None:
    agent, login = console.signed_in("agent")
    agent.get("/console/bookings", params={"code": "12345678"})
    auditor, auditor_login = console.signed_in("auditor")
    page = auditor.get("/console/audit", params={"login_id": login})
    assert page.status_code == 200
    assert "連鎖に異常はありません" in page.text
    assert page.text.count('class="audit-row"') == 1 + 0  # the login only: the code was unknown
    exported = auditor.get("/console/audit.csv", params={"login_id": login})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = exported.content.decode("utf-8-sig").splitlines()
    assert rows[0].startswith("id,at,login_id,action")
    assert len(rows) == 2 and ",staff.login," in rows[1]
    assert events(console, login_id=auditor_login, action="audit.export")


# --- the queue ----------------------------------------------------------------------------------


def test_a_caller_who_asks_for_a_person_shows_in_the_queue(console: Console) -> None:
    agent, _ = console.signed_in("agent")
    with TestClient(console.app) as http:
        call = PhoneCall(http, public_base_url=PUBLIC, auth_token=TOKEN, from_number=new_mobile())
        call.dial()
        call.press("3")  # the FAQ first, then a person
        call.press("0")
        assert call.state == "queued"
        queue = agent.get("/console/")
        rows = re.findall(r'<tr class="waiting-call">(.*?)</tr>', queue.text, re.S)
        mine = [r for r in rows if call.from_number[-4:] in r]  # other tests' callers wait too
        assert len(mine) == 1, "the waiting call is not in the queue"
        assert "日本語" in mine[0]
        assert call.from_number not in queue.text  # masked
        # The way through the IVR in words, not codes.
        assert "メニュー：よくある質問（3） → よくある質問：担当者（0） → 担当者へ" in mine[0]
        call.press("1")  # a callback instead
        call.press("1")
        after = agent.get("/console/")
        waiting = re.findall(r'<tr class="waiting-call">(.*?)</tr>', after.text, re.S)
        callbacks = re.findall(r'<tr class="callback">(.*?)</tr>', after.text, re.S)
        assert not any(call.from_number[-4:] in w for w in waiting)  # left the queue
        assert any(call.from_number[-4:] in c and "待ち時間" in c for c in callbacks)


def test_two_agents_pressing_answer_one_gets_the_call(console: Console) -> None:
    first, first_login = console.signed_in("agent")
    second, second_login = console.signed_in("agent")
    with TestClient(console.app) as http:
        call = PhoneCall(http, public_base_url=PUBLIC, auth_token=TOKEN, from_number=new_mobile())
        call.dial()
        call.press("0")
    pages = [first.get("/console/"), second.get("/console/")]
    answers = [
        browser.post(
            f"/console/calls/{call.call_sid}/answer",
            data={"csrf": csrf_of(page.text)},
            follow_redirects=False,
        )
        for browser, page in zip((first, second), pages, strict=True)
    ]
    assert answers[0].headers["location"] == f"/console/calls/{call.call_sid}?audio=no_phone"
    assert answers[1].headers["location"] == "/console/?taken=1"
    # The screen is the first agent's: the second may not open it.
    assert first.get(f"/console/calls/{call.call_sid}").status_code == 200
    assert second.get(f"/console/calls/{call.call_sid}").status_code == 403
    assert events(console, login_id=first_login, action="call.answer")
    assert events(console, login_id=first_login, action="call.view", subject_id=call.call_sid)
    assert not events(console, login_id=second_login, action="call.answer")
    # Until the wrap-up, the first agent's queue page points at the call in hand.
    assert "対応中の電話があります" in first.get("/console/").text
    screen = first.get(f"/console/calls/{call.call_sid}")
    unfiled = first.post(
        f"/console/calls/{call.call_sid}/inquiries",
        data={
            "csrf": csrf_of(screen.text),
            "category": "nonsense",
            "note": "x",
            "resolution": "resolved",
        },
    )
    assert "用件の分類を選んでください" in unfiled.text
    first.post(
        f"/console/calls/{call.call_sid}/wrap-up",
        data={"csrf": csrf_of(screen.text), "disposition": "resolved"},
    )
    assert "対応中の電話があります" not in first.get("/console/").text
    with console.app_sessions() as db:
        from ivr import service as calls

        record = calls.get_call(db, call_sid=call.call_sid)
    assert record is not None and record.wrapped_at is not None


def answered_and_held(
    console: Console, agent: TestClient, *keys: str
) -> tuple[PhoneCall, Response, Response]:
    """A caller who pressed ``keys`` then 0, answered by the agent, with the first PIN-reset time
    held on their behalf: the call, its screen, and the booking form on the held time."""
    with TestClient(console.app) as http:
        call = PhoneCall(http, public_base_url=PUBLIC, auth_token=TOKEN, from_number=new_mobile())
        call.dial()
        for key in (*keys, "0"):
            call.press(key)
    home = agent.get("/console/")
    agent.post(f"/console/calls/{call.call_sid}/answer", data={"csrf": csrf_of(home.text)})
    screen = agent.get(f"/console/calls/{call.call_sid}")
    times = agent.get(f"/console/calls/{call.call_sid}/book", params={"service": "pin_reset"})
    slot_id = re.search(r'name="slot_id" value="(\d+)"', times.text)
    assert slot_id
    held = agent.post(
        f"/console/calls/{call.call_sid}/book/hold",
        data={"csrf": csrf_of(screen.text), "slot_id": slot_id.group(1), "party": "1"},
    )
    return call, screen, held


def book_held(
    agent: TestClient, call: PhoneCall, screen: Response, held: Response, **resident: str
) -> str:
    """The held time booked for the caller (name_kana, birth_date, language); its code."""
    booked = agent.post(
        str(held.url),
        data={"csrf": csrf_of(screen.text), "phone": call.from_number, **resident},
    )
    code = re.search(r"予約番号 (\d{8})", booked.text)
    assert code, booked.text[:500]
    return code.group(1)


def test_an_agent_books_for_a_korean_caller_in_korean(console: Console) -> None:
    """The contact language offers every language the phone line speaks, the caller's own
    chosen first: a Korean caller's texts and calls come in Korean."""
    agent, _ = console.signed_in("agent")
    call, screen, held = answered_and_held(console, agent, "8")  # 8: Korean
    assert re.search(r'<option value="ko" lang="ko" selected>한국어</option>', held.text)
    code = book_held(
        agent,
        call,
        screen,
        held,
        name_kana="キム ミンジュン",
        birth_date="1985-03-03",
        language="ko",
    )
    with console.app_sessions() as db:
        made = booking.booking_by_code(db, code=code)
        assert booking.get_booking(db, booking_id=made.id).language == "ko"


def test_every_page_with_residents_data_writes_its_audit_event(console: Console) -> None:
    """Each console page that shows or changes a resident's data, opened once: each leaves an
    event naming who, what and which call or booking."""
    agent, login = console.signed_in("agent")
    call, screen, held = answered_and_held(console, agent)
    code = book_held(
        agent, call, screen, held, name_kana="カンサ タロウ", birth_date="1970-07-07", language="ja"
    )
    agent.post(
        f"/console/calls/{call.call_sid}/inquiries",
        data={
            "csrf": csrf_of(screen.text),
            "category": "pin",
            "note": "暗証番号",
            "resolution": "booked",
        },
    )
    search_by_phone(agent, call.from_number)
    agent.get("/console/bookings", params={"code": code})
    with console.app_sessions() as db:
        booking_id = booking.booking_by_code(db, code=code).id
    assert agent.get(f"/console/bookings/{booking_id}").status_code == 200
    actions = [e.action for e in events(console, login_id=login)]
    for expected in (
        "call.answer",
        "call.view",
        "booking.create",
        "inquiry.create",
        "booking.search",
        "booking.view",
    ):
        assert expected in actions, (expected, actions)
    assert actions.count("call.view") >= 3  # each time the screen was shown
    assert actions.count("booking.search") == 2
    with console.app_sessions() as db:
        made = booking.booking_by_code(db, code=code)
        assert made.channel == "agent"
        assert staff.check_chain(db).intact
    # The audit log itself holds IDs, never the resident's data.
    national = "0" + call.from_number[3:]
    for event in events(console, login_id=login):
        written = " ".join((event.subject_id, event.detail, event.client, event.login_id))
        for personal in (call.from_number, call.from_number[1:], national, "カンサ", "1970-07-07"):
            assert personal not in written, (event.action, written)


def test_a_callback_is_taken_on_by_one_agent_and_its_outcome_recorded(console: Console) -> None:
    first, first_login = console.signed_in("agent")
    second, _ = console.signed_in("agent")
    call = ask_for_a_callback(console)
    with console.app_sessions() as db:
        from ivr import service as calls

        mine = [c for c in calls.open_callbacks(db) if c.phone == call.from_number]
    assert len(mine) == 1
    callback_id = mine[0].id
    page = first.get("/console/")
    assert f"/console/callbacks/{callback_id}/claim" in page.text
    taken = first.post(f"/console/callbacks/{callback_id}/claim", data={"csrf": csrf_of(page.text)})
    # The whole number, as the agent dials it (090-…), for the agent who calls.
    assert display_phone(call.from_number) in taken.text
    assert events(console, login_id=first_login, action="callback.view")
    other = second.get("/console/")
    refused = second.post(
        f"/console/callbacks/{callback_id}/claim",
        data={"csrf": csrf_of(other.text)},
        follow_redirects=False,
    )
    assert refused.headers["location"] == "/console/?taken=1"
    assert second.get(f"/console/callbacks/{callback_id}").status_code == 403
    first.post(
        f"/console/callbacks/{callback_id}/finish",
        data={"csrf": csrf_of(taken.text), "outcome": "no_answer"},
    )
    again = second.get("/console/")  # back on the list for another try
    assert f"/console/callbacks/{callback_id}/claim" in again.text
    retry = second.post(
        f"/console/callbacks/{callback_id}/claim", data={"csrf": csrf_of(again.text)}
    )
    second.post(
        f"/console/callbacks/{callback_id}/finish",
        data={"csrf": csrf_of(retry.text), "outcome": "reached"},
    )
    with console.app_sessions() as db:
        assert all(c.id != callback_id for c in calls.open_callbacks(db))


def test_the_wallboard_counts_from_the_call_event_log(console: Console) -> None:
    """A day of its own (no other test calls on 2026-12-22): five calls, figures by hand."""
    from datetime import datetime as dt

    from booking.context import TOKYO
    from ivr import service as calls

    clock = console.clock

    def at(minutes: int, seconds: int) -> None:
        clock.set(dt(2026, 12, 22, 10, minutes, seconds, tzinfo=TOKYO))

    agent_login = console.person("agent")
    with console.app_sessions() as db:
        agent_id = next(p.id for p in staff.list_staff(db) if p.login_id == agent_login)

    def claim(call: PhoneCall) -> None:
        with console.app_sessions() as db:
            assert calls.claim_call(db, call_sid=call.call_sid, staff_id=agent_id)
            db.commit()

    def wrap(call: PhoneCall) -> None:
        with console.app_sessions() as db:
            assert calls.wrap_up(
                db, call_sid=call.call_sid, staff_id=agent_id, disposition="resolved"
            )
            db.commit()

    with TestClient(console.app) as http:

        def caller() -> PhoneCall:
            return PhoneCall(
                http, public_base_url=PUBLIC, auth_token=TOKEN, from_number=new_mobile()
            )

        a, b, c, d, e = (caller() for _ in range(5))
        at(0, 0)
        a.dial()
        a.press("0")
        at(0, 10)
        claim(a)  # answered in 10 s: within the target
        b.dial()
        b.press("0")
        at(0, 20)
        c.dial()
        c.press("0")
        at(1, 0)
        b.hang_up()  # abandoned in the queue
        claim(c)  # answered in 40 s
        d.dial()
        d.press("3")
        d.press("1")
        d.hang_up()  # the FAQ did it
        at(1, 30)
        e.dial()
        e.press("0")
        at(2, 0)
        wrap(c)  # 60 s handling
        at(3, 10)
        wrap(a)  # 180 s handling
        at(3, 30)  # e has waited two minutes

    with console.app_sessions() as db:
        board = calls.wallboard(db)
    assert board.today.offered == 4
    assert (board.today.connected, board.today.abandoned) == (2, 1)
    assert board.today.service_level == pytest.approx(1 / 3)
    assert board.today.abandon_rate == pytest.approx(1 / 3)
    assert board.today.average_speed_of_answer == pytest.approx(25)
    assert board.average_handling_seconds == pytest.approx(120)
    assert board.longest_wait_seconds == pytest.approx(120)
    assert board.waiting >= 1
    assert (board.calls, board.self_served) == (5, 1)
    assert list(board.by_hour) == [10]

    supervisor, _ = console.signed_in("supervisor")
    page = supervisor.get("/console/wallboard")
    assert page.status_code == 200
    assert 'id="service-level" style="font-size: 2rem; margin: 0">33%' in page.text
    assert "120秒" in page.text and "25秒" in page.text
    agent, _ = console.signed_in("agent")
    assert agent.get("/console/wallboard").status_code == 403


def test_agents_search_the_faq_and_supervisors_edit_it(console: Console) -> None:
    agent, _ = console.signed_in("agent")
    found = agent.get("/console/faq", params={"q": "暗証番号"})
    assert found.status_code == 200
    assert found.text.count('class="panel faq"') >= 1
    assert "カードの受け取りには" in found.text  # the what-to-bring answer mentions PINs
    assert 'id="faq-hours"' not in found.text  # the hours answer does not mention PINs
    assert "編集する" not in found.text  # agents read; supervisors edit
    assert agent.post("/console/faq/hours", data={"csrf": "x"}).status_code == 403

    supervisor, login = console.signed_in("supervisor")
    page = supervisor.get("/console/faq")
    with console.app_sessions() as db:
        from ivr import service as calls

        before = next(e for e in calls.faq_entries(db) if e.id == "how_long")
    empty = supervisor.post(
        "/console/faq/how_long",
        data={
            "csrf": csrf_of(page.text),
            "title_ja": before.title_ja,
            "title_en": "",
            "answer_ja": before.answer_ja,
            "answer_en": before.answer_en,
        },
    )
    assert empty.status_code == 422
    changed = before.answer_ja + "混雑時は2か月ほどかかることがあります。"
    saved = supervisor.post(
        "/console/faq/how_long",
        data={
            "csrf": csrf_of(page.text),
            "title_ja": before.title_ja,
            "title_en": before.title_en,
            "answer_ja": changed,
            "answer_en": before.answer_en,
        },
    )
    assert "保存しました" in saved.text and changed in saved.text
    assert events(console, login_id=login, action="faq.edit", subject_id="how_long")
    with console.app_sessions() as db:
        calls.update_faq(
            db,
            faq_id="how_long",
            title_ja=before.title_ja,
            title_en=before.title_en,
            answer_ja=before.answer_ja,
            answer_en=before.answer_en,
        )
        db.commit()


def test_an_agent_moves_and_cancels_a_callers_booking(console: Console) -> None:
    agent, login = console.signed_in("agent")
    phone = new_mobile()
    with console.app_sessions() as db:
        made = booking.book(
            db,
            slot_id=SlotMaker(db)(3),
            party=2,
            resident=booking.ResidentInput("イドウ ハナ", phone, date(1966, 6, 6)),
            channel="ivr",
        )
        target = SlotMaker(db)(2)
        db.commit()
    with TestClient(console.app) as http:
        call = PhoneCall(http, public_base_url=PUBLIC, auth_token=TOKEN, from_number=phone)
        call.dial()
        call.press("0")
    home = agent.get("/console/")
    screen = agent.post(f"/console/calls/{call.call_sid}/answer", data={"csrf": csrf_of(home.text)})
    assert made.code in screen.text  # found by the caller ID
    assert f"move={made.id}" in screen.text
    moved = agent.post(
        f"/console/calls/{call.call_sid}/book/hold",
        data={
            "csrf": csrf_of(screen.text),
            "slot_id": str(target),
            "party": "2",
            "move": str(made.id),
        },
    )
    assert f"予約番号 {made.code} の日時を変更しました" in moved.text
    with console.app_sessions() as db:
        after = booking.booking_by_code(db, code=made.code)
    assert after.slot_id == target and after.status == "booked"
    unconfirmed = agent.post(
        f"/console/calls/{call.call_sid}/bookings/{made.id}/cancel",
        data={"csrf": csrf_of(moved.text)},
    )
    assert "確認の欄にチェック" in unconfirmed.text
    cancelled = agent.post(
        f"/console/calls/{call.call_sid}/bookings/{made.id}/cancel",
        data={"csrf": csrf_of(moved.text), "confirm": "yes"},
    )
    assert f"予約番号 {made.code} を取り消しました" in cancelled.text
    with console.app_sessions() as db:
        assert booking.booking_by_code(db, code=made.code).status == "cancelled"
    actions = [e.action for e in events(console, login_id=login)]
    assert "booking.move" in actions and "booking.cancel" in actions


def test_supervisors_edit_the_inquiry_categories(console: Console) -> None:
    supervisor, login = console.signed_in("supervisor")
    page = supervisor.get("/console/categories")
    assert "カードの紛失" in page.text
    new_id = f"moving{next(_logins)}"
    added = supervisor.post(
        "/console/categories",
        data={"csrf": csrf_of(page.text), "id": new_id, "name_ja": "転居", "active": "yes"},
    )
    assert f'value="{new_id}"' in added.text
    with console.app_sessions() as db:
        assert new_id in [c.id for c in staff.categories(db)]
    supervisor.post(
        "/console/categories",
        data={"csrf": csrf_of(page.text), "id": new_id, "name_ja": "転居・転入"},  # unticked
    )
    with console.app_sessions() as db:
        assert new_id not in [c.id for c in staff.categories(db)]  # no longer offered
        assert (new_id, False) in [(c.id, a) for c, a in staff.all_categories(db)]
    bad = supervisor.post(
        "/console/categories", data={"csrf": csrf_of(page.text), "id": "", "name_ja": ""}
    )
    assert bad.status_code == 422
    assert events(console, login_id=login, action="category.save", subject_id=new_id)
    agent, _ = console.signed_in("agent")
    assert agent.get("/console/categories").status_code == 403


def test_agents_see_a_bookings_messages_resend_its_confirmation_and_stop_them(
    console: Console,
) -> None:
    mobile, landline = new_mobile(), "+81352734999"
    with console.app_sessions() as db:
        made = [
            booking.book(
                db,
                slot_id=SlotMaker(db)(2),
                party=1,
                resident=booking.ResidentInput("テスト ハナコ", phone, date(1960, 1, 1)),
                channel="web",
            )
            for phone in (mobile, landline)
        ]
        reminders.plan_from_outbox(db, RULES, limit=100_000)
        db.commit()
    on_mobile, on_landline = made
    agent, login = console.signed_in("agent")
    page = agent.get(f"/console/bookings/{on_mobile.id}")
    assert "予約確認" in page.text and "前日リマインダー" in page.text
    assert mobile not in page.text  # masked
    resent = agent.post(
        f"/console/bookings/{on_mobile.id}/messages",
        data={"csrf": csrf_of(page.text), "action": "resend"},
    )
    assert "確認のSMSを再送します" in resent.text
    with console.app_sessions() as db:
        kinds = [m.kind for m in reminders.messages_for(db, booking_id=on_mobile.id)]
    assert kinds.count("confirmation") == 2
    landline_page = agent.get(f"/console/bookings/{on_landline.id}")
    refused = agent.post(
        f"/console/bookings/{on_landline.id}/messages",
        data={"csrf": csrf_of(landline_page.text), "action": "resend"},
    )
    assert "携帯電話の番号" in refused.text
    stopped = agent.post(
        f"/console/bookings/{on_mobile.id}/messages",
        data={"csrf": csrf_of(page.text), "action": "stop_booking"},
    )
    assert "停止されています" in stopped.text
    with console.app_sessions() as db:
        left = {m.status for m in reminders.messages_for(db, booking_id=on_mobile.id)}
    assert left == {"dropped"}
    actions = [e.action for e in events(console, login_id=login)]
    assert {"booking.view", "booking.resend", "booking.stop_booking"} <= set(actions)
    forged = agent.post(
        f"/console/bookings/{on_mobile.id}/messages", data={"csrf": "x", "action": "resend"}
    )
    assert forged.status_code == 403
    manager, _ = console.signed_in("counter_manager")
    seen = manager.get(f"/console/bookings/{on_mobile.id}")
    assert seen.status_code == 200
    assert "確認SMSを再送" not in seen.text  # managers look; agents act
    token = csrf_of(manager.get("/console/").text)
    answer = manager.post(
        f"/console/bookings/{on_mobile.id}/messages", data={"csrf": token, "action": "resend"}
    )
    assert answer.status_code == 403
