"""The installed packages are the ones the code was written for: no dependency may replace
another package's files (urllib3-future installs itself as ``urllib3``, so `requests`, and with it
Twilio's client, would then run on a fork)."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import urllib3


def _owners(module_file: str) -> set[str]:
    """The installed distributions that list this file as their own."""
    target = Path(module_file).resolve()
    owners = set()
    for dist in metadata.distributions():
        for entry in dist.files or ():
            if Path(str(dist.locate_file(entry))).resolve() == target:
                owners.add(dist.metadata["Name"].lower())
    return owners


def test_urllib3_is_the_real_one() -> None:
    assert _owners(urllib3.__file__) == {"urllib3"}
    installed = {d.metadata["Name"].lower() for d in metadata.distributions()}
    assert "urllib3-future" not in installed
    assert "niquests" not in installed


def test_the_caldav_client_runs_on_requests() -> None:
    requires = metadata.requires("caldav") or []
    names = {
        r.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip()
        for r in requires
        if "extra ==" not in r
    }
    assert "requests" in names
    assert "niquests" not in names
