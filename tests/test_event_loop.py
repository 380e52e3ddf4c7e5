"""The event-loop guard (tests/loop_guard.py) catches what blocks the loop, and only that: a
database call or argon2 hash in an ``async def`` route, on the TestClient's loop or uvicorn's,
in a WebSocket handler too; never the same work in a plain ``def`` route or handed to a thread."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import get_args
from urllib.parse import urlencode

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from tests import loop_guard
from tests.agent_console.test_console import Console, console, csrf_of
from tests.ivr.conftest import PUBLIC, TOKEN
from tests.live import listening_socket, serving
from tests.test_error_answers import _api_routes as api_routes

__all__ = ["console"]  # the console's fixture, signed-in staff and all

pytest_plugins = ["pytester"]

HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def throwaway_app(engine: Engine) -> FastAPI:
    """Each way of touching the database or argon2 from a route, right and wrong."""
    app = FastAPI()
    sessions = sessionmaker(engine)

    def query() -> int:
        with sessions() as db:
            return int(db.execute(text("SELECT 1")).scalar_one())

    @app.get("/async-session")
    async def blocking_async_route() -> int:
        with sessions() as db:
            return int(db.execute(text("SELECT 1")).scalar_one())

    @app.get("/def-session")
    def plain_def_route() -> int:
        return query()

    @app.get("/async-threadpool")
    async def async_route_with_threadpool() -> int:
        return await run_in_threadpool(query)

    @app.get("/async-argon2")
    async def hashing_async_route() -> str:
        return HASHER.hash("correct horse")[:9]

    @app.get("/def-argon2")
    def hashing_def_route() -> str:
        return HASHER.hash("correct horse")[:9]

    @app.websocket("/ws-blocking")
    async def blocking_socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(str(query()))
        await websocket.close()

    @app.websocket("/ws-threaded")
    async def threaded_socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(str(await run_in_threadpool(query)))
        await websocket.close()

    return app


@pytest.fixture
def http(engine: Engine) -> Iterator[TestClient]:
    with TestClient(throwaway_app(engine)) as client:
        yield client


def test_a_session_used_in_an_async_route_is_caught_with_the_route(http: TestClient) -> None:
    with loop_guard.caught() as found:
        assert http.get("/async-session").json() == 1
    assert {b.kind for b in found} == {
        "a database connection checkout",
        "a database statement",
    }
    assert all("in blocking_async_route" in b.where for b in found)
    assert all(b.thread != "MainThread" for b in found)  # the TestClient's portal thread


def test_the_same_work_in_a_def_route_or_a_thread_is_not(http: TestClient) -> None:
    with loop_guard.caught() as found:
        assert http.get("/def-session").json() == 1
        assert http.get("/async-threadpool").json() == 1
        assert http.get("/def-argon2").text.startswith('"$argon2')
    assert found == []


def test_argon2_in_an_async_route_is_caught(http: TestClient) -> None:
    with loop_guard.caught() as found:
        assert http.get("/async-argon2").status_code == 200
    assert [b.kind for b in found] == ["argon2 PasswordHasher.hash"]
    assert "in hashing_async_route" in found[0].where


def test_a_websocket_handler_querying_on_the_loop_is_caught(http: TestClient) -> None:
    with loop_guard.caught() as found:
        with http.websocket_connect("/ws-threaded") as socket:
            assert socket.receive_text() == "1"
    assert found == []
    with loop_guard.caught() as found:
        with http.websocket_connect("/ws-blocking") as socket:
            assert socket.receive_text() == "1"
    assert found
    assert all("in blocking_socket" in b.where for b in found)


def test_uvicorns_loop_in_its_thread_is_watched_too(engine: Engine) -> None:
    sock, base = listening_socket()
    with serving(throwaway_app(engine), sock, name="loop-guard-uvicorn"):
        with loop_guard.caught() as found:
            assert httpx.get(f"{base}/def-session").json() == 1
        assert found == []
        with loop_guard.caught() as found:
            assert httpx.get(f"{base}/async-session").json() == 1
    assert found
    assert {b.thread for b in found} == {"loop-guard-uvicorn"}


def test_a_loop_left_marked_running_outside_any_task_is_not_the_apps(engine: Engine) -> None:
    """Playwright's sync API leaves its loop marked running in the main thread while the test's
    own code runs: that code is not on the app's loop."""
    loop = asyncio.new_event_loop()
    asyncio._set_running_loop(loop)
    try:
        with loop_guard.caught() as found, Session(engine) as db:
            db.execute(text("SELECT 1"))
    finally:
        asyncio._set_running_loop(None)
        loop.close()
    assert found == []


def test_a_test_that_blocks_the_loop_fails_and_shows_where(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(loop_guard.ROOT), *sys.path]))
    pytester.makepyfile(
        test_inner=textwrap.dedent(
            """
            import asyncio
            from sqlalchemy import create_engine, text

            ENGINE = create_engine("sqlite://")

            def test_fine():
                with ENGINE.connect() as conn:
                    conn.execute(text("SELECT 1"))

            def test_blocks():
                async def handler_on_the_loop():
                    with ENGINE.connect() as conn:
                        conn.execute(text("SELECT 1"))

                asyncio.run(handler_on_the_loop())
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "tests.loop_guard", "-q")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_blocks*",
            "*blocking call(s) on the event loop*",
            "*a database statement on the event loop*",
            "*in handler_on_the_loop*",
        ]
    )


# --- every route of the real app ---------------------------------------------------------------

# Plausible values for path and query parameters, by name; other whole numbers are 1.
VALUES = {
    "hold_id": "0" * 32,
    "call_sid": "CA" + "0" * 32,
    "step": "menu",
    "service_id": "pickup",
    "place": "main",
    "venue_id": "main",
    "day": "2027-01-12",
    "faq_id": "1",
    "kind": "csv",
    "code": "00000000",
    "lang": "ja",
    "token": "x",
    "n": "1",
}
# Twilio's form fields for any of its webhooks (a call's, a message's status).
TWILIO_FORM = {
    "CallSid": "CA" + "0" * 32,
    "From": "+819012345678",
    "To": "+81300000000",
    "Digits": "1",
    "CallStatus": "completed",
    "MessageSid": "SM" + "0" * 32,
    "MessageStatus": "delivered",
    "Body": "STOP",
}
TWILIO_PREFIXES = ("/ivr/", "/reminders/status", "/manage/messages/stop")


def _value(name: str, annotation: object) -> str:
    if name in VALUES:
        return VALUES[name]
    return "1" if annotation is int or int in get_args(annotation) else "x"


def _url(route: APIRoute) -> str:
    path = route.path
    for param in route.dependant.path_params:
        value = _value(param.name, param.field_info.annotation)
        path = re.sub(r"\{" + param.name + r"(:[^}]*)?\}", value, path)
    query = {
        p.name: _value(p.name, p.field_info.annotation)
        for p in route.dependant.query_params
        if p.field_info.is_required() or p.name in VALUES
    }
    return path + (f"?{urlencode(query)}" if query else "")


def _every_request(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, url) for every HTTP route but the two the walk ends with: the console's queue
    stream (it runs until the session ends) and signing out."""
    for route in api_routes(app.routes):
        if route.path in ("/console/queue/stream", "/console/logout"):
            continue
        for method in sorted(set(route.methods or ()) - {"HEAD"}):
            yield method, _url(route)


def _send(browser: TestClient, method: str, url: str, csrf: str) -> int:
    path = url.split("?")[0]
    answer: httpx.Response
    if method == "GET":
        answer = browser.get(url, follow_redirects=False)
    elif path.startswith(TWILIO_PREFIXES):
        signature = RequestValidator(TOKEN).compute_signature(PUBLIC + url, TWILIO_FORM)
        answer = browser.post(url, data=TWILIO_FORM, headers={"X-Twilio-Signature": signature})
    elif path.startswith("/api/"):
        answer = browser.request(method, url, json={})
    else:
        answer = browser.post(url, data={"csrf": csrf}, follow_redirects=False)
    return int(answer.status_code)


def test_every_route_of_the_app_keeps_the_database_and_argon2_off_the_loop(
    console: Console,
) -> None:
    """Every route, as a signed-in supervisor (the console's), with Twilio's signature (the
    phone line's and the messages' webhooks), or plainly (the API, the residents' pages): the
    routes the other tests reach deep, this one reaches at least at their door."""
    browser, _login = console.signed_in("supervisor")
    csrf = csrf_of(browser.get("/console/").text)
    requests = list(_every_request(console.app))
    assert len(requests) > 90  # every package's routes, and the two below
    answers: dict[str, int] = {}
    with loop_guard.caught() as found:
        for method, url in requests:
            answers[f"{method} {url}"] = _send(browser, method, url, csrf)
        signature = RequestValidator(TOKEN).compute_signature(
            console.app.state.phone_line.config.stream_url, {}
        )
        with browser.websocket_connect(
            "/ivr/stream", headers={"x-twilio-signature": signature}
        ) as stream:
            stream.send_text(json.dumps({"event": "connected"}))
            stream.send_text(json.dumps({"event": "stop"}))
        _watch_the_queue_until_signed_out(console, browser)
        answers["POST /console/logout"] = _send(browser, "POST", "/console/logout", csrf)
    assert found == [], loop_guard.report(found)
    assert [r for r, status in answers.items() if status >= 500] == []


def _watch_the_queue_until_signed_out(console: Console, browser: TestClient) -> None:
    """The queue's server-sent events run until the agent's session ends: an idle one, here."""
    console.app.state.console_tick_seconds = 0.05
    watcher = console.browser()
    watcher.cookies = browser.cookies
    answers: list[str] = []
    thread = threading.Thread(
        target=lambda: answers.append(watcher.get("/console/queue/stream").text)
    )
    thread.start()
    time.sleep(0.5)  # a few ticks with the queue on screen
    console.clock.advance(hours=12)
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert "event: queue" in answers[0]
    assert "event: signed-out" in answers[0]
