"""The event-loop guard (tests/loop_guard.py) catches what blocks the loop, and only that: a
database call or argon2 hash in an ``async def`` route, on the TestClient's loop or uvicorn's,
in a WebSocket handler too; never the same work in a plain ``def`` route or handed to a thread."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from collections.abc import Iterator

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from tests import loop_guard
from tests.live import listening_socket, serving

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
