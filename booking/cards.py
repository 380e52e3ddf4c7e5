"""Cards that have arrived (交付準備完了): the ward's list, imported from its card management
system, of the notice numbers whose card waits at a venue. A pickup booking may be held to it
(``BookingContext.ready_cards``): off, refuse (every channel refuses a notice number not on the
list at the slot's venue) or warn (booked; the console and the counter are told).

The list holds only the keyed hash of each notice number (the same HMAC a booking's member
row keeps), never the number. A row goes once its card is picked up, or under the retention
rule.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, delete, func, insert, select, text
from sqlalchemy.orm import Session as DbSession

from booking.base import UTCDateTime
from booking.context import context
from booking.errors import BookingError
from booking.models import Booking, BookingMember, ReadyCard, Service, Venue, VenueService
from booking.personal import normalise_notice_number

# The CSV's columns, as the ward's system may head them (Japanese or English).
NOTICE_HEADS = ("交付通知書番号", "notice_number", "notice number")
VENUE_HEADS = ("交付場所", "会場", "venue")
MAX_PROBLEMS = 50  # an upload's refusal lists this many bad rows, then says how many more


# --- The import ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardRow:
    line: int
    notice_number: str  # normalised: AB1-234567
    venue_id: str


@dataclass
class CardsFile:
    """A CSV read and checked: its rows, or the problem of each bad line (nothing imported)."""

    digest: str  # SHA-256 of the file as uploaded, for the audit log
    rows: list[CardRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    more_problems: int = 0

    def refuse(self, line: int, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{line}行目 line {line}: {problem}")
        else:
            self.more_problems += 1


def _decode(data: bytes) -> str:
    """UTF-8 (with or without a BOM); else Shift_JIS (cp932), as Japanese systems export."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp932")


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    wanted = {n.casefold() for n in names}
    for i, name in enumerate(header):
        if name.strip().casefold() in wanted:
            return i
    return None


def read_cards_csv(data: bytes, venues: dict[str, str]) -> CardsFile:
    """Read the ward's CSV: a header with 交付通知書番号 (notice_number) and 交付場所 (venue:
    the venue's id or its Japanese name, from ``venues`` {id: name_ja}); one card a line."""
    found = CardsFile(digest=hashlib.sha256(data).hexdigest())
    try:
        text_ = _decode(data)
    except UnicodeDecodeError:
        found.refuse(
            1,
            "文字コードが読めません（UTF-8 か Shift_JIS で保存してください）"
            " the file is neither UTF-8 nor Shift_JIS",
        )
        return found
    lines = csv.reader(io.StringIO(text_))
    header = next(lines, None)
    notice_at = _column(header or [], NOTICE_HEADS)
    venue_at = _column(header or [], VENUE_HEADS)
    if notice_at is None or venue_at is None:
        found.refuse(
            1,
            "見出し行に「交付通知書番号」と「交付場所」が必要です"
            " the header must name notice_number and venue",
        )
        return found
    by_name = {name: venue_id for venue_id, name in venues.items()}
    seen: dict[str, tuple[int, str]] = {}
    try:
        for row in lines:
            if not any(cell.strip() for cell in row):
                continue  # a blank line (often the last)
            _read_row(found, lines.line_num, row, notice_at, venue_at, venues, by_name, seen)
    except csv.Error:  # a NUL byte, a quote never closed: the rest cannot be read
        found.refuse(lines.line_num, "CSVとして読めません the line cannot be read as CSV")
    return found


def _read_row(
    found: CardsFile,
    line: int,
    row: list[str],
    notice_at: int,
    venue_at: int,
    venues: dict[str, str],
    by_name: dict[str, str],
    seen: dict[str, tuple[int, str]],
) -> None:
    """One line of the CSV into ``found``: a card, or its problem (never the number itself:
    the problem may be shown and logged)."""
    if len(row) <= max(notice_at, venue_at):
        found.refuse(line, "列が足りません the line has too few columns")
        return
    try:
        notice = normalise_notice_number(row[notice_at])
    except BookingError as refused:
        if refused.code == "my_number_refused":
            found.refuse(
                line,
                "個人番号（マイナンバー）のようです。交付通知書番号を入れてください"
                " this looks like an individual number, not a notice number",
            )
        else:
            found.refuse(
                line,
                "交付通知書番号の形ではありません（例 AB1-234567）"
                " not a notice number (like AB1-234567)",
            )
        return
    place = row[venue_at].strip()
    venue_id = place if place in venues else by_name.get(place)
    if venue_id is None:
        known = ", ".join(venues)
        found.refuse(line, f"交付場所「{place[:40]}」がありません unknown venue (known: {known})")
        return
    if notice in seen:
        first_line, first_venue = seen[notice]
        if first_venue != venue_id:
            found.refuse(
                line,
                f"{first_line}行目と同じ番号で交付場所が違います"
                f" the same number as line {first_line}, at another venue",
            )
        return  # the same card twice at one venue: once is enough
    seen[notice] = (line, venue_id)
    found.rows.append(CardRow(line, notice, venue_id))


@dataclass(frozen=True)
class Imported:
    rows: int
    venues: dict[str, int]  # cards per venue in this import


def import_ready_cards(
    db: DbSession,
    *,
    rows: list[CardRow],
    progress: Callable[[int, int], None] | None = None,
) -> Imported:
    """Add the cards of a checked file to the list (a number listed before is moved to this
    file's venue and counted as imported now). Only the keyed hashes are stored; the caller
    commits once, so a failed import leaves the list as it was."""
    vault, now = context(db).vault, context(db).now()
    total = len(rows)
    for start in range(0, total, 500):
        chunk = rows[start : start + 500]
        digests = [vault.digest(r.notice_number) for r in chunk]
        db.execute(delete(ReadyCard).where(ReadyCard.notice_number_hmac.in_(digests)))
        db.execute(
            insert(ReadyCard),
            [
                {"notice_number_hmac": d, "venue_id": r.venue_id, "imported_at": now}
                for d, r in zip(digests, chunk, strict=True)
            ],
        )
        if progress is not None:
            progress(start + len(chunk), total)
    return Imported(total, dict(Counter(r.venue_id for r in rows)))


def pickup_venues(db: DbSession) -> dict[str, str]:
    """The venues a card may wait at (those offering a service that needs notice numbers):
    {id: Japanese name}."""
    found = db.execute(
        select(Venue.id, Venue.name_ja, Venue.sort_order)
        .join(VenueService, VenueService.venue_id == Venue.id)
        .join(Service, Service.id == VenueService.service_id)
        .where(Venue.active.is_(True), Service.requires_notice_number.is_(True))
        .order_by(Venue.sort_order, Venue.id)
        .distinct()
    ).all()
    return {str(venue_id): str(name) for venue_id, name, _order in found}


def import_cards_file(
    db: DbSession, *, data: bytes, progress: Callable[[int, int], None] | None = None
) -> tuple[CardsFile, Imported | None]:
    """The ward's CSV checked, then imported whole (None: a line was bad, nothing imported).
    The caller records it in the audit log (``audit_detail``) and commits."""
    found = read_cards_csv(data, pickup_venues(db))
    if found.problems:
        return found, None
    return found, import_ready_cards(db, rows=found.rows, progress=progress)


def audit_detail(found: CardsFile, done: Imported) -> str:
    """What the audit log keeps of an import: the file's digest, its rows, cards per venue."""
    venues = ",".join(f"{v}:{n}" for v, n in sorted(done.venues.items()))
    return f"sha256={found.digest} rows={done.rows} venues={venues}"


def ready_cards_by_venue(db: DbSession) -> dict[str, int]:
    """How many cards wait at each venue."""
    found = db.execute(select(ReadyCard.venue_id, func.count()).group_by(ReadyCard.venue_id)).all()
    return {str(venue): int(n) for venue, n in found}


# --- The booking's check ---------------------------------------------------------------------

# One read before the booking statement, rather than a condition of that statement: the list
# changes only at imports, so reading it first cannot race a booking, and both paths of
# booking/making.py (the statement and the step-by-step one) share it. It starts from the
# slot's primary key and the list's (the notice numbers' hashes): one row per card on the list
# at the slot's venue, or a single row with none.
_READY_FOR_SLOT = text(
    """
SELECT sv.requires_notice_number AS needs, rc.notice_number_hmac AS ready
FROM slot s JOIN service sv ON sv.id = s.service_id
LEFT JOIN ready_card rc ON rc.venue_id = s.venue_id AND rc.notice_number_hmac IN :digests
WHERE s.id = :slot_id
"""
).bindparams(bindparam("digests", expanding=True))

_READY_AT_VENUE = text(
    """
SELECT notice_number_hmac FROM ready_card
WHERE notice_number_hmac IN :digests AND venue_id = :venue_id
"""
).bindparams(bindparam("digests", expanding=True))


def refusing(db: DbSession) -> bool:
    """True when a pickup must name cards on the list (MADOGUCHI_READY_CARDS=refuse)."""
    return context(db).ready_cards == "refuse"


def _missing(digests: list[str | None], found: set[str]) -> list[int]:
    return [i for i, d in enumerate(digests) if d and d not in found]


def not_ready(db: DbSession, venue_id: str, digests: list[str | None]) -> list[int]:
    """The positions of the notice numbers whose card is not on the list at ``venue_id``."""
    wanted = [d for d in digests if d]
    if not wanted:
        return []
    found = set(db.execute(_READY_AT_VENUE, {"digests": wanted, "venue_id": venue_id}).scalars())
    return _missing(digests, found)


def check_slot(db: DbSession, *, slot_id: int, digests: list[str | None]) -> None:
    """Refuse a pickup naming a card not on the list at its slot's venue (it may not have
    arrived yet). A slot not found, or not a pickup's, is left to the booking's own rules."""
    wanted = [d for d in digests if d]
    if not wanted:
        return
    rows = db.execute(_READY_FOR_SLOT, {"digests": wanted, "slot_id": slot_id}).all()
    if not rows or not rows[0].needs:
        return
    missing = _missing(digests, {r.ready for r in rows if r.ready is not None})
    if missing:
        raise BookingError(
            "card_not_ready", field=f"members[{missing[0]}].notice_number", n=missing[0] + 1
        )


def booking_not_ready(db: DbSession, *, booking_id: int) -> list[int]:
    """The members (positions) of a pickup booking whose card is not on the list at its venue
    now: the warning the console and the counter show when the mode is warn. Empty when the
    mode is off, or for a booking of a service without notice numbers."""
    if context(db).ready_cards == "off":
        return []
    venue_id = db.execute(select(Booking.venue_id).where(Booking.id == booking_id)).scalar_one()
    digests = list(
        db.execute(
            select(BookingMember.notice_number_hmac)
            .where(BookingMember.booking_id == booking_id)
            .order_by(BookingMember.position)
        ).scalars()
    )
    return not_ready(db, venue_id, digests)


# --- Erasure ---------------------------------------------------------------------------------


def erase_picked_up(db: DbSession, *, booking_id: int) -> int:
    """The cards of a booking completed at the counter leave the list: how many went."""
    digests = select(BookingMember.notice_number_hmac).where(
        BookingMember.booking_id == booking_id, BookingMember.notice_number_hmac.is_not(None)
    )
    result = db.execute(delete(ReadyCard).where(ReadyCard.notice_number_hmac.in_(digests)))
    return int(result.rowcount)  # type: ignore[attr-defined]


def erase_ready_cards(db: DbSession, *, before: datetime, everything: bool = False) -> int:
    """Retention: the cards last imported before ``before`` (or, ``everything``, every card)
    leave the list. A later import that lists a card again keeps it."""
    query = delete(ReadyCard)
    if not everything:
        query = query.where(ReadyCard.imported_at < bindparam("before", type_=UTCDateTime()))
    result = db.execute(query, {} if everything else {"before": before})
    return int(result.rowcount)  # type: ignore[attr-defined]
