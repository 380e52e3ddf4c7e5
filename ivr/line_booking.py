"""Booking in the LINE chat, through the one engine (booking.service) as the phone line does:
quick replies for the service, the party, the venue and the day; a Flex bubble of the day's
free times; the time held while the resident types the notice numbers, the birth date and a
phone number, each read back; then the booking, linked to their LINE user.

Every typed text passes the My Number guard first: an individual number is refused, neither
stored nor echoed.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from typing import Any

import phonenumbers

from booking import service as booking
from booking.context import TOKYO, context
from booking.errors import BookingError
from booking.localized import text_of
from booking.personal import (
    LANGUAGE_NAMES,
    check_birth_date,
    contains_my_number,
    normalise_notice_number,
    parse_phone,
)
from booking.service import MemberInput, ResidentInput
from ivr.line_turn import (
    MAX_QUICK_REPLIES,
    MAX_TIME_BUTTONS,
    ChatTurn,
    bubble,
    button,
    day_text,
    postback,
)

CHANNEL = "line"
# The refusals that mean the held time is gone: choose another, the details typed are kept.
LOST_OFFER = ("hold_expired", "hold_not_found", "slot_full", "slot_closed")
# The details typed in and read back, in the order they are asked.
DETAILS = ("notice", "birth", "phone")
# How far ahead the day choice looks (the booking window cuts it shorter).
DAYS_LOOKED_AT = 400


def show_menu(turn: ChatTurn, key: str = "menu", **params: Any) -> None:
    """The four things the chat does, and the ward's other languages on LINE, each by its own
    name."""
    choices = [
        (turn.t("menu_book"), postback("book")),
        (turn.t("menu_check"), postback("check")),
        (turn.t("menu_faq"), postback("faq")),
        (turn.t("menu_crowd"), postback("crowd")),
    ]
    choices += [
        (LANGUAGE_NAMES[other], postback("lang", other))
        for other in turn.config.languages
        if other != turn.language
    ]
    turn.ask(key, choices, **params)


def release_hold(turn: ChatTurn) -> None:
    """Give back the seats held (the resident moved on); a lapsed hold is fine."""
    if turn.state.hold:
        try:
            with turn.db.begin_nested():
                booking.release_hold(turn.db, hold_id=turn.state.hold)
        except BookingError:
            pass
    turn.state.hold = None


def start(turn: ChatTurn) -> None:
    release_hold(turn)
    turn.state.forget_booking()
    services = booking.list_services(turn.db)
    turn.ask("service", [(turn.named(s), postback("service", s.id)) for s in services])


def choose_service(turn: ChatTurn, value: str) -> None:
    found = {s.id for s in booking.list_services(turn.db)}
    if value not in found:
        start(turn)
        return
    turn.state.service = value
    most = min(context(turn.db).rules.max_party_size, MAX_QUICK_REPLIES)
    turn.ask(
        "party",
        [(turn.t("party_option", count=n), postback("party", n)) for n in range(1, most + 1)],
    )


def choose_party(turn: ChatTurn, value: str) -> None:
    if not value.isdigit() or not 1 <= int(value) <= context(turn.db).rules.max_party_size:
        raise LookAgain
    turn.state.party = int(value)
    venues = booking.list_venues(turn.db, service_id=turn.state.service)
    choices = [(turn.t("venue_anywhere"), postback("venue", ""))]
    choices += [(turn.named(v), postback("venue", v.id)) for v in venues]
    turn.ask("venue", choices)


def choose_venue(turn: ChatTurn, value: str) -> None:
    venues = {v.id for v in booking.list_venues(turn.db, service_id=turn.state.service)}
    if value and value not in venues:
        raise LookAgain
    turn.state.venue = value or None
    ask_day(turn)


def ask_day(turn: ChatTurn) -> None:
    """The days with a free time for the party, as quick replies."""
    state = turn.state
    if state.service is None:
        raise LookAgain
    try:
        slots = booking.availability(
            turn.db,
            service_id=state.service,
            venue_id=state.venue,
            party=state.party,
            limit=DAYS_LOOKED_AT,
            channel=CHANNEL,
        )
    except BookingError:
        slots = []
    days = sorted({s.starts_at.astimezone(TOKYO).date() for s in slots})[:MAX_QUICK_REPLIES]
    if not days:
        turn.say("day_none")
        show_menu(turn)
        return
    turn.ask("day", [(day_text(d, turn.language), postback("day", d.isoformat())) for d in days])


def choose_day(turn: ChatTurn, value: str) -> None:
    """The day's free times as a bubble of buttons."""
    try:
        day = date.fromisoformat(value)
    except ValueError as error:
        raise LookAgain from error
    state = turn.state
    if state.service is None:
        raise LookAgain
    state.day = day.isoformat()
    try:
        slots = booking.availability(
            turn.db,
            service_id=state.service,
            venue_id=state.venue,
            start=day,
            end=day,
            party=state.party,
            limit=MAX_TIME_BUTTONS,
            channel=CHANNEL,
        )
    except BookingError:
        slots = []
    if not slots:
        turn.say("times_none")
        ask_day(turn)
        return
    names = {v.id: turn.named(v) for v in booking.list_venues(turn.db)}
    buttons = [
        button(
            turn.t(
                "time_option",
                time=f"{s.starts_at.astimezone(TOKYO):%H:%M}",
                venue=names[s.venue_id],
            ),
            postback("slot", s.id),
        )
        for s in slots
    ]
    shown = day_text(day, turn.language)
    turn.add(bubble(turn.t("times_alt", day=shown), [turn.t("times", day=shown)], buttons))


def choose_slot(turn: ChatTurn, value: str) -> None:
    """Hold the chosen time, then ask for the first detail still missing."""
    state = turn.state
    if not value.isdigit() or state.service is None:
        raise LookAgain  # a time button from a chat that has moved on (or a forged one)
    release_hold(turn)
    try:
        with turn.db.begin_nested():
            hold = booking.create_hold(
                turn.db, slot_id=int(value), seats=state.party, channel=CHANNEL
            )
    except BookingError:
        turn.say("offer_lapsed")
        if state.day:
            choose_day(turn, state.day)
        else:
            ask_day(turn)
        return
    state.hold = hold.id
    held = booking.get_hold(turn.db, hold_id=hold.id)
    if held.service_id != state.service:
        raise LookAgain  # a button of another service's times (the hold is given back)
    venue = booking.venue_or_404(turn.db, held.venue_id)
    minutes = max(round((hold.expires_at - turn.now()).total_seconds() / 60), 1)
    turn.say("held", when=turn.when(held.starts_at), venue=turn.named(venue), minutes=minutes)
    if state.mode == "move":
        ask_move(turn, held.starts_at, turn.named(venue))
        return
    next_detail(turn)


def ask_move(turn: ChatTurn, starts_at: datetime, venue: str) -> None:
    turn.ask(
        "move_confirm",
        [(turn.t("move_yes"), postback("move_yes")), (turn.t("quit"), postback("quit"))],
        when=turn.when(starts_at),
        venue=venue,
    )


def _needs_notices(turn: ChatTurn) -> bool:
    if turn.state.service is None:
        raise LookAgain
    return bool(booking.service_or_404(turn.db, turn.state.service).requires_notice_number)


def next_detail(turn: ChatTurn) -> None:
    """Ask for the first detail still missing; all there: the summary to confirm."""
    state = turn.state
    state.pending = None
    if _needs_notices(turn) and len(state.notices) < state.party:
        state.step = "notice"
        turn.say("notice", n=len(state.notices) + 1)
    elif state.birth is None:
        state.step = "birth"
        turn.say("birth")
    elif state.phone is None:
        state.step = "phone"
        turn.say("phone")
    else:
        ask_confirm(turn)


def read_birth(text: str, today: date) -> date | None:
    """A typed birth date: 1980-04-01, 1980/4/1, 1980年4月1日 or 19800401."""
    plain = unicodedata.normalize("NFKC", text).strip()
    found = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", plain)
    parts = found.groups() if found else None
    if parts is None and re.fullmatch(r"\d{8}", plain):
        parts = (plain[:4], plain[4:6], plain[6:])
    if parts is None:
        return None
    try:
        return check_birth_date(date(int(parts[0]), int(parts[1]), int(parts[2])), today)
    except (ValueError, BookingError):
        return None


def typed(turn: ChatTurn, text: str) -> None:
    """A text typed in answer to the step that asked for it: checked, then read back."""
    state = turn.state
    if contains_my_number(text):
        turn.say("my_number_refused")  # never stored, never shown back
        return
    value: str | None
    try:
        if state.step == "notice":
            value = normalise_notice_number(text)
        elif state.step == "birth":
            day = read_birth(text, context(turn.db).today())
            value = day.isoformat() if day else None
        else:
            value = parse_phone(text).e164
    except BookingError as error:
        if error.code == "my_number_refused":
            turn.say("my_number_refused")
            return
        value = None
    if value is None:
        turn.say({"notice": "notice_wrong", "birth": "birth_wrong"}.get(state.step, "phone_wrong"))
        return
    state.pending = value
    shown = national(value) if state.step == "phone" else value
    turn.ask(
        "read_back",
        [(turn.t("yes"), postback("yes")), (turn.t("no"), postback("no"))],
        value=shown,
    )


def read_back(turn: ChatTurn, agreed: bool) -> None:
    """The resident's yes or no to a value read back."""
    state = turn.state
    if state.pending is None:
        if state.hold is None:
            raise LookAgain
        next_detail(turn)  # a second tap on an answer already taken: ask what is next again
        return
    if agreed:
        if state.step == "notice":
            state.notices.append(state.pending)
        elif state.step == "birth":
            state.birth = state.pending
        elif state.step == "phone":
            state.phone = state.pending
    next_detail(turn)  # the next detail, or (after a no) the same one asked again


def ask_confirm(turn: ChatTurn) -> None:
    state = turn.state
    state.step = "confirm"
    if state.hold is None or state.service is None:
        raise LookAgain
    try:
        held = booking.get_hold(turn.db, hold_id=state.hold)
    except BookingError:
        state.hold = None
        turn.say("offer_lapsed")
        ask_day(turn)
        return
    venue = booking.venue_or_404(turn.db, held.venue_id)
    service = booking.service_or_404(turn.db, state.service)
    summary = turn.t(
        "summary",
        when=turn.when(held.starts_at),
        venue=turn.named(venue),
        service=turn.named(service),
        people=turn.t("party_option", count=state.party),
    )
    turn.ask(
        "confirm",
        [(turn.t("confirm_button"), postback("confirm")), (turn.t("quit"), postback("quit"))],
        summary=summary,
    )


def confirm(turn: ChatTurn) -> None:
    """Book the held time for the details typed, and link the booking to this LINE user."""
    state = turn.state
    if not (state.hold and state.birth and state.phone):
        raise LookAgain
    if not booking.note_attempt(
        turn.db,
        client="line:" + context(turn.db).vault.digest(turn.line_user)[:40],  # never the id
        kind="book",
        limit=turn.config.bookings_per_hour,
        window=timedelta(hours=1),
    ):
        release_hold(turn)
        state.forget_booking()
        turn.say("too_many_bookings")
        show_menu(turn)
        return
    resident = ResidentInput(
        name_kana=None,
        phone=state.phone,
        birth_date=date.fromisoformat(state.birth),
        language=state.language,
        members=[MemberInput(notice_number=n) for n in state.notices],
    )
    try:
        with turn.db.begin_nested():
            made = booking.book(
                turn.db,
                hold_id=state.hold,
                party=state.party,
                resident=resident,
                channel=CHANNEL,
                # The hold is this chat's own: a repeated tap finds the same booking.
                idempotency_key=f"line:{state.hold}",
            )
    except BookingError as error:
        if error.code in LOST_OFFER:
            state.hold = None
            turn.say("offer_lapsed")
            ask_day(turn)
            return
        release_hold(turn)
        turn.say("booking_refused", reason=error.message(turn.language))
        state.forget_booking()
        show_menu(turn)
        return
    booking.link_line_user(turn.db, booking_id=made.id, line_user=turn.line_user)
    state.forget_booking()
    turn.say("booked", code=made.code, summary=turn.summary(made))
    bring = text_of(booking.service_or_404(turn.db, made.service_id), "bring", turn.language)
    notes = [turn.t("booked_notices")] + ([turn.t("bring", bring=bring)] if bring else [])
    turn.add({"type": "text", "text": "\n".join(notes)})
    show_menu(turn, "menu")


def quit_booking(turn: ChatTurn) -> None:
    release_hold(turn)
    turn.state.forget_booking()
    turn.say("attempt_cancelled")
    show_menu(turn)


class LookAgain(Exception):
    """A button from an older message, or a value the step does not take: show the menu."""


def national(e164: str) -> str:
    """A phone number as the resident writes it (090-1234-5678)."""
    return str(
        phonenumbers.format_number(
            phonenumbers.parse(e164, "JP"), phonenumbers.PhoneNumberFormat.NATIONAL
        )
    )
