"""Property-based model test: the engine against a plain in-memory model of seats and holds.

Hypothesis drives random sequences of holds, bookings, releases, cancels, moves, sweeps and
clock jumps; after every step the database must agree with the model seat for seat, and every
operation must succeed exactly when the model says it can. Each operation runs in a savepoint
the way a request runs in a transaction: a refusal changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from booking import service
from booking.errors import BookingError
from booking.models import Booking, Slot
from booking.service import ResidentInput
from tests.conftest import FakeClock, SlotMaker, make_context

HOLD_MINUTES = 10
PERSON = ResidentInput(name_kana="モデル タロウ", phone="09011112222", birth_date=date(1970, 5, 5))


@dataclass
class ModelHold:
    slot: int
    seats: int
    expires_at: datetime


@dataclass
class ModelSlot:
    capacity: int
    booked: int = 0
    holds: dict[str, ModelHold] = field(default_factory=dict)

    def held(self) -> int:
        return sum(h.seats for h in self.holds.values())

    def active_held(self, now: datetime) -> int:
        return sum(h.seats for h in self.holds.values() if h.expires_at > now)


class BookingMachine(RuleBasedStateMachine):
    """Drives booking.service and a model side by side."""

    holds = Bundle("holds")
    bookings = Bundle("bookings")

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.conn = engine.connect()
        self.outer = self.conn.begin()
        self.db = Session(
            bind=self.conn,
            join_transaction_mode="create_savepoint",
            info={"booking": make_context(self.clock, hold_minutes=HOLD_MINUTES)},
        )
        self.slots: dict[int, ModelSlot] = {}
        self.ids: list[int] = []
        self.booked: dict[str, tuple[int, int]] = {}  # code -> (slot, party), live bookings

    def teardown(self) -> None:
        self.db.close()
        self.outer.rollback()
        self.conn.close()

    # --- the model's claim: exactly the engine's documented rule --------------------------

    def can_claim(self, slot_id: int, seats: int) -> bool:
        """Seats fit counting every hold row; or, after lapsed holds are reclaimed, counting
        only the live ones. A successful claim keeps the reclaim, a refusal undoes it."""
        slot = self.slots[slot_id]
        if slot.booked + slot.held() + seats <= slot.capacity:
            return True
        return slot.booked + slot.active_held(self.clock()) + seats <= slot.capacity

    def claim(self, slot_id: int, seats: int, *, to_hold: bool = False) -> None:
        slot = self.slots[slot_id]
        if slot.booked + slot.held() + seats > slot.capacity:
            now = self.clock()
            slot.holds = {k: h for k, h in slot.holds.items() if h.expires_at > now}
        if not to_hold:
            slot.booked += seats

    def attempt(self, operation: object) -> tuple[object, BookingError | None]:
        try:
            with self.db.begin_nested():
                return operation(), None  # type: ignore[operator]
        except BookingError as exc:
            return None, exc

    # --- rules ----------------------------------------------------------------------------

    @initialize(capacities=st.lists(st.integers(1, 5), min_size=2, max_size=3))
    def make_slots(self, capacities: list[int]) -> None:
        maker = SlotMaker(self.db)
        for cap in capacities:
            slot_id = maker(cap)
            self.slots[slot_id] = ModelSlot(cap)
            self.ids.append(slot_id)

    @rule(target=holds, index=st.integers(0, 2), seats=st.integers(1, 3))
    def hold(self, index: int, seats: int) -> str:
        slot_id = self.ids[index % len(self.ids)]
        expected = self.can_claim(slot_id, seats)
        made, error = self.attempt(
            lambda: service.create_hold(self.db, slot_id=slot_id, seats=seats, channel="web")
        )
        assert (error is None) == expected, (error, expected)
        if error is not None:
            assert error.code == "slot_full"
            return ""
        assert isinstance(made, service.HoldView)
        self.claim(slot_id, seats, to_hold=True)
        self.slots[slot_id].holds[made.id] = ModelHold(slot_id, seats, made.expires_at)
        return made.id

    @rule(target=bookings, index=st.integers(0, 2), party=st.integers(1, 3))
    def book(self, index: int, party: int) -> str:
        slot_id = self.ids[index % len(self.ids)]
        expected = self.can_claim(slot_id, party)
        made, error = self.attempt(
            lambda: service.book(
                self.db, slot_id=slot_id, party=party, resident=PERSON, channel="web"
            )
        )
        assert (error is None) == expected, (error, expected)
        if error is not None:
            assert error.code == "slot_full"
            return ""
        assert isinstance(made, service.BookingView)
        self.claim(slot_id, party)
        self.booked[made.code] = (slot_id, party)
        return made.code

    def _find_hold(self, hold_id: str) -> ModelHold | None:
        for slot in self.slots.values():
            if hold_id in slot.holds:
                return slot.holds[hold_id]
        return None

    @rule(target=bookings, hold_id=consumes(holds))
    def book_from_hold(self, hold_id: str) -> str:
        held = self._find_hold(hold_id)
        if held is None:  # never made, used, released or reclaimed
            _, error = self.attempt(
                lambda: service.book(
                    self.db, hold_id=hold_id or "none", party=1, resident=PERSON, channel="web"
                )
            )
            assert error is not None
            assert error.code == "hold_not_found"
            return ""
        slot = self.slots[held.slot]
        live = held.expires_at > self.clock()
        if live:
            expected = True
        else:  # a lapsed hold gives its seats back, then books like anyone else
            others = {k: h for k, h in slot.holds.items() if k != hold_id}
            probe = ModelSlot(slot.capacity, slot.booked, others)
            expected = (
                probe.booked + probe.held() + held.seats <= probe.capacity
                or probe.booked + probe.active_held(self.clock()) + held.seats <= probe.capacity
            )
        made, error = self.attempt(
            lambda: service.book(
                self.db, hold_id=hold_id, party=held.seats, resident=PERSON, channel="web"
            )
        )
        assert (error is None) == expected, (error, expected, live)
        if error is not None:
            assert error.code == "hold_expired"
            return ""
        assert isinstance(made, service.BookingView)
        del slot.holds[hold_id]
        if not live:
            self.claim(held.slot, held.seats)
        else:
            slot.booked += held.seats
        self.booked[made.code] = (held.slot, held.seats)
        return made.code

    @rule(hold_id=consumes(holds))
    def release(self, hold_id: str) -> None:
        held = self._find_hold(hold_id)
        _, error = self.attempt(lambda: service.release_hold(self.db, hold_id=hold_id or "none"))
        if held is None:
            assert error is not None
            assert error.code == "hold_not_found"
            return
        assert error is None
        del self.slots[held.slot].holds[hold_id]

    @rule(code=consumes(bookings))
    def cancel(self, code: str) -> None:
        if code not in self.booked:
            return
        slot_id, party = self.booked.pop(code)
        _, error = self.attempt(lambda: service.cancel(self.db, code=code, phone=PERSON.phone))
        assert error is None
        self.slots[slot_id].booked -= party

    @rule(code=bookings, index=st.integers(0, 2))
    def move(self, code: str, index: int) -> None:
        if code not in self.booked:
            return
        old, party = self.booked[code]
        new = self.ids[index % len(self.ids)]
        expected = new != old and self.can_claim(new, party)
        _, error = self.attempt(
            lambda: service.reschedule(self.db, code=code, phone=PERSON.phone, slot_id=new)
        )
        assert (error is None) == expected, (error, expected)
        if error is not None:
            assert error.code == ("same_slot" if new == old else "slot_full")
            return
        self.claim(new, party)
        self.slots[old].booked -= party
        self.booked[code] = (new, party)

    @rule(minutes=st.integers(1, 12))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)

    @rule()
    def sweep(self) -> None:
        # Slot by slot: other tests' committed holds elsewhere in the database are not ours.
        seats, error = self.attempt(
            lambda: sum(service.reclaim_expired_holds(self.db, slot_id=i) for i in self.ids)
        )
        assert error is None
        now = self.clock()
        expected = 0
        for slot in self.slots.values():
            expected += sum(h.seats for h in slot.holds.values() if h.expires_at <= now)
            slot.holds = {k: h for k, h in slot.holds.items() if h.expires_at > now}
        assert seats == expected

    # --- what must always hold ------------------------------------------------------------

    @invariant()
    def database_agrees_with_the_model(self) -> None:
        if not self.ids:
            return
        rows = self.db.execute(
            select(Slot.id, Slot.capacity, Slot.booked, Slot.held).where(Slot.id.in_(self.ids))
        ).all()
        for slot_id, cap, booked, held in rows:
            model = self.slots[slot_id]
            assert (cap, booked, held) == (model.capacity, model.booked, model.held())
            assert booked + held <= cap
            live = self.db.execute(
                select(Booking.party_size).where(
                    Booking.slot_id == slot_id, Booking.status == "booked"
                )
            ).scalars()
            assert sum(live) == booked

    @invariant()
    def availability_shows_the_live_free_seats(self) -> None:
        if not self.ids:
            return
        shown = {
            s.id: s.remaining
            for s in service.availability(
                self.db,
                service_id="application_help",
                venue_id="main",
                start=date(2027, 1, 12),
                end=date(2027, 1, 25),
                limit=500,
            )
        }
        now = self.clock()
        for slot_id, model in self.slots.items():
            free = model.capacity - model.booked - model.active_held(now)
            assert shown.get(slot_id, 0) == free, (slot_id, shown.get(slot_id), free)


def test_engine_matches_the_model(engine: Engine) -> None:
    examples = 60 if engine.dialect.name == "sqlite" else 40
    run_state_machine_as_test(  # type: ignore[no-untyped-call]
        lambda: BookingMachine(engine),
        settings=settings(
            max_examples=examples,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
