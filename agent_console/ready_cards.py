"""The cards that have arrived (交付準備完了), for counter managers: how many wait at each
venue, and the upload of the card management system's CSV (as `madoguchi cards import`).
The import is checked whole: a bad line imports nothing. Audited (who, when, the file's
SHA-256, rows, cards per venue)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session as DbSession
from starlette.datastructures import UploadFile

from agent_console.service import Seat
from agent_console.web import MANAGERS, audit_event, csrf_ok, refuse_my_numbers, render, signed_in
from booking import service as booking
from booking.web import unit_of_work

router = APIRouter(
    prefix="/console/manage", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)

MODE_WORDS = {
    "off": "確認しない（受け取りの予約は、一覧にかかわらず受け付けます）",
    "refuse": "一覧にない番号の受け取りの予約は、どの窓口でもお断りします",
    "warn": "一覧にない番号も予約を受け付け、コンソールと窓口受付で注意を表示します",
}


def _page(
    request: Request, db: DbSession, seat: Seat, status_code: int = 200, **said: object
) -> Response:
    venues = booking.pickup_venues(db)
    counts = booking.ready_cards_by_venue(db)
    mode = db.info["booking"].ready_cards
    return render(
        request,
        "ready_cards.html",
        seat,
        status_code=status_code,
        venues=venues,
        counts=counts,
        mode=mode,
        mode_words=MODE_WORDS.get(mode, mode),
        **said,
    )


@router.get("/cards", response_class=HTMLResponse)
def cards_page(request: Request) -> Response:
    with unit_of_work(request) as db:
        seat = signed_in(request, db, *MANAGERS)
        return _page(request, db, seat)


@router.post("/cards", response_class=HTMLResponse)
async def cards_import(request: Request) -> Response:
    """Import an uploaded CSV of the cards that have arrived; or list its bad lines."""
    form = await request.form()
    upload = form.get("file")
    data = await upload.read() if isinstance(upload, UploadFile) else b""

    def work() -> Response:
        # The import and its audit event: on a worker thread, never the event loop.
        with unit_of_work(request) as db:
            seat = signed_in(request, db, *MANAGERS)
            if not csrf_ok(seat, {"csrf": str(form.get("csrf", ""))}):
                return render(request, "expired.html", seat, status_code=403)
            if not data:
                return _page(request, db, seat, 422, problems=["ファイルを選んでください。"])
            found, done = booking.import_cards_file(db, data=data)
            if done is None:
                db.rollback()
                return _page(
                    request, db, seat, 422, problems=found.problems, more=found.more_problems
                )
            detail = booking.audit_detail(found, done)
            audit_event(db, seat, request, "cards.import", "file", found.digest[:16], detail)
            db.commit()
            return _page(request, db, seat, imported=done)

    return await run_in_threadpool(work)
