"""The ward's own words from its JSON: who runs the service, venues' and services' texts by
language, with the fallbacks a Korean caller or an English page relies on."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy.orm import Session

from booking import schedule, service
from booking.localized import WardInfo, checked_texts, name_of, pick, text_of
from booking.models import Service, Venue
from config.sample import sample_ward


def test_the_sample_ward_names_who_runs_the_service(db: Session) -> None:
    ward = service.ward_info(db)
    assert ward.text("name", "ja") == "新宿区"
    assert ward.text("name", "ko") == "신주쿠구"
    assert ward.phone.startswith("+81")
    assert "8:30" in ward.text("hours", "en")
    assert ward.logo


def test_venues_have_korean_names_and_access_in_every_language(db: Session) -> None:
    for venue in service.list_venues(db):
        assert name_of(venue, "ko") not in (venue.name_en, venue.name_ja), venue.id
        for language in ("ja", "en", "ko"):
            assert text_of(venue, "access", language), (venue.id, language)
            assert text_of(venue, "parking", language), (venue.id, language)
    main = service.venue_or_404(db, "main")
    assert name_of(main, "ja") == main.name_ja
    assert name_of(main, "en") == main.name_en
    assert text_of(main, "address", "ja") == main.address_ja


def test_services_say_what_to_bring_in_every_language(db: Session) -> None:
    for item in service.list_services(db):
        assert name_of(item, "ko") not in (item.name_en, item.name_ja), item.id
        for language in ("ja", "en", "ko"):
            assert text_of(item, "bring", language), (item.id, language)


def test_a_missing_language_falls_back_to_english_then_japanese() -> None:
    venue = Venue(id="x", name_ja="仮会場", name_en="Pop-up", texts={"ja": {"access": "駅前"}})
    assert name_of(venue, "vi") == "Pop-up"
    assert text_of(venue, "access", "en") == "駅前"
    assert text_of(venue, "parking", "ko") == ""
    assert pick({}, "name", "ja") == ""


def test_reinstalling_the_ward_updates_its_words(db: Session) -> None:
    ward = copy.deepcopy(sample_ward())
    ward["ward"]["texts"]["ja"]["hours"] = "平日 9:00〜17:00"
    ward["services"][0]["texts"]["ko"]["name"] = "카드 수령"
    schedule.install_ward(db, ward)
    assert service.ward_info(db).text("hours", "ja") == "平日 9:00〜17:00"
    pickup = db.get(Service, ward["services"][0]["id"])
    assert pickup is not None and name_of(pickup, "ko") == "카드 수령"


@pytest.mark.parametrize(
    ("texts", "says"),
    [
        ({"ja": {"colour": "赤"}}, "texts.ja.colour is not one of"),
        ({"japanese": {"name": "x"}}, "not a language code"),
        ({"ja": {"name": 3}}, "must be text"),
        (["ja"], "must be an object of languages"),
    ],
)
def test_a_ward_file_with_unknown_words_is_refused_clearly(texts: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        checked_texts(texts, ("name", "access"), "venue main")


def test_an_empty_profile_reads_as_nothing() -> None:
    assert WardInfo.from_profile(None).text("name", "ja") == ""
