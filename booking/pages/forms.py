"""Forms on resident pages: CSRF tokens signed with a key derived from the installation's keys,
tied to a per-browser cookie."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import Request, Response

from booking.pages.render import page
from booking.web import CSRF_COOKIE, FORM_MAX_AGE, signer


def csrf_token(request: Request) -> tuple[str, str]:
    """(browser id for the cookie, token for the form)."""
    browser = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(16)
    return browser, signer(request, "csrf").dumps(browser)


def form_page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """A page with a form: it carries a fresh CSRF token and keeps the browser's cookie."""
    browser, token = csrf_token(request)
    response = page(request, template, status_code=status_code, csrf=token, **context)
    response.set_cookie(CSRF_COOKIE, browser, httponly=True, samesite="lax", max_age=FORM_MAX_AGE)
    return response
