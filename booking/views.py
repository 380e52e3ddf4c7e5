"""What the engine hands to the channels and takes from them: plain values, no ORM objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class SlotView:
    id: int
    venue_id: str
    service_id: str
    starts_at: datetime
    ends_at: datetime
    remaining: int


@dataclass(frozen=True)
class HoldView:
    id: str
    slot_id: int
    seats: int
    expires_at: datetime


@dataclass(frozen=True)
class HeldTime:
    """A hold with the time it keeps, for the page where the resident fills in the form."""

    hold: HoldView
    venue_id: str
    service_id: str
    starts_at: datetime
    ends_at: datetime
    live: bool


@dataclass(frozen=True)
class MemberView:
    position: int
    notice_number: str | None
    braille: bool
    e_certificate: bool


@dataclass(frozen=True)
class BookingView:
    id: int
    code: str
    status: str
    channel: str
    slot_id: int
    venue_id: str
    service_id: str
    starts_at: datetime
    ends_at: datetime
    party_size: int
    language: str
    name_kana: str | None
    phone: str | None
    phone_line_type: str | None
    birth_date: date | None
    version: int
    created_at: datetime
    members: list[MemberView] = field(default_factory=list)
    # The counter's times: arrival (check-in) and the call to the counter (the wait between).
    checked_in_at: datetime | None = None
    called_at: datetime | None = None
    proxy: bool = False  # a proxy (代理人) comes in the resident's place


@dataclass(frozen=True)
class MemberInput:
    notice_number: str | None = None
    braille: bool = False
    e_certificate: bool = True


@dataclass(frozen=True)
class ResidentInput:
    """What a resident gives when booking, before validation. The name may be left out only
    where it cannot be typed (the phone line's keypad); staff add it later if needed."""

    name_kana: str | None
    phone: str
    birth_date: date
    language: str = "ja"
    members: list[MemberInput] = field(default_factory=list)
    proxy: bool = False  # a proxy (代理人) will come in the resident's place
