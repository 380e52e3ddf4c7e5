"""MADOGUCHI_LOG_FORMAT=json: one JSON object per line, each with the id of the request that
logged it (the id its answer carries), and the traceback when there is one."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient

from config import logs
from config.app import create_app
from config.settings import Settings
from tests import log_audit

log = logging.getLogger("madoguchi.test_json_logs")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Each test's logging set-up is undone: the rest of the run logs as before."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    uvicorns = {
        name: [(h, h.formatter) for h in logging.getLogger(name).handlers]
        for name in logs.UVICORN_LOGGERS
    }
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    for pairs in uvicorns.values():
        for handler, formatter in pairs:
            handler.setFormatter(formatter)


def app_logging(tmp_path: Path, log_format: str) -> FastAPI:
    app = create_app(
        Settings(
            environment="test",
            data_dir=tmp_path,
            data_keys=Fernet.generate_key().decode(),
            lookup_key="l" * 32,
            log_format=log_format,
        )
    )

    @app.get("/api/v1/test-logging")
    def speaks(n: int) -> dict[str, int]:  # a plain def route: it runs in the thread pool
        log.warning("looked at item %d", n)
        return {"n": n}

    @app.get("/api/v1/test-failing")
    def fails() -> None:
        raise RuntimeError("the thing broke")

    return app


def json_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_log_lines_are_json_with_the_request_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = app_logging(tmp_path, "json")
    capsys.readouterr()
    with TestClient(app) as http:
        first = http.get("/api/v1/test-logging?n=1", headers={"x-request-id": "nginx-req-00000001"})
        second = http.get("/api/v1/test-logging?n=2")
    err = capsys.readouterr().err
    lines = [e for e in json_lines(err) if e["logger"] == log.name]
    assert len(lines) == 2, err
    one, two = lines
    assert one["message"] == "looked at item 1"
    assert one["level"] == "WARNING"
    assert one["request_id"] == "nginx-req-00000001" == first.headers["x-request-id"]
    assert two["request_id"] == second.headers["x-request-id"] != one["request_id"]
    when = datetime.fromisoformat(one["time"])
    assert when.utcoffset() == timedelta(0)
    assert set(one) == {"time", "level", "logger", "message", "request_id"}
    # Every line of the output is JSON, none the text format's.
    assert all(line.startswith("{") for line in err.splitlines() if line.strip())


def test_an_unexpected_error_is_one_json_line_with_its_traceback_and_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = app_logging(tmp_path, "json")
    capsys.readouterr()
    with TestClient(app, raise_server_exceptions=False) as http:
        answer = http.get("/api/v1/test-failing")
    assert answer.status_code == 500
    errors = [e for e in json_lines(capsys.readouterr().err) if e["level"] == "ERROR"]
    assert len(errors) == 1
    (error,) = errors
    assert error["request_id"] == answer.headers["x-request-id"]
    assert error["request_id"] == answer.json()["error"]["request_id"]
    assert "RuntimeError: the thing broke" in error["exception"]
    assert "Traceback" in error["exception"]


def test_a_second_app_replaces_the_json_handler_and_the_log_audit_still_listens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app_logging(tmp_path, "json")
    app = app_logging(tmp_path, "json")
    capsys.readouterr()
    with TestClient(app) as http:
        http.get("/api/v1/test-logging?n=3", headers={"x-request-id": "nginx-req-00000003"})
    lines = [e for e in json_lines(capsys.readouterr().err) if e["logger"] == log.name]
    assert len(lines) == 1
    audit = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == log_audit._log_file
    ]
    assert len(audit) == 1
    audit[0].flush()
    assert "looked at item 3" in log_audit._log_file.read_text(encoding="utf-8")


def test_text_stays_the_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = app_logging(tmp_path, "text")
    capsys.readouterr()
    with TestClient(app) as http:
        http.get("/api/v1/test-logging?n=4")
    assert json_lines(capsys.readouterr().err) == []
    assert Settings().log_format == "text"


def test_twilios_client_never_logs_a_residents_number(tmp_path: Path) -> None:
    """twilio.http_client logs every request's parameters (To, Body) at INFO."""
    logging.getLogger("twilio.http_client").setLevel(logging.NOTSET)
    app_logging(tmp_path, "text")
    assert not logging.getLogger("twilio.http_client").isEnabledFor(logging.INFO)
    assert logging.getLogger("twilio.http_client").isEnabledFor(logging.WARNING)
