"""The phone line's records: calls (who, the way through the menus, the outcome) and callback
requests. No HTTP here; ``ivr.flow`` holds the dialogue and ``ivr.routes`` the webhooks.

Other packages (the agent console, the monthly report) read calls and callbacks through the
functions at the end of this module, never the tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import phonenumbers
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session as DbSession

from booking import service as booking
from booking.context import TOKYO, context
from booking.errors import BookingError
from booking.personal import mask_phone, parse_phone
from ivr.models import Call, CallbackRequest, CallEvent, FaqEntry

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
}
CHOICES = {
    "menu": {
        "1": "新しい予約",
        "2": "予約の確認・変更",
        "3": "よくある質問",
        "0": "担当者",
        "9": "English",
        "8": "한국어",
    },
    "offer": {"1": "この日時に", "2": "次の時間", "3": "次の日", "4": "1週間後", "5": "日付指定"},
    "confirm": {"1": "予約する", "9": "やめる"},
    "queue_wait": {"1": "折り返しを希望"},
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
    }
    if rank[outcome] > rank[call.outcome] or call.outcome == "in_progress":
        call.outcome = outcome


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
    note_event(db, call, "completed")
    call.twilio_status = status[:20]
    call.duration_seconds = duration
    call.ended_at = call.ended_at or now
    call.state_enc = None
    call.updated_at = now
    return call


# --- callbacks ------------------------------------------------------------------------------


def request_callback(db: DbSession, *, call: Call, phone: str, language: str, reason: str) -> int:
    """A caller asks to be called back: a row in the agents' callback list."""
    callback_id = _callback(db, call_id=call.id, phone=phone, language=language, reason=reason)
    set_outcome(call, "callback_requested")
    return callback_id


def ask_agents_to_call(db: DbSession, *, phone: str, language: str, reason: str) -> int:
    """A callback the ward owes a resident it could not reach another way (no call behind
    it): a row in the agents' callback list."""
    return _callback(db, call_id=None, phone=phone, language=language, reason=reason)


def _callback(db: DbSession, *, call_id: int | None, phone: str, language: str, reason: str) -> int:
    ctx = context(db)
    e164 = parse_phone(phone).e164
    row = CallbackRequest(
        call_id=call_id,
        phone_enc=ctx.vault.encrypt(e164),
        phone_hmac=ctx.vault.digest(e164),
        language=language,
        reason=reason,
        status="open",
        requested_at=ctx.now(),
    )
    db.add(row)
    db.flush()
    return row.id


@dataclass(frozen=True)
class CallbackView:
    id: int
    phone: str
    masked_phone: str
    language: str
    reason: str
    status: str
    requested_at: datetime
    claimed_by: int | None = None
    outcome: str | None = None


CALLBACK_OUTCOMES = ("reached", "no_answer", "wrong_number", "not_needed")


def open_callbacks(db: DbSession) -> list[CallbackView]:
    """The agents' callback list, oldest first."""
    vault = context(db).vault
    rows = db.execute(
        select(CallbackRequest)
        .where(CallbackRequest.status == "open")
        .order_by(CallbackRequest.requested_at, CallbackRequest.id)
    ).scalars()
    views = []
    for row in rows:
        phone = vault.decrypt(row.phone_enc)
        views.append(_callback_view(row, phone))
    return views


def _callback_view(row: CallbackRequest, phone: str) -> CallbackView:
    return CallbackView(
        row.id,
        phone,
        mask_phone(phone),
        row.language,
        row.reason,
        row.status,
        row.requested_at,
        row.claimed_by,
        row.outcome,
    )


def claim_callback(db: DbSession, *, callback_id: int, staff_id: int) -> CallbackView | None:
    """An agent takes on a callback: theirs unless another agent has it already (one
    conditional update). Their own claimed callback is returned again."""
    now = context(db).now()
    db.execute(
        update(CallbackRequest)
        .where(
            CallbackRequest.id == callback_id,
            CallbackRequest.status == "open",
            CallbackRequest.claimed_by.is_(None),
        )
        .values(claimed_by=staff_id, claimed_at=now)
    )
    row = db.get(CallbackRequest, callback_id)
    if row is None or row.claimed_by != staff_id:
        return None
    return _callback_view(row, context(db).vault.decrypt(row.phone_enc))


def finish_callback(db: DbSession, *, callback_id: int, staff_id: int, outcome: str) -> bool:
    """What came of the call back; a request not reached can be left open for another try."""
    if outcome not in CALLBACK_OUTCOMES:
        return False
    done = outcome != "no_answer"
    values: dict[str, object] = {"outcome": outcome}
    if done:
        values.update(status="done", done_at=context(db).now())
    else:  # back on the list for a later try
        values.update(claimed_by=None, claimed_at=None)
    result = db.execute(
        update(CallbackRequest)
        .where(
            CallbackRequest.id == callback_id,
            CallbackRequest.claimed_by == staff_id,
            CallbackRequest.status == "open",
        )
        .values(**values)
    )
    return bool(getattr(result, "rowcount", 0))


def close_callback(db: DbSession, *, callback_id: int) -> bool:
    result = db.execute(
        update(CallbackRequest)
        .where(CallbackRequest.id == callback_id, CallbackRequest.status == "open")
        .values(status="done", done_at=context(db).now())
    )
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class CallView:
    id: int
    call_sid: str
    caller_kind: str
    language: str
    outcome: str
    path: str
    booking_id: int | None
    queue: str | None
    queue_result: str | None
    wait_seconds: int | None
    duration_seconds: int | None
    started_at: datetime
    ended_at: datetime | None
    agent_staff_id: int | None = None
    answered_at: datetime | None = None
    wrapped_at: datetime | None = None
    caller: str | None = None  # E.164, for staff screens only (which audit reading it)


def get_call(db: DbSession, *, call_sid: str) -> CallView | None:
    call = db.execute(select(Call).where(Call.call_sid == call_sid)).scalar_one_or_none()
    if call is None:
        return None
    return CallView(
        call.id,
        call.call_sid,
        call.caller_kind,
        call.language,
        call.outcome,
        call.path,
        call.booking_id,
        call.queue,
        call.queue_result,
        call.wait_seconds,
        call.duration_seconds,
        call.started_at,
        call.ended_at,
        call.agent_staff_id,
        call.answered_at,
        call.wrapped_at,
        context(db).vault.decrypt(call.caller_enc) if call.caller_enc else None,
    )


def claim_call(db: DbSession, *, call_sid: str, staff_id: int) -> bool:
    """An agent takes a waiting call: one conditional update, so two agents pressing at once
    cannot both have it."""
    result = db.execute(
        update(Call)
        .where(
            Call.call_sid == call_sid,
            Call.queue.is_not(None),
            Call.queue_result.is_(None),
            Call.agent_staff_id.is_(None),
            Call.ended_at.is_(None),
        )
        .values(agent_staff_id=staff_id, answered_at=context(db).now())
    )
    if not getattr(result, "rowcount", 0):
        return False
    call = db.execute(select(Call).where(Call.call_sid == call_sid)).scalar_one()
    set_outcome(call, "handed_to_agent")
    note_step(call, "answered")
    note_event(db, call, "connected")
    return True


def agents_on_calls(db: DbSession) -> set[int]:
    """Staff with a call taken and not yet wrapped up."""
    rows = db.execute(
        select(Call.agent_staff_id).where(
            Call.agent_staff_id.is_not(None), Call.wrapped_at.is_(None)
        )
    ).scalars()
    return {int(r) for r in rows if r is not None}


def release_call(db: DbSession, *, call_sid: str) -> Call | None:
    """The agent's phone did not take the call: back in the queue for the next agent."""
    call = lock_call(db, call_sid)
    if call is None or call.ended_at is not None:
        return None
    call.agent_staff_id, call.answered_at = None, None
    note_step(call, "agent_missed")
    return call


def callback_number(db: DbSession, *, callback_id: int, staff_id: int) -> str | None:
    """The number to call back, for the agent who took the request on (no one else)."""
    row = db.get(CallbackRequest, callback_id)
    if row is None or row.claimed_by != staff_id or row.status != "open":
        return None
    return context(db).vault.decrypt(row.phone_enc)


def wrap_up(db: DbSession, *, call_sid: str, staff_id: int, disposition: str) -> bool:
    """The agent finished the after-call work: the wrap-up time ends here."""
    result = db.execute(
        update(Call)
        .where(
            Call.call_sid == call_sid,
            Call.agent_staff_id == staff_id,
            Call.wrapped_at.is_(None),
        )
        .values(wrapped_at=context(db).now(), disposition=disposition[:20])
    )
    return bool(getattr(result, "rowcount", 0))


def note_lookup(db: DbSession, *, call: Call, limit: int) -> bool:
    """Count one lookup (code + second factor) by this calling number (or, withheld, this
    call) in 15 minutes; False when over the limit."""
    who = call.caller_hmac or call.call_sid
    client = context(db).vault.digest(f"ivr:{who}")
    return booking.note_attempt(
        db, client=client, kind="ivr_lookup", limit=limit, window=timedelta(minutes=15)
    )


@dataclass(frozen=True)
class WaitingCall:
    """A caller in the agents' queue, as the console's live queue shows them."""

    call_sid: str
    language: str
    queue: str
    enqueued_at: datetime
    path: str
    caller_kind: str
    masked_caller: str | None


# A call "waiting" longer than this lost its status callback (Twilio would have ended it): it
# is not shown as waiting for ever.
WAITING_HORIZON = timedelta(hours=2)


def waiting_calls(db: DbSession) -> list[WaitingCall]:
    """Calls in the agents' queue now (entered, not yet answered, left or hung up), the
    longest-waiting first."""
    vault = context(db).vault
    since = context(db).now() - WAITING_HORIZON
    rows = db.execute(
        select(Call)
        .where(
            Call.queue.is_not(None),
            Call.queue_result.is_(None),
            Call.ended_at.is_(None),
            Call.agent_staff_id.is_(None),
            Call.enqueued_at >= since,
        )
        .order_by(Call.enqueued_at, Call.id)
    ).scalars()
    return [
        WaitingCall(
            c.call_sid,
            c.language,
            str(c.queue),
            c.enqueued_at or c.started_at,
            c.path,
            c.caller_kind,
            mask_phone(vault.decrypt(c.caller_enc)) if c.caller_enc else None,
        )
        for c in rows
    ]


def my_open_call(db: DbSession, *, staff_id: int) -> str | None:
    """The call this agent has taken and not yet wrapped up (its CallSid), if any."""
    return db.execute(
        select(Call.call_sid)
        .where(Call.agent_staff_id == staff_id, Call.wrapped_at.is_(None))
        .order_by(Call.answered_at.desc())
        .limit(1)
    ).scalar_one_or_none()


# --- the supervisor's wallboard -------------------------------------------------------------

SERVICE_LEVEL_SECONDS = 20


@dataclass(frozen=True)
class QueueFigures:
    """One period's queue: offered, connected, abandoned, and the derived rates."""

    offered: int
    connected: int
    abandoned: int
    within_target: int
    answer_seconds: list[float]

    @property
    def service_level(self) -> float | None:
        """Share answered within the target of those answered or abandoned."""
        settled = self.connected + self.abandoned
        return self.within_target / settled if settled else None

    @property
    def abandon_rate(self) -> float | None:
        settled = self.connected + self.abandoned
        return self.abandoned / settled if settled else None

    @property
    def average_speed_of_answer(self) -> float | None:
        return sum(self.answer_seconds) / len(self.answer_seconds) if self.answer_seconds else None


@dataclass(frozen=True)
class Wallboard:
    day: date
    waiting: int
    longest_wait_seconds: float | None
    today: QueueFigures
    by_hour: dict[int, QueueFigures]
    average_handling_seconds: float | None
    calls: int
    self_served: int

    @property
    def self_service_rate(self) -> float | None:
        """Calls that ended without a person (booked, or checked/moved/cancelled/FAQ)."""
        return self.self_served / self.calls if self.calls else None


def _events_by_kind(
    db: DbSession, start: datetime, end: datetime
) -> dict[str, dict[int, datetime]]:
    """The call-event log of a period: for each kind, when each call had it (once per call)."""
    by_kind: dict[str, dict[int, datetime]] = {}
    for call_id, kind, at in db.execute(
        select(CallEvent.call_id, CallEvent.kind, CallEvent.at).where(
            CallEvent.at >= start, CallEvent.at < end
        )
    ):
        by_kind.setdefault(kind, {})[call_id] = at
    return by_kind


def _figures(
    entered: dict[int, datetime], connected: dict[int, datetime], abandoned: set[int]
) -> QueueFigures:
    waits = [(connected[c] - entered[c]).total_seconds() for c in connected if c in entered]
    return QueueFigures(
        offered=len(entered),
        connected=len(connected),
        abandoned=len(abandoned),
        within_target=sum(1 for w in waits if w <= SERVICE_LEVEL_SECONDS),
        answer_seconds=waits,
    )


def wallboard(db: DbSession, *, day: date | None = None) -> Wallboard:
    """Today's figures (Tokyo time), and by hour, from the call-event log."""
    now = context(db).now()
    day = day or now.astimezone(TOKYO).date()
    start = datetime.combine(day, datetime.min.time(), TOKYO)
    end = start + timedelta(days=1)
    by_kind = _events_by_kind(db, start, end)
    entered = by_kind.get("entered_queue", {})
    connected = by_kind.get("connected", {})
    abandoned = set(by_kind.get("abandoned", {}))
    hours: dict[int, QueueFigures] = {}
    for hour in sorted({at.astimezone(TOKYO).hour for at in entered.values()}):
        in_hour = {c: at for c, at in entered.items() if at.astimezone(TOKYO).hour == hour}
        hours[hour] = _figures(
            in_hour,
            {c: at for c, at in connected.items() if c in in_hour},
            {c for c in abandoned if c in in_hour},
        )
    waiting = waiting_calls(db)
    handled = db.execute(
        select(Call.answered_at, Call.wrapped_at).where(
            Call.answered_at >= start, Call.answered_at < end, Call.wrapped_at.is_not(None)
        )
    ).all()
    handling = [(w - a).total_seconds() for a, w in handled if a and w]
    started = by_kind.get("started", {})
    served = 0
    if started:
        served = int(
            db.execute(
                select(func.count())
                .select_from(Call)
                .where(Call.id.in_(list(started)), Call.outcome.in_(("booked", "self_served")))
            ).scalar_one()
        )
    return Wallboard(
        day=day,
        waiting=len(waiting),
        longest_wait_seconds=max(
            ((now - w.enqueued_at).total_seconds() for w in waiting), default=None
        ),
        today=_figures(entered, connected, abandoned),
        by_hour=hours,
        average_handling_seconds=sum(handling) / len(handling) if handling else None,
        calls=len(started),
        self_served=served,
    )


@dataclass(frozen=True)
class CallPeriod:
    """A period's calls, for the monthly report: received, served by the IVR alone, the queue's
    figures, and calls received by hour of the day (Tokyo)."""

    received: int
    self_served: int
    callbacks_requested: int
    queue: QueueFigures
    by_hour: dict[int, int]

    @property
    def self_service_rate(self) -> float | None:
        return self.self_served / self.received if self.received else None


def calls_between(db: DbSession, *, start: datetime, end: datetime) -> CallPeriod:
    """Calls that began from ``start`` to before ``end``, from the call-event log; the queue's
    figures count what entered it in the period."""
    by_kind = _events_by_kind(db, start, end)
    started = by_kind.get("started", {})
    entered = by_kind.get("entered_queue", {})
    outcomes: dict[str, int] = {}
    if started:
        ids = list(started)
        for first in range(0, len(ids), 1000):
            for outcome, count in db.execute(
                select(Call.outcome, func.count())
                .where(Call.id.in_(ids[first : first + 1000]))
                .group_by(Call.outcome)
            ):
                outcomes[outcome] = outcomes.get(outcome, 0) + int(count)
    hours: dict[int, int] = {}
    for at in started.values():
        hour = at.astimezone(TOKYO).hour
        hours[hour] = hours.get(hour, 0) + 1
    # From the callback list itself: a caller who was queued for a person and then chose a
    # callback keeps the outcome "handed to an agent", and the ward's own callbacks (a notice
    # that reached no one) have no call at all.
    callbacks = db.execute(
        select(func.count())
        .select_from(CallbackRequest)
        .where(CallbackRequest.requested_at >= start, CallbackRequest.requested_at < end)
    ).scalar_one()
    return CallPeriod(
        received=len(started),
        self_served=outcomes.get("booked", 0) + outcomes.get("self_served", 0),
        callbacks_requested=int(callbacks),
        queue=_figures(
            entered,
            {c: at for c, at in by_kind.get("connected", {}).items() if c in entered},
            {c for c in by_kind.get("abandoned", {}) if c in entered},
        ),
        by_hour=dict(sorted(hours.items())),
    )


# --- frequently asked questions ------------------------------------------------------------

MAX_FAQ_ON_THE_LINE = 8  # keys 1-8 on the phone; 9 is the way back, 0 a person


@dataclass(frozen=True)
class Faq:
    id: str
    sort_order: int
    title_ja: str
    title_en: str
    answer_ja: str
    answer_en: str

    def title(self, language: str) -> str:
        return self.title_ja if language == "ja" else self.title_en

    def answer(self, language: str) -> str:
        return self.answer_ja if language == "ja" else self.answer_en


def faq_entries(db: DbSession, *, query: str = "") -> list[Faq]:
    """The active answers in order (the IVR speaks the first eight); ``query`` filters by a
    word in the title or answer, in either language."""
    rows = db.execute(
        select(FaqEntry).where(FaqEntry.active.is_(True)).order_by(FaqEntry.sort_order, FaqEntry.id)
    ).scalars()
    entries = [
        Faq(r.id, r.sort_order, r.title_ja, r.title_en, r.answer_ja, r.answer_en) for r in rows
    ]
    words = query.strip().lower().split()
    if words:
        entries = [
            e
            for e in entries
            if all(
                w in (e.title_ja + e.title_en + e.answer_ja + e.answer_en).lower() for w in words
            )
        ]
    return entries


def update_faq(
    db: DbSession, *, faq_id: str, title_ja: str, title_en: str, answer_ja: str, answer_en: str
) -> None:
    """A supervisor's edit: what agents read and the IVR speaks from the next call on."""
    fields = [title_ja.strip(), title_en.strip(), answer_ja.strip(), answer_en.strip()]
    if not all(fields):
        raise ValueError("every field is needed: both titles and both answers")
    result = db.execute(
        update(FaqEntry)
        .where(FaqEntry.id == faq_id)
        .values(
            title_ja=fields[0],
            title_en=fields[1],
            answer_ja=fields[2],
            answer_en=fields[3],
            updated_at=context(db).now(),
        )
    )
    if not getattr(result, "rowcount", 0):
        raise ValueError("no such question")


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
