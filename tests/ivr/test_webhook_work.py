"""What one webhook costs the database: the call row written once, in threads no more numerous
than the connections the pool keeps (bench/README.md, bench_ivr.py's figures of 2026-12-03)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from ivr import service as calls
from tests.ivr.conftest import Line


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run on ``engine`` meanwhile, first words only."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()[:3]))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_a_step_writes_the_call_row_once(line: Line) -> None:
    call = line.call()
    call.dial()
    engine = line.sessions.kw["bind"]
    with statements(engine) as seen:
        # The menu's key is noted on the call's path, then the services are read for the next
        # question: the note waits for the step's one write, rather than being flushed first.
        call.press("1")
    assert any(s.startswith("SELECT service.") for s in seen), seen
    assert [s for s in seen if s.startswith("UPDATE call ")] == ["UPDATE call SET"]
    # ...and the path is kept all the same.
    with line.sessions() as db:
        found = calls.get_call(db, call_sid=call.call_sid)
    assert found is not None
    assert "メニュー：新しい予約（1）" in calls.readable_path(found.path)


def test_the_line_has_as_many_threads_as_the_pool_keeps_connections(line: Line) -> None:
    call = line.call()
    call.dial()
    app: Any = line.http.app
    pool = line.sessions.kw["bind"].pool
    assert app.state.ivr_limiter.total_tokens == pool.size()


def test_the_phone_line_process_keeps_its_start_up_objects_out_of_full_collections() -> None:
    # In a process of its own: freezing is for the whole interpreter, and this one runs tests.
    probe = (
        "import gc, sys\n"
        "from config.ivr_app import GIL_SWITCH_SECONDS, phone_line_process\n"
        "before = gc.get_freeze_count()\n"
        "async def app(scope, receive, send): pass\n"
        "phone_line_process(app)\n"
        "print(before, gc.get_freeze_count(), sys.getswitchinterval() == GIL_SWITCH_SECONDS)\n"
    )
    done = subprocess.run(  # noqa: S603 (this interpreter, our own probe)
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    before, frozen, switched = done.stdout.split()
    assert int(before) == 0
    assert int(frozen) > 10_000  # the modules and the app's objects, not a handful
    assert switched == "True"
