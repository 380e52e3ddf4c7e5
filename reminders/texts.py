"""What residents' texts say: the catalogue (``messages.toml``), and how a text is put together
from it and kept short.

A text is its kind's sentence (the booking: when, where, the code), then what only some kinds
add (a confirmation: what to bring, the address and the nearest station), then the call
center's number. Every segment costs the ward and a long text arrives in pieces, so each kind
has a budget of segments; where the full text is over it, the least needed parts go first (the
station, then the bring list, which the booking site lists too), never the booking itself.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib.resources import files
from typing import Any

import phonenumbers
from babel import Locale
from babel.dates import format_skeleton

from booking.context import TOKYO
from booking.languages import info

# Tables of messages.toml that are parts of texts, not texts of their own.
PARTS = (
    "people",
    "bring",
    "bring_elsewhere",
    "place",
    "place_address",
    "call",
    "lottery_place",
    "queue_desk",
)
# The waitlist's offer: a text about seats, not about a booking (no code), so not one of
# ``texts()``, the booking's texts (compose_offer makes it).
OFFER = "waitlist_offer"
OFFER_BUDGET = 3
# A lottery's loser: told they were not drawn and where they stand on the waitlist (about the
# waitlist entry, like an offer; compose_lost makes it). Three segments, like an offer.
LOST = "lottery_lost"
# A walk-in's ticket alerts: about the ticket (no booking, no code); compose_queue_alert.
QUEUE_ALERTS = ("queue_near", "queue_called")
# The web booking's link, to a caller on the phone line (about the call); compose_booking_link.
BOOKING_LINK = "booking_link"
# Segments a text may take: a confirmation carries what to bring and where; the others are a
# line or two.
BUDGET = {"confirmation": 4, "drawn": 4}
DEFAULT_BUDGET = 2
# The texts that confirm a new booking, with what to bring and where (a lottery's winner's too).
CONFIRMING = ("confirmation", "drawn")


@cache
def _catalogue() -> dict[str, dict[str, Any]]:
    raw = files("reminders").joinpath("messages.toml").read_text(encoding="utf-8")
    return tomllib.loads(raw)


@cache
def texts() -> dict[str, dict[str, str]]:
    """Each kind of text, by language."""
    return {
        k: {lang: str(t) for lang, t in v.items()}
        for k, v in _catalogue().items()
        if k not in PARTS and k not in (OFFER, LOST, *QUEUE_ALERTS, BOOKING_LINK)
    }


# Whose text stands in where a language has none (the completeness test keeps this rare):
# やさしい日本語 falls back to Japanese, every other language to English.
FALLBACK = {"easy": "ja"}


def _part(name: str, language: str) -> Any:
    table = _catalogue()[name]
    return table.get(language) or table[FALLBACK.get(language, "en")]


@cache
def _locale(language: str) -> Locale:
    return Locale.parse(info(language).babel)


def people(language: str, count: int) -> str:
    """ "1 person", "2 people", "2人": a party as the language says it (CLDR plural forms)."""
    forms: dict[str, str] = _part("people", language)
    form = _locale(language).plural_form(count)
    return forms.get(form, forms["other"]).format(count=count)


WEEKDAYS_JA = "月火水木金土日"
WEEKDAYS_KO = "월화수목금토일"
# The other languages write a day as CLDR's skeleton says, in their Babel locale (12/16周三,
# Thứ 4, 16/12, डिसेम्बर 16, बुध, 12月16日(水)), and the time before or after it as they do.
DAY_SKELETONS = {"zh": "MdE", "vi": "MdE", "ne": "MMMEd", "easy": "MMMEd"}
TIME_FIRST = frozenset({"vi"})


def _written_day(day: date, language: str) -> str:
    return str(format_skeleton(DAY_SKELETONS[language], day, locale=_locale(language)))


def when_text(at: datetime, language: str) -> str:
    local = at.astimezone(TOKYO)
    if language in DAY_SKELETONS:
        day, clock = _written_day(local.date(), language), f"{local:%-H:%M}"
        return f"{clock} {day}" if language in TIME_FIRST else f"{day} {clock}"
    if language == "ja":
        return f"{local.month}/{local.day}({WEEKDAYS_JA[local.weekday()]}){local:%-H:%M}"
    if language == "ko":
        return f"{local.month}/{local.day}({WEEKDAYS_KO[local.weekday()]}) {local:%-H:%M}"
    return f"{local:%a %b} {local.day} {local:%-H:%M}"


def written_phone(e164: str) -> str:
    """The call center's number as Japanese readers write it (03-1234-5678); '' if none."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, "JP")
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def render(
    kind: str, language: str, *, code: str, starts_at: datetime, venue: str, party: int = 1
) -> str:
    """A kind's own sentence, without the parts that follow it."""
    texts_of_kind = texts()[kind]
    template = texts_of_kind.get(language) or texts_of_kind["en"]
    return template.format(
        code=code,
        when=when_text(starts_at, language),
        venue=venue,
        people=people(language, party),
    )


# GSM 03.38's basic characters: a text of only these is 160 per segment (153 when split);
# anything else (Japanese) makes it UCS-2: 70 per segment, 67 when split.
_GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def sms_segments(text: str) -> int:
    if not _needs_ucs2(text):
        single, split = 160, 153
    else:
        single, split = 70, 67
    return 1 if len(text) <= single else math.ceil(len(text) / split)


# Look-alikes GSM has, for the few characters that would make an English text UCS-2.
_GSM_LOOKALIKES = str.maketrans(
    {"…": "...", "–": "-", "—": "-", "’": "'", "‘": "'", "“": '"', "”": '"'}
)
_NOT_GSM_ASIDE = re.compile(r"\s*[(（][^()（）]*[^()（）\x00-\x7f][^()（）]*[)）]")


def gsm_folded(text: str) -> str:
    """An English text that Japanese words made UCS-2 (a bring list with 交付通知書 in
    brackets), in GSM characters: UCS-2 takes more than twice the segments. The bracketed
    Japanese goes, a few typographic marks become their plain twins; a text that still needs
    UCS-2 is returned as it was."""
    folded = text.translate(_GSM_LOOKALIKES)
    folded = _NOT_GSM_ASIDE.sub(lambda m: "" if _needs_ucs2(m.group()) else m.group(), folded)
    return folded if not _needs_ucs2(folded) else text


def _needs_ucs2(text: str) -> bool:
    return any(c not in _GSM for c in text)


@dataclass(frozen=True)
class Visit:
    """What a text says about a booking, in the text's language."""

    code: str
    starts_at: datetime
    venue: str
    party: int = 1
    bring: str = ""  # the service's 持ち物
    address: str = ""
    access: str = ""  # the nearest station
    phone: str = ""  # the call center, E.164


@dataclass(frozen=True)
class _Cut:
    """How much of a confirmation's extras a text keeps."""

    bring: bool = True  # False: "see the booking site" instead of the list
    address: bool = True
    access: bool = True


# From the fullest to the leanest: the station goes first, then the bring list (the booking
# site lists it too), then the address; the booking itself always stays.
CUTS = (
    _Cut(),
    _Cut(access=False),
    _Cut(bring=False),
    _Cut(bring=False, access=False),
    _Cut(bring=False, address=False, access=False),
)


def _extras(kind: str, language: str, visit: Visit, cut: _Cut) -> list[str]:
    """What follows the sentence: for a confirmation, what to bring and where to go."""
    if kind not in CONFIRMING:
        return []
    found: list[str] = []
    if visit.bring:
        found.append(
            _part("bring", language).format(bring=visit.bring)
            if cut.bring
            else _part("bring_elsewhere", language)
        )
    if visit.address and cut.address:
        if visit.access and cut.access:
            place = _part("place", language).format(address=visit.address, access=visit.access)
        else:
            place = _part("place_address", language).format(address=visit.address)
        found.append(place)
    return found


def _join(parts: list[str]) -> str:
    # A line each: a phone shows the bring list and the address apart ("\n" is one GSM
    # character, like a space).
    return "\n".join(p.strip() for p in parts if p.strip())


def compose(kind: str, language: str, visit: Visit) -> str:
    """The text of a message: within its budget of segments, with as much of what to bring,
    where to go and whom to call as fits."""
    sentence = render(
        kind,
        language,
        code=visit.code,
        starts_at=visit.starts_at,
        venue=visit.venue,
        party=visit.party,
    )
    call = _part("call", language).format(phone=written_phone(visit.phone)) if visit.phone else ""
    budget = BUDGET.get(kind, DEFAULT_BUDGET)
    for tail in (call, ""):  # the number goes only when nothing else is left to cut
        for cut in CUTS:
            text = _join([sentence, *_extras(kind, language, visit, cut), tail])
            for trial in (text, gsm_folded(text)):
                if sms_segments(trial) <= budget:
                    return trial
    return sentence


def compose_offer(
    language: str,
    *,
    starts_at: datetime,
    venue: str,
    party: int,
    until: datetime,
    link: str,
    phone: str = "",
) -> str:
    """A waitlist offer's text: the time freed, until when it is kept, the link to take it,
    and the call center's number where it fits."""
    template = _part(OFFER, language)
    sentence = str(template).format(
        when=when_text(starts_at, language),
        venue=venue,
        people=people(language, party),
        until=when_text(until, language),
        link=link,
    )
    if phone:
        call = _part("call", language).format(phone=written_phone(phone))
        text = _join([sentence, call])
        for trial in (text, gsm_folded(text)):
            if sms_segments(trial) <= OFFER_BUDGET:
                return trial
    return sentence


def compose_queue_alert(
    kind: str, language: str, *, number: int, venue: str, ahead: int, desk: str | None, link: str
) -> str:
    """A walk-in's alert: their turn is near (``ahead`` before them, the status page's link),
    or they are called now (to ``desk`` when the counter said one)."""
    desk_part = _part("queue_desk", language).format(desk=desk) if desk else ""
    text = str(_part(kind, language)).format(
        number=number, venue=venue, ahead=ahead, desk=desk_part, link=link
    )
    return gsm_folded(text) if language == "en" else text


def compose_booking_link(language: str, *, link: str) -> str:
    """The web booking's link, to a caller who asked for it on the phone line."""
    text = str(_part(BOOKING_LINK, language)).format(link=link)
    return gsm_folded(text) if language == "en" else text


def day_text(day: date, language: str) -> str:
    """A day as a text writes it: 1/12(火), 1/12(화), Tue Jan 12, 1/12周二."""
    if language in DAY_SKELETONS:
        return _written_day(day, language)
    if language == "ja":
        return f"{day.month}/{day.day}({WEEKDAYS_JA[day.weekday()]})"
    if language == "ko":
        return f"{day.month}/{day.day}({WEEKDAYS_KO[day.weekday()]})"
    return f"{day:%a %b} {day.day}"


def compose_lost(
    language: str,
    *,
    day: date,
    venue: str,
    place: int | None,
    link: str,
    phone: str = "",
) -> str:
    """A lottery loser's text: not drawn, on the waitlist for this day (at this place in it,
    when still waiting), the link to their waitlist page, the call center's number where it
    fits."""
    where = _part("lottery_place", language).format(place=place) if place is not None else ""
    sentence = str(_part(LOST, language)).format(
        day=day_text(day, language), venue=venue, place=where, link=link
    )
    if phone:
        text = _join([sentence, _part("call", language).format(phone=written_phone(phone))])
        for trial in (text, gsm_folded(text)):
            if sms_segments(trial) <= OFFER_BUDGET:
                return trial
    return sentence
