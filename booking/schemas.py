"""The public JSON shapes of /api/v1 (a contract: the IVR, console, web pages and others use it)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from annotated_types import Interval
from pydantic import BaseModel, ConfigDict, Field, field_serializer
from pydantic.config import JsonDict

from booking.context import TOKYO
from booking.languages import Language
from booking.personal import mask_phone
from booking.service import BookingView, HoldView, SlotView
from booking.web import ROW_ID_MAX

ShortText = Annotated[str, Field(max_length=100)]
# Database ids are 32-bit: anything outside is a malformed request (422), not a server error.
# annotated_types, so the same type bounds a model's field and a route's path or query value.
RowId = Annotated[int, Interval(ge=1, le=ROW_ID_MAX)]
# Read loosely so that the engine's own message answers a party it cannot take (it knows the
# ward's MADOGUCHI_MAX_PARTY_SIZE); published as what is really accepted: 1 to that maximum
# (config.app writes the configured figure into the OpenAPI document).
PARTY_MOST = 20  # the highest MADOGUCHI_MAX_PARTY_SIZE a ward may set
PARTY_SCHEMA = {"minimum": 1, "maximum": PARTY_MOST}
Party = Annotated[int, Field(ge=0, le=100, json_schema_extra=PARTY_SCHEMA)]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _tokyo(value: datetime) -> str:
    return value.astimezone(TOKYO).isoformat()


class ServiceOut(_Out):
    id: str
    name_ja: str
    name_en: str
    duration_minutes: int
    requires_notice_number: bool


class VenueOut(_Out):
    id: str
    name_ja: str
    name_en: str
    kind: Literal["main", "branch", "popup"]
    address_ja: str
    address_en: str
    services: list[str] = []


class SlotOut(BaseModel):
    id: int
    venue: str
    service: str
    start: datetime
    end: datetime
    remaining: int

    @field_serializer("start", "end")
    def _local(self, value: datetime) -> str:
        return _tokyo(value)

    @classmethod
    def of(cls, slot: SlotView) -> SlotOut:
        return cls(
            id=slot.id,
            venue=slot.venue_id,
            service=slot.service_id,
            start=slot.starts_at,
            end=slot.ends_at,
            remaining=slot.remaining,
        )


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot_id: RowId
    party_size: Party = 1


class HoldOut(BaseModel):
    id: str
    slot_id: int
    seats: int
    expires_at: datetime

    @field_serializer("expires_at")
    def _local(self, value: datetime) -> str:
        return _tokyo(value)

    @classmethod
    def of(cls, hold: HoldView) -> HoldOut:
        return cls(id=hold.id, slot_id=hold.slot_id, seats=hold.seats, expires_at=hold.expires_at)


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notice_number: ShortText | None = Field(
        default=None, description="交付通知書番号: 3 letters or digits, a hyphen, 6 digits"
    )
    braille: bool = False
    e_certificate: bool = True


# A hold's id as the API hands it out (32 hex digits); any other is not found (404).
HOLD_ID_FORM = {"pattern": "^[0-9a-f]{32}$"}
HoldId = Annotated[str, Field(max_length=64, json_schema_extra=HOLD_ID_FORM)]

# "A slot or a hold, not both": exactly one of the two is given (not null).
SLOT_OR_HOLD: JsonDict = {
    "oneOf": [
        {
            "required": ["slot_id"],
            "properties": {"slot_id": {"type": "integer"}, "hold_id": {"type": "null"}},
        },
        {
            "required": ["hold_id"],
            "properties": {"hold_id": {"type": "string"}, "slot_id": {"type": "null"}},
        },
    ]
}


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=SLOT_OR_HOLD)

    slot_id: RowId | None = None
    hold_id: HoldId | None = None
    party_size: Party = 1
    name_kana: ShortText
    phone: Annotated[str, Field(max_length=30)]
    birth_date: date
    members: list[MemberIn] = Field(default_factory=list, max_length=20)
    language: Language = Field(
        default="ja", description="The language of texts and calls: every one the service speaks"
    )
    proxy: bool = Field(default=False, description="a proxy (代理人) comes in the resident's place")


class SecondFactorIn(BaseModel):
    """The phone number or the birth date given when booking (in the body, never in the URL)."""

    model_config = ConfigDict(extra="forbid")

    phone: Annotated[str, Field(max_length=30)] | None = None
    birth_date: date | None = None


class RescheduleIn(SecondFactorIn):
    model_config = ConfigDict(extra="forbid", json_schema_extra=SLOT_OR_HOLD)

    slot_id: RowId | None = None
    hold_id: HoldId | None = None


class MemberOut(BaseModel):
    position: int
    notice_number: str | None
    braille: bool
    e_certificate: bool


def _mask_notice(number: str | None) -> str | None:
    return None if number is None else number[:4] + "***" + number[-3:]


class BookingOut(BaseModel):
    code: str
    status: str
    channel: str
    service: str
    venue: str
    slot_id: int
    start: datetime
    end: datetime
    party_size: int
    name_kana: str | None
    phone: str | None = Field(description="masked: only the last four digits")
    language: str
    members: list[MemberOut]
    created_at: datetime
    proxy: bool = False

    @field_serializer("start", "end", "created_at")
    def _local(self, value: datetime) -> str:
        return _tokyo(value)

    @classmethod
    def of(cls, booking: BookingView) -> BookingOut:
        return cls(
            code=booking.code,
            status=booking.status,
            channel=booking.channel,
            service=booking.service_id,
            venue=booking.venue_id,
            slot_id=booking.slot_id,
            start=booking.starts_at,
            end=booking.ends_at,
            party_size=booking.party_size,
            name_kana=booking.name_kana,
            phone=mask_phone(booking.phone) if booking.phone else None,
            language=booking.language,
            members=[
                MemberOut(
                    position=m.position,
                    notice_number=_mask_notice(m.notice_number),
                    braille=m.braille,
                    e_certificate=m.e_certificate,
                )
                for m in booking.members
            ],
            created_at=booking.created_at,
            proxy=booking.proxy,
        )


class ErrorProblem(BaseModel):
    field: str
    problem: str
    code: str | None = Field(
        default=None, description="For refused booking input: the code of this field's problem"
    )
    message: dict[str, str] | None = Field(
        default=None, description="For refused booking input: the problem in Japanese and English"
    )


class ErrorBody(BaseModel):
    code: str
    message: dict[str, str]
    field: str | None = None
    problems: list[ErrorProblem] | None = Field(
        default=None,
        description="For a malformed request, or refused booking input: each field and what is "
        "wrong (every field at once)",
    )
    request_id: str | None = Field(
        default=None, description="On a fault of ours (5xx): the id to quote, also in X-Request-ID"
    )


class ErrorOut(BaseModel):
    error: ErrorBody
