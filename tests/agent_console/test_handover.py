"""Application help (申請補助) at the counter: a help visit completed with its two ticks,
recorded with the staff member; the day's handover sheet of the ward's copies (count and list,
no names), printable, confirmed by the person handing over and the ward's receiver with their
own credentials on the same screen, both audited; frozen once confirmed."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient

from agent_console import service as staff
from agent_console.models import AuditEvent
from booking import service as booking
from booking.context import TOKYO
from tests.agent_console.second_factor import code_at
from tests.agent_console.test_console import PASSWORD, Console, csrf_of, events
from tests.agent_console.test_counter import a_full_slot

HANDOVER = "/console/manage/counter/handover"


def at_the_counter(
    console: Console, parties: list[int]
) -> tuple[TestClient, str, list[booking.BookingView], dict[str, str]]:
    """Help bookings checked in today by a counter manager signed in: the browser, its login,
    the bookings and the form's hidden fields."""
    _, made = a_full_slot(console, parties, spare=1)  # a seat for a walk-in
    console.clock.set(made[0].starts_at.astimezone(TOKYO))
    clerk, login = console.signed_in("counter_manager")
    page = clerk.get("/console/manage/counter", params={"venue": made[0].venue_id})
    base = {"csrf": csrf_of(page.text), "venue": made[0].venue_id}
    for b in made:
        clerk.post("/console/manage/counter/check-in", data=base | {"code": b.code})
    return clerk, login, made, base


def sheet_page(clerk: TestClient, venue: str) -> httpx.Response:
    page: httpx.Response = clerk.get(HANDOVER, params={"venue": venue})
    assert page.status_code == 200
    return page


def sheet_of(page: str, login: str, sheet: str = "open") -> str:
    """One sheet of the page: a staff member's copies still to hand over, or a confirmed one."""
    found = re.search(
        rf'<section [^>]*data-staff="{login}" data-sheet="{sheet}">.*?</section>', page, re.S
    )
    assert found is not None, f"no sheet {sheet} of {login}"
    return found.group(0)


def confirm(
    clerk: TestClient, page: str, receiver: str, password: str = PASSWORD, code: str = ""
) -> httpx.Response:
    form = re.search(
        r'<form method="post" action="/console/manage/counter/handover/confirm".*?</form>',
        page,
        re.S,
    )
    assert form is not None, "no confirmation form on the sheet"
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form.group(0)))
    data = hidden | {
        "receiver_login": receiver,
        "receiver_password": password,
        "receiver_code": code,
    }
    answer: httpx.Response = clerk.post("/console/manage/counter/handover/confirm", data=data)
    return answer


def test_a_help_visit_is_completed_with_what_was_sent_and_handed(console: Console) -> None:
    clerk, login, made, base = at_the_counter(console, [2, 1])
    page = clerk.get("/console/manage/counter", params={"venue": base["venue"]})
    assert f"/counter/bookings/{made[0].id}/help-done" in page.text
    assert "申請を送信した" in page.text and "控え1通を申請者に手渡した" in page.text
    done = clerk.post(
        f"/console/manage/counter/bookings/{made[0].id}/help-done",
        data=base | {"sent": "on", "copy": "on"},
    )
    assert (
        f"予約番号 {made[0].code} の手続きを完了にしました（申請補助：申請を送信、控えを申請者に手渡し）"
        in done.text
    )
    nothing = clerk.post(
        f"/console/manage/counter/bookings/{made[1].id}/help-done", data=base | {"copy": "on"}
    )
    assert 'role="alert"' in nothing.text and "控えは印刷されません" in nothing.text
    unsent = clerk.post(f"/console/manage/counter/bookings/{made[1].id}/help-done", data=base)
    assert "申請は送信なし" in unsent.text
    walk = clerk.post(
        "/console/manage/counter/walk-in", data=base | {"service": "application_help", "party": "1"}
    )
    number = re.search(r"当日受付の番号は (\d+) 番です", walk.text)
    assert number is not None
    assert f"/counter/walk-ins/{number.group(1)}/help-done" in walk.text
    walked = clerk.post(
        f"/console/manage/counter/walk-ins/{number.group(1)}/help-done", data=base | {"sent": "on"}
    )
    assert (
        f"{number.group(1)}番の方の手続きを完了にしました（申請補助：申請を送信、控えは申請者に渡さず）"
        in walked.text
    )
    with console.app_sessions() as db:
        day = made[0].starts_at.astimezone(TOKYO).date()
        [b0, b1] = [booking.get_booking(db, booking_id=b.id) for b in made]
        mine = [
            s for s in booking.handover_sheets(db, venue_id=base["venue"], day=day) if s.id is None
        ]
    assert b0.status == b1.status == "completed"
    [sheet] = [s for s in mine if s.visits and s.visits[0].booking_code == made[0].code]
    assert [(v.sent, v.copy_given, v.ward_copies) for v in sheet.visits] == [
        (True, True, 2),
        (False, False, 0),
        (True, False, 1),
    ]
    completed = events(console, login_id=login, action="counter.help_completed")
    assert [e.detail for e in completed] == [
        "sent=yes copy=yes",
        "sent=no copy=no",
        "sent=yes copy=no",
    ]


def test_the_sheet_is_confirmed_by_two_people_both_audited_and_then_frozen(
    console: Console,
) -> None:
    clerk, login, made, base = at_the_counter(console, [1, 2, 1])
    venue = base["venue"]
    for b in made[:2]:
        clerk.post(
            f"/console/manage/counter/bookings/{b.id}/help-done",
            data=base | {"sent": "on", "copy": "on"},
        )
    page = sheet_page(clerk, venue)
    mine = sheet_of(page.text, login)
    assert '<span class="count">3枚</span>' in mine  # one copy for the ward per application
    assert f"予約番号 {made[0].code}" in mine and f"予約番号 {made[1].code}" in mine
    assert "マド グチコ" not in page.text  # no names on the sheet
    assert "@media print" in page.text
    # The same person cannot receive their own copies; a wrong password is refused and audited.
    alone = confirm(clerk, page.text, login)
    assert "別の人でなければなりません" in alone.text
    [same] = events(console, action="handover.confirm_refused", login_id=login)
    assert "handover_same_person" in same.detail
    ward = console.person("counter_manager")
    wrong = confirm(clerk, page.text, ward, password="not the password")  # noqa: S106
    assert "パスワード（確認コード）が違います" in wrong.text
    assert [
        e.subject_id for e in events(console, action="handover.receive_refused", login_id=login)
    ] == [ward]
    # A supervisor has a second factor: their code too.
    chief = console.person("supervisor")
    no_code = confirm(clerk, page.text, chief)
    assert 'role="alert"' in no_code.text
    done = confirm(clerk, page.text, chief, code=code_at(console.totp[chief], console.clock.now))
    assert "控え 3枚の引渡しを確認しました（受領：supervisor san）" in done.text
    assert "引渡票 No." in done.text and "確定" in done.text
    [handed] = events(console, action="handover.confirm", login_id=login)
    [received] = events(console, action="handover.receive", login_id=chief)
    assert handed.subject_id == received.subject_id and "3 copies" in handed.detail
    assert f"received by {chief}" in handed.detail and f"handed over by {login}" in received.detail
    # Frozen: confirming again finds nothing; a copy recorded later goes on a new sheet.
    again = confirm(
        clerk,
        page.text,
        chief,
        code=code_at(console.totp[chief], console.clock.now.replace(second=59)),
    )
    assert 'role="alert"' in again.text
    clerk.post(
        f"/console/manage/counter/bookings/{made[2].id}/help-done",
        data=base | {"sent": "on", "copy": "on"},
    )
    later = sheet_page(clerk, venue).text
    frozen = sheet_of(later, login, handed.subject_id)
    assert '<span class="count">3枚</span>' in frozen and made[2].code not in frozen
    fresh = sheet_of(later, login)
    assert '<span class="count">1枚</span>' in fresh and made[2].code in fresh


def test_a_sheet_shown_before_a_later_record_is_not_confirmed(console: Console) -> None:
    clerk, _login, made, base = at_the_counter(console, [1, 1])
    clerk.post(
        f"/console/manage/counter/bookings/{made[0].id}/help-done",
        data=base | {"sent": "on", "copy": "on"},
    )
    shown = sheet_page(clerk, base["venue"]).text
    clerk.post(
        f"/console/manage/counter/bookings/{made[1].id}/help-done",
        data=base | {"sent": "on", "copy": "on"},
    )
    ward = console.person("counter_manager")
    stale = confirm(clerk, shown, ward)
    assert "表示し直し" in stale.text
    assert confirm(clerk, sheet_page(clerk, base["venue"]).text, ward).status_code == 200


def test_agents_may_not_open_the_sheet_nor_receive(console: Console) -> None:
    agent, _ = console.signed_in("agent")
    assert agent.get(HANDOVER).status_code == 403
    clerk, _login, made, base = at_the_counter(console, [1])
    clerk.post(
        f"/console/manage/counter/bookings/{made[0].id}/help-done",
        data=base | {"sent": "on", "copy": "on"},
    )
    helper = console.person("agent")
    refused = confirm(clerk, sheet_page(clerk, base["venue"]).text, helper)
    assert "受け取る役割ではありません" in refused.text
    assert isinstance(events(console, action="handover.receive_refused")[-1], AuditEvent)


def test_a_receivers_wrong_passwords_lock_them_out_as_at_sign_in(console: Console) -> None:
    """The receiver's credentials are checked as at sign-in: wrong ones count towards their
    lock-out, and a temporary password (known to two people) confirms nothing."""
    ward, other = console.person("counter_manager"), console.person("counter_manager")
    for _ in range(staff.MAX_FAILED_LOGINS):
        with console.app_sessions() as db:
            with pytest.raises(staff.StaffError):
                staff.countersign(db, login_id=ward, password="wrong password here")  # noqa: S106
            db.commit()
    with console.app_sessions() as db:
        with pytest.raises(staff.StaffError, match="ロック"):
            staff.countersign(db, login_id=ward, password=PASSWORD)
        temporary = staff.create_staff(
            db,
            login_id=f"{ward}-new",
            display_name="新任",
            role="counter_manager",
            password=PASSWORD,
            must_change=True,
        )
        with pytest.raises(staff.StaffError, match="仮のまま"):
            staff.countersign(db, login_id=temporary.login_id, password=PASSWORD)
        assert staff.countersign(db, login_id=other, password=PASSWORD).login_id == other
