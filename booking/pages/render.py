"""Rendering a resident page in the visitor's language."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from booking.errors import BookingError
from booking.languages import EVERY, Offered
from booking.pages.i18n import Languages
from booking.pages.ward import page_context
from booking.web import Problem

ANYWHERE = "any"
LANGUAGE_COOKIE = "lang"


def language_of(request: Request) -> str:
    """The ?lang= switch first, then the remembered choice, then Japanese."""
    languages: Languages = request.app.state.languages
    return languages.pick(request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE))


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page in the visitor's language, with links to the same page in the others the
    ward offers, and who runs the service (booking.pages.ward). A switch to a language the ward
    does not offer goes back to the page without it."""
    languages: Languages = request.app.state.languages
    wanted = request.query_params.get("lang")
    if wanted is not None and wanted not in languages.environments and request.method == "GET":
        return _without_language(request)
    language = language_of(request)
    others = {
        code: str(request.url.include_query_params(lang=code))
        for code in languages.environments
        if code != language
    }
    html = languages.render(
        language,
        template,
        request=request,
        switch=others,
        **{**page_context(request, language), **context},
    )
    response = HTMLResponse(html, status_code=status_code)
    if "lang" in request.query_params:
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 24 * 3600, samesite="lax")
    return response


def _without_language(request: Request) -> HTMLResponse:
    """A language the ward does not offer (MADOGUCHI_LANGUAGES), or none we know: the same
    page without the switch, in the visitor's remembered language or Japanese (303)."""
    target = str(request.url.remove_query_params("lang"))
    link = escape(target)
    return HTMLResponse(
        f'<!doctype html><html lang="ja"><title>303</title><a href="{link}">{link}</a>',
        status_code=303,
        headers={"location": target, "cache-control": "no-store"},
    )


def problem_page(request: Request, problem: Problem) -> HTMLResponse:
    """A request that went wrong, as a resident page (config.errors chooses the renderer):
    what happened in their language, the way back, and the id to quote to the call center."""
    return page(
        request,
        "problem.html",
        status_code=problem.status,
        error=BookingError(problem.code),
        request_id=problem.request_id if problem.ours else None,
    )


def not_found(request: Request, error: BookingError) -> HTMLResponse:
    return page(request, "problem.html", status_code=error.status, error=error)


def contact_languages(request: Request) -> tuple[str, ...]:
    """The languages a resident may choose for texts and calls: the ward's, offered in SMS."""
    offered: Offered = getattr(request.app.state, "offered_languages", EVERY)
    return offered.on("sms")


def message_language(request: Request) -> str:
    """The language for the engine's error messages (BookingError.message falls back to
    English for a language its catalogue lacks)."""
    return language_of(request)
