"""The booking flow: hold a time, fill in the details while the seats are kept, see the code.

Forms carry a CSRF token (signed, tied to a per-browser cookie). A failed step never ends on an
error page: a time taken meanwhile, or a hold that lapsed, shows the next free times.
"""

from __future__ import annotations

import unicodedata
from datetime import date, timedelta
from typing import Any

import segno
from babel.dates import format_date
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from icalendar import Alarm, Calendar, Event
from itsdangerous import BadSignature

from booking import eras, service
from booking.context import TOKYO
from booking.errors import BookingError
from booking.languages import is_japanese
from booking.localized import name_of, text_of
from booking.pages.forms import form_page
from booking.pages.i18n import Languages
from booking.pages.limits import over_limit
from booking.pages.proof import check_page
from booking.pages.render import (
    ANYWHERE,
    contact_languages,
    language_of,
    message_language,
    page,
)
from booking.personal import (
    LANGUAGE_NAMES,
    FieldProblems,
    normalise_name_kana,
    resident_problems,
)
from booking.service import MemberInput, ResidentInput
from booking.web import csrf_ok, row_id, signer, unit_of_work, whole_number

router = APIRouter(include_in_schema=False)
DONE_COOKIE = "booked"
DONE_MAX_AGE = 24 * 3600
# Services whose form asks each person's braille and e-certificate wishes (the ward's spec lists
# them among the application items of 申請補助).
ASKS_WISHES = {"application_help"}
# The eras a birth date may be given in on the form, newest first (明治 births are past 113).
FORM_ERAS = [era for era in eras.ERAS if era.key != "meiji"]
ERA_NAMES = {"reiwa": "Reiwa", "heisei": "Heisei", "showa": "Showa", "taisho": "Taisho"}
# The form's fields in the order it asks them: the order of the summary of mistakes.
FIELD_ORDER = ("members", "notice", "name_kana", "birth_date", "phone", "language", "form")
# Where the summary's link for a field's mistake leads: its first control.
FIELD_TARGETS = {"members": "notice_0", "birth_date": "birth_era", "language": "language_choice"}


def _refused(request: Request) -> HTMLResponse:
    return page(request, "expired_form.html", status_code=403)


def next_times(
    request: Request, service_id: str, venue_id: str | None, day: date, party: int
) -> list[service.SlotView]:
    with unit_of_work(request) as db:
        try:
            return service.availability(
                db, service_id=service_id, venue_id=venue_id, start=day, party=party, limit=5
            )
        except BookingError:
            return []


def taken_page(
    request: Request,
    reason: str,
    service_id: str,
    place: str,
    day: date,
    party: int,
    *,
    move: bool = False,
) -> Response:
    """The time went to someone else, or the hold lapsed: say so, offer the next free times."""
    venue_id = None if place == ANYWHERE else place
    with unit_of_work(request) as db:
        services = {s.id: s for s in service.list_services(db)}
        venues = {v.id: v for v in service.list_venues(db)}
    return form_page(
        request,
        "taken.html",
        status_code=409,
        reason=reason,
        service=services.get(service_id),
        place=place,
        party=party,
        day=day,
        venues=venues,
        slots=next_times(request, service_id, venue_id, day, party),
        move=move,
    )


# The refusals of a day not released yet (booking.release): said with when it opens.
NOT_OPEN = ("not_yet_open", "not_yet_announced")


@router.get("/hold")
def back_to_start(request: Request) -> Response:
    """POST-only; a GET (the language switch on a 'time taken' page) starts again."""
    lang = request.query_params.get("lang")
    return RedirectResponse("/" + (f"?lang={lang}" if lang else ""), status_code=303)


@router.post("/hold")
async def hold(request: Request) -> Response:
    """Keep the chosen time while the resident fills in the form."""
    form = await request.form()
    if not csrf_ok(request, str(form.get("csrf", ""))):
        return _refused(request)
    try:
        slot_id = row_id(form.get("slot_id"))
        party = whole_number(form.get("party", "1"), 100)
        day = date.fromisoformat(str(form.get("day")))
    except ValueError:
        return _refused(request)
    service_id, place = str(form.get("service", "")), str(form.get("place", ANYWHERE))
    limited = await run_in_threadpool(over_limit, request, "book")
    if limited is not None:
        return page(request, "limited.html", status_code=429, message=limited)
    asked = await run_in_threadpool(check_page, request, form)
    if asked is not None:
        return asked

    def keep() -> str:
        with unit_of_work(request) as db:
            made = service.create_hold(db, slot_id=slot_id, seats=party, channel="web")
            db.commit()
            return made.id

    try:
        hold_id = await run_in_threadpool(keep)
    except BookingError as error:
        if error.code in NOT_OPEN:  # staged release: say when the day opens
            return page(request, "problem.html", status_code=error.status, error=error)
        return await run_in_threadpool(
            taken_page, request, error.code, service_id, place, day, party
        )
    return RedirectResponse(f"/hold/{hold_id}?place={place}", status_code=303)


def _held(request: Request, hold_id: str) -> tuple[service.HeldTime, Any, Any] | None:
    with unit_of_work(request) as db:
        try:
            held = service.get_hold(db, hold_id=hold_id)
        except BookingError:
            return None
        chosen = service.service_or_404(db, held.service_id)
        venue = service.venue_or_404(db, held.venue_id)
    return held, chosen, venue


def _details(
    request: Request,
    held: service.HeldTime,
    chosen: Any,
    venue: Any,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    now = request.app.state.sessions.kw["info"]["booking"].now()
    left = max(0, int((held.hold.expires_at - now).total_seconds()))
    # Each entry: the field to link to, whose it is (a person's number, for notice numbers that
    # would otherwise read alike), and the mistake.
    summary = [
        (
            None if field == "form" else FIELD_TARGETS.get(field, field),
            _field_rank(field)[1] + 1 if field.startswith("notice_") else None,
            errors[field],
        )
        for field in sorted(errors, key=_field_rank)
    ]
    return form_page(
        request,
        "details.html",
        status_code=status_code,
        held=held,
        service=chosen,
        venue=venue,
        values=values,
        errors=errors,
        summary=summary,
        seconds_left=left,
        place=request.query_params.get("place", ANYWHERE),
        wishes=chosen.id in ASKS_WISHES,
        eras=[(era.key, ERA_NAMES[era.key]) for era in FORM_ERAS],
        languages=contact_languages(request),
        language_names=LANGUAGE_NAMES,
    )


def _field_rank(field: str) -> tuple[int, int]:
    """A form field's place in FIELD_ORDER (notice_2: the third notice number)."""
    if field.startswith("notice_"):
        return FIELD_ORDER.index("notice"), int(field.removeprefix("notice_"))
    return (FIELD_ORDER.index(field) if field in FIELD_ORDER else len(FIELD_ORDER)), 0


@router.get("/hold/{hold_id}")
def details(request: Request, hold_id: str) -> Response:
    """The form, with the time kept and how long it is kept for."""
    found = _held(request, hold_id)
    if found is None or not found[0].live:
        return _lapsed(request, found)
    held, chosen, venue = found
    return _details(request, held, chosen, venue, {}, {})


def _lapsed(request: Request, found: tuple[service.HeldTime, Any, Any] | None) -> Response:
    if found is None:
        return page(request, "lapsed.html", status_code=410, slots=[], venues={}, service=None)
    held = found[0]
    day = held.starts_at.astimezone(TOKYO).date()
    return taken_page(request, "hold_expired", held.service_id, held.venue_id, day, held.hold.seats)


def _say(request: Request, message: str, **params: str) -> str:
    """A message of this page's catalogue in the visitor's language, its %(name)s filled."""
    languages: Languages = request.app.state.languages
    text = languages.gettext(language_of(request), message)
    return text % params if params else text


def _number(text: str | None, most: int, *, least: int = 1) -> int:
    """A number typed in a box, full-width digits as well."""
    return whole_number(unicodedata.normalize("NFKC", text or "").strip(), most, least=least)


def _birth(form: dict[str, str]) -> date:
    """The birth date typed: a Western year, or an era and its year (元 for the first).
    ValueError for no such date, eras.OutsideEra for an era date outside the era."""
    era = form.get("birth_era", "")
    year_text = unicodedata.normalize("NFKC", form.get("birth_year") or "").strip()
    year = 1 if era and year_text == "元" else _number(year_text, 9999)
    month, day = _number(form.get("birth_month"), 12), _number(form.get("birth_day"), 31)
    return eras.from_era(era, year, month, day) if era else date(year, month, day)


def _era_problem(request: Request, era: eras.Era) -> str:
    language = language_of(request)
    name = _say(request, ERA_NAMES[era.key])
    first = format_date(era.first, "long", locale=language)
    if era.last is None:
        return _say(
            request,
            "%(era)s began on %(first)s. Please check the era and the year.",
            era=name,
            first=first,
        )
    last = format_date(era.last, "long", locale=language)
    return _say(
        request,
        "%(era)s ran from %(first)s to %(last)s (%(era)s 1 to %(years)s). "
        "Please check the era and the year.",
        era=name,
        first=first,
        last=last,
        years=str(era.years()),
    )


def _latin_names(request: Request, form: dict[str, str]) -> bool:
    """A name in Latin letters is its own spelling for a resident who reads another language
    (an English page, or contact in another language); a Japanese one writes it in katakana."""
    return not (is_japanese(language_of(request)) and is_japanese(form.get("language", "ja")))


def _name_problem(request: Request, form: dict[str, str]) -> str:
    if _latin_names(request, form):
        return _say(
            request,
            "Please write the name in katakana or Latin letters (e.g. ヤマダ ハナコ, John Smith). "
            "Kanji cannot be accepted.",
        )
    return _say(
        request,
        "Please write the name in katakana (e.g. ヤマダ ハナコ). "
        "Kanji and Latin letters cannot be accepted.",
    )


def _form_field(field: str) -> str:
    """The form's field for an engine's field: members[2].notice_number is notice_2."""
    if field.startswith("members["):
        return "notice_" + field.removeprefix("members[").split("]")[0]
    return field if field in FIELD_ORDER else "form"


def _problems(
    request: Request, form: dict[str, str], problems: dict[str, BookingError]
) -> dict[str, str]:
    """Each form field's mistake, in the visitor's language (the first one for a field)."""
    language = message_language(request)
    shown: dict[str, str] = {}
    for field, error in problems.items():
        if error.code == "invalid_name_kana":
            shown.setdefault("name_kana", _name_problem(request, form))
        else:
            shown.setdefault(_form_field(field), error.message(language))
    return shown


def _resident(
    request: Request, form: dict[str, str], party: int, chosen: Any
) -> tuple[ResidentInput, dict[str, str]]:
    """The form's fields as the engine takes them (members only where the service asks), and
    the mistakes the page itself finds: a birth date that is no date, a name the page's
    language does not take. The engine checks the rest."""
    today = request.app.state.sessions.kw["info"]["booking"].today()
    found: dict[str, str] = {}
    try:
        birth = _birth(form)
    except eras.OutsideEra as outside:
        found["birth_date"] = _era_problem(request, outside.era)
    except ValueError:
        found["birth_date"] = BookingError("invalid_birth_date").message(message_language(request))
    if "birth_date" in found:
        birth = today  # stands in while the other fields are checked; nothing is booked
    if form.get("language", "ja") not in contact_languages(request):
        # Known to the engine, but not one the ward sends texts in (MADOGUCHI_LANGUAGES).
        found["language"] = BookingError("invalid_language").message(message_language(request))
    name = form.get("name_kana", "")
    if not _latin_names(request, form):
        try:
            normalise_name_kana(name, latin=False)
        except BookingError as error:
            if error.code == "invalid_name_kana":
                found["name_kana"] = _name_problem(request, form)
    members = [
        MemberInput(
            notice_number=form.get(f"notice_{i}") or None,
            braille=form.get(f"braille_{i}") == "on",
            e_certificate=form.get(f"ecert_{i}", "on") == "on",
        )
        for i in range(party)
    ]
    if not chosen.requires_notice_number and chosen.id not in ASKS_WISHES:
        members = []
    resident = ResidentInput(
        name_kana=name,
        phone=form.get("phone", ""),
        birth_date=birth,
        language=form.get("language", "ja"),
        members=members,
        proxy=form.get("proxy") == "on",
    )
    if found:  # the engine's word on every other field, so all are shown at once
        _, others = resident_problems(today, chosen.requires_notice_number, party, resident)
        found = _problems(request, form, others) | found
    return resident, found


def _book(
    request: Request, hold_id: str, party: int, resident: ResidentInput
) -> service.BookingView:
    with unit_of_work(request) as db:
        made = service.book(
            db,
            hold_id=hold_id,
            party=party,
            resident=resident,
            channel="web",
            idempotency_key=f"web-hold:{hold_id}",  # a second press books nothing more
        )
        db.commit()
        return made


def _done(request: Request, booking: service.BookingView) -> Response:
    response = RedirectResponse("/booking/done", status_code=303)
    token = signer(request, "done").dumps(booking.id)
    response.set_cookie(DONE_COOKIE, token, httponly=True, samesite="lax", max_age=DONE_MAX_AGE)
    return response


async def _book_again(request: Request, hold_id: str, form: dict[str, str]) -> Response:
    """The hold is gone: used by this same form a moment ago (a second press), or lapsed and
    swept. The booking's retry key tells which."""

    def service_chosen() -> Any:
        with unit_of_work(request) as db:
            return service.service_or_404(db, form.get("service", ""))

    try:
        chosen = await run_in_threadpool(service_chosen)
    except BookingError:
        return _lapsed(request, None)
    try:
        party = whole_number(form.get("party", ""), 100)
        resident, problems = _resident(request, form, party, chosen)
        if problems:
            return _lapsed(request, None)
        booking = await run_in_threadpool(_book, request, hold_id, party, resident)
    except (ValueError, TypeError, BookingError):
        return _lapsed(request, None)
    return _done(request, booking)


@router.post("/hold/{hold_id}")
async def confirm(request: Request, hold_id: str) -> Response:
    """Book from the hold. Mistakes come back next to their field with everything kept."""
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items()}
    if not csrf_ok(request, form.get("csrf")):
        return _refused(request)
    found = await run_in_threadpool(_held, request, hold_id)
    if found is None:
        return await _book_again(request, hold_id, form)
    held, chosen, venue = found
    party = held.hold.seats
    resident, errors = _resident(request, form, party, chosen)
    if errors:
        return _details(request, held, chosen, venue, form, errors, 422)
    try:
        booking = await run_in_threadpool(_book, request, hold_id, party, resident)
    except FieldProblems as wrong:
        errors = _problems(request, form, wrong.problems)
        return _details(request, held, chosen, venue, form, errors, wrong.status)
    except BookingError as error:
        if error.code in ("hold_not_found", "hold_expired", "slot_full", "slot_closed"):
            day = held.starts_at.astimezone(TOKYO).date()
            return await run_in_threadpool(
                taken_page, request, error.code, held.service_id, held.venue_id, day, party
            )
        # A day not released to the resident's group yet: said at the top, not at a field.
        field = "form" if error.code in NOT_OPEN else error.field or "form"
        errors = _problems(request, form, {field: error})
        return _details(request, held, chosen, venue, form, errors, error.status)
    return _done(request, booking)


def _just_booked(request: Request) -> tuple[service.BookingView, Any, Any] | None:
    """The booking this browser has just made (from its signed cookie), with its service and
    venue; None without a valid cookie."""
    token = request.cookies.get(DONE_COOKIE)
    if not token:
        return None
    try:
        booking_id = int(signer(request, "done").loads(token, max_age=DONE_MAX_AGE))
    except (BadSignature, ValueError):
        return None
    with unit_of_work(request) as db:
        booking = service.get_booking(db, booking_id=booking_id)
        return (
            booking,
            service.service_or_404(db, booking.service_id),
            service.venue_or_404(db, booking.venue_id),
        )


@router.get("/booking/done")
def done(request: Request) -> Response:
    """The booking code, large, with its QR code, the visit and what to bring."""
    found = _just_booked(request)
    if found is None:
        return RedirectResponse("/manage", status_code=303)
    booking, chosen, venue = found
    # A standard QR code (not Micro QR, which phone cameras and many counter scanners cannot
    # read), drawn with a viewBox so the page's CSS sizes it.
    qr = segno.make_qr(booking.code, error="m").svg_inline(omitsize=True, title=booking.code)
    return page(request, "done.html", booking=booking, service=chosen, venue=venue, qr=qr)


@router.get("/booking/done.ics")
def done_calendar(request: Request) -> Response:
    """The visit as an iCalendar file, to add to the phone's calendar."""
    found = _just_booked(request)
    if found is None:
        return RedirectResponse("/manage", status_code=303)
    booking, chosen, venue = found
    return Response(
        visit_calendar(request, booking, chosen, venue),
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="madoguchi-booking.ics"'},
    )


def _calendar_language(request: Request, booking: service.BookingView) -> str:
    """The language the resident chose for messages about this booking; the page's language
    where the pages have no catalogue for it (a booking made in Korean on the phone line)."""
    languages = request.app.state.languages
    return (
        booking.language if booking.language in languages.catalogues else message_language(request)
    )


def visit_calendar(
    request: Request, booking: service.BookingView, chosen: Any, venue: Any
) -> bytes:
    """The visit as one iCalendar event with a reminder the day before, every text in the
    booking's language (from the pages' catalogues)."""
    language = _calendar_language(request, booking)

    def _(message: str, **values: object) -> str:
        text: str = request.app.state.languages.gettext(language, message)
        return text % values if values else text

    name = name_of(chosen, language)
    place = name_of(venue, language)
    address = text_of(venue, "address", language)
    people = request.app.state.languages.ngettext(
        language, "%(num)s person", "%(num)s people", booking.party_size
    ) % {"num": booking.party_size}
    said = {"LANGUAGE": language}
    cal = Calendar()
    cal.add("prodid", f"-//Madoguchi//My Number card counter//{language.upper()}")
    cal.add("version", "2.0")
    event = Event()
    event.add("uid", f"booking-{booking.code}@madoguchi")
    event.add("dtstamp", booking.created_at)
    event.add("dtstart", booking.starts_at)
    event.add("dtend", booking.ends_at)
    event.add("summary", _("%(service)s (booking %(code)s)", service=name, code=booking.code), said)
    event.add("location", _("%(venue)s, %(address)s", venue=place, address=address), said)
    lines = [
        _("Booking code: %(code)s", code=booking.code),
        f"{name} · {people}",
        _("Bring: ") + (text_of(chosen, "bring", language) or _("bring:" + chosen.id)),
    ]
    event.add("description", "\n".join(lines), said)
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", _("Tomorrow: %(service)s at %(venue)s", service=name, venue=place))
    alarm.add("trigger", timedelta(days=-1))
    event.add_component(alarm)
    cal.add_component(event)
    return bytes(cal.to_ical())
