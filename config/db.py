"""Engine and session factory. Built by create_app() or the CLI, never at import time."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from booking.context import BookingContext


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for PostgreSQL (production, CI) or an SQLite file (the embedded default)."""
    # Statement parameters hold residents' data: keep them out of error messages and logs.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        # The driver's own transaction handling is off so that every transaction can start
        # with BEGIN IMMEDIATE: SQLite then serialises writers instead of failing one of them
        # half-way with "database is locked".
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "isolation_level": None}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA busy_timeout = 30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # No pre-ping: it costs a round trip per request. A connection the server dropped fails one
    # request, and SQLAlchemy then replaces the whole pool; recycling avoids idle timeouts.
    kwargs.setdefault("pool_recycle", 1800)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine, ctx: BookingContext) -> sessionmaker[Session]:
    """Sessions that carry the booking context (keys, rules, clock) for booking.service."""
    return sessionmaker(bind=engine, expire_on_commit=False, info={"booking": ctx})
