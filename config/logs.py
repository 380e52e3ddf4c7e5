"""Where the logs go and in what shape: text (the default) or one JSON object per line
(``MADOGUCHI_LOG_FORMAT=json``) for a log collector, each carrying the id of the request that
logged it, the same id the answer's ``X-Request-ID`` header and error pages show; in a worker,
the id and function of the job being run."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from starlette.types import ASGIApp, Receive, Scope, Send

from config.errors import request_id

# The request being answered; copied into the thread pool's threads with the rest of the context.
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
# The job a worker is running: its id and its function's dotted name (None when unreadable).
current_job: ContextVar[tuple[str, str | None] | None] = ContextVar("current_job", default=None)
# uvicorn's own loggers keep their handlers (their records do not reach the root).
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class RequestIds:
    """Makes the request id known to every log record written while the request runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = current_request_id.set(request_id(scope))
        try:
            await self.app(scope, receive, send)
        finally:
            current_request_id.reset(token)


@contextmanager
def running_job(job_id: str, function: str | None) -> Iterator[None]:
    """Every log record written while the job runs carries its id and function."""
    token = current_job.set((job_id, function))
    try:
        yield
    finally:
        current_job.reset(token)


class JsonLines(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, request_id (in a
    request) or job_id and job (in a worker's job), and the exception's traceback when there is
    one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = current_request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        job = current_job.get()
        if job is not None:
            entry["job_id"] = job[0]
            if job[1] is not None:
                entry["job"] = job[1]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


class _JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root's JSON handler (marked, so a second create_app() replaces it, not adds one)."""


def _level(level: str) -> int:
    found = logging.getLevelName(level.upper())
    return found if isinstance(found, int) else logging.INFO


def configure_logging(level: str, log_format: str) -> None:
    """Text: Python's basic set-up, as before. JSON: a JSON-lines handler on the root (replacing
    one set before) and JSON on uvicorn's own handlers; other handlers (a test's) are kept."""
    # Twilio's client logs each request's parameters at INFO: the resident's phone number and
    # the text of the message. Its warnings and errors are still heard.
    logging.getLogger("twilio.http_client").setLevel(max(logging.WARNING, _level(level)))
    if log_format != "json":
        logging.basicConfig(level=level)
        return
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _JsonHandler)]:
        root.removeHandler(handler)
    handler = _JsonHandler()
    handler.setFormatter(JsonLines())
    root.addHandler(handler)
    root.setLevel(level)
    # Python's warnings (a deprecation in a library) as log records too: written raw, they
    # would be the one line a collector cannot read.
    logging.captureWarnings(True)
    for name in UVICORN_LOGGERS:
        for own in logging.getLogger(name).handlers:
            own.setFormatter(JsonLines())
