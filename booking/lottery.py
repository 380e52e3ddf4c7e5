"""The lottery (抽選) for the busiest sessions: a manager keeps chosen sessions for a lottery
with an application window; households apply (web, phone, agent) with up to three preferred
times, one application per notice number; at the draw time one job draws and books the winners
through the engine.

The draw itself (``booking.draw``, re-exported here) is a pure function of the seats offered,
the applications and a seed: anyone holding the published record (``public_record``) can run it
again and get the same result (``verify``). The record holds no personal data: applications
appear by number.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from booking import cards, service
from booking.availability import check_party
from booking.context import TOKYO, context
from booking.draw import ALGORITHM, Drawn, Entry, draw, input_digest, verify
from booking.errors import BookingError
from booking.lottery_waitlist import offer_free_seats, offer_waitlist
from booking.models import (
    Lottery,
    LotteryApplication,
    LotteryEntrant,
    Session,
    Slot,
)
from booking.personal import Sealed, normalise_notice_number, seal
from booking.views import MemberView, ResidentInput

MOST_PREFERENCES = 3


# --- Lotteries: keeping sessions for one, applying -------------------------------------------


@dataclass(frozen=True)
class LotterySlot:
    id: int
    venue_id: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    booked: int


@dataclass(frozen=True)
class LotteryView:
    id: int
    service_id: str
    applications_from: datetime
    applications_until: datetime
    draw_at: datetime
    status: str
    drawn_at: datetime | None
    seed: str | None
    input_digest: str | None
    slots: list[LotterySlot]
    applications: int

    def accepting(self, now: datetime) -> bool:
        return self.status == "open" and self.applications_from <= now < self.applications_until


@dataclass(frozen=True)
class ApplicationView:
    id: int  # the application number the resident is given (and finds in the record)
    lottery_id: int
    channel: str
    party_size: int
    preferences: list[int]
    outcome: str
    booking_id: int | None
    created_at: datetime


def create_lottery(
    db: DbSession,
    *,
    session_ids: Sequence[int],
    applications_from: datetime,
    applications_until: datetime,
    draw_at: datetime,
) -> LotteryView:
    """Keep sessions for a lottery: from now on their slots are refused to every first-come
    claim (bookings already made stay). The sessions must be of one service, still to come,
    in no other lottery; the window opens, closes, then the draw comes, before the sessions."""
    now = context(db).now()
    if not session_ids:
        raise BookingError("lottery_sessions", field="sessions")
    rows = db.execute(
        select(Slot.id, Slot.service_id, Slot.starts_at, Slot.lottery_id)
        .join(Session, Session.id == Slot.session_id)
        .where(Session.id.in_(session_ids), Session.status == "open")
        .order_by(Slot.id)
        .with_for_update(of=Slot)  # the slot rows in ascending id order: the engine's lock order
    ).all()
    found = set(
        db.execute(select(Slot.session_id).where(Slot.id.in_([r.id for r in rows]))).scalars()
    )
    services = {r.service_id for r in rows}
    if (
        found != set(session_ids)
        or len(services) != 1
        or any(r.lottery_id is not None or r.starts_at <= now for r in rows)
    ):
        raise BookingError("lottery_sessions", field="sessions")
    first = min(r.starts_at for r in rows)
    if not (applications_from < applications_until <= draw_at < first) or draw_at <= now:
        raise BookingError("lottery_times", field="draw_at")
    lottery = Lottery(
        service_id=services.pop(),
        applications_from=applications_from,
        applications_until=applications_until,
        draw_at=draw_at,
        status="open",
        created_at=now,
    )
    db.add(lottery)
    db.flush()
    db.execute(update(Slot).where(Slot.id.in_([r.id for r in rows])).values(lottery_id=lottery.id))
    return get_lottery(db, lottery_id=lottery.id)


def get_lottery(db: DbSession, *, lottery_id: int) -> LotteryView:
    """A lottery with its times (slots) and how many applied."""
    lottery = db.get(Lottery, lottery_id, populate_existing=True)
    if lottery is None:
        raise BookingError("lottery_not_found", field="lottery")
    return _view(db, lottery)


def _view(db: DbSession, lottery: Lottery) -> LotteryView:
    slots = [
        LotterySlot(*row)
        for row in db.execute(
            select(Slot.id, Slot.venue_id, Slot.starts_at, Slot.ends_at, Slot.capacity, Slot.booked)
            .where(Slot.lottery_id == lottery.id)
            .order_by(Slot.starts_at, Slot.venue_id, Slot.id)
        )
    ]
    if not slots and lottery.record:  # seats released after the draw: the record still says
        record: dict[str, Any] = dict(lottery.record)
        slots = [
            LotterySlot(int(s), v, datetime.fromisoformat(a), datetime.fromisoformat(b), c, 0)
            for s, v, a, b, c in record.get("times", [])
        ]
    count = db.execute(
        select(func.count())
        .select_from(LotteryApplication)
        .where(LotteryApplication.lottery_id == lottery.id)
    ).scalar_one()
    return LotteryView(
        lottery.id,
        lottery.service_id,
        lottery.applications_from,
        lottery.applications_until,
        lottery.draw_at,
        lottery.status,
        lottery.drawn_at,
        lottery.seed,
        lottery.input_digest,
        slots,
        int(count),
    )


def lotteries(db: DbSession, *, accepting_only: bool = False) -> list[LotteryView]:
    """Every lottery, the latest draw first; or only those taking applications now."""
    query = select(Lottery).order_by(Lottery.draw_at.desc(), Lottery.id.desc())
    if accepting_only:
        now = context(db).now()
        query = query.where(
            Lottery.status == "open",
            Lottery.applications_from <= now,
            Lottery.applications_until > now,
        )
    return [_view(db, lottery) for lottery in db.execute(query).scalars()]


def apply(
    db: DbSession,
    *,
    lottery_id: int,
    party: int,
    resident: ResidentInput,
    preferences: Sequence[int],
    channel: str,
) -> ApplicationView:
    """A household applies: every member with a notice number, one to three different preferred
    times of this lottery, in the window. One application per notice number: a number that
    applied already (even at this same moment, from another channel) is refused."""
    ctx = context(db)
    lottery = get_lottery(db, lottery_id=lottery_id)
    now = ctx.now()
    if not lottery.accepting(now):
        raise BookingError(
            "lottery_not_accepting",
            field="lottery",
            opens=_local(lottery.applications_from),
            closes=_local(lottery.applications_until),
        )
    if channel not in service.CHANNELS:
        raise BookingError("invalid_request", field="channel")
    check_party(ctx, party)
    wanted = _checked_preferences(lottery, preferences)
    if len(resident.members) != party or not all(m.notice_number for m in resident.members):
        raise BookingError("lottery_notice_numbers", field="members")
    sealed = seal(ctx.vault, ctx.today(), True, party, resident, {"lottery": lottery_id})
    if ctx.ready_cards == "refuse":  # a winner is booked at the draw: each time's venue now
        for slot_id in wanted:
            cards.check_slot(db, slot_id=slot_id, digests=sealed.notice_digests())
    try:
        # A savepoint: the unique (lottery, notice number) constraint is the arbiter between
        # two applications racing with the same number; the loser's rows go, nothing else.
        with db.begin_nested():
            application = LotteryApplication(
                lottery_id=lottery_id,
                channel=channel,
                party_size=party,
                **sealed.columns(),
                proxy=resident.proxy,
                preferences=wanted,
                outcome="pending",
                created_at=now,
            )
            db.add(application)
            db.flush()
            db.add_all(
                LotteryEntrant(lottery_id=lottery_id, application_id=application.id, **row)
                for row in sealed.member_rows()
            )
            db.flush()
    except IntegrityError:
        raise _already_applied(db, lottery_id, sealed) from None
    return _application_view(application)


def _checked_preferences(lottery: LotteryView, preferences: Sequence[int]) -> list[int]:
    """One to three different times, each one of this lottery's."""
    offered = {s.id for s in lottery.slots}
    wanted = list(preferences)
    if (
        not 1 <= len(wanted) <= MOST_PREFERENCES
        or len(set(wanted)) != len(wanted)
        or not set(wanted) <= offered
    ):
        raise BookingError("lottery_preferences", field="preferences", most=MOST_PREFERENCES)
    return wanted


def _already_applied(db: DbSession, lottery_id: int, sealed: Sealed) -> BookingError:
    """Which of the household's numbers applied already (the first, as the resident typed it)."""
    digests = sealed.notice_digests()
    taken = set(
        db.execute(
            select(LotteryEntrant.notice_number_hmac).where(
                LotteryEntrant.lottery_id == lottery_id,
                LotteryEntrant.notice_number_hmac.in_(digests),
            )
        ).scalars()
    )
    for view, digest in zip(sealed.member_views, digests, strict=True):
        if digest in taken:
            return BookingError(
                "lottery_already_applied", field="members", notice=view.notice_number
            )
    return BookingError("lottery_already_applied", field="members", notice="")


def has_applied(db: DbSession, *, lottery_id: int, notice_number: str) -> bool:
    """Whether this notice number is in an application for the lottery (a caller's check)."""
    digest = context(db).vault.digest(normalise_notice_number(notice_number))
    return (
        db.execute(
            select(LotteryEntrant.id).where(
                LotteryEntrant.lottery_id == lottery_id,
                LotteryEntrant.notice_number_hmac == digest,
            )
        ).first()
        is not None
    )


def applications_of(db: DbSession, *, lottery_id: int) -> list[ApplicationView]:
    """A lottery's applications by number (staff: outcomes and the bookings made)."""
    rows = db.execute(
        select(LotteryApplication)
        .where(LotteryApplication.lottery_id == lottery_id)
        .order_by(LotteryApplication.id)
        .execution_options(populate_existing=True)
    ).scalars()
    return [_application_view(a) for a in rows]


def _application_view(a: LotteryApplication) -> ApplicationView:
    return ApplicationView(
        a.id,
        a.lottery_id,
        a.channel,
        a.party_size,
        list(a.preferences),
        a.outcome,
        a.booking_id,
        a.created_at,
    )


def _local(at: datetime) -> str:
    return at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M")


# --- The draw job's work ---------------------------------------------------------------------


@dataclass(frozen=True)
class DrawOutcome:
    lottery_id: int
    won: dict[int, int]  # application -> booking made
    # Applications not drawn, in the draw's order: put on the waitlist in it, and told so.
    lost: list[int]


def due(db: DbSession) -> list[int]:
    """Lotteries whose draw time has come and that are not drawn yet."""
    return list(
        db.execute(
            select(Lottery.id)
            .where(Lottery.status == "open", Lottery.draw_at <= context(db).now())
            .order_by(Lottery.draw_at, Lottery.id)
        ).scalars()
    )


def run_draw(db: DbSession, *, lottery_id: int, seed: str | None = None) -> DrawOutcome | None:
    """Draw a lottery whose time has come, once: the lottery row is claimed (open → drawn) in
    the same transaction as the bookings and the record, so a second run, even at the same
    moment, finds it drawn and does nothing (None). Winners are booked through the engine."""
    ctx = context(db)
    now = ctx.now()
    # The claim: a racing run waits here on the row lock, then sees ``drawn`` and stops.
    claimed = db.execute(
        update(Lottery)
        .where(Lottery.id == lottery_id, Lottery.status == "open", Lottery.draw_at <= now)
        .values(status="drawn", drawn_at=now)
        .returning(Lottery.service_id, Lottery.applications_until)
    ).first()
    if claimed is None:
        return None
    slots = _locked_slots(db, lottery_id)
    seats = {s.id: max(s.capacity - s.booked - s.held, 0) if s.is_open else 0 for s in slots}
    applications = list(
        db.execute(
            select(LotteryApplication)
            .where(LotteryApplication.lottery_id == lottery_id)
            .order_by(LotteryApplication.id)
        ).scalars()
    )
    entries = [Entry(a.id, a.party_size, tuple(a.preferences)) for a in applications]
    seed = seed or secrets.token_hex(16)
    drawn = draw(entries, seats, seed)
    won, lost = _book_winners(db, lottery_id, applications, drawn, now)
    digest = input_digest(entries, seats)
    record = _public_record(lottery_id, claimed, now, slots, seats, entries, (seed, digest), drawn)
    db.execute(
        update(Lottery)
        .where(Lottery.id == lottery_id)
        .values(seed=seed, input_digest=digest, record=record)
    )
    db.flush()
    # The losers join the waitlist in the draw's order: the list is as fair as the draw.
    losers = set(lost)
    lost = [a for a in drawn.order if a in losers]
    days: set[tuple[str, str, date]] = set()
    for application_id in lost:
        joined = offer_waitlist(db, lottery_id=lottery_id, application_id=application_id)
        if joined is not None:
            days.add(joined)
    offer_free_seats(db, days)
    return DrawOutcome(lottery_id, won, lost)


def _public_record(
    lottery_id: int,
    claimed: Row[str, datetime],
    now: datetime,
    slots: Sequence[Row[int, str, datetime, datetime, int, int, int, bool]],
    seats: dict[int, int],
    entries: list[Entry],
    seed_and_digest: tuple[str, str],
    drawn: Drawn,
) -> dict[str, object]:
    """What the ward may publish once drawn, enough for anyone to re-run the draw: no
    personal data."""
    return {
        "lottery": lottery_id,
        "service": claimed.service_id,
        "applications_until": claimed.applications_until.isoformat(),
        "drawn_at": now.isoformat(),
        "algorithm": ALGORITHM,
        "times": [
            [s.id, s.venue_id, s.starts_at.isoformat(), s.ends_at.isoformat(), s.capacity]
            for s in slots
        ],
        "seats": [[slot, seats[slot]] for slot in sorted(seats)],
        "applications": [[e.application, e.party, list(e.preferences)] for e in entries],
        "input_digest": seed_and_digest[1],
        "seed": seed_and_digest[0],
        "order": drawn.order,
        "results": [[e.application, drawn.results[e.application]] for e in entries],
    }


def _locked_slots(
    db: DbSession, lottery_id: int
) -> Sequence[Row[int, str, datetime, datetime, int, int, int, bool]]:
    """The lottery's times, their lapsed holds given back, locked for the draw."""
    slot_ids = list(
        db.execute(select(Slot.id).where(Slot.lottery_id == lottery_id).order_by(Slot.id)).scalars()
    )
    for slot_id in slot_ids:  # holds made before the lottery, lapsed since, give their seats back
        service.reclaim_expired_holds(db, slot_id=slot_id)
    return db.execute(
        select(
            Slot.id,
            Slot.venue_id,
            Slot.starts_at,
            Slot.ends_at,
            Slot.capacity,
            Slot.booked,
            Slot.held,
            Slot.is_open,
        )
        .where(Slot.id.in_(slot_ids))
        .order_by(Slot.id)
        .with_for_update()  # ascending ids, the engine's lock order: the seats cannot move now
    ).all()


def _book_winners(
    db: DbSession,
    lottery_id: int,
    applications: list[LotteryApplication],
    drawn: Drawn,
    now: datetime,
) -> tuple[dict[int, int], list[int]]:
    """Each winner booked through the engine, each application's outcome written; the won
    (application -> booking) and the lost, in application order."""
    won: dict[int, int] = {}
    lost: list[int] = []
    for application in applications:
        place = drawn.results[application.id]
        booking_id: int | None = None
        if place is not None:
            booking_id = service.book_drawn(
                db,
                lottery_id=lottery_id,
                slot_id=place,
                party=application.party_size,
                channel=application.channel,
                sealed=_sealed(db, application),
                proxy=application.proxy,
            )
        application.decided_at = now
        if booking_id is None:
            application.outcome = "lost"
            lost.append(application.id)
        else:
            application.outcome, application.booking_id = "won", booking_id
            won[application.id] = booking_id
    return won, lost


def _sealed(db: DbSession, a: LotteryApplication) -> Sealed:
    """An application's sealed contact and members, as the engine's booking rows take them."""
    vault = context(db).vault
    members = db.execute(
        select(LotteryEntrant)
        .where(LotteryEntrant.application_id == a.id)
        .order_by(LotteryEntrant.position)
    ).scalars()
    rows: list[tuple[int, str | None, str | None, bool, bool]] = []
    views: list[MemberView] = []
    for m in members:
        rows.append(
            (m.position, m.notice_number_enc, m.notice_number_hmac, m.braille, m.e_certificate)
        )
        notice = vault.decrypt(m.notice_number_enc) if m.notice_number_enc else None
        views.append(MemberView(m.position, notice, m.braille, m.e_certificate))
    birth = vault.decrypt(a.birth_date_enc) if a.birth_date_enc else ""
    return Sealed(
        name_kana_enc=a.name_kana_enc,
        phone_enc=a.phone_enc or "",
        phone_hmac=a.phone_hmac or "",
        phone_line_type=a.phone_line_type or "",
        birth_date_enc=a.birth_date_enc or "",
        language=a.language,
        members=rows,
        fingerprint="",  # no retry key: the draw runs once
        name_kana=vault.decrypt(a.name_kana_enc) if a.name_kana_enc else None,
        phone=vault.decrypt(a.phone_enc) if a.phone_enc else "",
        birth_date=date.fromisoformat(birth) if birth else date.min,
        member_views=views,
    )


def public_record(db: DbSession, *, lottery_id: int) -> dict[str, Any] | None:
    """What the ward may publish once drawn (no personal data), or None before the draw."""
    lottery = db.get(Lottery, lottery_id, populate_existing=True)
    if lottery is None:
        raise BookingError("lottery_not_found", field="lottery")
    return None if lottery.record is None else dict(lottery.record)


def release_seats(db: DbSession, *, lottery_id: int) -> int:
    """After the draw, give the lottery's times back (the seats no one won, or a winner gave
    up): first to their days' waitlists, the losers first, then to first-come; returns how
    many slots. Before the draw it is refused: the seats are promised."""
    lottery = get_lottery(db, lottery_id=lottery_id)
    if lottery.status != "drawn":
        raise BookingError("lottery_not_drawn", field="lottery")
    slot_ids = list(
        db.execute(
            update(Slot)
            .where(Slot.lottery_id == lottery_id)
            .values(lottery_id=None)
            .returning(Slot.id)
        ).scalars()
    )
    service.offer_freed_seats(db, slot_ids=slot_ids)  # the losers waiting first, then the public
    return len(slot_ids)


def erase_personal_data(db: DbSession, *, before: datetime, everything: bool = False) -> int:
    """Erase the personal data of applications to lotteries drawn before ``before`` (or, with
    ``everything``, of every application): their contact goes, and their notice numbers with
    the rows that kept one application per number (the draw is done; a winner's booking keeps
    its own copy, under the booking's retention). The outcome stays. Returns how many."""
    due = select(LotteryApplication.id).where(LotteryApplication.phone_enc.is_not(None))
    if not everything:
        drawn = select(Lottery.id).where(Lottery.status == "drawn", Lottery.drawn_at < before)
        due = due.where(LotteryApplication.lottery_id.in_(drawn))
    ids = list(db.execute(due).scalars())
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        db.execute(delete(LotteryEntrant).where(LotteryEntrant.application_id.in_(chunk)))
        db.execute(
            update(LotteryApplication)
            .where(LotteryApplication.id.in_(chunk))
            .values(name_kana_enc=None, phone_enc=None, phone_hmac=None, birth_date_enc=None)
        )
    return len(ids)


__all__ = [
    "ALGORITHM",
    "MOST_PREFERENCES",
    "ApplicationView",
    "DrawOutcome",
    "Drawn",
    "Entry",
    "LotterySlot",
    "LotteryView",
    "applications_of",
    "apply",
    "create_lottery",
    "draw",
    "due",
    "erase_personal_data",
    "get_lottery",
    "has_applied",
    "input_digest",
    "lotteries",
    "offer_waitlist",
    "public_record",
    "release_seats",
    "run_draw",
    "verify",
]
