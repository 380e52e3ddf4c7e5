"""Speech on the phone line, recognised on the ward's own servers with vosk.

Models come from configuration (``MADOGUCHI_VOSK_MODEL_JA`` / ``_EN`` / ``_KO`` / ``_ZH``:
unpacked vosk model folders; やさしい日本語 is heard by the Japanese one), are checked at
start-up, loaded once per process and shared by every call; each question gets a cheap
recogniser restricted to the answers it takes (yes/no, menu words, digits), which is fast and
accurate where free dictation is not. Nothing is ever downloaded:
``vosk.Model(lang=...)`` would fetch from the internet, so it is never called.

A recognised answer becomes the keys the caller could have pressed, so it drives the same
step of the call flow; below the confidence floor it is "unclear" and the question is asked
again (or answered with keys).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import vosk

from ivr.audio import TELEPHONE_RATE, Resampler, decode_mulaw

log = logging.getLogger(__name__)

# The languages a model may be configured for; a caller's language heard by another's model
# (やさしい日本語 is Japanese: the Japanese model and words).
LANGUAGES = ("ja", "en", "ko", "zh")
HEARD_AS = {"easy": "ja"}
DEFAULT_RATE = 16000  # Kaldi's default when conf/mfcc.conf does not say
_SAMPLE_FREQUENCY = re.compile(r"^\s*--sample-frequency\s*=\s*(\d+)", re.MULTILINE)


class SpeechModelError(RuntimeError):
    """A configured model cannot be used; the message says what to do about it."""


def check_model_dir(path: Path, setting: str) -> int:
    """The model's sample rate, after checking the folder is an unpacked vosk model."""
    if not path.is_dir():
        raise SpeechModelError(
            f"{setting}={path}: no such folder. Unpack the model (e.g. vosk-model-small-ja-0.22"
            " from https://alphacephei.com/vosk/models) and point the setting at the folder"
            " that holds am/, conf/ and graph/."
        )
    for needed in ("am/final.mdl", "conf/mfcc.conf"):
        if not (path / needed).is_file():
            raise SpeechModelError(
                f"{setting}={path}: {needed} is missing. Point the setting at the unpacked"
                " model's own folder (the one that holds am/, conf/ and graph/), not its parent."
            )
    found = _SAMPLE_FREQUENCY.search((path / "conf/mfcc.conf").read_text(encoding="utf-8"))
    return int(found.group(1)) if found else DEFAULT_RATE


@cache
def _load_model(path: str) -> Any:
    """One vosk model per folder per process (about 500 MB for a small model), shared."""
    vosk.SetLogLevel(-1)
    try:
        return vosk.Model(model_path=path)
    except Exception as exc:  # vosk says only "Failed to create a model"
        raise SpeechModelError(
            f"vosk could not load the model in {path}: the folder is there but its files are"
            " damaged or from an incompatible version. Unpack the model again."
        ) from exc


@dataclass(frozen=True)
class SpeechModel:
    language: str
    path: Path
    rate: int
    model: Any  # vosk.Model

    def knows(self, word: str) -> bool:
        return int(self.model.vosk_model_find_word(word)) >= 0


class SpeechModels:
    """The models this process recognises with, by language; none configured means keys only."""

    def __init__(self, configured: Mapping[str, str]) -> None:
        self.models: dict[str, SpeechModel] = {}
        for language in LANGUAGES:
            setting = f"MADOGUCHI_VOSK_MODEL_{language.upper()}"
            value = configured.get(language, "")
            if not value:
                continue
            path = Path(value).expanduser()
            rate = check_model_dir(path, setting)
            self.models[language] = SpeechModel(language, path, rate, _load_model(str(path)))
            log.info("speech in %s: vosk model %s at %d Hz", language, path, rate)

    def get(self, language: str) -> SpeechModel | None:
        return self.models.get(HEARD_AS.get(language, language))

    def health(self) -> dict[str, str]:
        """For /healthz: which languages take speech, and which fall back to keys."""
        return {
            language: "speech" if language in self.models else "keys only (no vosk model)"
            for language in LANGUAGES
        }


# --- what each question takes -----------------------------------------------------------------


@cache
def words(language: str) -> dict[str, Any]:
    text = files("ivr").joinpath("prompts/speech_words.toml").read_text(encoding="utf-8")
    table: dict[str, Any] = tomllib.loads(text)[language]
    return table


# Questions answered yes (first key) or no (second key).
YES_NO = {
    "offer": ("1", "2"),
    "notice_check": ("1", "2"),
    "birth_check": ("1", "2"),
    "phone_caller": ("1", "2"),
    "phone_check": ("1", "2"),
    "confirm": ("1", "9"),
    "cancel_check": ("1", "2"),
    "reminder": ("1", "2"),
    "relocated": ("1", "2"),
    "after_hours": ("1", "9"),
    "queue_failed": ("1", "9"),
    "lottery_time": ("1", "2"),  # yes: this time; no: the next one
    "lottery_confirm": ("1", "9"),
}
# Questions answered with a number keyed in full (the finish key is not spoken).
DIGIT_ENTRY = {
    "book_party",
    "notice_tail",
    "birth",
    "phone_entry",
    "manage_code",
    "manage_birth",
    "offer_date",
}
# Menus whose choices have names as well as numbers.
NAMED_CHOICES = {"menu": {"book": "1", "manage": "2", "questions": "3"}}
# Menus answered by saying the choice's number.
NUMBERED = {
    "book_service",
    "book_venue",
    "offer_none",
    "after_booking",
    "manage",
    "after_manage",
    "faq",
    "lottery_choice",
}
# Questions whose choices are also said by name (the names come with the stream, in order:
# the first is key 1), and the words for the choice of key 0.
NAMED_BY_STREAM = {"book_venue": "anywhere"}


@dataclass(frozen=True)
class Grammar:
    """The phrases a question listens for, and the keys each one stands for. ``digits``: the
    answer is every word's digit in turn (a number keyed in full)."""

    phrases: dict[str, str]
    digits: bool


def spoken_name(name: str, language: str) -> str:
    """A choice's name as the model's vocabulary writes it (English models: lower case)."""
    return " ".join(name.lower().split()) if language == "en" else " ".join(name.split())


def grammar_for(step: str, language: str, choices: Sequence[str] = ()) -> Grammar | None:
    """What ``step`` listens for in ``language``; None where it takes keys only. ``choices``:
    the names of a question's numbered choices (venues), key 1 first."""
    language = HEARD_AS.get(language, language)
    if language not in LANGUAGES:
        return None
    table = words(language)
    by_digit = {form: str(d) for d, forms in enumerate(table["digits"]) for form in forms}
    if step in DIGIT_ENTRY:
        return Grammar(by_digit, digits=True)
    phrases: dict[str, str] = {}
    if step in YES_NO:
        yes, no = YES_NO[step]
        phrases |= dict.fromkeys(table["yes"], yes) | dict.fromkeys(table["no"], no)
    elif step in NAMED_CHOICES:
        # Names only: with the digits too, short names and digits run together (상담원 was
        # heard as 삼 확인).
        for name, key in NAMED_CHOICES[step].items():
            phrases |= dict.fromkeys(table[name], key)
    elif step in NUMBERED:
        phrases |= by_digit
        if step in NAMED_BY_STREAM:
            phrases |= dict.fromkeys(table[NAMED_BY_STREAM[step]], "0")
            for number, name in enumerate(choices, start=1):
                if name.strip():
                    phrases[spoken_name(name, language)] = str(number)
    else:
        return None
    phrases |= dict.fromkeys(table["repeat"], "*") | dict.fromkeys(table["agent"], "0")
    return Grammar(phrases, digits=False)


# --- listening to one question ------------------------------------------------------------------

_missing_logged: set[tuple[str, str]] = set()
_missing_lock = threading.Lock()


@dataclass(frozen=True)
class Heard:
    """One utterance: the keys it stands for (None: not clear enough to act on), how sure the
    recogniser was (the least sure word), and where it ended in the stream (seconds)."""

    keys: str | None
    confidence: float
    word_count: int
    ended_at: float


# The end of an answer: this long below the speech level after speech. vosk's own endpoint
# waits 0.5 s or more; a short answer (yes, no, a menu word) is decided 0.2 s after it ends.
# A number keyed in full is spoken with pauses between its digits, so it waits longer.
SHORT_ANSWER_END = 0.2
NUMBER_END = 0.8
SPEECH_LEVEL = 400  # RMS of 16-bit samples (about -38 dBFS): a voice, not line noise
FRAME_SAMPLES = 160  # 20 ms at 8 kHz


class Listener:
    """A grammar recogniser for one question of one call. Not thread-safe: one call's audio is
    fed in order, by one worker at a time."""

    def __init__(self, model: SpeechModel, grammar: Grammar, min_confidence: float) -> None:
        self.grammar = grammar
        self.min_confidence = min_confidence
        self.phrases = {
            phrase: keys
            for phrase, keys in grammar.phrases.items()
            if all(_known(model, word) for word in phrase.split())
        }
        self._recogniser = vosk.KaldiRecognizer(
            model.model, model.rate, json.dumps(sorted(self.phrases), ensure_ascii=False)
        )
        self._recogniser.SetWords(True)
        self._resampler = Resampler(model.rate)
        self._samples = 0
        self.audio_seconds = 0.0
        self._end_after = NUMBER_END if grammar.digits else SHORT_ANSWER_END
        self._voiced = False  # speech heard since the last answer
        self._quiet = 0.0  # seconds below the speech level since the last speech
        # Time spent recognising, on the clock and on the CPU: over the audio's length, the
        # real-time factor (the CPU one is the model's cost; the clock one adds waiting for a
        # core when many calls share few).
        self.busy_seconds = 0.0
        self.cpu_seconds = 0.0

    def feed(self, payloads: list[bytes]) -> Heard | None:
        """Some 8 kHz mu-law frames; what was said, once an utterance has ended."""
        began, cpu = time.perf_counter(), time.thread_time()
        try:
            return self._feed(payloads)
        finally:
            self.busy_seconds += time.perf_counter() - began
            self.cpu_seconds += time.thread_time() - cpu

    @property
    def real_time_factor(self) -> float:
        return self.busy_seconds / self.audio_seconds if self.audio_seconds else 0.0

    @property
    def cpu_real_time_factor(self) -> float:
        return self.cpu_seconds / self.audio_seconds if self.audio_seconds else 0.0

    def _feed(self, payloads: list[bytes]) -> Heard | None:
        samples = decode_mulaw(b"".join(payloads))
        self._samples += len(samples)
        self.audio_seconds = self._samples / TELEPHONE_RATE
        if self._recogniser.AcceptWaveform(self._resampler.feed(samples).tobytes()):
            self._voiced, self._quiet = False, 0.0
            return self._heard(self._recogniser.Result())
        self._track_level(samples)
        if self._voiced and self._quiet >= self._end_after:
            # The speaker has stopped: finish the utterance now rather than at vosk's endpoint.
            self._voiced, self._quiet = False, 0.0
            return self._heard(self._recogniser.FinalResult())
        return None

    def _track_level(self, samples: npt.NDArray[np.int16]) -> None:
        for start in range(0, len(samples), FRAME_SAMPLES):
            frame = samples[start : start + FRAME_SAMPLES].astype(np.float32)
            if float(np.sqrt(np.mean(frame * frame))) >= SPEECH_LEVEL:
                self._voiced, self._quiet = True, 0.0
            elif self._voiced:
                self._quiet += len(frame) / TELEPHONE_RATE

    def finish(self) -> Heard | None:
        """The stream ended: whatever the last utterance was."""
        self._recogniser.AcceptWaveform(self._resampler.flush().tobytes())
        return self._heard(self._recogniser.FinalResult())

    def _heard(self, result_json: str) -> Heard | None:
        result = json.loads(result_json)
        spoken = [w for w in result.get("result", []) if w.get("word")]
        if not spoken:
            return None  # silence or noise: nothing to act on
        confidence = min(float(w.get("conf", 0.0)) for w in spoken)
        ended = self.audio_seconds
        keys = self._keys([str(w["word"]) for w in spoken], str(result.get("text", "")))
        if keys is None or confidence < self.min_confidence:
            return Heard(None, confidence, len(spoken), ended)
        return Heard(keys, confidence, len(spoken), ended)

    def _keys(self, spoken: list[str], text: str) -> str | None:
        if self.grammar.digits:
            keys = [self.phrases.get(word) for word in spoken]
            return "".join(k for k in keys if k) if all(keys) else None
        if text in self.phrases:  # a phrase of several words
            return self.phrases[text]
        found = {self.phrases[word] for word in spoken if word in self.phrases}
        return found.pop() if len(found) == 1 else None  # "yes no" is no answer


def _known(model: SpeechModel, word: str) -> bool:
    if model.knows(word):
        return True
    with _missing_lock:
        if (model.language, word) not in _missing_logged:
            _missing_logged.add((model.language, word))
            log.warning(
                "speech in %s: %r is not in the model's vocabulary; it is left out of the "
                "answers recognised",
                model.language,
                word,
            )
    return False
