"""Japanese era dates (元号): residents give birth dates as 昭和33年4月1日, by phone and web.

One conversion for both: an era year is counted from 1 (元年) in the Western year the era began,
and a date outside the era's own days (平成31年5月1日 is 令和元年) is refused, not carried over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Era:
    key: str  # as forms send it
    first: date  # the era's first day
    last: date | None  # its last day; None for the present era

    def years(self) -> int | None:
        """How many era years it has (the last one counted); None for the present era."""
        return None if self.last is None else self.last.year - self.first.year + 1


# Newest first, as a resident looks for theirs. Meiji is counted from 1868-01-25, its first
# day once carried back to New Year of the old calendar.
ERAS = (
    Era("reiwa", date(2019, 5, 1), None),
    Era("heisei", date(1989, 1, 8), date(2019, 4, 30)),
    Era("showa", date(1926, 12, 25), date(1989, 1, 7)),
    Era("taisho", date(1912, 7, 30), date(1926, 12, 24)),
    Era("meiji", date(1868, 1, 25), date(1912, 7, 29)),
)
BY_KEY = {era.key: era for era in ERAS}


class OutsideEra(ValueError):
    """A real calendar date, but not one of the era's days (平成32年, 昭和64年2月1日)."""

    def __init__(self, era: Era) -> None:
        super().__init__(f"not a day of {era.key}")
        self.era = era


def from_era(era: str, year: int, month: int, day: int) -> date:
    """The Western date of an era date (``year`` 1 is 元年). ValueError for no such date (an
    unknown era, 2月30日), OutsideEra for a date before the era began or after it ended."""
    found = BY_KEY.get(era)
    if found is None:
        raise ValueError(f"no era {era!r}")
    most = found.years()
    if year < 1 or (most is not None and year > most):
        raise OutsideEra(found)
    western = date(found.first.year + year - 1, month, day)  # ValueError for 2月30日
    if western < found.first or (found.last is not None and western > found.last):
        raise OutsideEra(found)
    return western
