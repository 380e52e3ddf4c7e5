"""The dialogue of the phone line: what is said at each step and what each key does.

Each step has an ``ask`` (the question, inside a ``<Gather>``) and an ``answer`` (what the keys
pressed do). The route hands a step the caller's keys; the step says things and asks the next
question. A key that is not one of the choices, or silence, asks again; the third miss in a row
goes to a person. ``*`` repeats any question.

Everything the caller hears comes from the prompt catalogues (``ivr/prompts/<language>.toml``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

import jpholiday
from babel import Locale
from sqlalchemy.orm import Session as DbSession
from twilio.twiml.voice_response import Gather, Start, Stop, VoiceResponse

from booking import codes, lottery
from booking import service as booking
from booking.context import TOKYO, context
from booking.eras import from_era
from booking.errors import BookingError
from booking.errors import catalogue as error_catalogue
from booking.languages import ALL as ALL_LANGUAGES
from booking.languages import EVERY
from booking.languages import info as language_info
from booking.localized import name_of, text_of
from booking.personal import check_birth_date, normalise_notice_number, parse_phone
from booking.service import MemberInput, ResidentInput
from booking.views import BookingView
from ivr import service as calls
from ivr.models import Call
from ivr.placed import PlacedCall
from ivr.recognition import grammar_for
from ivr.service import Caller, CallState
from ivr.speech import say_clock, say_date, say_digits, say_notice, say_phone, say_when
from ivr.wait_estimate import LONGEST_MINUTES, spoken_minutes

# The languages the line can speak (booking/languages.py: those with a Twilio <Say> language);
# which of them a call is offered is the ward's configuration (LineConfig.languages).
LANGUAGES = tuple(language.code for language in ALL_LANGUAGES if language.say)
SAY_LANGUAGE: dict[str, str] = {lang.code: lang.say for lang in ALL_LANGUAGES if lang.say}
# The key that switches the line to a language from the main menu (and back to Japanese), in
# the order the greeting offers them; each offer is said in its own language.
LANGUAGE_KEYS = {"9": "en", "8": "ko", "7": "zh", "6": "easy"}
# Voices where settings name none: Twilio's Amazon Polly voice for Mandarin ("cmn-CN"), and
# Japanese's own for やさしい日本語.
DEFAULT_VOICES = {"zh": "Polly.Zhiyu"}
# やさしい日本語 is said more slowly (SSML <prosody>, which Twilio's Polly voices read).
SLOWER = {"easy": "85%"}
# Whose words a language borrows where a table of the line's has none of its own (the era
# names, the FAQ's two languages): やさしい日本語 reads the Japanese ones.
BORROWS = {"easy": "ja"}
# A reading in brackets after kanji, as the ward writes its やさしい日本語 (四谷(よつや)): for the
# eye; read aloud, the place would be said twice.
READING = re.compile(r"\([ぁ-ゖー]+\)")
MAX_MISSES = 3
MENU_TIMEOUT = 8  # seconds of silence before "we did not hear a key": generous, for elderly callers
ENTRY_TIMEOUT = 10
MAX_OFFERS_TRIED = 20  # times tried in one search before saying nothing is free


@cache
def catalogue(language: str) -> dict[str, str | dict[str, str]]:
    """A language's prompts. A prompt that depends on a number is a table of the language's
    plural forms (CLDR: "one", "other"...), as Babel names them; a language without them has
    "other" alone."""
    text = files("ivr").joinpath("prompts", f"{language}.toml").read_text(encoding="utf-8")
    return {
        k: {form: str(t) for form, t in v.items()} if isinstance(v, dict) else str(v)
        for k, v in tomllib.loads(text).items()
    }


def prompt(language: str, key: str, **params: Any) -> str:
    """A prompt in ``language``; one with plural forms takes the form for ``count``."""
    found = catalogue(language)[key]
    if isinstance(found, dict):
        form = _plural_form(language)(params["count"])
        found = found.get(form, found["other"])
    return found.format(**params)


@cache
def _plural_form(language: str) -> Callable[[float], str]:
    """The language's CLDR plural rule (parsing the locale costs more than the prompt)."""
    rule: Callable[[float], str] = Locale.parse(language_info(language).babel).plural_form
    return rule


def people(language: str, count: int) -> str:
    """ "1 person", "3 people", "3人": a party as the language says it."""
    return prompt(language, "people", count=count)


@dataclass(frozen=True)
class LineConfig:
    """What the dialogue needs from settings."""

    public_base_url: str
    voices: dict[str, str]
    opens: time
    closes: time
    lookups_per_15_minutes: int
    # The ward's number, shown to residents the ward calls (callbacks).
    ward_number: str = ""
    # Whether booking confirmations go out by SMS (the reminders pipeline): only then does the
    # line promise a text message.
    sms_confirmations: bool = False
    # Languages with a speech model: their questions also listen (Twilio Media Streams).
    speech: frozenset[str] = frozenset()
    # Days after the visit (or the cancellation, or the call) that personal data is kept
    # (MADOGUCHI_RETENTION_DAYS, applied by config.retention): what callers are told.
    retention_days: int = 30
    # The ward's languages on the phone (MADOGUCHI_LANGUAGES): the greeting offers these.
    languages: tuple[str, ...] = EVERY.on("phone")
    # The wait estimate past which the queue offers a callback that keeps the caller's place
    # (MADOGUCHI_CALLBACK_OFFER_MINUTES).
    callback_offer_minutes: int = 5

    def voice(self, language: str) -> str:
        """The <Say> voice for a language: the setting's, else the line's default for it
        (やさしい日本語 speaks with the Japanese voice)."""
        found = self.voices.get(language) or DEFAULT_VOICES.get(language)
        return found or self.voices[BORROWS.get(language, "ja")]

    def offers(self, language: str) -> bool:
        return language in self.languages

    @property
    def stream_url(self) -> str:
        """Where Twilio streams a caller's audio: this app's /ivr/stream over WebSocket."""
        base = self.public_base_url.rstrip("/")
        return base.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/ivr/stream"


def say_in(parent: VoiceResponse | Gather, language: str, text: str, config: LineConfig) -> None:
    """A <Say> in the language's Twilio language and voice; slower where the language asks."""
    rate = SLOWER.get(language)
    if rate is None:
        parent.say(text, language=SAY_LANGUAGE[language], voice=config.voice(language))
        return
    said = parent.say(language=SAY_LANGUAGE[language], voice=config.voice(language))
    said.prosody(text, rate=rate)


def say_refusal(turn: Turn, key: str, error: BookingError) -> None:
    """Say why the engine said no: inside ``key`` where its message is in the caller's
    language (or, for やさしい日本語, in Japanese), else after it in English, in the English
    voice, never English words in another language's voice."""
    written = error_catalogue()[error.code]
    language = next((c for c in (turn.language, borrowed(turn.language)) if c in written), None)
    if language is not None:
        turn.say(key, reason=error.message(language))
        return
    turn.say(key, reason="")
    turn.pending.append(("en", error.message("en")))


def borrowed(language: str) -> str:
    """The language whose words stand in for ``language``'s in the line's own tables."""
    return BORROWS.get(language, language)


def spoken(text: str) -> str:
    """The ward's words as the voice reads them: without the readings in brackets."""
    return READING.sub("", text)


class StateLost(RuntimeError):
    """A step found the call's state without what it needs (a bug, or a webhook out of order):
    the route apologises and offers a person."""


class Miss(Exception):
    """The keys pressed are not an answer to this step: say ``key`` and ask again."""

    def __init__(self, key: str = "wrong_key") -> None:
        super().__init__(key)
        self.key = key


class Turn:
    """One webhook's work: the call, its state, and the reply being built."""

    def __init__(
        self,
        db: DbSession,
        call: Call,
        state: CallState,
        caller: Caller | Callable[[], Caller],
        config: LineConfig,
    ) -> None:
        self.db = db
        self.call = call
        self.state = state
        self._caller = caller
        self.config = config
        self.reply = VoiceResponse()
        self.pending: list[tuple[str, str]] = []  # (language, text) not yet put in the reply
        self.next_seq = call.seq + 1
        self.finished = False

    @property
    def caller(self) -> Caller:
        """The calling number, decrypted and parsed the first time a step asks for it (most
        steps never do)."""
        if callable(self._caller):
            self._caller = self._caller()
        return self._caller

    @property
    def language(self) -> str:
        return self.state.language

    def now(self) -> datetime:
        return context(self.db).now()

    # --- building the reply ---------------------------------------------------------------

    def say(self, key: str, *, language: str | None = None, **params: Any) -> None:
        """Say a catalogue entry: inside the next question's <Gather> (a caller who knows the
        menu may press a key at once), or on its own if no question follows."""
        lang = language or self.language
        self.pending.append((lang, prompt(lang, key, **params)))

    def flush(self) -> None:
        """Say what is pending now, where no key can cut it short (the booking code)."""
        for lang, text in self.pending:
            say_in(self.reply, lang, text, self.config)
            self.reply.pause(length=1)
        self.pending.clear()

    def url(self, path: str, **query: Any) -> str:
        base = self.config.public_base_url.rstrip("/")
        return f"{base}{path}" + (f"?{urlencode(query)}" if query else "")

    def gather(
        self,
        step: str,
        *,
        num_digits: int | None = None,
        finish_on_key: str = "#",
        timeout: int = MENU_TIMEOUT,
        choices: list[str] | None = None,
    ) -> None:
        """Ask: the pending prompts inside a <Gather> whose answer comes back to ``step``.
        ``choices``: the names of numbered choices, which may be said instead (venues)."""
        options: dict[str, Any] = {
            "input": "dtmf",
            "action": self.url(f"/ivr/step/{step}", n=self.next_seq),
            "method": "POST",
            "timeout": timeout,
            "finish_on_key": finish_on_key,
            "action_on_empty_result": True,
        }
        if num_digits is not None:
            options["num_digits"] = num_digits
        self._listen(step, choices or [])
        gathering = Gather(**options)
        for lang, text in self.pending:
            say_in(gathering, lang, text, self.config)
            gathering.pause(length=1)
        self.pending.clear()
        self.reply.append(gathering)
        self.call.expect = step
        self.finished = True

    def _listen(self, step: str, choices: list[str]) -> None:
        """Where the caller's language has a speech model and the question a grammar, stream
        the caller's audio to /ivr/stream while it is asked: the answer may be spoken. The
        stream of the last question stops first."""
        self._stop_listening()
        if self.language not in self.config.speech or grammar_for(step, self.language) is None:
            return
        name = f"speech-{self.next_seq}"
        start = Start()
        stream = start.stream(name=name, url=self.config.stream_url, track="inbound_track")
        for key, value in (("step", step), ("n", str(self.next_seq)), ("lang", self.language)):
            stream.parameter(name=key, value=value)
        if choices:  # public names only (venues): never anything the caller keyed
            stream.parameter(name="choices", value="|".join(c.replace("|", " ") for c in choices))
        self.reply.append(start)
        self.state.stream = name

    def _stop_listening(self) -> None:
        if self.state.stream is None:
            return
        stop = Stop()
        stop.stream(name=self.state.stream)
        self.reply.verbs.insert(0, stop)  # before anything is said: the question has changed
        self.state.stream = None

    def hang_up(self, farewell: str | None = "goodbye") -> None:
        """Say ``farewell`` (if any) where nothing cuts it short, and end the call."""
        self._stop_listening()
        if farewell is not None:
            self.say(farewell)
        self.flush()
        self.reply.hangup()
        self.call.expect = "ended"
        self.finished = True

    def enqueue(self) -> None:
        """Into the agents' queue for the caller's language; the wait loop tells the place in
        line and offers a callback instead."""
        self._stop_listening()
        self.flush()
        queue = f"madoguchi-{self.language}"
        self.reply.enqueue(
            queue,
            action=self.url("/ivr/step/queue_done", n=self.next_seq),
            method="POST",
            wait_url=self.url("/ivr/wait"),
            wait_url_method="POST",
        )
        self.call.queue = queue
        self.call.queue_result = None
        self.call.enqueued_at = self.now()
        calls.note_event(self.db, self.call, "entered_queue")
        self.call.expect = "queue_done"
        self.finished = True

    def ask(self, step: str) -> None:
        if step in PERSONAL and not self.state.purpose_told:
            tell_purpose(self)
        STEPS[step].ask(self)

    def miss(self, step: str, key: str) -> None:
        """A wrong key or silence: say so and ask again; the third in a row goes to a person."""
        self.state.misses += 1
        calls.note_step(self.call, f"{step}!")
        self.say(key)
        if self.state.misses >= MAX_MISSES:
            self.say("too_many_misses")
            hand_over(self)
            return
        self.ask(step)


# --- steps -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    ask: Callable[[Turn], None]
    answer: Callable[[Turn, str], None]
    choice: bool  # a menu of single keys (the key is noted in the call's path)
    agent_key: bool = True  # 0 goes to a person (not where 0 is a digit or a choice)


def answer(turn: Turn, step_name: str, digits: str) -> None:
    """The caller's keys for ``step_name``: repeat, miss, or the step's own answer."""
    step = STEPS[step_name]
    if step_name in SURVEY_STEPS:  # optional: silence or any other key ends it, no miss loop
        calls.note_step(turn.call, step_name)
        step.answer(turn, digits)
        return
    if digits == "":
        turn.miss(step_name, "no_input")
        return
    if "*" in digits:
        calls.note_step(turn.call, f"{step_name}=*")
        turn.ask(step_name)
        return
    calls.note_step(turn.call, f"{step_name}={digits}" if step.choice else step_name)
    if step.agent_key and digits == "0":
        release_offer(turn)
        hand_over(turn)
        return
    try:
        step.answer(turn, digits)
    except Miss as missed:
        turn.miss(step_name, missed.key)
        return
    turn.state.misses = 0


def answer_by_voice(turn: Turn, step_name: str, seq: int) -> None:
    """The answer the media stream heard for this question, taken as the keys it stands for;
    an unclear one asks again (the caller may press keys instead)."""
    state = turn.state
    keys = state.heard if state.heard_for == f"{step_name}:{seq}" else None
    state.heard, state.heard_for = None, None
    calls.note_step(turn.call, "voice")
    if keys is None:
        turn.miss(step_name, "speech_unclear")
        return
    answer(turn, step_name, keys)


# Questions that ask for personal data: before the first of them in a call, the caller hears
# what it is for, how long it is kept and who handles it.
PERSONAL = frozenset(
    {"notice_head", "birth", "phone_caller", "phone_entry", "manage_birth", "callback_phone"}
)


def tell_purpose(turn: Turn) -> None:
    """Once a call, before the first personal question: what the details are for, that they
    are erased MADOGUCHI_RETENTION_DAYS after the visit (or the cancellation, or the call:
    config.retention), and who handles them. Nothing cuts it short."""
    turn.state.purpose_told = True
    handler = ward_name(turn) or prompt(turn.language, "purpose_handler")
    turn.say("purpose", handler=handler, days=turn.config.retention_days)
    turn.flush()


def ward_name(turn: Turn, language: str | None = None) -> str:
    """The ward's name in the language ('' until the ward's file gives one)."""
    return spoken(booking.ward_info(turn.db).text("name", language or turn.language))


def say_with_ward(turn: Turn, key: str) -> None:
    """A prompt that names the ward (``key``_ward), or the plain one where it has no name."""
    ward = ward_name(turn)
    if ward:
        turn.say(f"{key}_ward", ward=ward)
    else:
        turn.say(key)


def greet(turn: Turn) -> None:
    """A new call: the greeting (who answers: the ward), the way to English, the main menu."""
    say_with_ward(turn, "greeting")
    # Each catalogue's "english" is its offer of itself (the Korean one: Korean, key 8).
    for language in LANGUAGE_KEYS.values():
        if turn.config.offers(language):
            turn.say("english", language=language)
    hint_speech(turn)
    turn.ask("menu")


def hint_speech(turn: Turn) -> None:
    """Where the caller's language takes speech, say once that answers may be spoken."""
    if turn.language in turn.config.speech:
        turn.say("speech_hint")


# a reminder call we placed (the resident is the one called)


def spoken_language(language: str, config: LineConfig) -> str:
    """The language of a call the ward places: the resident's, where the line speaks it; else
    やさしい日本語, made for residents whose own language the ward cannot offer (Vietnamese,
    Nepali: no Twilio voice), where the ward offers it on the phone; else Japanese."""
    if language in LANGUAGES and config.offers(language):
        return language
    return "easy" if config.offers("easy") else "ja"


def remind(turn: Turn, about: PlacedCall | None) -> None:
    """Open a reminder call: the booking read out, keep it (1), cancel it (2), a person (0)."""
    calls.note_step(turn.call, "reminder")
    if about is None:
        turn.hang_up(None)
        return
    turn.state.language = spoken_language(about.language, turn.config)
    turn.state.booking_id = about.booking_id
    if about.waitlist_entry_id is not None and about.kind == "lottery_lost":
        tell_lottery_lost(turn, about.waitlist_entry_id)
        return
    if about.waitlist_entry_id is not None:
        offer_from_waitlist(turn, about.waitlist_entry_id)
        return
    if about.kind == "relocated":
        say_with_ward(turn, "relocated_intro")
        turn.ask("relocated")
        return
    say_with_ward(turn, "drawn_intro" if about.kind == "drawn" else "reminder_intro")
    turn.ask("reminder")


def ask_reminder(turn: Turn) -> None:
    if not _changeable(turn):
        turn.say("reminder_gone")
        turn.hang_up()
        return
    found = booking.get_booking(turn.db, booking_id=int(turn.state.booking_id or 0))
    say_booking(turn, found)
    turn.say("reminder_keys")
    turn.gather("reminder", num_digits=1)


def answer_reminder(turn: Turn, digits: str) -> None:
    if digits == "1":
        calls.set_outcome(turn.call, "self_served")
        turn.say("reminder_kept")
        turn.hang_up()
    elif digits == "2" and _changeable(turn):
        turn.ask("cancel_check")
    else:
        raise Miss


def ask_relocated(turn: Turn) -> None:
    if not _changeable(turn):
        turn.say("reminder_gone")
        turn.hang_up()
        return
    say_booking(turn, booking.get_booking(turn.db, booking_id=int(turn.state.booking_id or 0)))
    turn.say("relocated_keys")
    turn.gather("relocated", num_digits=1)


def answer_relocated(turn: Turn, digits: str) -> None:
    if digits == "1":
        calls.set_outcome(turn.call, "self_served")
        turn.say("relocated_accepted")
        turn.hang_up()
    elif digits == "2":
        hand_over(turn)
    else:
        raise Miss


# main menu


def ask_menu(turn: Turn) -> None:
    turn.say("menu")
    if calls.may_text(turn.caller):  # only to a mobile: the link goes by SMS
        turn.say("menu_link")
    turn.gather("menu", num_digits=1)


def answer_menu(turn: Turn, digits: str) -> None:
    if digits == "1":
        turn.state.forget_booking()
        turn.ask("book_service")
    elif digits == "2":
        turn.ask("manage_code")
    elif digits == "3":
        turn.ask("faq")
    elif digits in LANGUAGE_KEYS and turn.config.offers(LANGUAGE_KEYS[digits]):
        wanted = LANGUAGE_KEYS[digits]
        turn.state.language = wanted if turn.language != wanted else "ja"
        turn.call.language = turn.state.language
        hint_speech(turn)
        turn.ask("menu")
    elif digits == "4" and calls.may_text(turn.caller):
        text_link(turn)
    else:
        raise Miss


def text_link(turn: Turn) -> None:
    """Text-a-link from the menu: the web booking's link by SMS, and goodbye. One link per
    number an hour (a spoofed caller ID must not bomb someone with texts): said kindly."""
    if not calls.note_link_attempt(turn.db, call=turn.call):
        turn.say("link_refused")
        turn.ask("menu")
        return
    calls.request_link(turn.db, call=turn.call)
    turn.hang_up("link_sent")


def back_to_menu(turn: Turn) -> None:
    turn.say("back_to_menu")
    turn.ask("menu")


# a new booking: service, party, venue


def _services(turn: Turn) -> list[Any]:
    return booking.list_services(turn.db)


def named(thing: Any, language: str) -> str:
    """A venue's or a service's name in the caller's language, from the ward's file (a
    language without one falls back to English: a Korean voice cannot read kanji; やさしい日本語
    to the Japanese one), without the readings written for the eye."""
    return spoken(name_of(thing, language))


def ask_service(turn: Turn) -> None:
    turn.say("service_intro")
    for i, service in enumerate(_services(turn), start=1):
        turn.say("service_option", name=named(service, turn.language), press=i)
    turn.gather("book_service", num_digits=1)


def answer_service(turn: Turn, digits: str) -> None:
    services = _services(turn)
    if not digits.isdigit() or not 1 <= int(digits) <= len(services):
        raise Miss
    turn.state.service = services[int(digits) - 1].id
    open_now = lottery.lotteries(turn.db, accepting_only=True)
    turn.state.lottery = next((x.id for x in open_now if x.service_id == turn.state.service), None)
    turn.ask("book_party" if turn.state.lottery is None else "lottery_choice")


def ask_party(turn: Turn) -> None:
    turn.say("party", max=context(turn.db).rules.max_party_size)
    turn.gather("book_party", num_digits=1)


def answer_party(turn: Turn, digits: str) -> None:
    if not digits.isdigit() or not 1 <= int(digits) <= context(turn.db).rules.max_party_size:
        raise Miss
    turn.state.party = int(digits)
    turn.ask("lottery_time" if turn.state.mode == "lottery" else "book_venue")


def _venues(turn: Turn) -> list[Any]:
    return booking.list_venues(turn.db, service_id=turn.state.service)


def ask_venue(turn: Turn) -> None:
    """Every venue by its number, as one sentence without pauses between them (eleven venues
    with a second's pause each was a long wait); all of it inside the question, so a caller who
    knows the number keys it at once, as the intro says."""
    turn.say("venue_intro")
    turn.say("venue_anywhere")
    names = [named(venue, turn.language) for venue in _venues(turn)]
    options = [
        prompt(turn.language, "venue_option", name=name, press=i)
        for i, name in enumerate(names, start=1)
    ]
    turn.pending.append((turn.language, " ".join(options)))
    turn.gather("book_venue", timeout=ENTRY_TIMEOUT, choices=names)


def answer_venue(turn: Turn, digits: str) -> None:
    venues = _venues(turn)
    if not digits.isdigit() or not 0 <= int(digits) <= len(venues):
        raise Miss
    turn.state.venue = None if int(digits) == 0 else venues[int(digits) - 1].id
    turn.state.seen, turn.state.after = [], None
    turn.say("searching")
    offer_next(turn)


# offering times, one at a time, each held while the caller decides


def release_offer(turn: Turn) -> None:
    """Give back the seats being offered (the caller moved on); a lapsed hold is fine."""
    if turn.state.hold:
        try:
            with turn.db.begin_nested():
                booking.release_hold(turn.db, hold_id=turn.state.hold)
        except BookingError:
            pass
    turn.state.hold = None


# The refusals of a day not released yet (booking.release): the caller hears when it opens.
NOT_OPEN = ("not_yet_open", "not_yet_announced")


def offer_next(turn: Turn) -> None:
    """Hold and offer the earliest free time after the last one offered."""
    state = turn.state
    if state.service is None:
        raise StateLost
    after = state.after_time
    start = after.astimezone(TOKYO).date() if after else None
    try:
        slots = booking.availability(
            turn.db,
            service_id=state.service,
            venue_id=state.venue,
            start=start,
            party=state.party,
            limit=MAX_OFFERS_TRIED + len(state.seen),
            channel="ivr",
        )
    except BookingError:
        slots = []
    tried = 0
    not_open: BookingError | None = None  # the days asked for are not released yet
    for slot in slots:
        if slot.id in state.seen or (after is not None and slot.starts_at < after):
            continue
        if tried >= MAX_OFFERS_TRIED:
            break
        tried += 1
        try:
            with turn.db.begin_nested():
                hold = booking.create_hold(
                    turn.db, slot_id=slot.id, seats=state.party, channel="ivr"
                )
        except BookingError as error:
            state.seen.append(slot.id)  # taken meanwhile: the next one
            if error.code in NOT_OPEN:
                not_open = not_open or error
            continue
        state.offered, state.hold, state.after = slot.id, hold.id, slot.starts_at.isoformat()
        turn.ask("offer")
        return
    state.offered = None
    if not_open is not None:  # say when those days open (staged release)
        say_refusal(turn, "offer_not_open", not_open)
    else:
        turn.say("offer_none")
    turn.ask("offer_none")


def _offered_time(turn: Turn) -> tuple[datetime, str, bool]:
    """The time on offer: when, the venue's name, and whether the hold still keeps it."""
    if turn.state.hold is None:
        raise StateLost
    held = booking.get_hold(turn.db, hold_id=turn.state.hold)
    venue = booking.venue_or_404(turn.db, held.venue_id)
    return held.starts_at, named(venue, turn.language), held.live


def ask_offer(turn: Turn) -> None:
    try:
        starts, venue, _ = _offered_time(turn)
    except BookingError:  # the hold is gone (reclaimed after lapsing): look again
        turn.state.hold = None
        turn.say("offer_lapsed")
        offer_next(turn)
        return
    wanted = turn.state.wanted
    turn.state.wanted = None
    turn.state.full_day = None
    if wanted is not None and starts.astimezone(TOKYO).date() > date.fromisoformat(wanted):
        turn.say("offer_day_full", day=say_date(date.fromisoformat(wanted), turn.language))
        if _may_wait(turn):  # that day's waitlist: key 6, said after the offer's keys
            turn.state.full_day = wanted
    turn.say("offer", when=say_when(starts, turn.language), venue=venue)
    turn.say("offer_keys")
    if turn.state.full_day is not None:
        day = say_date(date.fromisoformat(turn.state.full_day), turn.language)
        turn.say("waitlist_join_key", day=day)
    turn.gather("offer", num_digits=1)


# Keys at an offer besides 1 (take it) and 2 (the next time): days to jump from the offered day.
JUMPS = {"3": 1, "4": 7}


def jump_to(turn: Turn, day: date) -> None:
    """Offer the earliest free time on ``day`` or after it (said so when ``day`` has none)."""
    release_offer(turn)
    turn.state.after = datetime.combine(day, time(0), TOKYO).isoformat()
    turn.state.wanted = day.isoformat()
    offer_next(turn)


def read_month_day(digits: str, today: date) -> date | None:
    """Four digits, month and day (0115: January 15), the next such date from today on."""
    if len(digits) != 4 or not digits.isascii() or not digits.isdigit():
        return None
    month, day = int(digits[:2]), int(digits[2:])
    for year in (today.year, today.year + 1):
        try:
            found = date(year, month, day)
        except ValueError:  # 0230, 1301; 0229 in a year without it: try the next year
            continue
        if found >= today:
            return found
    return None


def ask_offer_date(turn: Turn) -> None:
    turn.say("offer_date")
    turn.gather("offer_date", timeout=ENTRY_TIMEOUT)


def answer_offer_date(turn: Turn, digits: str) -> None:
    day = read_month_day(digits, context(turn.db).today())
    if day is None:
        raise Miss("offer_date_wrong")
    jump_to(turn, day)


def answer_offer(turn: Turn, digits: str) -> None:
    state = turn.state
    if digits in JUMPS:
        try:
            starts, _, _ = _offered_time(turn)
        except BookingError:
            starts = state.after_time or turn.now()
        jump_to(turn, starts.astimezone(TOKYO).date() + timedelta(days=JUMPS[digits]))
        return
    if digits == "5":
        release_offer(turn)
        turn.ask("offer_date")
        return
    if digits == "6" and state.full_day is not None:
        join_waitlist(turn)
        return
    if digits == "2":
        release_offer(turn)
        if state.offered is not None:
            state.seen.append(state.offered)
        offer_next(turn)
        return
    if digits != "1":
        raise Miss
    try:
        _, _, live = _offered_time(turn)
    except BookingError:
        live = False
    if not live:
        release_offer(turn)
        turn.say("offer_lapsed")
        offer_next(turn)
        return
    if state.mode == "move":
        move_to_offer(turn)
    else:
        next_detail(turn)


def ask_offer_none(turn: Turn) -> None:
    turn.say("offer_none_keys")
    turn.gather("offer_none", num_digits=1)


def answer_offer_none(turn: Turn, digits: str) -> None:
    if digits == "1":
        turn.state.mode = "book" if turn.state.booking_id is None else turn.state.mode
        turn.ask("book_venue")
    elif digits == "9":
        back_to_menu(turn)
    else:
        raise Miss


# the details: notice numbers, birth date, contact number


def _needs_notices(turn: Turn) -> bool:
    if turn.state.service is None:
        raise StateLost
    if turn.state.mode == "lottery":  # one application per notice number: each person's
        return True
    return bool(booking.service_or_404(turn.db, turn.state.service).requires_notice_number)


def next_detail(turn: Turn) -> None:
    """Ask for the first detail still missing; all there: read the booking back."""
    state = turn.state
    if _needs_notices(turn) and len(state.notices) < state.party:
        turn.ask("notice_head")
    elif state.birth is None:
        turn.ask("birth")
    elif state.phone is None:
        turn.ask("phone_caller" if turn.caller.e164 else "phone_entry")
    else:
        if state.mode == "lottery":
            turn.ask("lottery_confirm")
        else:
            turn.ask("waitlist_confirm" if state.waitlist else "confirm")


# The first part of a notice number has letters: two keys each, the key and the letter's place on
# it (A = 2 1, B = 2 2, S = 7 4); a digit is the digit and 0.
KEYPAD = {
    "2": "ABC",
    "3": "DEF",
    "4": "GHI",
    "5": "JKL",
    "6": "MNO",
    "7": "PQRS",
    "8": "TUV",
    "9": "WXYZ",
}


def read_keypad_letters(keys: str) -> str | None:
    """ "212210" -> "AB1"; None if a pair names no character."""
    if len(keys) % 2 or not keys.isdigit():
        return None
    out = []
    for key, place in zip(keys[::2], keys[1::2], strict=True):
        if place == "0":
            out.append(key)
        elif key in KEYPAD and int(place) <= len(KEYPAD[key]):
            out.append(KEYPAD[key][int(place) - 1])
        else:
            return None
    return "".join(out)


def ask_notice_head(turn: Turn) -> None:
    n = len(turn.state.notices) + 1
    turn.say("notice_head_first" if n == 1 else "notice_head", n=n)
    turn.gather("notice_head", num_digits=6, timeout=ENTRY_TIMEOUT)


def answer_notice_head(turn: Turn, digits: str) -> None:
    head = read_keypad_letters(digits)
    if head is None or len(head) != 3:
        raise Miss("notice_head_wrong")
    turn.state.notice_head = head
    turn.ask("notice_tail")


def ask_notice_tail(turn: Turn) -> None:
    turn.say("notice_tail")
    turn.gather("notice_tail", num_digits=6, timeout=ENTRY_TIMEOUT)


def answer_notice_tail(turn: Turn, digits: str) -> None:
    state = turn.state
    try:
        number = normalise_notice_number(f"{state.notice_head}-{digits}")
    except BookingError:
        number = ""
    if not number or number in state.notices:
        turn.say("notice_wrong")
        turn.ask("notice_head")
        return
    state.pending = number
    turn.ask("notice_check")


def ask_notice_check(turn: Turn) -> None:
    if turn.state.pending is None:
        raise StateLost
    turn.say("notice_check", notice=say_notice(turn.state.pending, turn.language))
    turn.gather("notice_check", num_digits=1)


def read_back(turn: Turn, digits: str, accept: Callable[[str], None], again: str) -> None:
    """The answer to "…, is that right?": 1 keeps the value read back, 2 asks for it again."""
    pending = turn.state.pending
    if digits == "1" and pending:
        turn.state.pending = None
        accept(pending)
    elif digits == "2":
        turn.state.pending = None
        turn.ask(again)
    else:
        raise Miss


def answer_notice_check(turn: Turn, digits: str) -> None:
    def accept(number: str) -> None:
        turn.state.notices.append(number)
        turn.state.notice_head = None
        next_detail(turn)

    turn.state.notice_head = None if digits == "2" else turn.state.notice_head
    read_back(turn, digits, accept, "notice_head")


ERAS = {"1": 1868, "2": 1912, "3": 1926, "4": 1989, "5": 2019}  # 明治 大正 昭和 平成 令和
ERA_KEYS = {"1": "meiji", "2": "taisho", "3": "showa", "4": "heisei", "5": "reiwa"}
ERA_NAMES = {
    "ja": {"1": "明治", "2": "大正", "3": "昭和", "4": "平成", "5": "令和"},
    "en": {"1": "Meiji", "2": "Taisho", "3": "Showa", "4": "Heisei", "5": "Reiwa"},
    "ko": {"1": "메이지", "2": "다이쇼", "3": "쇼와", "4": "헤이세이", "5": "레이와"},
    "zh": {"1": "明治", "2": "大正", "3": "昭和", "4": "平成", "5": "令和"},
}


def read_birth_date(digits: str, today: date) -> date | None:
    """Eight digits (19580401), or a Japanese era and six digits (3330401: 昭和33年4月1日)."""
    try:
        if len(digits) == 8:
            day = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        elif len(digits) == 7 and digits[0] in ERAS:
            # The web form's conversion: a date outside the era (平成32年) is no date.
            day = from_era(ERA_KEYS[digits[0]], int(digits[1:3]), int(digits[3:5]), int(digits[5:]))
        else:
            return None
        return check_birth_date(day, today)
    except (ValueError, BookingError):
        return None


def ask_birth(turn: Turn) -> None:
    turn.say("birth")
    turn.gather("birth", timeout=ENTRY_TIMEOUT)


def answer_birth(turn: Turn, digits: str) -> None:
    day = read_birth_date(digits, context(turn.db).today())
    if day is None:
        raise Miss("birth_wrong")
    turn.state.pending = day.isoformat()
    # Read back as it was keyed: a caller who thinks in 昭和 hears 昭和.
    turn.state.pending_era = digits[0] if len(digits) == 7 else None
    turn.ask("birth_check")


def say_birth(day: date, language: str, era: str | None = None) -> str:
    """A birth date as the caller keyed it: the Western year, or the era ("昭和33年")."""
    language = borrowed(language)
    if era in ERAS:
        name = ERA_NAMES[language][era]
        year = day.year - ERAS[era] + 1
        if language == "zh":  # the Western year too: the era is Japan's, not the caller's
            return f"{name}{year}年，{day.year}年{day.month}月{day.day}日"
        if language == "ja":
            return f"{name}{'元' if year == 1 else year}年{day.month}月{day.day}日"
        if language == "ko":
            return f"{name} {year}년 {day.month}월 {day.day}일"
        return say_date(day, language).split(", ", 1)[1] + f", {name} {year} ({day.year})"
    if language in ("ja", "zh"):
        return f"{day.year}年{day.month}月{day.day}日"
    if language == "ko":
        return f"{day.year}년 {day.month}월 {day.day}일"
    return say_date(day, language).split(", ", 1)[1] + f", {day.year}"


def ask_birth_check(turn: Turn) -> None:
    if turn.state.pending is None:
        raise StateLost
    day = date.fromisoformat(turn.state.pending)
    turn.say("birth_check", birth=say_birth(day, turn.language, turn.state.pending_era))
    turn.gather("birth_check", num_digits=1)


def answer_birth_check(turn: Turn, digits: str) -> None:
    def accept(day: str) -> None:
        turn.state.birth = day
        next_detail(turn)

    read_back(turn, digits, accept, "birth")


def ask_phone_caller(turn: Turn) -> None:
    if turn.caller.e164 is None:
        raise StateLost
    turn.say("phone_caller", phone=say_phone(turn.caller.e164, turn.language))
    turn.gather("phone_caller", num_digits=1)


def answer_phone_caller(turn: Turn, digits: str) -> None:
    if digits == "1" and turn.caller.e164:
        turn.state.phone = turn.caller.e164
        after_phone(turn)
    elif digits == "2":
        turn.ask("phone_entry")
    else:
        raise Miss


def ask_phone_entry(turn: Turn) -> None:
    turn.say("phone_entry")
    turn.gather("phone_entry", timeout=ENTRY_TIMEOUT)


def answer_phone_entry(turn: Turn, digits: str) -> None:
    try:
        phone = parse_phone(digits)
    except BookingError as error:
        raise Miss("phone_wrong") from error
    if not phone.e164.startswith("+81"):
        raise Miss("phone_wrong")
    turn.state.pending = phone.e164
    turn.ask("phone_check")


def ask_phone_check(turn: Turn) -> None:
    if turn.state.pending is None:
        raise StateLost
    turn.say("phone_check", phone=say_phone(turn.state.pending, turn.language))
    turn.gather("phone_check", num_digits=1)


def answer_phone_check(turn: Turn, digits: str) -> None:
    def accept(phone: str) -> None:
        turn.state.phone = phone
        after_phone(turn)

    read_back(turn, digits, accept, "phone_entry")


def after_phone(turn: Turn) -> None:
    """The number is for a booking's contact, or for a callback the caller asked for."""
    if turn.state.callback:
        callback_to(turn, str(turn.state.phone))
    else:
        next_detail(turn)


# confirming and booking


def _read_back(turn: Turn, key: str) -> None:
    state = turn.state
    if not (state.hold is not None and state.service is not None):
        raise StateLost
    starts, venue, _ = _offered_time(turn)
    service = booking.service_or_404(turn.db, state.service)
    turn.say(
        key,
        when=say_when(starts, turn.language),
        venue=venue,
        service=named(service, turn.language),
        people=people(turn.language, state.party),
    )


# The engine's answers meaning "the time on offer is gone": offer the next one instead.
LOST_OFFER = ("hold_expired", "hold_not_found", "slot_full", "slot_closed")


def offer_lost(turn: Turn) -> None:
    if turn.state.offered is not None:
        turn.state.seen.append(turn.state.offered)
    turn.state.hold = None
    turn.say("offer_taken")
    offer_next(turn)


def ask_confirm(turn: Turn) -> None:
    try:
        _read_back(turn, "confirm")
    except BookingError:
        turn.state.hold = None
        turn.say("offer_lapsed")
        offer_next(turn)
        return
    turn.say("confirm_keys")
    turn.gather("confirm", num_digits=1)


def _keyed_resident(phone: str, birth: str, state: CallState) -> ResidentInput:
    """What the caller keyed, as the engine takes a resident (a booking, an application, an
    offer taken): no name, since a keypad cannot spell one; staff add it if the counter needs it."""
    return ResidentInput(
        name_kana=None,
        phone=phone,
        birth_date=date.fromisoformat(birth),
        language=state.language,
        members=[MemberInput(notice_number=n) for n in state.notices],
    )


def answer_confirm(turn: Turn, digits: str) -> None:
    state = turn.state
    if digits == "9":
        release_offer(turn)
        turn.say("cancelled_booking_attempt")
        back_to_menu(turn)
        return
    if digits != "1":
        raise Miss
    if not (state.hold and state.phone and state.birth):
        raise StateLost
    resident = _keyed_resident(state.phone, state.birth, state)
    try:
        with turn.db.begin_nested():
            made = booking.book(
                turn.db,
                hold_id=state.hold,
                party=state.party,
                resident=resident,
                channel="ivr",
                # The hold is this call's own: a retried webhook finds the same booking.
                idempotency_key=f"ivr:{turn.call.call_sid}:{state.hold}",
            )
    except BookingError as error:
        if error.code in LOST_OFFER:
            offer_lost(turn)  # the details are kept: a new time goes straight to the read-back
            return
        if error.code == "card_not_ready" and not state.card_retried:
            card_not_ready(turn, int(error.params.get("n", 1)))
            return
        release_offer(turn)
        say_refusal(turn, "booking_refused", error)
        turn.ask("after_manage")
        return
    turn.call.booking_id = made.id
    calls.set_outcome(turn.call, "booked")
    code = made.code
    # What the caller keyed in is not needed any more; the booking keeps it, encrypted.
    state.forget_booking()
    state.code = code
    turn.say("booked")
    read_code(turn, code)
    say_visit(turn, made)
    if made.phone_line_type == "mobile" and turn.config.sms_confirmations:
        turn.say("sms_sent")
    turn.ask("after_booking")


def card_not_ready(turn: Turn, person: int) -> None:
    """A notice number whose card is not on the list at the venue (MADOGUCHI_READY_CARDS=
    refuse): perhaps mis-keyed, so that person's number and those after it are keyed again,
    the time still held; once only (a second refusal says why and ends the booking)."""
    state = turn.state
    state.card_retried = True
    state.notices = state.notices[: max(person - 1, 0)]
    state.notice_head = None
    turn.say("card_not_ready", n=person)
    next_detail(turn)


def say_visit(turn: Turn, made: BookingView) -> None:
    """What to bring and where to go, from the ward's file: each said where the file has it."""
    lang = turn.language
    service = booking.service_or_404(turn.db, made.service_id)
    venue = booking.venue_or_404(turn.db, made.venue_id)
    bring = spoken(text_of(service, "bring", lang))
    if bring:
        turn.say("visit_bring", bring=bring)
    address = spoken(text_of(venue, "address", lang))
    access = spoken(text_of(venue, "access", lang))
    if address:
        turn.say("visit_address", venue=named(venue, lang), address=address)
    if access:
        turn.say("visit_access", access=access)


def read_code(turn: Turn, code: str) -> None:
    """The code slowly, one digit at a time, in two groups of four, twice; nothing cuts it."""
    digits = say_digits(code, turn.language, group=4)
    turn.say("code_intro")
    turn.say("code", digits=digits)
    turn.say("code_again", digits=digits)
    turn.flush()


def ask_after_booking(turn: Turn) -> None:
    turn.say("after_booking")
    turn.gather("after_booking", num_digits=1)


def answer_after_booking(turn: Turn, digits: str) -> None:
    if digits == "1" and turn.state.code:
        read_code(turn, turn.state.code)
        turn.ask("after_booking")
    elif digits == "3" and turn.call.booking_id is not None:
        say_visit(turn, booking.get_booking(turn.db, booking_id=turn.call.booking_id))
        turn.ask("after_booking")
    elif digits == "2":
        turn.ask("menu")
    elif digits == "9":
        offer_survey(turn, "self_service")
    else:
        raise Miss


# check, move or cancel


def ask_manage_code(turn: Turn) -> None:
    turn.say("code_entry")
    turn.gather("manage_code", num_digits=8, timeout=ENTRY_TIMEOUT)


def answer_manage_code(turn: Turn, digits: str) -> None:
    if not codes.is_well_formed(digits):
        raise Miss("code_wrong")  # the check digit catches a slip of one key or a swap
    turn.state.code = digits
    if turn.caller.e164 and _find(turn, phone=turn.caller.e164):
        return
    turn.ask("manage_birth")


def _find(turn: Turn, *, phone: str | None = None, birth: date | None = None) -> bool:
    """Look the booking up by the code and a second factor; True when found (and shown)."""
    if not calls.note_lookup(turn.db, call=turn.call, limit=turn.config.lookups_per_15_minutes):
        turn.say("too_many_lookups")
        hand_over(turn)
        return True
    try:
        found = booking.find_booking(
            turn.db, code=str(turn.state.code), phone=phone, birth_date=birth
        )
    except BookingError:
        return False
    turn.state.booking_id = found.id
    turn.ask("manage")
    return True


def ask_manage_birth(turn: Turn) -> None:
    turn.say("manage_birth")
    turn.gather("manage_birth", timeout=ENTRY_TIMEOUT)


def answer_manage_birth(turn: Turn, digits: str) -> None:
    day = read_birth_date(digits, context(turn.db).today())
    if day is None:
        raise Miss("birth_wrong")
    if _find(turn, birth=day):
        return
    turn.state.lookups += 1
    turn.say("not_found")
    if turn.state.lookups >= MAX_MISSES:
        turn.say("too_many_lookups")
        hand_over(turn)
        return
    # A birth date keyed wrong is keyed again, with the code kept; after a second miss the code
    # may be what is wrong, so it is asked again too.
    turn.ask("manage_birth" if turn.state.lookups == 1 else "manage_code")


def say_booking(turn: Turn, found: BookingView) -> None:
    """When, where, what and for how many: a found booking read out."""
    venue = booking.venue_or_404(turn.db, found.venue_id)
    service = booking.service_or_404(turn.db, found.service_id)
    turn.say(
        "booking_details",
        when=say_when(found.starts_at, turn.language),
        venue=named(venue, turn.language),
        service=named(service, turn.language),
        people=people(turn.language, found.party_size),
    )


def ask_manage(turn: Turn) -> None:
    if turn.state.booking_id is None:
        raise StateLost
    found = booking.get_booking(turn.db, booking_id=turn.state.booking_id)
    say_booking(turn, found)
    if found.status == "cancelled":
        turn.say("booking_is_cancelled")
        turn.say("manage_keys_closed")
    elif found.status != "booked" or found.starts_at <= turn.now():
        turn.say("booking_is_past")
        turn.say("manage_keys_closed")
    else:
        turn.say("manage_keys")
    turn.gather("manage", num_digits=1)


def _changeable(turn: Turn) -> bool:
    if turn.state.booking_id is None:
        raise StateLost
    found = booking.get_booking(turn.db, booking_id=turn.state.booking_id)
    return found.status == "booked" and found.starts_at > turn.now()


def answer_manage(turn: Turn, digits: str) -> None:
    state = turn.state
    if state.booking_id is None:
        raise StateLost
    if digits == "9":
        back_to_menu(turn)
    elif digits == "1" and _changeable(turn):
        found = booking.get_booking(turn.db, booking_id=state.booking_id)
        state.mode = "move"
        state.service, state.venue, state.party = found.service_id, found.venue_id, found.party_size
        state.seen, state.after, state.hold = [found.slot_id], None, None
        turn.say("move_intro")
        offer_next(turn)
    elif digits == "2" and _changeable(turn):
        turn.ask("cancel_check")
    else:
        raise Miss


def move_to_offer(turn: Turn) -> None:
    """Move the found booking to the held time: the old seats go only once the new are taken."""
    state = turn.state
    if not (state.booking_id is not None and state.hold is not None):
        raise StateLost
    try:
        with turn.db.begin_nested():
            moved = booking.reschedule_booking(
                turn.db, booking_id=state.booking_id, hold_id=state.hold
            )
    except BookingError as error:
        if error.code in LOST_OFFER:
            offer_lost(turn)
            return
        release_offer(turn)
        turn.say("move_refused")
        turn.ask("manage")
        return
    state.hold = None
    state.mode = "book"
    calls.set_outcome(turn.call, "self_served")
    turn.say("moved", when=say_when(moved.starts_at, turn.language))
    turn.ask("manage")


def ask_cancel_check(turn: Turn) -> None:
    if turn.state.booking_id is None:
        raise StateLost
    found = booking.get_booking(turn.db, booking_id=turn.state.booking_id)
    turn.say("cancel_check", when=say_when(found.starts_at, turn.language))
    turn.gather("cancel_check", num_digits=1)


def answer_cancel_check(turn: Turn, digits: str) -> None:
    if turn.state.booking_id is None:
        raise StateLost
    if digits == "1":
        try:
            with turn.db.begin_nested():
                # The caller's own cancellation: counted against their number's monthly limit.
                booking.cancel_by_resident(turn.db, booking_id=turn.state.booking_id)
        except BookingError as error:
            say_refusal(turn, "booking_refused", error)
            turn.ask("manage")
            return
        calls.set_outcome(turn.call, "self_served")
        turn.say("cancel_done")
        turn.ask("after_manage")
    elif digits == "2":
        turn.say("cancel_kept")
        turn.ask("manage")
    else:
        raise Miss


def ask_after_manage(turn: Turn) -> None:
    turn.say("after_manage")
    turn.gather("after_manage", num_digits=1)


def answer_after_manage(turn: Turn, digits: str) -> None:
    if digits == "2":
        turn.ask("menu")
    elif digits == "9" and turn.call.outcome == "booked":  # a booking made in this call
        offer_survey(turn, "self_service")
    elif digits == "9":
        turn.hang_up()
    else:
        raise Miss


# frequently asked questions


def faq_language(turn: Turn) -> str:
    """The FAQ is written in Japanese and English: やさしい日本語 reads the Japanese."""
    return "ja" if borrowed(turn.language) == "ja" else "en"


def _faq(turn: Turn) -> list[calls.Faq]:
    return calls.faq_entries(turn.db)[: calls.MAX_FAQ_ON_THE_LINE]


def _faq_choices(turn: Turn) -> None:
    for i, entry in enumerate(_faq(turn), start=1):
        turn.say("faq_option", title=entry.title(faq_language(turn)), press=i)
    turn.say("faq_back")


def ask_faq(turn: Turn) -> None:
    turn.say("faq_intro")
    _faq_choices(turn)
    turn.gather("faq", num_digits=1)


def answer_faq(turn: Turn, digits: str) -> None:
    if digits == "9":
        back_to_menu(turn)
        return
    entries = _faq(turn)
    if not digits.isdigit() or not 1 <= int(digits) <= len(entries):
        raise Miss
    calls.set_outcome(turn.call, "self_served")
    # The answer in the language it is written in (Japanese or English), with that voice.
    written = faq_language(turn)
    answer_text = entries[int(digits) - 1].answer(written)
    turn.pending.append(
        (turn.language if borrowed(turn.language) == written else written, answer_text)
    )
    turn.say("faq_more")  # the choices again, briefly: not the whole introduction
    _faq_choices(turn)
    turn.gather("faq", num_digits=1)


# a person: the agents' queue in hours, a callback otherwise


def in_call_center_hours(turn: Turn) -> bool:
    local = turn.now().astimezone(TOKYO)
    day = local.date()
    if day.weekday() >= 5 or jpholiday.is_holiday(day):
        return False
    if (day.month, day.day) >= (12, 29) or (day.month, day.day) <= (1, 3):
        return False
    return turn.config.opens <= local.time() < turn.config.closes


def hand_over(turn: Turn) -> None:
    calls.note_step(turn.call, "agent")
    turn.state.misses = 0
    if in_call_center_hours(turn):
        turn.say("to_agent")
        turn.enqueue()
    else:
        turn.ask("after_hours")


def _hours(turn: Turn) -> dict[str, str]:
    today = turn.now().astimezone(TOKYO).date()
    return {
        "opens": say_clock(datetime.combine(today, turn.config.opens, TOKYO), turn.language),
        "closes": say_clock(datetime.combine(today, turn.config.closes, TOKYO), turn.language),
    }


def ask_after_hours(turn: Turn) -> None:
    turn.say("after_hours", **_hours(turn))
    turn.say("after_hours_keys")
    turn.gather("after_hours", num_digits=1)


def answer_after_hours(turn: Turn, digits: str) -> None:
    if digits == "1":
        ask_callback(turn, "after_hours")
    elif digits == "9":
        back_to_menu(turn)
    else:
        raise Miss


def ask_callback(turn: Turn, reason: str) -> None:
    """The number to call back: the caller's own (1 yes) or keyed in."""
    turn.state.callback = reason
    if turn.caller.e164:
        turn.ask("callback_phone")
    else:
        turn.say("callback_no_number")
        turn.ask("phone_entry")


def ask_callback_phone(turn: Turn) -> None:
    if turn.caller.e164 is None:
        raise StateLost
    turn.say("phone_caller", phone=say_phone(turn.caller.e164, turn.language))
    turn.gather("callback_phone", num_digits=1)


def answer_callback_phone(turn: Turn, digits: str) -> None:
    if digits == "1" and turn.caller.e164:
        callback_to(turn, turn.caller.e164)
    elif digits == "2":
        turn.ask("phone_entry")
    else:
        raise Miss


def callback_to(turn: Turn, phone: str) -> None:
    reason = turn.state.callback or "queue_wait"
    calls.request_callback(
        turn.db, call=turn.call, phone=phone, language=turn.language, reason=reason
    )
    turn.state.callback = None
    turn.say("callback_done", phone=say_phone(phone, turn.language))
    turn.hang_up()


def queue_done(turn: Turn, result: str) -> None:
    """Twilio's answer when the caller leaves the queue: put through, left for a callback,
    hung up, or the queue failed."""
    turn.call.queue_result = result[:20]
    calls.note_step(turn.call, f"queue={result}")
    if result == "bridged":
        calls.set_outcome(turn.call, "handed_to_agent")
        calls.note_event(turn.db, turn.call, "connected")
        turn.hang_up("agent_done")
    elif result == "leave" and turn.state.callback:
        ask_callback(turn, "queue_wait")
    elif result == "leave" and turn.state.link:  # key 2 in the queue (counted there)
        turn.state.link = False
        calls.request_link(turn.db, call=turn.call)
        turn.hang_up("link_sent")
    elif result == "hangup":
        calls.note_event(turn.db, turn.call, "abandoned")
        turn.hang_up(farewell=None)  # nobody is listening
    else:
        turn.say("queue_failed")
        turn.ask("queue_failed")


def ask_queue_failed(turn: Turn) -> None:
    turn.say("queue_failed_keys")
    turn.gather("queue_failed", num_digits=1)


def answer_queue_failed(turn: Turn, digits: str) -> None:
    if digits == "1":
        ask_callback(turn, "queue_failed")
    elif digits == "9":
        back_to_menu(turn)
    else:
        raise Miss


def wait_music(
    language: str,
    position: int,
    config: LineConfig,
    action: str,
    *,
    estimate: float | None = None,
    offer: bool = True,
    mobile: bool = False,
) -> VoiceResponse:
    """What a caller in the queue hears, again and again: the place in line, the wait
    estimate (seconds, if there is one), when ``offer`` a callback that keeps their place (key
    1 takes it at any time), and, to a mobile, 2 for the web booking's link by SMS."""
    reply = VoiceResponse()
    gathering = Gather(input="dtmf", action=action, method="POST", num_digits=1, timeout=15)
    say_in(gathering, language, prompt(language, "queue_position", position=position), config)
    if estimate is not None:
        say_in(gathering, language, wait_estimate_words(language, estimate), config)
    if offer:
        say_in(gathering, language, prompt(language, "queue_offer_callback"), config)
    if mobile:
        say_in(gathering, language, prompt(language, "queue_link_keys"), config)
    reply.append(gathering)
    say_in(reply, language, prompt(language, "queue_hold"), config)
    return reply


def wait_estimate_words(language: str, seconds: float) -> str:
    """The wait estimate as the queue says it: "very soon" under a minute, whole minutes, in
    5-minute steps past 15, "more than an hour" past 60."""
    minutes = spoken_minutes(seconds)
    if minutes == 0:
        return prompt(language, "queue_estimate_soon")
    if minutes > LONGEST_MINUTES:
        return prompt(language, "queue_estimate_long")
    return prompt(language, "queue_estimate", count=minutes)


def offers_callback(config: LineConfig, estimate: float | None, waited_seconds: int) -> bool:
    """The queue offers a callback that keeps the place once the estimate passes the ward's
    threshold; with no estimate, once the caller has waited that long."""
    threshold = config.callback_offer_minutes * 60
    if estimate is not None:
        return estimate > threshold
    return waited_seconds >= threshold


# the lottery (抽選): a service with sessions kept for a lottery taking applications


def ask_lottery_choice(turn: Turn) -> None:
    turn.say("lottery_choice")
    turn.gather("lottery_choice", num_digits=1)


def answer_lottery_choice(turn: Turn, digits: str) -> None:
    if digits == "1":  # the free times, first come, first served
        turn.state.lottery = None
    elif digits == "2":
        turn.state.mode, turn.state.picks, turn.state.lottery_at = "lottery", [], 0
    else:
        raise Miss
    turn.ask("book_party")


def _lottery_times(turn: Turn) -> list[lottery.LotterySlot]:
    """The lottery's times not picked yet, in order."""
    if turn.state.lottery is None:
        raise StateLost
    found = lottery.get_lottery(turn.db, lottery_id=turn.state.lottery)
    return [s for s in found.slots if s.id not in turn.state.picks]


def ask_lottery_time(turn: Turn) -> None:
    """The lottery's times one at a time: 1 picks it as the next preference, 2 the next time."""
    state = turn.state
    times = _lottery_times(turn)
    if not times or len(state.picks) >= lottery.MOST_PREFERENCES:
        next_detail(turn)
        return
    if state.lottery_at >= len(times):
        turn.say("lottery_times_end")
        state.lottery_at = 0
    shown = times[state.lottery_at]
    venue = named(booking.venue_or_404(turn.db, shown.venue_id), turn.language)
    when = say_when(shown.starts_at, turn.language)
    turn.say("lottery_time", n=len(state.picks) + 1, when=when, venue=venue)
    turn.gather("lottery_time", num_digits=1)


def answer_lottery_time(turn: Turn, digits: str) -> None:
    state = turn.state
    times = _lottery_times(turn)
    if digits == "1" and state.lottery_at < len(times):
        state.picks.append(times[state.lottery_at].id)  # the next one moves up to this place
    elif digits == "2":
        state.lottery_at += 1
    elif digits == "9" and state.picks:
        next_detail(turn)
        return
    else:
        raise Miss
    turn.ask("lottery_time")


def ask_lottery_confirm(turn: Turn) -> None:
    state = turn.state
    if state.lottery is None or state.service is None:
        raise StateLost
    times = {s.id: s for s in lottery.get_lottery(turn.db, lottery_id=state.lottery).slots}
    lang = turn.language
    picked = [
        prompt(lang, "lottery_pick", n=n, when=say_when(times[slot].starts_at, lang))
        for n, slot in enumerate(state.picks, start=1)
        if slot in times
    ]
    service = booking.service_or_404(turn.db, state.service)
    turn.say(
        "lottery_confirm",
        service=named(service, turn.language),
        people=people(turn.language, state.party),
        choices=" ".join(picked),
    )
    turn.gather("lottery_confirm", num_digits=1)


def answer_lottery_confirm(turn: Turn, digits: str) -> None:
    state = turn.state
    if digits == "9":
        turn.say("cancelled_booking_attempt")
        back_to_menu(turn)
        return
    if digits != "1":
        raise Miss
    if not (state.lottery and state.phone and state.birth):
        raise StateLost
    resident = _keyed_resident(state.phone, state.birth, state)
    try:
        with turn.db.begin_nested():
            made = lottery.apply(
                turn.db,
                lottery_id=state.lottery,
                party=state.party,
                resident=resident,
                preferences=state.picks,
                channel="ivr",
            )
    except BookingError as error:
        say_refusal(turn, "booking_refused", error)
        turn.ask("after_manage")
        return
    calls.set_outcome(turn.call, "self_served")
    state.forget_booking()  # the application keeps what was keyed, encrypted
    turn.say("lottery_applied", digits=say_digits(str(made.id), turn.language))
    turn.flush()
    turn.ask("after_manage")


# the waitlist: joining a full day's list, and a call we placed about seats freed for a resident


def _may_wait(turn: Turn) -> bool:
    """A new booking at one venue, from a number we can reach again: the caller may join the
    full day's waitlist."""
    state = turn.state
    return state.mode == "book" and state.venue is not None and turn.caller.e164 is not None


def join_waitlist(turn: Turn) -> None:
    """Put the caller on the full day's waitlist; they hear their place, then may go on."""
    state = turn.state
    if state.full_day is None or state.service is None or state.venue is None:
        raise StateLost
    try:
        with turn.db.begin_nested():
            entry = booking.join_waitlist(
                turn.db,
                venue_id=state.venue,
                service_id=state.service,
                day=date.fromisoformat(state.full_day),
                party=state.party,
                phone=str(turn.caller.e164),
                language=turn.language,
                channel="ivr",
            )
    except BookingError:  # a seat came free meanwhile: offer it like any time
        jump_to(turn, date.fromisoformat(state.full_day))
        return
    release_offer(turn)
    calls.set_outcome(turn.call, "self_served")
    turn.say("waitlist_joined", count=entry.ahead or 0)
    turn.say("waitlist_sms" if turn.caller.line_type == "mobile" else "waitlist_call")
    state.forget_booking()
    turn.ask("after_manage")


def offer_from_waitlist(turn: Turn, entry_id: int) -> None:
    """Open a call about a waitlist offer: what is kept, and until when; 1 books it."""
    entry = booking.waitlist_entry(turn.db, entry_id=entry_id)
    state = turn.state
    state.waitlist, state.service = entry.token, entry.service_id
    state.party, state.venue, state.mode = entry.party_size, entry.venue_id, "book"
    say_with_ward(turn, "waitlist_offer_intro")
    turn.ask("waitlist_offer")


def tell_lottery_lost(turn: Turn, entry_id: int) -> None:
    """A call to a lottery's loser on a landline: not drawn, on the waitlist for their day
    (how many wait before them), called when seats free up."""
    entry = booking.waitlist_entry(turn.db, entry_id=entry_id)
    venue = booking.venue_or_404(turn.db, entry.venue_id)
    calls.set_outcome(turn.call, "self_served")
    say_with_ward(turn, "lottery_lost_intro")
    turn.say(
        "lottery_lost",
        day=say_date(entry.day, turn.language),
        venue=named(venue, turn.language),
    )
    if entry.ahead is not None:
        turn.say("lottery_lost_ahead", count=entry.ahead)
    turn.say("waitlist_call")
    turn.hang_up()


def _live_offer(turn: Turn) -> booking.WaitlistView | None:
    if turn.state.waitlist is None:
        raise StateLost
    entry = booking.waitlist_entry(turn.db, token=turn.state.waitlist)
    return entry if entry.offer_live(turn.now()) else None


def ask_waitlist_offer(turn: Turn) -> None:
    entry = _live_offer(turn)
    if entry is None or entry.offered_starts_at is None or entry.offer_expires_at is None:
        turn.say("waitlist_offer_gone")
        turn.hang_up()
        return
    venue = booking.venue_or_404(turn.db, entry.venue_id)
    turn.say(
        "waitlist_offer",
        when=say_when(entry.offered_starts_at, turn.language),
        venue=named(venue, turn.language),
        people=people(turn.language, entry.party_size),
        until=say_clock(entry.offer_expires_at, turn.language),
    )
    turn.say("waitlist_offer_keys")
    turn.gather("waitlist_offer", num_digits=1)


def answer_waitlist_offer(turn: Turn, digits: str) -> None:
    if digits == "1":
        next_detail(turn)
    elif digits == "2" and turn.state.waitlist is not None:
        booking.leave_waitlist(turn.db, token=turn.state.waitlist)
        calls.set_outcome(turn.call, "self_served")
        turn.say("waitlist_declined")
        turn.hang_up()
    else:
        raise Miss


def ask_waitlist_confirm(turn: Turn) -> None:
    entry = _live_offer(turn)
    if entry is None or entry.offered_starts_at is None or turn.state.service is None:
        turn.say("waitlist_offer_gone")
        turn.hang_up()
        return
    venue = booking.venue_or_404(turn.db, entry.venue_id)
    service = booking.service_or_404(turn.db, turn.state.service)
    turn.say(
        "confirm",
        when=say_when(entry.offered_starts_at, turn.language),
        venue=named(venue, turn.language),
        service=named(service, turn.language),
        people=people(turn.language, entry.party_size),
    )
    turn.say("confirm_keys")
    turn.gather("waitlist_confirm", num_digits=1)


def answer_waitlist_confirm(turn: Turn, digits: str) -> None:
    state = turn.state
    if digits == "9":
        turn.say("cancelled_booking_attempt")
        turn.hang_up()
        return
    if digits != "1":
        raise Miss
    if not (state.waitlist and state.phone and state.birth):
        raise StateLost
    resident = _keyed_resident(state.phone, state.birth, state)
    try:
        with turn.db.begin_nested():
            made = booking.take_waitlist_offer(
                turn.db,
                token=state.waitlist,
                resident=resident,
                channel="ivr",
                idempotency_key=f"ivr:{turn.call.call_sid}:{state.waitlist}",
            )
    except BookingError as error:
        if error.code == "waitlist_offer_gone":
            turn.say("waitlist_offer_gone")
        else:
            say_refusal(turn, "booking_refused", error)
        turn.hang_up()
        return
    turn.call.booking_id = made.id
    calls.set_outcome(turn.call, "booked")
    state.forget_booking()
    state.code = made.code
    turn.say("booked")
    read_code(turn, made.code)
    say_visit(turn, made)
    turn.ask("after_manage")


# the survey: optional and short, before the goodbye (after an agent's call, or a booking the
# line made by itself)

SURVEY_STEPS = frozenset({"survey_score", "survey_settled"})


def offer_survey(turn: Turn, kind: str) -> None:
    """Before the goodbye: satisfaction 1-5, then whether the matter was settled."""
    turn.state.survey = kind
    turn.ask("survey_score")


def ask_survey_score(turn: Turn) -> None:
    turn.say("survey_intro")
    turn.gather("survey_score", num_digits=1)


def answer_survey_score(turn: Turn, digits: str) -> None:
    kind = turn.state.survey
    if kind is None or digits not in ("1", "2", "3", "4", "5"):
        end_survey(turn, "goodbye")
        return
    calls.record_score(turn.db, call=turn.call, kind=kind, score=int(digits))
    turn.ask("survey_settled")


def ask_survey_settled(turn: Turn) -> None:
    turn.say("survey_settled")
    turn.gather("survey_settled", num_digits=1)


def answer_survey_settled(turn: Turn, digits: str) -> None:
    if digits not in ("1", "2"):
        end_survey(turn, "survey_thanks")  # the score stands
        return
    calls.record_settled(turn.db, call=turn.call, settled=digits == "1")
    end_survey(turn, "survey_thanks")


def end_survey(turn: Turn, farewell: str) -> None:
    turn.state.survey = None
    turn.hang_up(farewell)


STEPS: dict[str, Step] = {
    "menu": Step(ask_menu, answer_menu, choice=True),
    "book_service": Step(ask_service, answer_service, choice=True),
    "book_party": Step(ask_party, answer_party, choice=True),
    "book_venue": Step(ask_venue, answer_venue, choice=True, agent_key=False),
    "offer": Step(ask_offer, answer_offer, choice=True),
    "offer_date": Step(ask_offer_date, answer_offer_date, choice=False),
    "offer_none": Step(ask_offer_none, answer_offer_none, choice=True),
    "notice_head": Step(ask_notice_head, answer_notice_head, choice=False, agent_key=False),
    "notice_tail": Step(ask_notice_tail, answer_notice_tail, choice=False, agent_key=False),
    "notice_check": Step(ask_notice_check, answer_notice_check, choice=True),
    "birth": Step(ask_birth, answer_birth, choice=False, agent_key=False),
    "birth_check": Step(ask_birth_check, answer_birth_check, choice=True),
    "phone_caller": Step(ask_phone_caller, answer_phone_caller, choice=True),
    "phone_entry": Step(ask_phone_entry, answer_phone_entry, choice=False, agent_key=False),
    "phone_check": Step(ask_phone_check, answer_phone_check, choice=True),
    "confirm": Step(ask_confirm, answer_confirm, choice=True),
    "after_booking": Step(ask_after_booking, answer_after_booking, choice=True),
    "manage_code": Step(ask_manage_code, answer_manage_code, choice=False, agent_key=False),
    "manage_birth": Step(ask_manage_birth, answer_manage_birth, choice=False, agent_key=False),
    "manage": Step(ask_manage, answer_manage, choice=True),
    "cancel_check": Step(ask_cancel_check, answer_cancel_check, choice=True),
    "after_manage": Step(ask_after_manage, answer_after_manage, choice=True),
    "faq": Step(ask_faq, answer_faq, choice=True),
    "after_hours": Step(ask_after_hours, answer_after_hours, choice=True, agent_key=False),
    "callback_phone": Step(ask_callback_phone, answer_callback_phone, choice=True),
    "queue_failed": Step(ask_queue_failed, answer_queue_failed, choice=True, agent_key=False),
    "reminder": Step(ask_reminder, answer_reminder, choice=True),
    "relocated": Step(ask_relocated, answer_relocated, choice=True),
    "lottery_choice": Step(ask_lottery_choice, answer_lottery_choice, choice=True),
    "lottery_time": Step(ask_lottery_time, answer_lottery_time, choice=True),
    "lottery_confirm": Step(ask_lottery_confirm, answer_lottery_confirm, choice=True),
    "waitlist_offer": Step(ask_waitlist_offer, answer_waitlist_offer, choice=True),
    "waitlist_confirm": Step(ask_waitlist_confirm, answer_waitlist_confirm, choice=True),
    "survey_score": Step(ask_survey_score, answer_survey_score, choice=False, agent_key=False),
    "survey_settled": Step(
        ask_survey_settled, answer_survey_settled, choice=False, agent_key=False
    ),
}
