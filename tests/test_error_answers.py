"""Requests that go wrong: malformed input is a 4xx in the route's own language, never a 500, and
an unexpected error (a fault here, or the database away) answers in that language too, is logged
once, and carries a request id that the log also holds."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import get_args
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine
from starlette.routing import BaseRoute
from twilio.request_validator import RequestValidator

from booking import service as booking
from booking.web import ROW_ID_MAX, row_id, whole_number
from config.db import make_sessionmaker
from tests.conftest import FakeClock, app_for, make_context

PUBLIC = "https://madoguchi.example.jp"
TOKEN = "0123456789abcdef0123456789abcdef"  # noqa: S105 (the test account's token)
TOO_BIG = "99999999999999999999"


@pytest.fixture
def app(engine: Engine, clock: FakeClock, tmp_path: Path) -> FastAPI:
    return app_for(engine, clock, tmp_path, twilio_auth_token=TOKEN, public_base_url=PUBLIC)


_addresses = (f"10.77.{n >> 8 & 255}.{n & 255}" for n in itertools.count(1))


@pytest.fixture
def http(app: FastAPI) -> Iterator[TestClient]:
    # An address of its own: the attempt limits count per address, in the shared database.
    with TestClient(app, raise_server_exceptions=False, client=(next(_addresses), 50000)) as client:
        yield client


def signed(http: TestClient, path: str, form: dict[str, str]) -> int:
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, form)
    answer = http.post(path, data=form, headers={"X-Twilio-Signature": signature})
    return int(answer.status_code)


# --- malformed input: a 4xx, never a 500 ----------------------------------------------------


def test_a_feed_token_that_is_not_ascii_is_refused(http: TestClient) -> None:
    answer = http.get("/calendar/venues/main/bookings.ics", params={"token": "é"})
    assert answer.status_code == 403


def test_a_login_form_that_is_not_ascii_shows_the_form_again(http: TestClient) -> None:
    answer = http.post(
        "/console/login",
        data={"csrf": "ü", "login_id": "a", "password": "b"},
        headers={b"cookie": "console_login=é".encode()},  # as a browser may send it: UTF-8
    )
    assert answer.status_code == 200
    assert "有効期限" in answer.text  # the form's own message: sign in again


def test_an_id_past_32_bits_is_a_4xx_on_a_signed_webhook(http: TestClient) -> None:
    form = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    assert signed(http, f"/reminders/status?m={TOO_BIG}", form) == 422
    assert signed(http, "/reminders/status?m=0", form) == 422
    assert signed(http, f"/reminders/status?m={ROW_ID_MAX}", form) == 404  # a fine id, unknown


def test_ids_in_paths_are_checked_before_the_database(http: TestClient) -> None:
    for path in (f"/console/bookings/{TOO_BIG}", f"/console/erasures/{TOO_BIG}"):
        answer = http.get(path, follow_redirects=False)
        assert answer.status_code == 422, path
        assert "text/html" in answer.headers["content-type"]  # the console's own page


def _api_routes(routes: list[BaseRoute]) -> Iterator[APIRoute]:
    """Every route, inside included routers too (FastAPI keeps those as routers)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _api_routes(inner.routes)


def test_every_whole_number_a_route_takes_is_bounded(app: FastAPI) -> None:
    """Every int a route reads from its path or query fits the database's 32-bit ids, so no
    value from a URL can overflow a column (the routes of every package, seen or not)."""
    unbounded = []
    for route in _api_routes(app.routes):
        for param in route.dependant.path_params + route.dependant.query_params:
            kind = param.field_info.annotation
            if kind is not int and int not in get_args(kind):
                continue
            most = [getattr(m, "le", None) for m in param.field_info.metadata]
            if not any(m is not None and m <= ROW_ID_MAX for m in most):
                unbounded.append(f"{route.path} {param.name}")
    assert unbounded == []
    assert len(list(_api_routes(app.routes))) > 80  # every package's routes were seen


@pytest.mark.parametrize("text", ["", " ", "-1", "1.5", "²", "٣", "1_0", TOO_BIG, "1e3", "0x10"])
def test_only_ascii_whole_numbers_in_range_are_read(text: str) -> None:
    with pytest.raises(ValueError, match=r"whole number|outside"):
        row_id(text)


def test_whole_numbers_read() -> None:
    assert row_id(" 42 ") == 42
    assert whole_number("0") == 0
    assert row_id(str(ROW_ID_MAX)) == ROW_ID_MAX


@pytest.mark.parametrize("hold", ["\x00abc", "f" * 31 + "\x00", "../../x", "A" * 32, "é" * 32])
def test_a_hold_id_that_no_hold_has_is_not_found(http: TestClient, hold: str) -> None:
    """PostgreSQL refuses a NUL in a string with an error: a malformed hold id never reaches it."""
    body = {
        "hold_id": hold,
        "name_kana": "ヤマダ タロウ",
        "phone": "090-1234-5678",
        "birth_date": "1950-04-01",
    }
    booked = http.post("/api/v1/bookings", json=body)
    assert (booked.status_code, booked.json()["error"]["code"]) == (404, "hold_not_found")
    released = http.delete(f"/api/v1/holds/{quote(hold, safe='')}")
    assert released.status_code == 404


def test_an_unknown_path_is_a_page_for_residents_and_json_for_the_api(http: TestClient) -> None:
    page = http.get("/no-such-page", headers={"accept": "text/html"})
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "見つかりません" in page.text
    api = http.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.json()["error"]["code"] == "not_found"


# --- unexpected errors -------------------------------------------------------------------------


@pytest.fixture
def failing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault inside the engine, as no test of the engine would find it."""

    def broken(*_args: object, **_kwargs: object) -> object:
        raise RuntimeError("a fault nobody expected")

    monkeypatch.setattr(booking, "list_services", broken)
    monkeypatch.setattr(booking, "list_venues", broken)


def logged_once(caplog: pytest.LogCaptureFixture, request_id: str) -> None:
    hits = [r for r in caplog.records if request_id in r.getMessage()]
    assert len(hits) == 1
    assert hits[0].levelno == logging.ERROR
    assert hits[0].exc_info is not None  # the traceback is in the log, not in the answer


@pytest.mark.usefixtures("failing")
def test_an_unexpected_error_in_the_api_answers_its_json_shape(
    http: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    answer = http.get("/api/v1/services")
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert error["code"] == "server_error"
    assert error["request_id"] == answer.headers["x-request-id"]
    assert "nobody expected" not in answer.text
    logged_once(caplog, error["request_id"])


@pytest.mark.usefixtures("failing")
def test_an_unexpected_error_on_a_residents_page_is_a_styled_page(
    http: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    answer = http.get("/")
    assert answer.status_code == 500
    assert "text/html" in answer.headers["content-type"]
    rid = answer.headers["x-request-id"]
    assert rid in answer.text  # to quote to the call center
    assert "申し訳ありません" in answer.text
    assert answer.headers["content-security-policy"]  # the usual headers too
    logged_once(caplog, rid)
    english = http.get("/?lang=en")
    assert "Sorry" in english.text


def test_an_unexpected_error_on_the_phone_line_apologises_and_offers_a_person(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from ivr import routes

    async def broken(_request: object) -> None:
        raise RuntimeError("the signature check itself broke")

    monkeypatch.setattr(routes, "signed_form", broken)
    with TestClient(app, raise_server_exceptions=False) as http:
        answer = http.post("/ivr/voice", data={"CallSid": "CA1"})
    # 200: Twilio plays TwiML only from a 2xx; anything else is its "application error".
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    assert "申し訳ありません" in answer.text
    assert "<Enqueue>madoguchi-ja</Enqueue>" in answer.text
    logged_once(caplog, answer.headers["x-request-id"])


def test_while_the_database_is_down_each_part_says_so_in_its_own_way(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:9/none", connect_args={"connect_timeout": 1}
    )
    app.state.sessions = make_sessionmaker(nowhere, make_context(FakeClock()))
    with TestClient(app, raise_server_exceptions=False) as http:
        api = http.get("/api/v1/services")
        page = http.get("/")
        console = http.get("/console/", cookies={"console": "x" * 40}, follow_redirects=False)
    assert (api.status_code, api.json()["error"]["code"]) == (503, "service_unavailable")
    assert api.headers["retry-after"] == "30"
    assert page.status_code == 503
    assert "text/html" in page.headers["content-type"]
    assert "しばらくしてから" in page.text
    assert console.status_code == 503
    assert "コンソール" in console.text
    for answer in (api, page, console):
        logged_once(caplog, answer.headers["x-request-id"])
    nowhere.dispose()


def test_a_proxys_request_id_is_kept_and_a_strange_one_replaced(http: TestClient) -> None:
    kept = http.get("/healthz", headers={"x-request-id": "nginx-0123456789abcdef"})
    assert kept.headers["x-request-id"] == "nginx-0123456789abcdef"
    made = http.get("/healthz", headers={"x-request-id": "<script>"})
    assert re.fullmatch(r"[0-9a-f]{16}", made.headers["x-request-id"])
