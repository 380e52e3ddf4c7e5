"""Counter managers' day view: a capacity cut shows the bookings it strands; they are moved to
the nearest free time (one notice each) or kept on purpose; closures and reopening; every
action audited; agents may not open it."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import text

from booking import service as booking
from booking.context import TOKYO
from reminders import service as reminders
from tests.agent_console.test_console import Console, csrf_of, events
from tests.conftest import SlotMaker
from tests.ivr.conftest import new_mobile
from tests.reminders.conftest import RULES


def a_full_slot(
    console: Console, parties: list[int], spare: int = 0
) -> tuple[int, list[booking.BookingView]]:
    """A slot of the console's own, booked by these parties (plus ``spare`` free seats)."""
    with console.app_sessions() as db:
        slot = SlotMaker(db)(sum(parties) + spare)
        made = [
            booking.book(
                db,
                slot_id=slot,
                party=party,
                resident=booking.ResidentInput("マド グチコ", new_mobile(), date(1980, 2, 2)),
                channel="web",
            )
            for party in parties
        ]
        reminders.plan_from_outbox(db, RULES, limit=100_000)
        db.commit()
    return slot, made


def day_of(made: booking.BookingView) -> tuple[str, str]:
    """The venue and the Tokyo day of a booking's slot: the day view to open."""
    return made.venue_id, made.starts_at.astimezone(TOKYO).date().isoformat()


def seats(console: Console, slot: int) -> tuple[int, int, int]:
    with console.app_sessions() as db:
        row = db.execute(
            text("SELECT capacity, booked, kept_over FROM slot WHERE id = :s"), {"s": slot}
        ).one()
    return (row.capacity, row.booked, row.kept_over)


def test_a_cut_shows_whom_it_strands_and_moves_them_with_a_notice_each(console: Console) -> None:
    slot, made = a_full_slot(console, [2, 2, 2])
    manager, login = console.signed_in("counter_manager")
    venue, day = day_of(made[0])
    page = manager.get("/console/manage", params={"venue": venue, "day": day})
    assert page.status_code == 200
    assert f'value="{slot}"' in page.text
    form = {
        "csrf": csrf_of(page.text),
        "slot": str(slot),
        "change": "capacity",
        "capacity": "2",
        "venue": venue,
        "day": day,
    }
    preview = manager.post("/console/manage/change", data=form)
    assert "この変更で席を失う予約（2件）" in preview.text
    listed = set(re.findall(r'<tr class="stranded"><td><a href="[^"]+">(\d{8})</a>', preview.text))
    assert listed == {made[1].code, made[2].code}
    assert seats(console, slot) == (6, 6, 0)  # nothing changed yet
    done = manager.post("/console/manage/change", data=form | {"choice": "move"})
    assert "2件の予約を近い時間へ移し" in done.text
    assert seats(console, slot) == (2, 2, 0)
    with console.app_sessions() as db:
        moved = [booking.get_booking(db, booking_id=b.id) for b in made]
        reminders.plan_from_outbox(db, RULES, limit=100_000)
        db.commit()
        notices = [
            [m.kind for m in reminders.messages_for(db, booking_id=b.id)].count("relocated")
            for b in made
        ]
        over = db.execute(
            text("SELECT count(*) FROM slot WHERE booked + held > capacity + kept_over")
        ).scalar_one()
    assert moved[0].slot_id == slot
    assert moved[1].slot_id != slot and moved[2].slot_id != slot
    for went in moved[1:]:  # where each went, said to the manager
        when = went.starts_at.astimezone(TOKYO).strftime("%m-%d %H:%M")
        assert f"{went.code}→{when}" in done.text
    assert all(m.venue_id == venue for m in moved[1:])  # the same venue first
    assert notices == [0, 1, 1]
    assert over == 0
    [event] = events(console, login_id=login, action="manage.capacity")
    assert f"moved {made[1].id},{made[2].id}; kept " in event.detail


def test_kept_on_purpose_the_slot_shows_the_seats_over(console: Console) -> None:
    slot, made = a_full_slot(console, [1, 1, 1])
    manager, _ = console.signed_in("counter_manager")
    venue, day = day_of(made[0])
    page = manager.get("/console/manage", params={"venue": venue, "day": day})
    form = {
        "csrf": csrf_of(page.text),
        "slot": str(slot),
        "change": "capacity",
        "capacity": "1",
        "venue": venue,
        "day": day,
        "choice": "keep",
    }
    done = manager.post("/console/manage/change", data=form)
    assert "2件の予約はそのまま残しました" in done.text
    assert seats(console, slot) == (1, 3, 2)
    assert "超過2" in done.text


def test_closing_and_reopening_part_of_a_day(console: Console) -> None:
    slot, made = a_full_slot(console, [1])
    manager, login = console.signed_in("supervisor")
    venue, day = day_of(made[0])
    page = manager.get("/console/manage", params={"venue": venue, "day": day})
    base = {"csrf": csrf_of(page.text), "slot": str(slot), "venue": venue, "day": day}
    preview = manager.post(
        "/console/manage/change", data=base | {"change": "close", "reason": "停電工事"}
    )
    assert made[0].code in preview.text
    closed = manager.post(
        "/console/manage/change",
        data=base | {"change": "close", "reason": "停電工事", "choice": "keep"},
    )
    assert "受付を停止しました" in closed.text
    with console.app_sessions() as db:
        assert not any(
            s.is_open
            for s in booking.slots_of_day(db, venue_id=venue, day=date.fromisoformat(day))
            if s.id == slot
        )
    reopened = manager.post("/console/manage/change", data=base | {"change": "reopen"})
    assert "受付を再開しました" in reopened.text
    actions = [e.action for e in events(console, login_id=login)]
    assert "manage.close" in actions and "manage.reopen" in actions


def test_agents_cannot_manage_and_a_forged_form_changes_nothing(console: Console) -> None:
    agent, _ = console.signed_in("agent")
    assert agent.get("/console/manage").status_code == 403
    slot, _ = a_full_slot(console, [1])
    manager, _ = console.signed_in("counter_manager")
    forged = manager.post(
        "/console/manage/change",
        data={"csrf": "x", "slot": str(slot), "change": "capacity", "capacity": "0"},
    )
    assert forged.status_code == 403
    assert seats(console, slot) == (1, 1, 0)


def test_managers_import_the_wards_calendar_and_find_the_feeds(console: Console) -> None:
    from tests.calendar_sync.test_feeds import ward_calendar

    manager, login = console.signed_in("counter_manager")
    page = manager.get("/console/manage/calendar")
    assert page.status_code == 200
    feeds = re.findall(r'class="feed" href="([^"]+)"', page.text)
    assert len(feeds) == 11 and all("token=" in f for f in feeds)
    # Days the calendar tests do not use: this test commits what it imports.
    ics = ward_calendar(
        f"console-{login}@city.example.jp",
        f"console-close-{login}@city.example.jp",
        day=28,
        closed=29,
    )
    upload = {"file": ("holidays.ics", ics, "text/calendar")}
    done = manager.post(
        "/console/manage/calendar/import", data={"csrf": csrf_of(page.text)}, files=upload
    )
    assert "新規 2件" in done.text and "取り込めず 1件" in done.text
    again = manager.post(
        "/console/manage/calendar/import", data={"csrf": csrf_of(page.text)}, files=upload
    )
    assert "新規 0件、変更なし 2件" in again.text
    assert len(events(console, login_id=login, action="manage.calendar.import")) == 2
    agent, _ = console.signed_in("agent")
    assert agent.get("/console/manage/calendar").status_code == 403


def test_the_counter_checks_residents_in_and_numbers_walk_ins(console: Console) -> None:
    _, made = a_full_slot(console, [1], spare=1)  # a seat for the walk-in
    console.clock.set(made[0].starts_at.astimezone(TOKYO))  # the counter's day (this test's clock)
    clerk, login = console.signed_in("counter_manager")
    page = clerk.get("/console/manage/counter", params={"venue": made[0].venue_id})
    assert made[0].code in page.text
    base = {"csrf": csrf_of(page.text), "venue": made[0].venue_id}
    wrong = clerk.post("/console/manage/counter/check-in", data=base | {"code": "1"})
    assert 'role="alert"' in wrong.text
    # The staff's words, not the residents' ("check your phone number or birth date").
    assert "予約番号 1 の予約はありません" in wrong.text
    assert "電話番号" not in wrong.text.split('role="alert"')[1][:300]
    other = made[0].code[:-1] + str((int(made[0].code[-1]) + 1) % 10)
    slipped = clerk.post("/console/manage/counter/check-in", data=base | {"code": other})
    assert f"予約番号 {other} の予約はありません" in slipped.text
    empty = clerk.post("/console/manage/counter/check-in", data=base | {"code": " "})
    assert "QRコードを読み取ってください" in empty.text
    done = clerk.post("/console/manage/counter/check-in", data=base | {"code": made[0].code})
    assert f"予約番号 {made[0].code}（1名）を受け付けました" in done.text
    walk = clerk.post(
        "/console/manage/counter/walk-in", data=base | {"service": "application_help", "party": "1"}
    )
    number = re.search(r"当日受付の番号は (\d+) 番です", walk.text)
    assert number is not None
    assert "<section" not in walk.text.split("</title>")[0]  # the page's title is just text
    console.clock.advance(minutes=7)
    called = clerk.post(f"/console/manage/counter/bookings/{made[0].id}/call", data=base)
    assert f"予約番号 {made[0].code} の方をお呼びしました" in called.text
    when = made[0].starts_at.astimezone(TOKYO) + timedelta(minutes=7)
    row = re.search(rf"<td>{made[0].code}</td>.*?</tr>", called.text, re.S)
    assert row is not None and f"{when:%H:%M} 呼出" in row.group(0)
    walk_call = clerk.post(f"/console/manage/counter/walk-ins/{number.group(1)}/call", data=base)
    assert f"{number.group(1)}番の方をお呼びしました" in walk_call.text
    assert "待ち時間（呼出まで）平均" in walk_call.text
    assert f'aria-label="{number.group(1)}番を完了"' in walk_call.text  # 完了 after 呼出
    walk_done = clerk.post(f"/console/manage/counter/walk-ins/{number.group(1)}/done", data=base)
    assert f"{number.group(1)}番の方の手続きを完了にしました" in walk_done.text
    assert f'aria-label="{number.group(1)}番を完了"' not in walk_done.text
    # One more walk-in completed today (other tests may have walk-ins at this venue today).
    completed = r"当日受付 \d+件（\d+名、完了 (\d+)件）"
    before = re.search(completed, walk_call.text)
    after = re.search(completed, walk_done.text)
    assert before is not None and after is not None
    assert int(after.group(1)) == int(before.group(1)) + 1
    again = clerk.post(f"/console/manage/counter/bookings/{made[0].id}/done", data=base)
    assert "完了にしました" in again.text
    refused = clerk.post(f"/console/manage/counter/bookings/{made[0].id}/call", data=base)
    assert 'role="alert"' in refused.text  # completed: no longer waiting to be called
    with console.app_sessions() as db:
        day = made[0].starts_at.astimezone(TOKYO).date()
        [figures] = booking.counter_figures(db, first=day, last=day, venue_id=made[0].venue_id)
    assert 7.0 in figures.waits  # checked in on time, called 7 minutes later
    actions = [e.action for e in events(console, login_id=login)]
    assert {"counter.view", "counter.check_in", "counter.walk_in", "counter.call"} <= set(actions)
    assert "counter.call_walk_in" in actions
    assert "counter.walk_in_completed" in actions


def test_a_counter_takes_its_roster_offline_and_uploads_its_check_ins(console: Console) -> None:
    from tests.calendar_sync.test_roster import mark

    _, made = a_full_slot(console, [1, 1])
    clerk, login = console.signed_in("counter_manager")
    venue, day = day_of(made[0])
    page = clerk.get("/console/manage/counter", params={"venue": venue})
    csv_file = clerk.get("/console/manage/counter/roster.csv", params={"venue": venue, "day": day})
    assert csv_file.status_code == 200
    assert "attachment" in csv_file.headers["content-disposition"]
    ics = clerk.get("/console/manage/counter/roster.ics", params={"venue": venue, "day": day})
    assert ics.text.startswith("BEGIN:VCALENDAR") and made[0].code in ics.text
    returned = mark(csv_file.content.decode("utf-8-sig"), made[1].code).encode()
    done = clerk.post(
        "/console/manage/counter/roster",
        data={"csrf": csrf_of(page.text), "venue": venue},
        files={"file": ("roster.csv", returned, "text/csv")},
    )
    assert "受付済みに 1件" in done.text  # (others' bookings that day may be checked in)
    with console.app_sessions() as db:
        assert booking.get_booking(db, booking_id=made[1].id).status == "checked_in"
    tampered = returned.replace(b"# signature=", b"# signature=0")
    refused = clerk.post(
        "/console/manage/counter/roster",
        data={"csrf": csrf_of(page.text), "venue": venue},
        files={"file": ("roster.csv", tampered, "text/csv")},
    )
    assert "名簿を受け付けられません" in refused.text
    actions = [e.action for e in events(console, login_id=login)]
    assert actions.count("counter.roster") == 2 and "counter.roster_upload" in actions


def test_managers_open_evening_sessions_for_a_range_of_days(console: Console) -> None:
    manager, login = console.signed_in("counter_manager")
    page = manager.get("/console/manage/sessions")
    assert page.status_code == 200
    form = {
        "csrf": csrf_of(page.text),
        "venue": "ochiai_daini",
        "service": "pin_reset",
        "kind": "extra",
        "first": "2027-01-25",
        "last": "2027-01-26",
        "opens": "18:00",
        "closes": "19:00",
        "slot_minutes": "30",
        "seats": "2",
    }
    done = manager.post("/console/manage/sessions", data=form)
    assert "2日分の受付を開きました" in done.text
    again = manager.post("/console/manage/sessions", data=form)
    assert "0日分の受付を開きました" in again.text and "開けなかった日" in again.text
    bad = manager.post("/console/manage/sessions", data=form | {"first": "someday"})
    assert "日付・時刻・人数の形" in bad.text
    with console.app_sessions() as db:
        evening = [
            s
            for s in booking.slots_of_day(db, venue_id="ochiai_daini", day=date(2027, 1, 25))
            if s.starts_at.astimezone(TOKYO).hour == 18
        ]
    assert [s.capacity for s in evening] == [2, 2]
    assert len(events(console, login_id=login, action="manage.sessions.open")) == 2


def test_managers_keep_seats_for_the_phone_line_that_the_web_cannot_take(
    console: Console,
) -> None:
    slot, made = a_full_slot(console, [1], spare=3)  # 4 seats, 1 booked
    manager, login = console.signed_in("counter_manager")
    venue, day = day_of(made[0])
    page = manager.get("/console/manage", params={"venue": venue, "day": day})
    base = {"csrf": csrf_of(page.text), "slot": str(slot), "venue": venue, "day": day}
    quota = base | {"change": "quota", "kept_phone": "2", "kept_walk_in": "0"}
    too_many = manager.post(
        "/console/manage/change", data=quota | {"kept_phone": "5", "release": "opening"}
    )
    assert "定員4席の時間枠を超えています" in too_many.text
    done = manager.post(
        "/console/manage/change", data=quota | {"release": "hours", "release_hours": "48"}
    )
    assert "電話用2席・来庁用0席を確保しました（48時間前に解放）" in done.text
    row = re.search(rf'value="{slot}".*?</tr>', done.text, re.S)
    assert row is not None
    assert '<td class="free">1／3／3</td>' in row.group(0)  # web / phone / walk-in
    assert "電話2・来庁0" in row.group(0)

    def web_offers() -> int:
        found = manager.get(
            "/api/v1/availability",
            params={"service": "application_help", "venue": venue, "from": day, "to": day},
        ).json()
        return next((s["remaining"] for s in found if s["id"] == slot), 0)

    assert web_offers() == 1  # the web page and API offer only the seat not kept
    with console.app_sessions() as db:
        by_phone = booking.book(
            db,
            slot_id=slot,
            party=3,
            resident=booking.ResidentInput("デンワ ヨヤク", new_mobile(), date(1940, 4, 4)),
            channel="agent",
        )
        db.commit()
    assert by_phone.slot_id == slot
    assert web_offers() == 0
    cleared = manager.post(
        "/console/manage/change", data=base | {"change": "quota", "kept_phone": "0"}
    )
    assert "確保席をなくしました" in cleared.text
    [event] = events(console, login_id=login, action="manage.quota")[-2:-1]
    assert "phone 2, walk-in 0, released 48時間前" in event.detail


def test_numbers_the_day_view_cannot_take_are_explained(console: Console) -> None:
    slot, made = a_full_slot(console, [1], spare=1)
    manager, _ = console.signed_in("counter_manager")
    venue, day = day_of(made[0])
    page = manager.get("/console/manage", params={"venue": venue, "day": day})
    base = {"csrf": csrf_of(page.text), "slot": str(slot), "venue": venue, "day": day}
    for wrong in ("²", "99999999999", "-1"):
        said = manager.post(
            "/console/manage/change", data=base | {"change": "capacity", "capacity": wrong}
        )
        assert said.status_code == 200 and "定員は0から999までの数字で" in said.text, wrong
    huge = manager.post(
        "/console/manage/change",
        data=base
        | {"change": "quota", "kept_phone": "1", "release": "hours", "release_hours": "9" * 12},
    )
    assert "解放の時間は0から720までの数字で" in huge.text
    assert seats(console, slot) == (2, 1, 0)  # nothing changed
