"""The real /api/v1 app for the HTTP phase of bench_booking.py, built from environment variables.

uvicorn imports it by name (``bench.http_app:create --factory``), so it also works with several
worker processes. It is ``config.app.create_app`` unchanged, except that the request sessions
carry a fixed clock (``BENCH_NOW``), so the bench slots stay inside the booking window, and a
connection pool sized for the bench (``BENCH_POOL_SIZE``).
"""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime

from fastapi import FastAPI

from config.app import booking_context, create_app
from config.db import make_engine, make_sessionmaker
from config.settings import Settings


def create() -> FastAPI:
    """The app; settings come from the MADOGUCHI_* variables the bench sets."""
    settings = Settings()
    app = create_app(settings)
    now = datetime.fromisoformat(os.environ["BENCH_NOW"])
    if now.tzinfo is None:
        raise ValueError("BENCH_NOW must carry a time zone")
    ctx = dataclasses.replace(booking_context(settings), clock=lambda: now)
    pool = int(os.environ.get("BENCH_POOL_SIZE", "10"))
    engine = make_engine(settings.sqlalchemy_url, pool_size=pool, max_overflow=pool)
    app.state.sessions = make_sessionmaker(engine, ctx)
    return app
