"""What the engine needs besides the database: keys, rules and a clock, carried on the session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session as DbSession

from booking.personal import Vault

TOKYO = ZoneInfo("Asia/Tokyo")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class BookingRules:
    hold_minutes: int = 10
    min_days_ahead: int = 1
    max_days_ahead: int = 45
    release_delay_minutes: int = 0
    max_party_size: int = 6
    max_active_per_phone: int = 3
    # How long a waitlist offer keeps its seats for the resident before the next is offered.
    waitlist_offer_minutes: int = 30
    # Cancellations a phone number may make itself in a month (Tokyo); 0: no limit.
    max_cancels_per_month: int = 5


@dataclass(frozen=True)
class BookingContext:
    vault: Vault
    rules: BookingRules = field(default_factory=BookingRules)
    clock: Callable[[], datetime] = utc_now
    # Pickups against the cards that have arrived (booking.cards): off, refuse or warn.
    ready_cards: str = "off"

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        return self.clock().astimezone(TOKYO).date()


def context(db: DbSession) -> BookingContext:
    """The context the session factory attached (config wires it; tests pass their own)."""
    ctx = db.info.get("booking")
    if not isinstance(ctx, BookingContext):
        raise RuntimeError("database session has no BookingContext in session.info['booking']")
    return ctx
