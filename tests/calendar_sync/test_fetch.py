"""Fetching the ward's calendar from its URL: retried when the ward's server is briefly down,
refused clearly when it is not there or never answers; `madoguchi calendar import` end to end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from calendar_sync.fetch import CalendarFetchFailed, fetch_calendar
from config.cli import main
from config.migrate import upgrade
from tests.calendar_sync.test_feeds import ward_calendar


class WardServer:
    """The ward's web server, answering each request with the next of ``answers``: a status
    code, or "hang" (no answer for a while)."""

    def __init__(self, answers: list[int | str], body: bytes) -> None:
        self.answers = answers
        self.body = body
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                answer = outer.answers.pop(0) if outer.answers else 200
                if answer == "hang":
                    time.sleep(1.5)
                    return
                self.send_response(int(answer))
                self.send_header("Content-Type", "text/calendar")
                self.end_headers()
                if answer == 200:
                    self.wfile.write(outer.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/holidays.ics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ward_server() -> Iterator[list[WardServer]]:
    made: list[WardServer] = []
    yield made
    for server in made:
        server.close()


def test_a_briefly_unavailable_server_is_tried_again(ward_server: list[WardServer]) -> None:
    server = WardServer([503, 200], b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    ward_server.append(server)
    assert fetch_calendar(server.url, pause=0.01).startswith(b"BEGIN:VCALENDAR")
    assert server.requests == 2


def test_a_missing_calendar_is_not_retried(ward_server: list[WardServer]) -> None:
    server = WardServer([404], b"")
    ward_server.append(server)
    with pytest.raises(CalendarFetchFailed, match="404"):
        fetch_calendar(server.url, pause=0.01)
    assert server.requests == 1


def test_a_server_that_never_answers_times_out(ward_server: list[WardServer]) -> None:
    server = WardServer(["hang", "hang", "hang"], b"")
    ward_server.append(server)
    with pytest.raises(CalendarFetchFailed, match="no answer within"):
        fetch_calendar(server.url, timeout=0.3, pause=0.01)
    assert server.requests == 3


def test_madoguchi_calendar_import_from_a_url(
    ward_server: list[WardServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    upgrade(url)
    monkeypatch.setenv("MADOGUCHI_DATABASE_URL", url)
    monkeypatch.setenv("MADOGUCHI_DATA_DIR", str(tmp_path))
    assert main(["sample", "load"]) == 0
    server = WardServer([], ward_calendar("cli-1@city.example.jp", "cli-2@city.example.jp"))
    ward_server.append(server)
    assert main(["calendar", "import", server.url]) == 0
    first = capsys.readouterr().out
    assert "created: 2" in first and "refused: 1" in first
    assert main(["calendar", "import", server.url]) == 0
    assert "already imported, unchanged: 2" in capsys.readouterr().out
    assert main(["calendar", "import", "https://127.0.0.1:1/nothing.ics"]) == 1
    assert "Could not read" in capsys.readouterr().err
