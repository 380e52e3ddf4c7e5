"""What auditors (and supervisors) read: the audit log and its CSV export, the monthly report,
the erasure records and their certificates. Each opening is itself audited."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session as DbSession

from agent_console import report
from agent_console import service as staff
from agent_console.web import NotAllowed, audit_event, refuse_my_numbers, render, signed_in
from booking.context import TOKYO
from booking.schemas import RowId
from booking.web import unit_of_work

router = APIRouter(
    prefix="/console", include_in_schema=False, dependencies=[Depends(refuse_my_numbers)]
)


def _audit_query(request: Request) -> dict[str, Any]:
    q = request.query_params
    since = q.get("since")
    until = q.get("until")
    return {
        "login_id": q.get("login_id") or None,
        "subject_kind": q.get("subject_kind") or None,
        "subject_id": q.get("subject_id") or None,
        "action": q.get("action") or None,
        "since": datetime.fromisoformat(since).replace(tzinfo=TOKYO) if since else None,
        "until": (datetime.fromisoformat(until).replace(tzinfo=TOKYO) + timedelta(days=1))
        if until
        else None,
    }


@router.get("/audit", response_class=HTMLResponse)
def audit_log(request: Request) -> Response:
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "auditor", "supervisor")
        try:
            query = _audit_query(request)
        except ValueError:
            query = {}
        entries = staff.search_audit(db, **query)
        report = staff.check_chain(db)
        audit_event(
            db, seat, request, "audit.search", "audit", "-", str(dict(request.query_params))
        )
        db.commit()
    return render(
        request, "audit.html", seat, entries=entries, report=report, q=request.query_params
    )


class BadMonth(Exception):
    """A report's month that is not one (?month=2026-13)."""


def _month(value: str, db: DbSession) -> date:
    """A report's month (YYYY-MM); the last whole month when none is given."""
    if not value:
        today: date = db.info["booking"].today()
        return (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    try:
        return date.fromisoformat(value + "-01")
    except ValueError:
        raise BadMonth(value) from None


def _monthly(request: Request, month: str, action: str) -> report.MonthlyReport:
    """The month's report for a supervisor or an auditor, its opening audited."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "auditor", "supervisor")
        chosen = _month(month, db)
        made = report.monthly_report(
            db, month=chosen, wrap_up_seconds=request.app.state.settings.wrap_up_seconds
        )
        audit_event(db, seat, request, action, "report", chosen.strftime("%Y-%m"))
        db.commit()
    return made


@router.get("/reports/monthly", response_class=HTMLResponse)
def monthly_report_page(request: Request, month: str = "") -> Response:
    """The monthly report for the ward, printable (supervisors and auditors)."""
    made = _monthly(request, month, "report.monthly")
    return HTMLResponse(report.render_html(made, console=True))


@router.get("/reports/monthly.csv")
def monthly_report_csv(request: Request, month: str = "") -> Response:
    made = _monthly(request, month, "report.monthly.csv")
    return Response(
        report.report_csv(made),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="report-{made.month:%Y-%m}.csv"'},
    )


@router.get("/erasures", response_class=HTMLResponse)
def erasure_records(request: Request) -> Response:
    """消去記録: every erasure run, what and how many; each with its printable certificate."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "auditor", "supervisor")
        records = staff.erasures(db)
        audit_event(db, seat, request, "erasure.list", "erasure", "-")
        db.commit()
    return render(request, "erasures.html", seat, records=records)


@router.get("/erasures/{erasure_id}", response_class=HTMLResponse)
def erasure_certificate(request: Request, erasure_id: RowId) -> Response:
    """The certificate of erasure (消去証明書) of one run, to print for the ward."""
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "auditor", "supervisor")
        record = staff.get_erasure(db, erasure_id)
        if record is None:
            raise NotAllowed
        audit_event(db, seat, request, "erasure.certificate", "erasure", erasure_id)
        db.commit()
    return render(
        request,
        "erasure_certificate.html",
        seat,
        record=record,
        text=staff.certificate_text(record),
    )


@router.get("/audit.csv")
def audit_export(request: Request) -> Response:
    with unit_of_work(request) as db:
        seat = signed_in(request, db, "auditor")
        try:
            query = _audit_query(request)
        except ValueError:
            query = {}
        entries = staff.search_audit(db, limit=100_000, **query)
        audit_event(
            db,
            seat,
            request,
            "audit.export",
            "audit",
            "-",
            f"{len(entries)} events; " + str(dict(request.query_params)),
        )
        db.commit()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["id", "at", "login_id", "action", "subject_kind", "subject_id", "detail", "client"]
    )
    for e in entries:
        writer.writerow(
            [
                e.id,
                e.at.astimezone(TOKYO).isoformat(),
                e.login_id,
                e.action,
                e.subject_kind,
                e.subject_id,
                e.detail,
                e.client,
            ]
        )
    return Response(
        "\ufeff" + out.getvalue(),  # a BOM, so Excel opens the Japanese correctly
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
    )
