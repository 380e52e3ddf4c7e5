"""About the service: how residents' personal information is handled (個人情報の取扱い)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from booking.pages.render import page

router = APIRouter(include_in_schema=False)


@router.get("/privacy", response_class=HTMLResponse)
def privacy(request: Request) -> HTMLResponse:
    """What is collected and why, how long it is kept, who handles it, and whom to ask."""
    return page(request, "privacy.html")
