"""MADOGUCHI_LOG_FORMAT=json: one JSON object per line, each with the id of the request that
logged it (the id its answer carries), and the traceback when there is one."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from redis import Redis
from rq import Queue

from config import logs
from config.app import create_app
from config.migrate import upgrade
from config.settings import Settings
from reminders.jobs import MESSAGES_QUEUE
from tests import log_audit
from tests.reminders.test_worker import PrivateRedis

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
    logging.captureWarnings(False)


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


# --- a worker's lines ---------------------------------------------------------------------------


def job_that_logs(n: int) -> int:
    """A job of the test's own, run by a real `madoguchi worker` (it imports this module)."""
    logging.getLogger("madoguchi.test_json_logs.job").warning("job heard %d", n)
    return n


def job_that_fails() -> None:
    raise RuntimeError("the job broke")


def test_a_workers_lines_are_json_with_the_job_id_and_function(tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        upgrade(f"sqlite:///{tmp_path}/madoguchi.db")
        queue = Queue(MESSAGES_QUEUE, connection=Redis.from_url(redis.url))
        said = queue.enqueue(job_that_logs, 7, job_id="test-job-says-7")
        broke = queue.enqueue(job_that_fails, job_id="test-job-breaks")
        env = {
            **os.environ,
            "MADOGUCHI_ENVIRONMENT": "test",
            "MADOGUCHI_DATA_DIR": str(tmp_path),
            "MADOGUCHI_DATA_KEYS": Fernet.generate_key().decode(),
            "MADOGUCHI_LOOKUP_KEY": "l" * 32,
            "MADOGUCHI_REDIS_URL": redis.url,
            "MADOGUCHI_LOG_FORMAT": "json",
            "MADOGUCHI_LOG_LEVEL": "INFO",
        }
        ran = subprocess.run(
            [sys.executable, "-c", "from config.cli import main; main(['worker', '--burst'])"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        redis.stop()
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, output
    lines = [line for line in output.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(e["message"].startswith("Database: sqlite") for e in entries), output

    (heard,) = [e for e in entries if e["message"] == "job heard 7"]
    assert heard["job_id"] == said.id
    assert heard["job"] == "tests.test_json_logs.job_that_logs"
    assert heard["logger"] == "madoguchi.test_json_logs.job"
    assert "request_id" not in heard
    # RQ's own lines about a job carry it too: its success, and its failure with the traceback.
    done = [e for e in entries if e.get("job_id") == said.id and "Job OK" in e["message"]]
    assert len(done) == 1, output
    failed = [e for e in entries if e.get("job_id") == broke.id and e["level"] == "ERROR"]
    assert failed, output
    assert failed[0]["job"] == "tests.test_json_logs.job_that_fails"
    assert any("RuntimeError: the job broke" in e["message"] for e in failed)
    # Lines outside any job (the worker starting, its queues) carry no job.
    assert any(e["logger"] == "rq.worker" and "job_id" not in e for e in entries)
