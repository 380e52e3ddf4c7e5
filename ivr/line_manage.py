"""Checking, moving and cancelling in the LINE chat; the FAQ and the counters' wait.

The bookings linked to the resident's LINE user are listed at once; another is found by its
code and the birth date given when booking (counted against the same lookup limit as the
phone line's and the web's), and is then linked too. Only a linked booking can be moved or
cancelled from the chat.
"""

from __future__ import annotations

from datetime import timedelta

from booking import codes
from booking import service as booking
from booking.context import context
from booking.errors import BookingError
from booking.languages import is_japanese
from booking.personal import contains_my_number
from booking.views import BookingView
from ivr.faq import faq_entries
from ivr.line_booking import (
    CHANNEL,
    LOST_OFFER,
    LookAgain,
    ask_day,
    read_birth,
    release_hold,
    show_menu,
)
from ivr.line_turn import ChatTurn, bubble, button, postback

LOOKUP_WINDOW = timedelta(minutes=15)


def _card(turn: ChatTurn, found: BookingView) -> dict[str, object]:
    summary = turn.summary(found)
    lines = [turn.t("booking_card", code=found.code, summary=summary)]
    buttons = []
    if found.status == "booked" and found.starts_at > turn.now():
        buttons = [
            button(turn.t("move_button"), postback("move", found.id)),
            button(turn.t("cancel_button"), postback("cancel", found.id)),
        ]
    return bubble(lines[0], lines, buttons)


def check(turn: ChatTurn) -> None:
    """The bookings linked to this LINE user, each with its buttons; or ask for a code."""
    release_hold(turn)
    turn.state.forget_booking()
    linked = booking.bookings_for_line_user(turn.db, line_user=turn.line_user)
    if not linked:
        turn.say("linked_none")
        ask_code(turn)
        return
    turn.say("linked")
    for found in linked[:3]:
        turn.add(_card(turn, found))
    turn.ask("menu", [(turn.t("find_other"), postback("find")), (turn.t("back"), postback("menu"))])


def ask_code(turn: ChatTurn) -> None:
    turn.state.step = "code"
    turn.say("code")


def typed_code(turn: ChatTurn, text: str) -> None:
    if contains_my_number(text):
        turn.say("my_number_refused")
        return
    code = "".join(ch for ch in text if ch.isdigit())
    if not codes.is_well_formed(code):
        turn.say("code_wrong")
        return
    turn.state.code = code
    turn.state.step = "find_birth"
    turn.say("find_birth")


def typed_find_birth(turn: ChatTurn, text: str) -> None:
    """The second factor: find the booking (within the lookup limit) and link it."""
    if contains_my_number(text):
        turn.say("my_number_refused")
        return
    born = read_birth(text, context(turn.db).today())
    if born is None:
        turn.say("birth_wrong")
        return
    client = "line:" + line_client(turn)
    allowed = booking.note_attempt(
        turn.db,
        client=client,
        kind="lookup",
        limit=turn.config.lookups_per_15_minutes,
        window=LOOKUP_WINDOW,
    )
    if not allowed:
        turn.state.forget_booking()
        turn.say("too_many_lookups")
        show_menu(turn)
        return
    try:
        found = booking.find_booking(turn.db, code=str(turn.state.code), birth_date=born)
    except BookingError:
        turn.state.step = "code"
        turn.say("not_found")
        turn.say("code")
        return
    booking.link_line_user(turn.db, booking_id=found.id, line_user=turn.line_user)
    turn.state.forget_booking()
    turn.say("found")
    turn.add(_card(turn, found))


def line_client(turn: ChatTurn) -> str:
    """The LINE user as the attempt limits count them (a keyed hash, never the id)."""
    return context(turn.db).vault.digest(turn.line_user)[:40]


def _own_changeable(turn: ChatTurn, value: str) -> BookingView | None:
    """The booking a button is about, if it is linked to this LINE user and still to come."""
    if not value.isdigit():
        raise LookAgain
    booking_id = int(value)
    if booking.line_user_of(turn.db, booking_id=booking_id) != turn.line_user:
        raise LookAgain  # never act on a booking this LINE user has not made or found
    found = booking.get_booking(turn.db, booking_id=booking_id)
    if found.status != "booked" or found.starts_at <= turn.now():
        turn.say("not_changeable")
        return None
    return found


def ask_cancel(turn: ChatTurn, value: str) -> None:
    found = _own_changeable(turn, value)
    if found is None:
        return
    turn.ask(
        "cancel_check",
        [
            (turn.t("cancel_yes"), postback("cancel_yes", found.id)),
            (turn.t("no"), postback("cancel_no")),
        ],
        when=turn.when(found.starts_at),
    )


def cancel(turn: ChatTurn, value: str) -> None:
    found = _own_changeable(turn, value)
    if found is None:
        return
    try:
        with turn.db.begin_nested():
            # The resident's own cancellation: counted against their number's monthly limit.
            booking.cancel_by_resident(turn.db, booking_id=found.id)
    except BookingError as error:
        turn.say("booking_refused", reason=error.message(turn.language))
        return
    turn.say("cancel_done")
    show_menu(turn)


def keep(turn: ChatTurn) -> None:
    turn.say("cancel_kept")
    show_menu(turn)


def start_move(turn: ChatTurn, value: str) -> None:
    found = _own_changeable(turn, value)
    if found is None:
        return
    state = turn.state
    release_hold(turn)
    state.forget_booking()
    state.mode, state.booking_id = "move", found.id
    state.service, state.venue, state.party = found.service_id, found.venue_id, found.party_size
    turn.say("move_intro")
    ask_day(turn)


def move(turn: ChatTurn) -> None:
    """Move the booking to the held time: the old seats go only once the new are taken."""
    state = turn.state
    if state.mode != "move" or state.booking_id is None or state.hold is None:
        raise LookAgain
    if booking.line_user_of(turn.db, booking_id=state.booking_id) != turn.line_user:
        raise LookAgain
    try:
        with turn.db.begin_nested():
            moved = booking.reschedule_booking(
                turn.db, booking_id=state.booking_id, hold_id=state.hold, channel=CHANNEL
            )
    except BookingError as error:
        if error.code in LOST_OFFER:
            state.hold = None
            turn.say("offer_lapsed")
            ask_day(turn)
            return
        release_hold(turn)
        state.forget_booking()
        turn.say("move_refused")
        show_menu(turn)
        return
    state.forget_booking()
    turn.say("moved", when=turn.when(moved.starts_at))
    show_menu(turn)


def faq(turn: ChatTurn, value: str | None) -> None:
    entries = faq_entries(turn.db)
    if not entries:
        turn.say("faq_none")
        show_menu(turn)
        return
    # The ward writes its answers in Japanese and English: やさしい日本語 reads the Japanese.
    written = "ja" if is_japanese(turn.language) else turn.language
    if value is not None and value.isdigit() and int(value) < len(entries):
        entry = entries[int(value)]
        turn.add({"type": "text", "text": f"{entry.title(written)}\n{entry.answer(written)}"})
    turn.ask("faq", [(e.title(written), postback("faq", i)) for i, e in enumerate(entries)])


def crowd(turn: ChatTurn) -> None:
    """The counters now, per venue open today: people waiting and the wait for someone arriving
    now (the day's queue the crowding pages publish)."""
    lines = [turn.t("crowd")]
    for venue in booking.list_venues(turn.db):
        queue = booking.venue_queue(turn.db, venue_id=venue.id)
        if not queue.waiting and not queue.remaining_walk_in_seats:
            continue  # no counter open today at this venue
        lines.append(
            turn.t(
                "crowd_venue",
                venue=turn.named(venue),
                waiting=len(queue.waiting),
                wait=turn.t("crowd_wait", minutes=queue.estimated_wait_minutes),
            )
        )
    if len(lines) == 1:
        turn.say("crowd_none")
        show_menu(turn)
        return
    turn.add({"type": "text", "text": "\n".join(lines)})
    show_menu(turn)
