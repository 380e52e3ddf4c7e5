"""What the fake Twilio's resources share (``ivr.fake_twilio``'s messages and calls,
``ivr.fake_conferences``' conferences and participants): Twilio's error shape, a form field,
and a list page with Twilio's paging."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

Json = dict[str, Any]
Form = dict[str, list[str]]
Error = tuple[int, int, str]  # (HTTP status, Twilio error code, message)

_PAGING = {"Page", "PageSize", "PageToken"}


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        # Legacy Twilio error shape; without "type"/"title" the client raises TwilioRestException.
        info = f"https://www.twilio.com/docs/errors/{code}"
        self.status = status
        self.payload: Json = {"code": code, "message": message, "more_info": info, "status": status}


def not_found(path: str) -> ApiError:
    return ApiError(404, 20404, f"The requested resource {path} was not found")


def one(form: Form, name: str) -> str | None:
    values = form.get(name)
    return values[-1] if values else None


def page_of(key: str, items: list[Json], path: str, query: Form) -> Json:
    """One page of a list, with the page URIs Twilio gives (the client follows next_page_uri)."""
    try:
        size = int(one(query, "PageSize") or 50)
        page = int(one(query, "Page") or 0)
    except ValueError:
        raise ApiError(400, 20001, "Invalid paging parameter") from None
    start = page * size
    chunk = items[start : start + size]
    filters = [(k, v) for k, vs in query.items() if k not in _PAGING for v in vs]

    def page_uri(n: int) -> str:
        return f"{path}?{urlencode([*filters, ('PageSize', size), ('Page', n)])}"

    # Real paging (not just next_page_uri null), so list() never silently truncates at 50.
    more = start + size < len(items)
    return {
        key: chunk,
        "end": max(start + len(chunk) - 1, 0),
        "first_page_uri": page_uri(0),
        "next_page_uri": page_uri(page + 1) + f"&PageToken=PA{start + size}" if more else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        "start": start,
        "uri": page_uri(page),
    }
