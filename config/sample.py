"""The sample ward (a main office and ten branch offices) for trials and tests."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any


def sample_ward(path: Path | None = None) -> dict[str, Any]:
    """The ward description from a JSON file (default: config/sample_ward.json)."""
    if path is not None:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    text = files("config").joinpath("sample_ward.json").read_text(encoding="utf-8")
    return dict(json.loads(text))
