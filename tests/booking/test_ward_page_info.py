"""The ward's words as the resident pages show them: the call center's number as written in
Japan, the logo inline, and the profile read at most once a minute, never on the event loop."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import OperationalError

from booking.localized import WardInfo
from booking.pages.ward import WardCache, in_language, logo_address, national

PROFILE = WardInfo(
    phone="+81312345678",
    logo="ward-logo.svg",
    texts={"ja": {"name": "新宿区", "hours": "平日"}, "en": {"name": "Shinjuku City"}},
)


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_number_is_written_as_japanese_readers_write_it() -> None:
    assert national("+81312345678") == "03-1234-5678"
    assert national("+819012345678") == "090-1234-5678"
    assert national("not a number") == "not a number"
    shown = in_language(PROFILE, "en")
    assert (shown.phone, shown.tel, shown.name, shown.hours) == (
        "03-1234-5678",
        "+81312345678",
        "Shinjuku City",
        "平日",  # no English hours: the Japanese ones
    )


def test_a_logo_of_the_pages_goes_inline_and_an_address_stays() -> None:
    assert logo_address("ward-logo.svg").startswith("data:image/svg+xml;base64,")
    assert logo_address("https://city.example/logo.png") == "https://city.example/logo.png"
    assert logo_address("../templates/base.html") == "/static/../templates/base.html"
    assert logo_address("") == ""


def test_the_profile_is_read_once_a_minute() -> None:
    ticker, reads = Ticker(), []

    def read() -> WardInfo:
        reads.append(1)
        return WardInfo(texts={"ja": {"name": f"区{len(reads)}"}})

    cache = WardCache(clock=ticker)
    assert cache.get(read, may_read=True).text("name", "ja") == "区1"
    ticker.now += 59
    assert cache.get(read, may_read=True).text("name", "ja") == "区1"
    ticker.now += 2
    assert cache.get(read, may_read=True).text("name", "ja") == "区2"
    cache.forget()
    assert cache.get(read, may_read=True).text("name", "ja") == "区3"
    assert len(reads) == 3


def test_on_the_event_loop_the_last_words_are_used_without_a_read() -> None:
    ticker, reads = Ticker(), []

    def read() -> WardInfo:
        reads.append(1)
        return PROFILE

    cache = WardCache(clock=ticker)
    assert cache.get(read, may_read=False) == WardInfo()  # nothing read yet: no words
    assert cache.get(read, may_read=True) == PROFILE
    ticker.now += 3600
    assert cache.get(read, may_read=False) == PROFILE  # stale, but no database on the loop
    assert len(reads) == 1


def test_a_page_drawn_on_the_event_loop_reads_nothing() -> None:
    from booking.pages import ward

    async def on_loop() -> bool:
        return ward._on_event_loop()

    assert asyncio.run(on_loop()) is True
    assert ward._on_event_loop() is False


def test_a_failed_database_leaves_the_last_words() -> None:
    ticker = Ticker()
    cache = WardCache(clock=ticker)
    cache.get(lambda: PROFILE, may_read=True)
    ticker.now += 120

    def broken() -> WardInfo:
        raise OperationalError("SELECT", {}, Exception("down"))

    assert cache.get(broken, may_read=True) == PROFILE
    assert WardCache().get(broken, may_read=True) == WardInfo()
