"""The web form's proof of work before a time is held (booking.proof_of_work): the "one
moment" page when it is needed and missing, nothing when it is not."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request, Response

from booking.pages.forms import form_page
from booking.proof_of_work import ProofOfWork

# The hold form's fields the page carries through (besides its CSRF token).
KEPT = ("service", "place", "day", "party", "slot_id")


def check_page(request: Request, form: Mapping[str, object]) -> Response | None:
    """None when the hold may go ahead: no proof needed, or a solution or a waited token
    given; else the page that asks for one (runs in the thread pool: Redis is asked)."""
    proof: ProofOfWork | None = getattr(request.app.state, "proof_of_work", None)
    if proof is None:
        return None
    address = request.client.host if request.client else "unknown"
    if not proof.needed(address) or proof.solved(str(form.get("altcha") or "")):
        return None
    given = str(form.get("pow_wait") or "")
    left = proof.waited(given) if given else 0
    if left is None:
        return None
    return form_page(
        request,
        "check.html",
        challenge=proof.challenge(),
        kept=[(name, str(form.get(name, ""))[:40]) for name in KEPT],
        wait_token=given if left else proof.wait_token(),
        wait_seconds=proof.wait_seconds,
        early=left if given and left else None,
    )
