"""Crowding in public (混雑状況) and the counter's call screen (呼出表示): the colour band's
thresholds, the per-process cache of each venue's figures, and the pages and JSON over a real
day at a branch office (bookings checked in and called, walk-ins numbered and called), on a
database of the test's own. The call screen never shows a resident's name, phone number, birth
date or booking code. SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from booking import service
from booking.context import TOKYO
from booking.crowding import Thresholds
from booking.pages.crowding import FreshFor
from booking.service import ResidentInput
from config.db import make_engine
from config.settings import Settings
from tests.conftest import FakeClock, app_for, make_context

VENUE = "yotsuya"  # pickup 2 seats, PIN reset 1, certificate 1 every 30 minutes: 22.5 min each
DAY = date(2026, 12, 16)  # a Wednesday, the day after the tests' clock starts
# "Numbers being called" in each language of the list, as the call screen shows it.
CALLING = {
    "ja": "お呼び出し中の番号",
    "en": "Numbers being called",
    "ko": "호출 중인 번호",
    "zh": "正在叫号",
    "vi": "Số đang được gọi",
    "ne": "बोलाइँदै गरेका नम्बर",
    "easy": "今(いま) よんでいる 番号(ばんごう)",
}
RESIDENTS = [
    ResidentInput("ヨツヤ ハナコ", "090-1212-3434", date(1975, 5, 5)),
    ResidentInput("ヨツヤ タロウ", "080-5656-7878", date(1988, 8, 8)),
]


# --- the colour band ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "band"),
    [(0, "blue"), (20, "blue"), (21, "yellow"), (39, "yellow"), (40, "red"), (240, "red")],
)
def test_the_band_is_blue_to_20_minutes_red_from_40_yellow_between(minutes: int, band: str) -> None:
    assert Thresholds().band(minutes) == band


def test_the_wards_thresholds_move_the_band() -> None:
    ward = Thresholds(blue_at_most=10, red_at_least=30)
    assert [ward.band(m) for m in (10, 11, 29, 30)] == ["blue", "yellow", "yellow", "red"]
    with pytest.raises(ValueError, match="below"):
        Thresholds(blue_at_most=40, red_at_least=40)


def test_the_settings_refuse_a_blue_band_above_the_red() -> None:
    with pytest.raises(ValidationError, match="CROWDING_BLUE_MINUTES"):
        Settings(environment="test", crowding_blue_minutes=45, crowding_red_minutes=40)
    chosen = Settings(environment="test", crowding_blue_minutes=15, crowding_red_minutes=30)
    assert (chosen.crowding_blue_minutes, chosen.crowding_red_minutes) == (15, 30)


# --- the cache ------------------------------------------------------------------------------


class Ticker:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_cache_reads_a_key_once_while_fresh() -> None:
    ticker = Ticker()
    cache: FreshFor[int] = FreshFor(5.0, clock=ticker)
    reads: list[str] = []

    def read(key: str) -> int:
        reads.append(key)
        return len(reads)

    assert cache.get("main", lambda: read("main")) == 1
    ticker.now += 4.9
    assert cache.get("main", lambda: read("main")) == 1  # still fresh
    assert cache.get("yotsuya", lambda: read("yotsuya")) == 2  # its own key
    ticker.now += 0.1
    assert cache.get("main", lambda: read("main")) == 3  # 5 s old: read again
    cache.forget()
    assert cache.get("yotsuya", lambda: read("yotsuya")) == 4
    assert reads == ["main", "yotsuya", "main", "yotsuya"]


def test_a_flood_of_readers_costs_one_read_per_venue() -> None:
    """Readers arriving together while the figures are read wait for that read."""
    cache: FreshFor[str] = FreshFor(5.0)
    reads: list[str] = []
    counting = threading.Lock()
    start = threading.Barrier(40)

    def read(key: str) -> str:
        with counting:
            reads.append(key)
        time.sleep(0.05)  # a slow query: everyone else arrives meanwhile
        return key.upper()

    answers: list[str] = []

    def reader(key: str) -> None:
        start.wait()
        answers.append(cache.get(key, lambda: read(key)))

    threads = [
        threading.Thread(target=reader, args=(("main", "yotsuya")[i % 2],)) for i in range(40)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(reads) == ["main", "yotsuya"]
    assert sorted(set(answers)) == ["MAIN", "YOTSUYA"] and len(answers) == 40


# --- a real day at a branch office ----------------------------------------------------------


@dataclass
class Day:
    engine: Engine
    clock: FakeClock
    http: TestClient
    ticker: Ticker
    codes: list[str]


def at(clock: FakeClock, hh: int, mm: int) -> None:
    clock.set(datetime.combine(DAY, clock_time(hh, mm), TOKYO))


@pytest.fixture
def day(fresh_database: str, tmp_path: Path) -> Iterator[Day]:
    """Yotsuya at 10:10: two bookings checked in (one called), three walk-ins (number 1 called):
    three residents waiting, number 1 being called."""
    engine = make_engine(fresh_database)
    clock = FakeClock()
    with Session(engine, info={"booking": make_context(clock)}) as db:
        made = [
            service.book(db, slot_id=ten_oclock(db, kind), party=1, resident=r, channel="web")
            for kind, r in zip(("pin_reset", "cert_renewal"), RESIDENTS, strict=True)
        ]
        db.commit()
        at(clock, 10, 0)
        for booking in made:
            service.check_in(db, code=booking.code, venue_id=VENUE)
        for _ in range(3):
            service.walk_in(db, venue_id=VENUE, service_id="pickup", party=1)
        at(clock, 10, 5)
        service.call_to_counter(db, booking_id=made[0].id)
        service.call_walk_in(db, venue_id=VENUE, number=1)
        db.commit()
    at(clock, 10, 10)
    app = app_for(engine, clock, tmp_path)
    ticker = Ticker()
    app.state.crowding_cache = FreshFor(5.0, clock=ticker)
    with TestClient(app) as http:
        yield Day(engine, clock, http, ticker, [b.code for b in made])
    engine.dispose()


def ten_oclock(db: Session, service_id: str) -> int:
    """The day's 10:00 slot of a service at the venue."""
    slots = service.availability(db, service_id=service_id, venue_id=VENUE, start=DAY, end=DAY)
    return next(s.id for s in slots if s.starts_at.astimezone(TOKYO).time() == clock_time(10))


def expected(engine: Engine, clock: FakeClock) -> service.VenueQueue:
    with Session(engine, info={"booking": make_context(clock)}) as db:
        return service.venue_queue(db, venue_id=VENUE)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_venues_json_gives_the_days_figures(day: Day) -> None:
    queue = expected(day.engine, day.clock)
    answer = day.http.get(f"/crowding/{VENUE}.json")
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["cache-control"] == "public, max-age=5"
    found = answer.json()
    assert found["waiting"] == 3 == len(queue.waiting)  # a booking and walk-ins 2 and 3
    assert found["now_calling"] == [1]
    # 22.5 minutes a resident as planned (too few calls yet for a pace): 3 ahead, 68 minutes.
    assert found["estimated_wait_minutes"] == queue.estimated_wait_minutes == 68
    assert found["band"] == "red"
    assert found["band_label"] == {
        "ja": "混雑しています",
        "en": "Crowded",
        "ko": "혼잡",
        "zh": "拥挤",
        "vi": "Đông",
        "ne": "भीड छ",
        "easy": "こんでいます",
    }
    assert found["remaining_walk_in_seats"] == queue.remaining_walk_in_seats
    assert found["name"]["ja"] == "四谷特別出張所"
    assert found["updated_at"] == "2026-12-16T10:10:00+09:00"
    assert found["page"] == f"/crowding/{VENUE}"


def test_the_wards_json_lists_every_venue_with_the_thresholds(day: Day) -> None:
    found = day.http.get("/crowding.json").json()
    assert found["thresholds"] == {"blue_at_most_minutes": 20, "red_at_least_minutes": 40}
    venues = {v["venue_id"]: v for v in found["venues"]}
    assert len(venues) == 11 and next(iter(venues)) == "main"
    assert venues[VENUE]["waiting"] == 3
    assert venues["main"]["waiting"] == 0 and venues["main"]["band"] == "blue"
    assert day.http.get("/crowding/nowhere.json").status_code == 404


def test_the_venues_page_in_japanese_and_english(day: Day) -> None:
    japanese = day.http.get(f"/crowding/{VENUE}")
    assert japanese.status_code == 200
    shown = text_of(japanese.text)
    assert "四谷特別出張所" in shown
    assert "混雑しています" in shown  # the band in words, not only its colour
    assert "約 68 分" in shown or "約68分" in shown.replace(" ", "")
    assert "10:10 更新" in shown
    assert 'http-equiv="refresh"' in japanese.text
    assert 'data-poll="/crowding/yotsuya.json"' in japanese.text
    english = text_of(day.http.get(f"/crowding/{VENUE}?lang=en").text)
    assert "Crowded" in english and "About 68 min" in english
    assert "Walk-in places left today" in english
    assert day.http.get("/crowding/nowhere").status_code == 404


def test_a_visitor_may_stop_the_page_updating_itself(day: Day) -> None:
    moving = day.http.get(f"/crowding/{VENUE}").text
    assert '<noscript><meta http-equiv="refresh"' in moving and "data-poll=" in moving
    still = day.http.get(f"/crowding/{VENUE}?still=1").text
    assert 'http-equiv="refresh"' not in still and "data-poll=" not in still
    assert "自動更新に戻す" in still


def test_the_ward_page_lists_every_venue(day: Day) -> None:
    page = day.http.get("/crowding?lang=ja")
    assert page.status_code == 200
    assert page.text.count('class="venue-crowding"') == 11
    assert 'href="/crowding/yotsuya"' in page.text
    assert "空いています" in text_of(page.text)  # the venues with nobody waiting


def test_the_ward_may_set_the_thresholds(day: Day, tmp_path: Path) -> None:
    app = app_for(
        day.engine, day.clock, tmp_path, crowding_blue_minutes=70, crowding_red_minutes=90
    )
    with TestClient(app) as http:
        found = http.get(f"/crowding/{VENUE}.json").json()
        assert found["band"] == "blue"  # 68 minutes
        assert "70" in text_of(http.get(f"/crowding/{VENUE}").text)


def test_the_figures_are_read_once_per_venue_every_few_seconds(day: Day) -> None:
    assert day.http.get(f"/crowding/{VENUE}.json").json()["waiting"] == 3
    with Session(day.engine, info={"booking": make_context(day.clock)}) as db:
        service.walk_in(db, venue_id=VENUE, service_id="pin_reset", party=1)
        db.commit()
    day.ticker.now += 4
    assert day.http.get(f"/crowding/{VENUE}.json").json()["waiting"] == 3  # kept
    assert "3" in text_of(day.http.get(f"/signage/{VENUE}").text)
    day.ticker.now += 1
    assert day.http.get(f"/crowding/{VENUE}.json").json()["waiting"] == 4  # read again


def test_the_call_screen_shows_the_numbers_in_every_language(day: Day) -> None:
    with Session(day.engine, info={"booking": make_context(day.clock)}) as db:
        service.call_walk_in(db, venue_id=VENUE, number=3)
        db.commit()
    day.ticker.now += 10
    screen = day.http.get(f"/signage/{VENUE}")
    assert screen.status_code == 200
    assert '<li class="latest">3</li>' in screen.text  # the latest first, largest
    assert "<li>1</li>" in screen.text
    shown = text_of(screen.text)
    for words in CALLING.values():
        assert words in shown
    for name in ("四谷特別出張所", "Yotsuya Branch Office", "요쓰야 특별출장소"):
        assert name in shown
    # Japanese first and large; each other language beneath it, marked as its language.
    title = re.search(r'<h2 id="calling-title">(.*?)</h2>', screen.text, re.S)
    assert title is not None
    assert re.search(r'class="signage-first" lang="ja">お呼び出し中の番号<', title[1])
    others = title[1].split('class="signage-others"')[1]
    for code, lang in (("en", "en"), ("ko", "ko"), ("zh", "zh-Hans"), ("vi", "vi"), ("ne", "ne")):
        assert f'<span lang="{lang}">{CALLING[code]}</span>' in others
    assert f'<span lang="ja">{CALLING["easy"]}</span>' in others  # やさしい日本語 is ja
    assert 'http-equiv="refresh"' in screen.text
    assert day.http.get("/signage/nowhere").status_code == 404


def test_the_call_screen_in_chinese_puts_chinese_first(day: Day) -> None:
    screen = day.http.get(f"/signage/{VENUE}?lang=zh").text
    assert '<html lang="zh-Hans">' in screen
    assert 'class="signage-first" lang="zh-Hans">正在叫号<' in screen
    assert '<span lang="ja">お呼び出し中の番号</span>' in screen


def test_the_call_screen_speaks_the_wards_languages_only(day: Day, tmp_path: Path) -> None:
    """A ward offering Japanese, English and Chinese (MADOGUCHI_LANGUAGES) shows those three."""
    app = app_for(day.engine, day.clock, tmp_path, languages="en,zh")
    with TestClient(app) as http:
        shown = text_of(http.get(f"/signage/{VENUE}").text)
    for code in ("ja", "en", "zh"):
        assert CALLING[code] in shown
    for code in ("ko", "vi", "ne", "easy"):
        assert CALLING[code] not in shown


def test_the_call_screen_and_the_json_never_name_a_resident(day: Day) -> None:
    """Queue numbers only: no name, phone number (in any writing), birth date or booking code,
    even with the residents checked in and one of them called."""
    shown = day.http.get(f"/signage/{VENUE}").text + day.http.get(f"/signage/{VENUE}?lang=en").text
    shown += day.http.get(f"/crowding/{VENUE}.json").text + day.http.get("/crowding.json").text
    shown += day.http.get(f"/crowding/{VENUE}").text
    digits = re.sub(r"\D", "", shown)
    for resident in RESIDENTS:
        name = resident.name_kana or ""
        assert name not in shown
        for part in name.split():
            assert part not in shown
        phone = resident.phone.replace("-", "")
        assert resident.phone not in shown and phone not in digits
        assert phone[1:] not in digits  # nor in E.164 (+8190...)
        assert resident.birth_date.isoformat() not in shown
    for code in day.codes:
        assert code not in digits
