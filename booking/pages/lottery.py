"""The lottery (抽選) on the resident pages: the lotteries taking applications, the form (the
household's notice numbers, up to three preferred times, a phone number for the result), the
application number; and each draw's record, published for anyone to check."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from booking import lottery
from booking import service as booking
from booking.errors import BookingError
from booking.pages.forms import form_page
from booking.pages.limits import over_limit
from booking.pages.render import contact_languages, message_language, not_found, page
from booking.personal import LANGUAGE_NAMES, FieldProblems
from booking.schemas import RowId
from booking.views import MemberInput, ResidentInput
from booking.web import csrf_ok, read_only_unit, unit_of_work, whole_number

router = APIRouter(include_in_schema=False)
RECORDS_LISTED = 20  # the latest draws' records, linked for anyone to check


@router.get("/lottery", response_class=HTMLResponse)
def lotteries(request: Request) -> HTMLResponse:
    """The lotteries taking applications now, and the records of the latest draws."""
    with unit_of_work(request) as db:
        found = lottery.lotteries(db, accepting_only=True)
        drawn = [x for x in lottery.lotteries(db) if x.status == "drawn"][:RECORDS_LISTED]
        services = {s.id: s for s in booking.list_services(db)}
    return page(request, "lotteries.html", lotteries=found, drawn=drawn, services=services)


def _form(
    request: Request,
    lottery_id: int,
    values: dict[str, str] | None = None,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    with unit_of_work(request) as db:
        try:
            chosen = lottery.get_lottery(db, lottery_id=lottery_id)
        except BookingError as error:
            return not_found(request, error)
        services = {s.id: s for s in booking.list_services(db)}
        venues = {v.id: v for v in booking.list_venues(db)}
        now = db.info["booking"].now()
        max_party = db.info["booking"].rules.max_party_size
    return form_page(
        request,
        "lottery.html",
        status_code=status_code,
        lottery=chosen,
        accepting=chosen.accepting(now),
        service=services.get(chosen.service_id),
        venues=venues,
        values=values or {},
        errors=errors or [],
        most=lottery.MOST_PREFERENCES,
        max_party=max_party,
        languages=contact_languages(request),
        language_names=LANGUAGE_NAMES,
    )


@router.get("/lottery/{lottery_id}", response_class=HTMLResponse)
def lottery_form(request: Request, lottery_id: RowId) -> Response:
    return _form(request, lottery_id)


def _resident(form: dict[str, str], party: int) -> ResidentInput:
    birth = date.fromisoformat(form.get("birth_date", ""))
    return ResidentInput(
        name_kana=form.get("name_kana") or None,
        phone=form.get("phone", ""),
        birth_date=birth,
        language=form.get("language", "ja"),
        members=[MemberInput(form.get(f"notice_{i}", "").strip()) for i in range(party)],
    )


def _wanted(form: dict[str, str], most: int) -> list[int]:
    wanted: list[int] = []
    for i in range(most):
        try:
            wanted.append(whole_number(form.get(f"preference_{i}", ""), least=1))
        except ValueError:
            continue  # left empty
    return wanted


@router.post("/lottery/{lottery_id}", response_class=HTMLResponse)
async def apply(request: Request, lottery_id: RowId) -> Response:
    """Apply; mistakes come back with everything kept, the application number on success."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    if not csrf_ok(request, form.get("csrf")):
        return page(request, "expired_form.html", status_code=403)
    limited = await run_in_threadpool(over_limit, request, "book")
    if limited is not None:
        return page(request, "limited.html", status_code=429, message=limited)
    language = message_language(request)
    gettext = request.app.state.languages.gettext

    def work() -> tuple[lottery.ApplicationView | None, list[str], int]:
        try:
            party = whole_number(form.get("party", "1"), 100, least=1)
            resident = _resident(form, party)
        except ValueError:
            problem = "Please give the number of people and the date of birth."
            return None, [gettext(language, problem)], 422
        with unit_of_work(request) as db:
            try:
                made = lottery.apply(
                    db,
                    lottery_id=lottery_id,
                    party=party,
                    resident=resident,
                    preferences=_wanted(form, lottery.MOST_PREFERENCES),
                    channel="web",
                )
            except FieldProblems as wrong:
                return None, [e.message(language) for e in wrong.problems.values()], wrong.status
            except BookingError as error:
                return None, [error.message(language)], error.status
            db.commit()
        return made, [], 200

    made, errors, status = await run_in_threadpool(work)
    if made is None:
        return await run_in_threadpool(_form, request, lottery_id, form, errors, status)
    return page(request, "lottery_applied.html", application=made)


@router.get("/lottery/{lottery_id}/record.json")
def record(request: Request, lottery_id: RowId) -> Response:
    """A drawn lottery's record, for anyone to check (no personal data): applications by
    number, the seats, the seed, the input's digest, every result."""
    with read_only_unit(request) as db:
        try:
            found: dict[str, Any] | None = lottery.public_record(db, lottery_id=lottery_id)
        except BookingError as error:
            return not_found(request, error)
    if found is None:
        return not_found(request, BookingError("lottery_not_drawn"))
    return Response(json.dumps(found, ensure_ascii=False, indent=1), media_type="application/json")
