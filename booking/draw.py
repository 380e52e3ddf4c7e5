"""The lottery's draw (抽選), pure and reproducible: from the seats each time offers, the
applications (by number: household size and preferred times, nothing personal) and a seed, the
same result every time, on any machine with Python. ``booking.lottery`` runs it and keeps its
record; anyone holding the record can check it with ``verify``."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ALGORITHM = (
    "Applications sorted by number are shuffled with Python's random.Random(int(seed, 16))"
    ".shuffle; in that order each takes its first preferred time that still has seats for the"
    " whole household, else its second, else its third, else none."
)


@dataclass(frozen=True)
class Entry:
    """One application as the draw sees it: its number, its household's size, its preferred
    slots in order. Nothing personal."""

    application: int
    party: int
    preferences: tuple[int, ...]


@dataclass(frozen=True)
class Drawn:
    order: list[int]  # the applications in the order the seed shuffled them
    results: dict[int, int | None]  # application -> slot won (None: not drawn)


def draw(entries: Iterable[Entry], seats: dict[int, int], seed: str) -> Drawn:
    """Shuffle the applications (sorted by number first, so the input's order does not matter)
    with the seed, then give each in turn its first preferred slot with room for the whole
    household: households are never split, and each application wins at most one time."""
    order = sorted(entries, key=lambda e: e.application)
    random.Random(int(seed, 16)).shuffle(order)  # noqa: S311  (reproducible on purpose)
    left = dict(seats)
    results: dict[int, int | None] = {}
    for entry in order:
        won = next((s for s in entry.preferences if left.get(s, 0) >= entry.party), None)
        if won is not None:
            left[won] -= entry.party
        results[entry.application] = won
    return Drawn([e.application for e in order], results)


def input_digest(entries: Iterable[Entry], seats: dict[int, int]) -> str:
    """SHA-256 of the draw's input in a canonical form (what the record lists)."""
    return hashlib.sha256(_canonical(entries, seats).encode()).hexdigest()


def _canonical(entries: Iterable[Entry], seats: dict[int, int]) -> str:
    body = {
        "seats": [[slot, seats[slot]] for slot in sorted(seats)],
        "applications": [
            [e.application, e.party, list(e.preferences)]
            for e in sorted(entries, key=lambda e: e.application)
        ],
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def verify(record: dict[str, Any]) -> bool:
    """Run a published record's draw again: True when its digest and every result match."""
    seats = {int(slot): int(n) for slot, n in record["seats"]}
    entries = [
        Entry(int(a), int(p), tuple(int(s) for s in prefs))
        for a, p, prefs in record["applications"]
    ]
    if input_digest(entries, seats) != record["input_digest"]:
        return False
    again = draw(entries, seats, str(record["seed"]))
    published = {int(a): (None if s is None else int(s)) for a, s in record["results"]}
    return again.results == published and again.order == [int(a) for a in record["order"]]
