"""Running the ``madoguchi`` command as an operator would, for the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet


def madoguchi(
    *args: str, data_dir: Path, database_url: str = "", **settings: str
) -> subprocess.CompletedProcess[str]:
    """``madoguchi ARGS`` (as ``python -m config.cli``) with none of this shell's MADOGUCHI_*
    settings: the data folder and database given, fresh personal-data keys unless given, and
    any other setting by name (``retention_days="30"`` is MADOGUCHI_RETENTION_DAYS)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MADOGUCHI_")}
    env["MADOGUCHI_DATA_DIR"] = str(data_dir)
    if database_url:
        env["MADOGUCHI_DATABASE_URL"] = database_url
        env["MADOGUCHI_DATA_KEYS"] = Fernet.generate_key().decode()
        env["MADOGUCHI_LOOKUP_KEY"] = "k" * 32
    env |= {f"MADOGUCHI_{name.upper()}": value for name, value in settings.items()}
    return subprocess.run(  # noqa: S603 (our own command)
        [sys.executable, "-m", "config.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
