"""Application help (申請補助) at the counter, recorded (seed 002, item ⑤): the contractor prints
two copies of the application details on the help terminal, hands one to the applicant and the
other to the ward's staff at the end of each day's work, face to face.

So a help visit (a booking for the service, or a walk-in) is completed here with what happened:
the application sent or not, the applicant's copy handed over or not, one ward's copy per
application sent. At the day's end the ward's copies of one staff member at one venue go on a
handover sheet that the person handing over and the ward's receiver confirm; a confirmed sheet
is frozen, and copies recorded later wait for the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session as DbSession

from booking.changes import set_status
from booking.context import TOKYO, context
from booking.counter_day import complete_walk_in
from booking.errors import BookingError
from booking.models import ApplicationHelp, Booking, HandoverSheet, Slot, WalkIn

HELP_SERVICE = "application_help"


@dataclass(frozen=True)
class HelpVisit:
    """One completed help visit as a handover sheet lists it: a booking code or a queue number,
    never a name."""

    id: int
    booking_code: str | None
    number: int | None
    party_size: int
    sent: bool
    copy_given: bool
    ward_copies: int
    recorded_at: datetime

    @property
    def label(self) -> str:
        return f"予約番号 {self.booking_code}" if self.booking_code else f"当日受付 {self.number}番"


@dataclass(frozen=True)
class SheetView:
    """A staff member's handover sheet at a venue on a day: confirmed (``id`` set, frozen), or
    the copies still waiting to be handed over (``id`` None)."""

    venue_id: str
    day: date
    staff_id: int
    visits: list[HelpVisit] = field(default_factory=list)
    id: int | None = None
    receiver_id: int | None = None
    confirmed_at: datetime | None = None

    @property
    def copies(self) -> int:
        return sum(v.ward_copies for v in self.visits)

    @property
    def handed(self) -> list[HelpVisit]:
        """The visits whose ward's copy is on this sheet (the others sent nothing)."""
        return [v for v in self.visits if v.ward_copies]

    @property
    def not_sent(self) -> int:
        return sum(1 for v in self.visits if not v.sent)


@dataclass(frozen=True)
class HelpMonth:
    """A venue's application help over a period, for the monthly report."""

    venue_id: str
    visits: int = 0  # help bookings that came (checked in or completed) and help walk-ins
    completed: int = 0
    sent: int = 0  # visits recorded with the application sent
    not_sent: int = 0
    copies_given: int = 0  # applicants who took their copy
    copies_handed_over: int = 0  # ward's copies on confirmed sheets
    copies_waiting: int = 0  # ward's copies recorded but on no confirmed sheet yet


def _record(
    db: DbSession,
    *,
    venue_id: str,
    party: int,
    staff_id: int,
    sent: bool,
    copy_given: bool,
    booking_id: int | None = None,
    walk_in_id: int | None = None,
) -> None:
    if copy_given and not sent:
        raise BookingError("help_copy_without_sending", field="copy_given")
    ctx = context(db)
    db.add(
        ApplicationHelp(
            venue_id=venue_id,
            day=ctx.today(),
            booking_id=booking_id,
            walk_in_id=walk_in_id,
            staff_id=staff_id,
            sent=sent,
            copy_given=copy_given,
            ward_copies=party if sent else 0,  # one application (and its copies) a person
            recorded_at=ctx.now(),
        )
    )
    db.flush()


def complete_help_booking(
    db: DbSession, *, booking_id: int, staff_id: int, sent: bool, copy_given: bool
) -> str:
    """The counter completes a checked-in help booking with what happened at the terminal,
    recorded with the staff member; the booking's code."""
    found = db.execute(
        select(Booking.service_id, Booking.venue_id, Booking.party_size, Booking.code).where(
            Booking.id == booking_id
        )
    ).one_or_none()
    if found is None:
        raise BookingError("booking_not_found")
    if found.service_id != HELP_SERVICE:
        raise BookingError("not_application_help")
    if copy_given and not sent:  # before the status changes: nothing to roll back
        raise BookingError("help_copy_without_sending", field="copy_given")
    # Refused unless checked in, so a visit is recorded once: completed stays completed.
    set_status(db, booking_id=booking_id, status="completed")
    _record(
        db,
        venue_id=found.venue_id,
        party=found.party_size,
        staff_id=staff_id,
        sent=sent,
        copy_given=copy_given,
        booking_id=booking_id,
    )
    return str(found.code)


def complete_help_walk_in(
    db: DbSession, *, venue_id: str, number: int, staff_id: int, sent: bool, copy_given: bool
) -> int:
    """The counter completes today's help walk-in ``number`` with what happened at the
    terminal, recorded with the staff member; refused once completed (recorded once)."""
    today = context(db).today()
    found = db.execute(
        select(WalkIn.id, WalkIn.service_id, WalkIn.party_size, WalkIn.completed_at)
        .where(WalkIn.venue_id == venue_id, WalkIn.day == today, WalkIn.number == number)
        .with_for_update()  # two clicks at once: the second waits and sees it completed
    ).one_or_none()
    if found is None:
        raise BookingError("walk_in_not_found", field="number")
    if found.service_id != HELP_SERVICE:
        raise BookingError("not_application_help")
    if found.completed_at is not None:
        raise BookingError("help_already_recorded")
    if copy_given and not sent:
        raise BookingError("help_copy_without_sending", field="copy_given")
    complete_walk_in(db, venue_id=venue_id, number=number)
    _record(
        db,
        venue_id=venue_id,
        party=found.party_size,
        staff_id=staff_id,
        sent=sent,
        copy_given=copy_given,
        walk_in_id=found.id,
    )
    return number


_VISITS = (
    select(
        ApplicationHelp.id,
        Booking.code,
        WalkIn.number,
        func.coalesce(Booking.party_size, WalkIn.party_size),
        ApplicationHelp.sent,
        ApplicationHelp.copy_given,
        ApplicationHelp.ward_copies,
        ApplicationHelp.recorded_at,
        ApplicationHelp.staff_id,
        ApplicationHelp.sheet_id,
    )
    .outerjoin(Booking, Booking.id == ApplicationHelp.booking_id)
    .outerjoin(WalkIn, WalkIn.id == ApplicationHelp.walk_in_id)
    .order_by(ApplicationHelp.recorded_at, ApplicationHelp.id)
)


def handover_sheets(db: DbSession, *, venue_id: str, day: date) -> list[SheetView]:
    """A venue's handover sheets of a day: the confirmed ones in order, then each staff
    member's copies still to hand over."""
    rows = db.execute(
        _VISITS.where(ApplicationHelp.venue_id == venue_id, ApplicationHelp.day == day)
    ).all()
    visits: dict[tuple[int | None, int], list[HelpVisit]] = {}
    for row in rows:
        visit = HelpVisit(*row[:8])
        visits.setdefault((row.sheet_id, int(row.staff_id)), []).append(visit)
    confirmed = db.execute(
        select(HandoverSheet)
        .where(HandoverSheet.venue_id == venue_id, HandoverSheet.day == day)
        .order_by(HandoverSheet.confirmed_at, HandoverSheet.id)
    ).scalars()
    sheets = [
        SheetView(
            venue_id,
            day,
            s.staff_id,
            visits.get((s.id, s.staff_id), []),
            s.id,
            s.receiver_id,
            s.confirmed_at,
        )
        for s in confirmed
    ]
    for (sheet_id, staff_id), listed in visits.items():
        if sheet_id is None:
            sheets.append(SheetView(venue_id, day, staff_id, listed))
    return sheets


def confirm_handover(
    db: DbSession,
    *,
    venue_id: str,
    day: date,
    staff_id: int,
    receiver_id: int,
    visit_ids: list[int],
) -> SheetView:
    """The staff member hands their copies of the day to the ward's receiver (another person):
    the sheet shown (``visit_ids``) is confirmed and frozen. If a visit was recorded since the
    sheet was shown, nothing is confirmed: the sheet must be looked at again."""
    if staff_id == receiver_id:
        raise BookingError("handover_same_person", field="receiver")
    # Locked so two confirmations of the same sheet cannot both take its visits; a visit
    # recorded meanwhile is not among them and waits for the next sheet.
    waiting = (
        db.execute(
            select(ApplicationHelp.id)
            .where(
                ApplicationHelp.venue_id == venue_id,
                ApplicationHelp.day == day,
                ApplicationHelp.staff_id == staff_id,
                ApplicationHelp.sheet_id.is_(None),
            )
            .with_for_update()
        )
        .scalars()
        .all()
    )
    if not waiting:
        raise BookingError("handover_nothing")
    if sorted(waiting) != sorted(visit_ids):
        raise BookingError("handover_changed")
    copies = db.execute(
        select(func.coalesce(func.sum(ApplicationHelp.ward_copies), 0)).where(
            ApplicationHelp.id.in_(waiting)
        )
    ).scalar_one()
    sheet = HandoverSheet(
        venue_id=venue_id,
        day=day,
        staff_id=staff_id,
        receiver_id=receiver_id,
        copies=int(copies),
        confirmed_at=context(db).now(),
    )
    db.add(sheet)
    db.flush()
    db.execute(
        update(ApplicationHelp).where(ApplicationHelp.id.in_(waiting)).values(sheet_id=sheet.id)
    )
    for view in handover_sheets(db, venue_id=venue_id, day=day):
        if view.id == sheet.id:
            return view
    raise RuntimeError("the confirmed sheet vanished")  # pragma: no cover


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    return (
        datetime.combine(first, time(0), TOKYO),
        datetime.combine(last + timedelta(days=1), time(0), TOKYO),
    )


def application_help_period(db: DbSession, *, first: date, last: date) -> list[HelpMonth]:
    """Application help from ``first`` to ``last`` (Tokyo days), by venue: visits, completed,
    sent, applicants' copies, and the ward's copies handed over or still waiting."""
    start, end = _bounds(first, last)
    tallies: dict[str, dict[str, int]] = {}

    def add(venue_id: str, name: str, n: int) -> None:
        tally = tallies.setdefault(venue_id, {})
        tally[name] = tally.get(name, 0) + int(n)

    booked = db.execute(
        select(Booking.venue_id, Booking.status, func.count())
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            Booking.service_id == HELP_SERVICE,
            Booking.status.in_(("checked_in", "completed")),
            Slot.starts_at >= start,
            Slot.starts_at < end,
        )
        .group_by(Booking.venue_id, Booking.status)
    )
    for venue_id, status, n in booked:
        add(venue_id, "visits", n)
        if status == "completed":
            add(venue_id, "completed", n)
    walked = db.execute(
        select(WalkIn.venue_id, WalkIn.completed_at.is_not(None), func.count())
        .where(WalkIn.service_id == HELP_SERVICE, WalkIn.day >= first, WalkIn.day <= last)
        .group_by(WalkIn.venue_id, WalkIn.completed_at.is_not(None))
    )
    for venue_id, completed, n in walked:
        add(venue_id, "visits", n)
        if completed:
            add(venue_id, "completed", n)
    recorded = db.execute(
        select(
            ApplicationHelp.venue_id,
            ApplicationHelp.sent,
            ApplicationHelp.copy_given,
            ApplicationHelp.sheet_id.is_not(None),
            func.count(),
            func.coalesce(func.sum(ApplicationHelp.ward_copies), 0),
        )
        .where(ApplicationHelp.day >= first, ApplicationHelp.day <= last)
        .group_by(
            ApplicationHelp.venue_id,
            ApplicationHelp.sent,
            ApplicationHelp.copy_given,
            ApplicationHelp.sheet_id.is_not(None),
        )
    )
    for venue_id, sent, given, on_sheet, n, copies in recorded:
        add(venue_id, "sent" if sent else "not_sent", n)
        if given:
            add(venue_id, "copies_given", n)
        add(venue_id, "copies_handed_over" if on_sheet else "copies_waiting", copies)
    return [HelpMonth(venue_id, **tally) for venue_id, tally in sorted(tallies.items())]
