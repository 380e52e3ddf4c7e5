"""Browsing before the form, below the browser: the earliest times anywhere a page at a time,
and the catalogues' plural forms."""

from __future__ import annotations

from datetime import date
from importlib.resources import files

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from booking import service
from booking.pages.i18n import Languages


def test_pages_of_the_earliest_times_follow_on_without_gaps_or_repeats(db: Session) -> None:
    """Page after page (each after the last one shown) reads like the whole list in one go,
    though at 8:30 eleven offices open at once: a page boundary falls inside one minute."""
    start, end = date(2026, 12, 16), date(2026, 12, 17)
    whole = service.availability(db, service_id="pickup", start=start, end=end, limit=1000)
    paged: list[service.SlotView] = []
    after = None
    for _ in range(200):
        page = service.availability(
            db, service_id="pickup", start=start, end=end, limit=10, after=after
        )
        if not page:
            break
        paged += page
        after = page[-1].id
    assert len(whole) > 100
    assert [s.id for s in paged] == [s.id for s in whole]
    assert [s.starts_at for s in paged] == sorted(s.starts_at for s in paged)


def test_a_later_page_asks_the_database_for_one_page_only(db: Session) -> None:
    """One statement with a LIMIT, however far in the list the page is."""
    first = service.availability(db, service_id="pickup", limit=10)
    seen: list[tuple[str, object]] = []

    def record(
        _conn: Connection, _cursor: object, statement: str, params: object, *_: object
    ) -> None:
        seen.append((statement, params))

    bind = db.connection()
    event.listen(bind, "before_cursor_execute", record)
    try:
        later = service.availability(db, service_id="pickup", limit=11, after=first[-1].id)
    finally:
        event.remove(bind, "before_cursor_execute", record)
    assert len(later) == 11
    assert later[0].starts_at >= first[-1].starts_at
    assert len(seen) == 1
    assert "LIMIT" in seen[0][0].upper()


def test_an_unknown_cursor_gives_no_more_times(db: Session) -> None:
    assert service.availability(db, service_id="pickup", limit=10, after=2**31 - 1) == []


@pytest.mark.parametrize(
    ("language", "plurals", "one", "many"),
    [("ja", 1, "残り1席", "残り2席"), ("en", 2, "1 seat left", "2 seats left")],
)
def test_the_catalogues_know_their_plural_forms(
    language: str, plurals: int, one: str, many: str
) -> None:
    source = files("booking.pages").joinpath(f"locale/{language}/LC_MESSAGES/messages.po")
    with source.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    assert catalog.num_plurals == plurals
    assert f"nplurals={plurals};" in catalog.plural_forms
    env = Languages.load().environments[language]
    seats = env.from_string(
        "{% trans count=n %}{{ count }} seat left{% pluralize %}{{ count }} seats left{% endtrans %}"
    )
    assert seats.render(n=1) == one
    assert seats.render(n=2) == many


def test_every_plural_message_has_a_form_for_each_plural() -> None:
    for language, plurals in (("ja", 1), ("en", 2)):
        source = files("booking.pages").joinpath(f"locale/{language}/LC_MESSAGES/messages.po")
        with source.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        for message in catalog:
            if message.id and message.pluralizable:
                assert isinstance(message.string, tuple)
                assert len(message.string) == plurals, (language, message.id)
                assert all(message.string), (language, message.id)
