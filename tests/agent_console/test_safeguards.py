"""Personal-data safeguards in the console: no free-text field takes a My Number (written
whole, in groups, with dots or middle dots), and a phone number is never put in a URL."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from agent_console.models import Inquiry
from booking import service as booking
from tests.agent_console.test_console import Console, csrf_of, events, search_by_phone
from tests.agent_console.test_counter import a_full_slot, day_of
from tests.ivr.conftest import new_mobile

MY_NUMBERS = ["621498320257", "6214 9832 0257", "6214.9832.0257", "６２１４・９８３２・０２５７"]


@pytest.mark.parametrize("written", MY_NUMBERS)
def test_no_console_form_takes_a_my_number(console: Console, written: str) -> None:
    supervisor, _ = console.signed_in("supervisor")
    faq = supervisor.get("/console/faq")
    refused = supervisor.post(
        "/console/faq/how_long",
        data={
            "csrf": csrf_of(faq.text),
            "title_ja": "交付までの期間",
            "title_en": "How long",
            "answer_ja": f"番号{written}の方へ",
            "answer_en": "x",
        },
    )
    assert refused.status_code == 422
    assert "マイナンバー（個人番号）は入力できません" in refused.text
    assert "何も保存していません" in refused.text
    with console.app_sessions() as db:
        from ivr import service as calls

        entry = next(e for e in calls.faq_entries(db) if e.id == "how_long")
    assert written not in entry.answer_ja


def test_a_closure_reason_with_a_my_number_closes_nothing(console: Console) -> None:
    slot, made = a_full_slot(console, [1], spare=1)
    manager, _ = console.signed_in("counter_manager")
    venue, day = day_of(made[0])
    page = manager.get("/console/manage", params={"venue": venue, "day": day})
    form = {
        "csrf": csrf_of(page.text),
        "slot": str(slot),
        "venue": venue,
        "day": day,
        "change": "close",
        "reason": "申出人 6214.9832.0257 の件",
        "choice": "keep",
    }
    assert manager.post("/console/manage/change", data=form).status_code == 422
    with console.app_sessions() as db:
        assert booking.get_booking(db, booking_id=made[0].id).status == "booked"
        opened = [
            s.is_open
            for s in booking.slots_of_day(db, venue_id=venue, day=made[0].starts_at.date())
            if s.id == slot
        ]
    assert opened in ([True], [])  # untouched (the UTC date may be the day before)


def refused_note(console: Console, note: str) -> tuple[httpx.Response, bool]:
    """An agent logs an inquiry with this note: the answer, and whether nothing was kept."""
    agent, _ = console.signed_in("agent")
    home = agent.get("/console/")
    with console.app_sessions() as db:
        before = db.execute(select(func.count()).select_from(Inquiry)).scalar_one()
    answer = agent.post(
        "/console/calls/CAnone/inquiries",
        data={
            "csrf": csrf_of(home.text),
            "category": "pin",
            "note": note,
            "resolution": "answered",
        },
    )
    with console.app_sessions() as db:
        after = db.execute(select(func.count()).select_from(Inquiry)).scalar_one()
    return answer, after == before


def test_an_inquiry_note_with_a_my_number_is_not_kept(console: Console) -> None:
    refused, kept_nothing = refused_note(
        console, "本人の個人番号は６２１４９８３２０２５７とのこと"
    )
    assert refused.status_code == 422
    assert kept_nothing


@pytest.mark.parametrize("unreadable", ["\x00", "\x1b[31m", "\x7f"])
def test_a_form_with_a_control_character_saves_nothing(console: Console, unreadable: str) -> None:
    """A NUL would be a server error on PostgreSQL; no text a person types holds one."""
    refused, kept_nothing = refused_note(console, f"電話あり{unreadable}折り返し")
    assert refused.status_code == 422
    assert "制御文字" in refused.text and "何も保存していません" in refused.text
    assert kept_nothing
    agent, _ = console.signed_in("agent")
    home = agent.get("/console/")
    kept = agent.post(
        "/console/calls/CAnone/inquiries",
        data={"csrf": csrf_of(home.text), "category": "pin", "note": "一行目\r\n二行目\tタブ"},
        follow_redirects=False,
    )
    assert kept.status_code != 422  # line breaks and tabs are text


def test_phone_numbers_are_searched_by_post_never_in_the_url(console: Console) -> None:
    agent, login = console.signed_in("agent")
    phone = new_mobile()
    found = search_by_phone(agent, phone)
    assert found.status_code == 200
    assert phone not in str(found.url)
    # A link carrying a phone number searches nothing (and logs nothing).
    before = len(events(console, login_id=login, action="booking.search"))
    agent.get("/console/bookings", params={"phone": phone})
    assert len(events(console, login_id=login, action="booking.search")) == before
    forged = agent.post("/console/bookings", data={"csrf": "x", "phone": phone})
    assert forged.status_code == 403


def test_auditors_see_the_erasure_records_and_print_a_certificate(console: Console) -> None:
    from agent_console import service as staff

    with console.app_sessions() as db:
        record = staff.record_erasure(
            db, job="retention (daily)", scope="retention", cutoff=None, counts={"予約 bookings": 7}
        )
        db.commit()
    auditor, login = console.signed_in("auditor")
    listed = auditor.get("/console/erasures")
    assert listed.status_code == 200
    assert f'href="/console/erasures/{record.id}"' in listed.text
    certificate = auditor.get(f"/console/erasures/{record.id}")
    assert "消去証明書" in certificate.text and "予約 bookings: 7" in certificate.text
    assert events(console, login_id=login, action="erasure.certificate")
    agent, _ = console.signed_in("agent")
    assert agent.get("/console/erasures").status_code == 403


def test_supervisors_open_the_monthly_report_and_its_csv(console: Console) -> None:
    supervisor, login = console.signed_in("supervisor")
    page = supervisor.get("/console/reports/monthly", params={"month": "2026-12"})
    assert page.status_code == 200
    assert "2026年12月 業務報告" in page.text and page.text.count("<svg") == 3
    assert page.headers["cache-control"] == "no-store"
    figures = supervisor.get("/console/reports/monthly.csv", params={"month": "2026-12"})
    assert figures.headers["content-type"].startswith("text/csv")
    assert "2026-12,calls,received," in figures.text
    assert events(console, login_id=login, action="report.monthly")
    wrong = supervisor.get("/console/reports/monthly", params={"month": "2026-13"})
    assert wrong.status_code == 422 and "2026-10" in wrong.text
    agent, _ = console.signed_in("agent")
    assert agent.get("/console/reports/monthly").status_code == 403


def test_a_calendar_url_is_fetched_only_for_a_signed_in_manager(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_console import manage_calendar

    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return b""

    monkeypatch.setattr(manage_calendar, "fetch_calendar", fetch)
    stranger = console.browser()
    stranger.post("/console/manage/calendar/import", data={"url": "http://192.0.2.1/x.ics"})
    manager, _ = console.signed_in("counter_manager")
    manager.post(
        "/console/manage/calendar/import", data={"csrf": "forged", "url": "http://192.0.2.1/y"}
    )
    assert fetched == []  # neither a stranger nor a forged form makes the server fetch
