"""The LINE chat's events: a webhook's events taken once each (LINE redelivers; the event's
``webhookEventId`` is a unique row), the resident's row locked while their event is answered,
their state read and saved encrypted, and the event handed to its step.

No HTTP here: ``ivr.line_routes`` checks the signature, calls ``take_events`` in a thread and
sends the replies after the answer to LINE has gone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session as DbSession

from booking import service as booking
from booking.context import context
from booking.personal import contains_my_number
from ivr import line_booking as book
from ivr import line_manage as manage
from ivr.line_api import Message
from ivr.line_booking import LookAgain, show_menu
from ivr.line_turn import LANGUAGES, ChatConfig, ChatTurn, LineState, catalogue
from ivr.models import LineEvent, LineUser

log = logging.getLogger(__name__)
# A chat left alone this long starts afresh (a hold lapses sooner by itself).
LINE_STATE_MINUTES = 30
# Steps whose answer is typed, and who reads it.
_TYPED: dict[str, Callable[[ChatTurn, str], None]] = {
    "notice": book.typed,
    "birth": book.typed,
    "phone": book.typed,
    "code": manage.typed_code,
    "find_birth": manage.typed_find_birth,
}


@dataclass(frozen=True)
class Outgoing:
    """A reply to send for one event: its token (single-use) and the user, for a push if the
    reply cannot be sent."""

    reply_token: str
    line_user: str
    messages: list[Message]


def take_events(db: DbSession, payload: dict[str, Any], config: ChatConfig) -> list[Outgoing]:
    """Every event of a webhook not taken before, in order; the replies to send."""
    out: list[Outgoing] = []
    for event in payload.get("events") or []:
        if not isinstance(event, dict) or not first_delivery(db, event):
            continue
        try:
            with db.begin_nested():
                reply = take_event(db, event, config)
        except Exception:
            log.exception("a LINE event could not be answered")
            reply = _apology(event)
        if reply is not None:
            out.append(reply)
    return out


def first_delivery(db: DbSession, event: dict[str, Any]) -> bool:
    """Record the event's id; False when it was taken before (a redelivery)."""
    event_id = str(event.get("webhookEventId") or "")[:64]
    if not event_id:
        return True
    values = {"event_id": event_id, "received_at": context(db).now()}
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    # A redelivery racing the first waits on the unique index, then finds the row taken.
    taken = db.execute(
        insert(LineEvent).values(**values).on_conflict_do_nothing().returning(LineEvent.event_id)
    ).first()
    return taken is not None


def _user_of(event: dict[str, Any]) -> str | None:
    source = event.get("source") or {}
    if source.get("type") != "user":
        return None  # groups and rooms: the account books for one resident at a time
    user = source.get("userId")
    return str(user) if user else None


def _apology(event: dict[str, Any]) -> Outgoing | None:
    user, token = _user_of(event), event.get("replyToken")
    if not (user and token):
        return None
    text = catalogue("ja")["sorry_error"] + "\n" + catalogue("en")["sorry_error"]
    return Outgoing(str(token), user, [{"type": "text", "text": text}])


def lock_user(db: DbSession, line_user: str) -> LineUser:
    """The resident's row, made if new, locked until commit: two events of one resident are
    answered one after the other (a double tap does not book twice)."""
    vault, now = context(db).vault, context(db).now()
    digest = vault.digest(line_user)
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.execute(
        insert(LineUser)
        .values(
            user_hmac=digest,
            user_enc=vault.encrypt(line_user),
            following=True,
            language="ja",
            updated_at=now,
        )
        .on_conflict_do_nothing()
    )
    row = db.execute(
        select(LineUser).where(LineUser.user_hmac == digest).with_for_update()
    ).scalar_one()
    return row


def following_users(db: DbSession, *, user_hmacs: list[str]) -> set[str]:
    """Which of these LINE users (by keyed hash) still follow the account: an unfollow (or a
    block) stops every LINE message to them at once."""
    if not user_hmacs:
        return set()
    rows = db.execute(
        select(LineUser.user_hmac).where(
            LineUser.user_hmac.in_(user_hmacs), LineUser.following.is_(True)
        )
    )
    return set(rows.scalars())


def erase_line_users(db: DbSession, *, before: datetime, everything: bool = False) -> int:
    """The retention rule for the LINE chat: residents who unfollowed before ``before`` are
    forgotten (their LINE user id with them), and a chat idle since then loses its state; the
    webhook events taken before it go too (LINE redelivers within hours, not weeks). A resident
    who still follows keeps their row: they chose the ward's account, and unfollowing ends it.
    ``everything``: every row (the contract's end). Returns how many residents were forgotten."""
    if everything:
        db.execute(delete(LineEvent))
        return int(db.execute(delete(LineUser)).rowcount)  # type: ignore[attr-defined]
    db.execute(delete(LineEvent).where(LineEvent.received_at < before))
    db.execute(
        update(LineUser)
        .where(LineUser.updated_at < before, LineUser.state_enc.is_not(None))
        .values(state_enc=None, state_expires_at=None)
    )
    gone = db.execute(
        delete(LineUser).where(LineUser.following.is_(False), LineUser.updated_at < before)
    )
    return int(gone.rowcount)  # type: ignore[attr-defined]


def load_state(db: DbSession, row: LineUser) -> tuple[LineState, bool]:
    """The chat's state, and whether an earlier one had expired."""
    now = context(db).now()
    if not row.state_enc:
        return LineState(language=row.language), False
    if row.state_expires_at is None or row.state_expires_at <= now:
        return LineState(language=row.language), True
    return LineState(**json.loads(context(db).vault.decrypt(row.state_enc))), False


def save_state(db: DbSession, row: LineUser, state: LineState) -> None:
    now = context(db).now()
    row.state_enc = context(db).vault.encrypt(json.dumps(vars(state)))
    row.state_expires_at = now + timedelta(minutes=LINE_STATE_MINUTES)
    row.language = state.language
    row.updated_at = now


def take_event(db: DbSession, event: dict[str, Any], config: ChatConfig) -> Outgoing | None:
    """One event: follow, unfollow, a text or a button's postback."""
    line_user = _user_of(event)
    if line_user is None:
        return None
    row = lock_user(db, line_user)
    kind = event.get("type")
    if kind == "unfollow":  # blocked or removed: no LINE message goes to them any more
        row.following, row.state_enc, row.state_expires_at = False, None, None
        row.updated_at = context(db).now()
        return None
    state, expired = load_state(db, row)
    turn = ChatTurn(db, line_user=line_user, state=state, config=config)
    if kind == "follow":
        row.following = True
        book.release_hold(turn)
        state.forget_booking()
        ward = booking.ward_info(db).text("name", state.language)
        if ward:
            show_menu(turn, "welcome", ward=ward)
        else:
            show_menu(turn)
    elif kind == "message":
        row.following = True
        message = event.get("message") or {}
        if message.get("type") == "text":
            _text(turn, str(message.get("text") or ""), expired)
        else:  # a sticker, a photo, a location: the chat reads text only
            turn.say("not_understood")
            show_menu(turn)
    elif kind == "postback":
        row.following = True
        raw = str((event.get("postback") or {}).get("data") or "")
        data = parse_qs(raw, keep_blank_values=True)  # "v=": the venue "anywhere"
        action = (data.get("a") or [""])[0]
        value: str | None = data["v"][0] if data.get("v") else None
        _guarded(turn, lambda: _postback(turn, action, value))
    else:
        return None
    save_state(db, row, turn.state)
    token = event.get("replyToken")
    if not token or not turn.messages:
        return None
    return Outgoing(str(token), line_user, turn.answer())


def _guarded(turn: ChatTurn, step: Callable[[], None]) -> None:
    """A step, or the menu again when the button was from an older message."""
    try:
        step()
    except LookAgain:
        book.release_hold(turn)
        turn.state.forget_booking()
        turn.messages.clear()
        turn.say("not_understood")
        show_menu(turn)


# The rich menu's areas send these texts (and a resident may type them).
_MENU_WORDS = {
    catalogue(lang)[key]: action
    for lang in LANGUAGES
    for key, action in (
        ("menu_book", "book"),
        ("menu_check", "check"),
        ("menu_faq", "faq"),
        ("menu_crowd", "crowd"),
    )
}


def _text(turn: ChatTurn, text: str, expired: bool) -> None:
    words = text.strip()
    if words in _MENU_WORDS:
        _guarded(turn, lambda: _postback(turn, _MENU_WORDS[words], None))
        return
    if expired:
        turn.state.forget_booking()
        turn.say("expired")
    step = _TYPED.get(turn.state.step)
    if step is not None:  # a value typed again while one is read back replaces it
        _guarded(turn, lambda: step(turn, words))
        return
    if contains_my_number(words):
        turn.say("my_number_refused")
        return
    turn.say("not_understood")
    show_menu(turn)


def _postback(turn: ChatTurn, action: str, value: str | None) -> None:
    """A button's answer, by its action."""
    plain: dict[str, Callable[[ChatTurn], None]] = {
        "book": book.start,
        "check": manage.check,
        "find": manage.ask_code,
        "crowd": manage.crowd,
        "menu": show_menu,
        "confirm": book.confirm,
        "quit": book.quit_booking,
        "move_yes": manage.move,
        "yes": lambda t: book.read_back(t, True),
        "no": lambda t: book.read_back(t, False),
        "cancel_no": manage.keep,
    }
    with_value: dict[str, Callable[[ChatTurn, str], None]] = {
        "service": book.choose_service,
        "party": book.choose_party,
        "venue": book.choose_venue,
        "day": book.choose_day,
        "slot": book.choose_slot,
        "move": manage.start_move,
        "cancel": manage.ask_cancel,
        "cancel_yes": manage.cancel,
    }
    if action == "faq":
        manage.faq(turn, value)
    elif action == "lang":
        turn.state.language = value if value in turn.config.languages else "ja"
        show_menu(turn)
    elif action in plain:
        plain[action](turn)
    elif action in with_value and value is not None:
        with_value[action](turn, value)
    else:
        raise LookAgain
