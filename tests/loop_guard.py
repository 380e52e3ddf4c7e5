"""Nothing blocks the event loop, over a whole test run.

An ``async def`` route runs on the loop that also answers Twilio: one database round trip or
argon2 hash there holds every call on the line (10 console logins on the loop took the phone
line's p99 from 25 ms to 1.3 s). So, for every test: each SQLAlchemy connection checkout and
cursor execute, and each argon2 ``PasswordHasher.hash``/``verify``, made inside an asyncio task
on a thread whose event loop is running is recorded with the project's frames that led to it
(the route). A test during which one happened fails at its teardown, showing them; one made
outside any test (a session fixture's server starting) fails the run at its end.

Covered: the TestClient's loop (its portal thread), uvicorn's loop in tests/live.py's thread,
and any ``asyncio.run`` a test makes. Work handed to ``run_in_threadpool``/``to_thread`` runs on
a worker thread without a loop, and a plain ``def`` route runs in the thread pool: neither is
recorded. Only code inside a task counts: Playwright's sync API leaves its loop marked running
in the main thread while the test's own code (which may well set up data) runs outside it.

Start-up and shut-down (the lifespan) are not exempt: they run on the same loop, and today's
lifespan needs the database nowhere (housekeeping goes through ``asyncio.to_thread``). Work a
future start-up must do belongs in ``asyncio.to_thread`` too, which costs nothing.

Loaded from tests/conftest.py (``pytest_plugins``). ``caught()`` lets a test look at what was
recorded instead of failing (the guard's own tests).
"""

from __future__ import annotations

import asyncio
import sysconfig
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve()
SHOWN = 5  # offences shown in a failure; the rest are counted
_LIBRARIES = tuple(
    Path(sysconfig.get_paths()[name]).resolve() for name in ("stdlib", "purelib", "platlib")
)


@dataclass(frozen=True)
class Blocking:
    """One blocking call made on a running event loop: what, on which thread, and from where."""

    kind: str
    thread: str
    frames: tuple[str, ...]

    @property
    def where(self) -> str:
        return "\n".join(self.frames)

    def __str__(self) -> str:
        return f"{self.kind} on the event loop (thread {self.thread!r}):\n{self.where}"


_lock = threading.Lock()
_recorded: list[Blocking] = []
_outside: list[Blocking] = []  # made while no test ran (session fixtures' set-up)


def on_the_loop() -> bool:
    """Whether the calling code runs inside an asyncio task of this thread's running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return asyncio.current_task() is not None


def _project_frames() -> tuple[str, ...]:
    """The frames of code under test (the project's, or a test's own): not the standard
    library's, not an installed package's."""
    frames = []
    for frame in traceback.extract_stack():
        if not Path(frame.filename).is_absolute():  # <frozen ...>, <string>
            continue
        path = Path(frame.filename).resolve()
        if path == HERE or any(path.is_relative_to(lib) for lib in _LIBRARIES):
            continue
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        frames.append(f"  {shown}:{frame.lineno} in {frame.name}")
    return tuple(frames) or ("  (only libraries' frames)",)


def _record(kind: str) -> None:
    if not on_the_loop():
        return
    found = Blocking(kind, threading.current_thread().name, _project_frames())
    with _lock:
        _recorded.append(found)


def _take() -> list[Blocking]:
    with _lock:
        taken = list(dict.fromkeys(_recorded))  # a checkout and its statements: once each
        _recorded.clear()
    return taken


@contextmanager
def caught() -> Iterator[list[Blocking]]:
    """Collect what blocks the loop inside the block, rather than failing the test with it."""
    before = _take()  # kept for the test's own check
    found: list[Blocking] = []
    try:
        yield found
    finally:
        found.extend(_take())
        with _lock:
            _recorded[:0] = before


def _on_checkout(*_args: Any) -> None:
    _record("a database connection checkout")


def _on_execute(*_args: Any) -> None:
    _record("a database statement")


def _watching(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def watched(self: PasswordHasher, *args: Any, **kwargs: Any) -> Any:
        _record(f"argon2 PasswordHasher.{name}")
        return original(self, *args, **kwargs)

    watched.__wrapped__ = original  # type: ignore[attr-defined]
    return watched


def install() -> None:
    """Listen on every engine and pool, and watch argon2's hasher (all instances, also future
    ones)."""
    if not event.contains(Pool, "checkout", _on_checkout):
        event.listen(Pool, "checkout", _on_checkout)
        event.listen(Engine, "before_cursor_execute", _on_execute)
        for name in ("hash", "verify"):
            setattr(PasswordHasher, name, _watching(name, getattr(PasswordHasher, name)))


def report(found: list[Blocking]) -> str:
    shown = "\n\n".join(str(b) for b in found[:SHOWN])
    more = f"\n\n... and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    return (
        f"{len(found)} blocking call(s) on the event loop: move them to a plain `def` route or "
        f"`await run_in_threadpool(...)`.\n\n{shown}{more}"
    )


def pytest_configure(config: pytest.Config) -> None:
    install()


@pytest.fixture(autouse=True)
def _nothing_blocks_the_loop() -> Iterator[None]:
    """Set up before the test's other fixtures, so torn down after them: a TestClient's
    shut-down is heard too."""
    _outside.extend(_take())
    yield
    found = _take()
    if found:
        pytest.fail(report(found), pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _outside.extend(_take())
    if _outside:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _outside:
        terminalreporter.section("blocking calls on the event loop outside any test", red=True)
        terminalreporter.write_line(report(list(dict.fromkeys(_outside))))
