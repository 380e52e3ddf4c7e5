"""A call on the phone line: its row (who, the way through the menus, the outcome), what the
caller keyed so far (kept encrypted between webhooks), and its end. ``ivr.flow`` holds the
dialogue, ``ivr.routes`` the webhooks; ``ivr.service`` is the front door other packages use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import phonenumbers
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session as DbSession

from booking import service as booking
from booking.context import context
from booking.errors import BookingError
from booking.personal import parse_phone
from ivr.models import Call, CallbackRequest, CallEvent

# What Twilio sends as From for a withheld number ("anonymous", or these pseudo-numbers).
WITHHELD = {"", "anonymous", "+266696687", "+86282452253", "+7378742833", "+2562533", "restricted"}


@dataclass
class CallState:
    """What the caller has chosen and keyed so far in this call. Kept encrypted on the call
    row between webhooks (web processes keep nothing), and cleared when the call ends."""

    language: str = "ja"
    misses: int = 0
    # a new booking, or a move of a found one
    mode: str = "book"
    service: str | None = None
    party: int = 1
    venue: str | None = None  # None: the earliest time anywhere
    offered: int | None = None
    hold: str | None = None
    seen: list[int] = field(default_factory=list)
    after: str | None = None  # ISO time of the last time offered
    wanted: str | None = None  # ISO date the caller jumped to (the next day, a week, a date)
    notices: list[str] = field(default_factory=list)
    notice_head: str | None = None
    pending: str | None = None  # a value keyed in and being read back
    pending_era: str | None = None  # the era key (3: 昭和…) a birth date was keyed in, if any
    birth: str | None = None
    phone: str | None = None
    # manage
    code: str | None = None
    booking_id: int | None = None
    lookups: int = 0
    # A callback the caller asked for, and why (queue_wait, after_hours, queue_failed): set
    # when they ask, recorded once they confirm the number.
    callback: str | None = None
    # The media stream listening to the current question (stopped when the next one starts),
    # and an answer it heard: the keys it stands for (None: unclear), for which question
    # ("step:turn"), and how sure the recogniser was.
    stream: str | None = None
    heard: str | None = None
    heard_for: str | None = None
    heard_confidence: float = 0.0
    # The agent's desk phone the caller is being put through to (kept here, not in a URL).
    connect_to: str | None = None
    # Whether the caller was told what their details are for (once a call, before the first
    # personal question).
    purpose_told: bool = False
    # A lottery (抽選) the caller may apply for (mode "lottery"), the times picked in order, and
    # which of the times not yet picked is being read out.
    lottery: int | None = None
    picks: list[int] = field(default_factory=list)
    lottery_at: int = 0
    # The waitlist: a full day the caller asked for (they may join its list), and the link
    # token of the waitlist offer a call we placed is about (the booking takes it).
    full_day: str | None = None
    waitlist: str | None = None
    # A card not on the list of cards that have arrived (MADOGUCHI_READY_CARDS=refuse): the
    # caller keys the numbers again once; a second refusal ends the booking.
    card_retried: bool = False
    # Text-a-link: the caller pressed for the web booking's link while queued (sent once the
    # queue lets them go); the survey being answered, and of what (agent | self_service).
    link: bool = False
    survey: str | None = None

    def forget_booking(self) -> None:
        """Start a new booking: what was chosen and keyed for the last one goes."""
        keep = CallState(
            language=self.language,
            lookups=self.lookups,
            stream=self.stream,
            purpose_told=self.purpose_told,
        )
        self.__dict__.update(keep.__dict__)

    @property
    def after_time(self) -> datetime | None:
        return datetime.fromisoformat(self.after) if self.after else None

    @property
    def birth_date(self) -> date | None:
        return date.fromisoformat(self.birth) if self.birth else None


@dataclass(frozen=True)
class Caller:
    """The calling number as Twilio gave it: E.164 when it is a Japanese number we could call
    back, else None (withheld, foreign or malformed)."""

    e164: str | None
    kind: str  # valid | withheld | other
    line_type: str | None = None


def read_caller(raw: str) -> Caller:
    text = raw.strip()
    if text.lower() in WITHHELD:
        return Caller(None, "withheld")
    try:
        number = phonenumbers.parse(text, "JP")
    except phonenumbers.NumberParseException:
        return Caller(None, "other")
    if number.country_code != 81 or not phonenumbers.is_valid_number(number):
        return Caller(None, "other")
    try:
        phone = parse_phone(text)
    except BookingError:
        return Caller(None, "other")
    return Caller(phone.e164, "valid", phone.line_type)


# --- the call row -------------------------------------------------------------------------


def start_call(db: DbSession, *, call_sid: str, caller: Caller, placed: bool = False) -> Call:
    """A new call's row (flushed; the caller commits with the first reply). A call the ward
    ``placed`` (a reminder) is not a call received: it gets no "started" event, which is what
    the wallboard and the monthly report count."""
    ctx = context(db)
    now = ctx.now()
    call = Call(
        call_sid=call_sid,
        caller_enc=ctx.vault.encrypt(caller.e164) if caller.e164 else None,
        caller_hmac=ctx.vault.digest(caller.e164) if caller.e164 else None,
        caller_kind=caller.kind,
        language="ja",
        outcome="in_progress",
        path="",
        expect="menu",
        seq=1,
        last_reply="",
        started_at=now,
        updated_at=now,
    )
    db.add(call)
    db.flush()
    if not placed:
        note_event(db, call, "started")
    return call


def note_event(db: DbSession, call: Call, kind: str) -> None:
    """Log a call event once (the wallboard counts them); the call's row is locked by the
    webhook or the agent's action, so two writers cannot both find it missing."""
    seen = db.execute(
        select(CallEvent.id).where(CallEvent.call_id == call.id, CallEvent.kind == kind)
    ).first()
    if seen is None:
        db.add(CallEvent(call_id=call.id, kind=kind, at=context(db).now(), language=call.language))
        db.flush()


# Every webhook's first statement: built once.
_LOCK_CALL = select(Call).where(Call.call_sid == bindparam("call_sid")).with_for_update()


def lock_call(db: DbSession, call_sid: str) -> Call | None:
    """The call's row, locked until commit: a retried webhook waits for the first to finish,
    then sees that its step was answered (and replays the answer)."""
    return db.execute(_LOCK_CALL, {"call_sid": call_sid}).scalar_one_or_none()


def caller_of(db: DbSession, call: Call) -> Caller:
    if call.caller_enc is None:
        return Caller(None, call.caller_kind)
    e164 = context(db).vault.decrypt(call.caller_enc)
    return read_caller(e164)


def load_state(db: DbSession, call: Call) -> CallState:
    if not call.state_enc:
        return CallState(language=call.language)
    raw = json.loads(context(db).vault.decrypt(call.state_enc))
    if raw.get("callback") is True:  # a state saved before the reason was kept
        raw["callback"] = "queue_wait"
    elif raw.get("callback") is False:
        raw["callback"] = None
    return CallState(**raw)


def save_state(db: DbSession, call: Call, state: CallState) -> None:
    # Its fields are plain values and lists of them: no deep copy (asdict) needed.
    call.state_enc = context(db).vault.encrypt(json.dumps(vars(state)))
    call.language = state.language
    call.updated_at = context(db).now()


def put_through_to(db: DbSession, *, call_sid: str, number: str) -> bool:
    """The console is putting this caller through to an agent's phone: keep the number on the
    call, for /ivr/connect to dial (a number in the redirect URL would be logged by proxies)."""
    call = lock_call(db, call_sid)
    if call is None:
        return False
    state = load_state(db, call)
    state.connect_to = number
    save_state(db, call, state)
    return True


def put_through_number(db: DbSession, *, call_sid: str) -> str | None:
    call = db.execute(select(Call).where(Call.call_sid == call_sid)).scalar_one_or_none()
    return load_state(db, call).connect_to if call is not None else None


def keep_voice_answer(
    db: DbSession, *, call_sid: str, step: str, seq: int, keys: str | None, confidence: float
) -> bool:
    """An answer the media stream heard, kept on the call for the question's step to read;
    False (and nothing kept) when the call has moved on meanwhile (a key was pressed)."""
    call = lock_call(db, call_sid)
    if call is None or call.expect != step or call.seq != seq:
        return False
    state = load_state(db, call)
    state.heard, state.heard_for, state.heard_confidence = keys, f"{step}:{seq}", confidence
    save_state(db, call, state)
    return True


# The call's path (note_step) as an agent reads it on the screen pop: what each question was, and
# what the caller chose there.
STEP_NAMES = {
    "voice": "着信",
    "reminder": "お知らせの電話",
    "menu": "メニュー",
    "book_service": "用件",
    "book_party": "人数",
    "book_venue": "会場",
    "offer": "空き日時の案内",
    "offer_date": "日付の指定",
    "offer_none": "空きなし",
    "notice_head": "交付通知書番号（前半）",
    "notice_tail": "交付通知書番号（後半）",
    "notice_check": "交付通知書番号の確認",
    "birth": "生年月日",
    "birth_check": "生年月日の確認",
    "phone_caller": "連絡先（この電話）",
    "phone_entry": "連絡先の入力",
    "phone_check": "連絡先の確認",
    "confirm": "予約内容の確認",
    "after_booking": "予約後",
    "manage_code": "予約番号",
    "manage_birth": "本人確認（生年月日）",
    "manage": "予約の確認・変更",
    "cancel_check": "取消の確認",
    "after_manage": "確認後",
    "faq": "よくある質問",
    "after_hours": "時間外",
    "callback_phone": "折り返し番号",
    "queue_failed": "つながらず",
    "queue_wait": "待ち中",
    "relocated": "会場変更のお知らせ",
    "agent": "担当者へ",
    "answered": "担当者が応答",
    "agent_missed": "担当者が出られず",
    "error": "システムの不具合",
    "survey_score": "アンケート（満足度）",
    "survey_settled": "アンケート（解決したか）",
}
CHOICES = {
    "menu": {
        "1": "新しい予約",
        "2": "予約の確認・変更",
        "3": "よくある質問",
        "0": "担当者",
        "9": "English",
        "8": "한국어",
        "4": "ウェブ予約のリンクをSMSで",
    },
    "offer": {"1": "この日時に", "2": "次の時間", "3": "次の日", "4": "1週間後", "5": "日付指定"},
    "confirm": {"1": "予約する", "9": "やめる"},
    "queue_wait": {"1": "折り返しを希望", "2": "ウェブ予約のリンクをSMSで"},
}
QUEUE_RESULTS = {
    "bridged": "担当者につながった",
    "hangup": "待ち中に切った",
    "leave": "待ちを離れた",
    "queue-full": "キューが満杯",
    "error": "キューの不具合",
    "system-error": "キューの不具合",
    "redirected": "転送",
}


def readable_path(path: str) -> list[str]:
    """The call's path in words: "メニュー：担当者（0）", "人数：入力なし・誤り"."""
    out = []
    for entry in path.split():
        name, _, value = entry.partition("=")
        if name.endswith("!"):
            out.append(f"{STEP_NAMES.get(name[:-1], name[:-1])}：入力なし・誤り")
        elif name == "queue":
            out.append(f"待ち行列：{QUEUE_RESULTS.get(value, value)}")
        elif value == "*":
            out.append(f"{STEP_NAMES.get(name, name)}：もう一度")
        elif value:
            # 0 is a person at any menu (where it is not a digit of an answer).
            meaning = CHOICES.get(name, {}).get(value) or ("担当者" if value == "0" else None)
            shown = f"{meaning}（{value}）" if meaning else value
            out.append(f"{STEP_NAMES.get(name, name)}：{shown}")
        else:
            out.append(STEP_NAMES.get(name, name))
    return out


def note_step(call: Call, entry: str) -> None:
    """The way through the menus: step names, and the key for choices (never keyed data)."""
    call.path = (call.path + " " + entry).strip()[-4000:]


def set_outcome(call: Call, outcome: str) -> None:
    """Outcomes only move forward: an agent's answer or a booking is not undone by a later
    FAQ, and a call handed over stays handed over."""
    rank = {
        "in_progress": 0,
        "abandoned": 1,
        "self_served": 2,
        "callback_requested": 3,
        "handed_to_agent": 4,
        "booked": 5,
        "deflected": 2,
    }
    if rank[outcome] > rank[call.outcome] or call.outcome == "in_progress":
        call.outcome = outcome


def end_talk(db: DbSession, *, call: Call) -> None:
    """The talk with the agent is over (either side hung up): the wrap-up time starts now.
    Only the first word counts (Twilio tells it twice: the dial's end and the call's end)."""
    if call.answered_at is not None and call.talk_ended_at is None:
        call.talk_ended_at = context(db).now()


def end_call(db: DbSession, *, call_sid: str, status: str, duration: int | None) -> Call | None:
    """Twilio's status callback: the call is over. An unfinished call counts as abandoned;
    seats the caller was being offered go back on sale now rather than when the hold lapses;
    the working state (keyed notice numbers, birth date) is erased."""
    call = lock_call(db, call_sid)
    if call is None:
        return None
    now = context(db).now()
    state = load_state(db, call)
    if state.hold:
        try:
            booking.release_hold(db, hold_id=state.hold)
        except BookingError:
            pass  # booked from it, or lapsed and reclaimed
    if call.queue and call.queue_result is None and call.answered_at is None:
        call.queue_result = "hangup"
        note_event(db, call, "abandoned")  # hung up while waiting for a person
    if call.outcome == "in_progress":
        call.outcome = "abandoned"
    end_talk(db, call=call)
    note_event(db, call, "completed")
    call.twilio_status = status[:20]
    call.duration_seconds = duration
    call.ended_at = call.ended_at or now
    call.state_enc = None
    call.updated_at = now
    return call


def note_lookup(db: DbSession, *, call: Call, limit: int) -> bool:
    """Count one lookup (code + second factor) by this calling number (or, withheld, this
    call) in 15 minutes; False when over the limit."""
    who = call.caller_hmac or call.call_sid
    client = context(db).vault.digest(f"ivr:{who}")
    return booking.note_attempt(
        db, client=client, kind="ivr_lookup", limit=limit, window=timedelta(minutes=15)
    )


@dataclass(frozen=True)
class CallsErased:
    calls: int
    callbacks: int


def erase_personal_data(
    db: DbSession, *, before: datetime, everything: bool = False
) -> CallsErased:
    """Erase callers' numbers and keyed answers of calls begun before ``before``, and the
    numbers of callback requests settled before it (or all of them). What the call center's
    figures need stays: times, the way through the menus, outcomes."""
    calls_due = update(Call).where(
        Call.caller_enc.is_not(None) | Call.caller_hmac.is_not(None) | Call.state_enc.is_not(None)
    )
    callbacks_due = update(CallbackRequest).where(CallbackRequest.phone_enc != "")
    if not everything:
        calls_due = calls_due.where(Call.started_at < before, Call.outcome != "in_progress")
        callbacks_due = callbacks_due.where(
            CallbackRequest.requested_at < before, CallbackRequest.status == "done"
        )
    erased_calls = db.execute(calls_due.values(caller_enc=None, caller_hmac=None, state_enc=None))
    erased_callbacks = db.execute(callbacks_due.values(phone_enc="", phone_hmac=""))
    return CallsErased(int(erased_calls.rowcount), int(erased_callbacks.rowcount))  # type: ignore[attr-defined]
