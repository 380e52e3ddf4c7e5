"""/api/v1: thin routers over booking.service. Second factors travel in bodies, never URLs."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from booking import service
from booking.errors import BookingError
from booking.languages import EVERY, Offered
from booking.proof_of_work import refuse_without_proof
from booking.schemas import (
    HOLD_ID_FORM,
    PARTY_SCHEMA,
    BookingIn,
    BookingOut,
    ErrorOut,
    HoldIn,
    HoldOut,
    RescheduleIn,
    SecondFactorIn,
    ServiceOut,
    SlotOut,
    VenueOut,
)
from booking.service import MemberInput, ResidentInput
from booking.web import json_response, read_only_unit, refuse_when_over_limit, unit_of_work

router = APIRouter(prefix="/api/v1", tags=["booking"])
# Every answer a route of the API may give besides its success, in the one error shape: 400 an
# unreadable body, 404 not found, 409 taken or changed, 422 refused by a rule, 429 too many
# tries, 500 our fault, 503 the database away (try again after Retry-After).
FAULTS: dict[int | str, dict[str, object]] = {code: {"model": ErrorOut} for code in (500, 503)}
ERRORS: dict[int | str, dict[str, object]] = {
    **{code: {"model": ErrorOut} for code in (400, 404, 409, 422, 429)},
    **FAULTS,
}
# Routes that take seats: 428 when a proof of work is needed (booking.proof_of_work), 503
# while the resident waits in line (booking.pages.waiting).
SEAT_ERRORS: dict[int | str, dict[str, object]] = {**ERRORS, 428: {"model": ErrorOut}}
# A booking's code: 8 digits, the first not 0, the last a check digit.
Code = Annotated[str, Path(json_schema_extra={"pattern": "^[1-9][0-9]{7}$"}, max_length=40)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Retry key: the same key and body give the same booking, never a second.",
    ),
]


@router.get("/services", response_model=list[ServiceOut], responses=FAULTS)
def list_services(request: Request) -> Response:
    """Appointment types: pickup, application help, PIN reset, certificate renewal."""
    with unit_of_work(request) as db:
        return json_response([ServiceOut.model_validate(s) for s in service.list_services(db)])


@router.get("/venues", response_model=list[VenueOut], responses=FAULTS)
def list_venues(request: Request) -> Response:
    """The main office, branch offices and pop-up venues, with the services each offers."""
    with unit_of_work(request) as db:
        offered = service.venue_services(db)
        venues = [
            VenueOut.model_validate(v).model_copy(
                update={"services": sorted(offered.get(v.id, []))}
            )
            for v in service.list_venues(db)
        ]
    return json_response(venues)


@router.get("/availability", response_model=list[SlotOut], responses=ERRORS)
def availability(
    request: Request,
    service_id: Annotated[str, Query(alias="service", max_length=40)],
    venue: Annotated[str | None, Query(max_length=40)] = None,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
    party: Annotated[int, Query(ge=0, le=100, json_schema_extra=PARTY_SCHEMA)] = 1,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    """Free slots, earliest first; without a venue, the earliest across all venues."""
    with read_only_unit(request) as db:
        slots = service.availability(
            db, service_id=service_id, venue_id=venue, start=from_, end=to, party=party, limit=limit
        )
    return json_response([SlotOut.of(s) for s in slots])


@router.get("/challenge", responses={404: {"model": ErrorOut}, **FAULTS})
def challenge(request: Request) -> Response:
    """A proof-of-work challenge (altcha): solved, it goes in the Altcha header of a hold or
    a booking straight onto a slot while the waiting room is in force."""
    proof = getattr(request.app.state, "proof_of_work", None)
    if proof is None:
        raise BookingError("not_found")
    return JSONResponse(proof.challenge())


@router.post(
    "/holds", response_model=HoldOut, status_code=status.HTTP_201_CREATED, responses=SEAT_ERRORS
)
def create_hold(body: HoldIn, request: Request) -> Response:
    """Keep seats for a few minutes while the resident fills in the form."""
    refuse_without_proof(request)
    with unit_of_work(request) as db:
        hold = service.create_hold(db, slot_id=body.slot_id, seats=body.party_size, channel="web")
        db.commit()
    return json_response(HoldOut.of(hold), status.HTTP_201_CREATED)


@router.delete("/holds/{hold_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
def release_hold(
    hold_id: Annotated[str, Path(json_schema_extra=HOLD_ID_FORM, max_length=64)], request: Request
) -> Response:
    """Give held seats back at once."""
    with unit_of_work(request) as db:
        service.release_hold(db, hold_id=hold_id)
        db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/bookings",
    response_model=BookingOut,
    status_code=status.HTTP_201_CREATED,
    responses=SEAT_ERRORS,
)
def create_booking(
    body: BookingIn, request: Request, idempotency_key: IdempotencyKey = None
) -> Response:
    """Book a slot (or a hold) for a household; 409 when the seats are gone."""
    resident = ResidentInput(
        name_kana=body.name_kana,
        phone=body.phone,
        birth_date=body.birth_date,
        language=body.language,
        members=[MemberInput(m.notice_number, m.braille, m.e_certificate) for m in body.members],
        proxy=body.proxy,
    )
    offered: Offered = getattr(request.app.state, "offered_languages", EVERY)
    if not offered.offers(body.language, "sms"):
        # A language of the list the ward does not send texts in (MADOGUCHI_LANGUAGES).
        raise BookingError("invalid_language", field="language")
    refuse_when_over_limit(request, "book")
    if body.hold_id is None:  # a hold's seats were taken with a proof already
        refuse_without_proof(request)
    with unit_of_work(request) as db:
        booking = service.book(
            db,
            slot_id=body.slot_id,
            hold_id=body.hold_id,
            party=body.party_size,
            resident=resident,
            channel="web",
            idempotency_key=idempotency_key,
        )
        db.commit()
    return json_response(BookingOut.of(booking), status.HTTP_201_CREATED)


@router.post("/bookings/{code}/lookup", response_model=BookingOut, responses=ERRORS)
def lookup_booking(code: Code, body: SecondFactorIn, request: Request) -> Response:
    """A booking by its code and the phone number or birth date given when booking."""
    refuse_when_over_limit(request, "lookup")  # each guesses a second factor
    with unit_of_work(request) as db:
        booking = service.find_booking(db, code=code, phone=body.phone, birth_date=body.birth_date)
    return json_response(BookingOut.of(booking))


@router.post("/bookings/{code}/cancel", response_model=BookingOut, responses=ERRORS)
def cancel_booking(code: Code, body: SecondFactorIn, request: Request) -> Response:
    """Cancel; cancelling twice answers with the cancelled booking."""
    refuse_when_over_limit(request, "lookup")  # each guesses a second factor
    with unit_of_work(request) as db:
        booking = service.cancel(db, code=code, phone=body.phone, birth_date=body.birth_date)
        db.commit()
    return json_response(BookingOut.of(booking))


@router.post("/bookings/{code}/reschedule", response_model=BookingOut, responses=ERRORS)
def reschedule_booking(code: Code, body: RescheduleIn, request: Request) -> Response:
    """Move to another time; the old time is kept unless the new one is secured."""
    refuse_when_over_limit(request, "lookup")  # each guesses a second factor
    with unit_of_work(request) as db:
        booking = service.reschedule(
            db,
            code=code,
            phone=body.phone,
            birth_date=body.birth_date,
            slot_id=body.slot_id,
            hold_id=body.hold_id,
        )
        db.commit()
    return json_response(BookingOut.of(booking))
