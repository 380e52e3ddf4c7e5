"""Engine and session factory. Built by create_app() or the CLI, never at import time."""

from __future__ import annotations

import select
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from booking.context import BookingContext
from config.replica import CONNECT_TIMEOUT_SECONDS
from config.settings import Settings


def make_engine(
    url: str,
    *,
    statement_timeout_ms: int = 0,
    read_only: bool = False,
    connect_timeout_s: int = 0,
    **kwargs: Any,
) -> Engine:
    """An engine for PostgreSQL (production, CI) or an SQLite file (the embedded default).

    ``statement_timeout_ms`` (PostgreSQL only, 0 for none) bounds every statement;
    ``read_only`` (PostgreSQL only) makes every transaction read-only, as the server sees it;
    ``connect_timeout_s`` (PostgreSQL only, 0 for libpq's default: none) bounds a connect."""
    # Statement parameters hold residents' data: keep them out of error messages and logs.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # A connection that sat in the pool is tested (one round trip) as it leaves it: after a
    # PostgreSQL restart or a failover, the dead connections are replaced there and no request
    # fails for them. One back within the last moment is not: under load every connection is,
    # and the test was one round trip in eight of a phone-line webhook (bench/README.md).
    ping_idle = kwargs.pop("pool_pre_ping", True)
    # Recycling avoids idle timeouts in firewalls and proxies between here and the server.
    kwargs.setdefault("pool_recycle", 1800)
    kwargs["connect_args"] = _postgres_connect_args(
        url,
        dict(kwargs.pop("connect_args", {})),
        statement_timeout_ms=statement_timeout_ms,
        read_only=read_only,
        connect_timeout_s=connect_timeout_s,
    )
    engine = create_engine(url, **kwargs)
    if ping_idle:
        _ping_when_idle(engine)
    return engine


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    """The embedded default's engine. The driver's own transaction handling is off so that
    every transaction can start with BEGIN IMMEDIATE: SQLite then serialises writers instead
    of failing one of them half-way with "database is locked"."""
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


def _postgres_connect_args(
    url: str,
    connect_args: dict[str, Any],
    *,
    statement_timeout_ms: int,
    read_only: bool,
    connect_timeout_s: int,
) -> dict[str, Any]:
    """libpq's arguments, set when a connection opens (no round trip per request)."""
    options = []
    if statement_timeout_ms:
        # The server cancels a statement past it, which the request answers as a 503.
        options.append(f"-c statement_timeout={int(statement_timeout_ms)}")
    if read_only:
        # A replica's engine: should a write reach it by mistake (or the replica be promoted
        # and still named here), the server refuses it instead of writing behind the primary.
        options.append("-c default_transaction_read_only=on")
    if connect_timeout_s:
        connect_args["connect_timeout"] = int(connect_timeout_s)
    if options:
        given = make_url(url).query.get("options")  # the URL's own ?options=, kept
        if isinstance(given, str):
            options.insert(0, given)
        connect_args["options"] = " ".join(options)
    return connect_args


# A connection back in the pool more recently than this is not tested with a round trip (see
# _ping_when_idle).
IDLE_BEFORE_PING_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pre-ping, without its round trip for a connection back a moment ago: that
    one is dead only if the server closed it meanwhile (a restart, a terminated backend), and
    then its socket is readable (the server's farewell or the end of the stream), which costs
    one system call to see."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _test(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None:
            return  # just opened
        if time.monotonic() - returned < IDLE_BEFORE_PING_SECONDS and not _spoke(dbapi_conn):
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            # The pool drops this connection and checks out another (a new one if need be).
            raise DisconnectionError("the connection did not answer a ping") from exc


def _spoke(dbapi_conn: Any) -> bool:
    """Whether an idle connection's server sent anything (it never does unless it is closing
    the connection), or the socket is gone."""
    try:
        readable, _, _ = select.select([dbapi_conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def engine_for(settings: Settings, *, replica: bool = False) -> Engine:
    """The engine of one process: its pool and statement timeout from settings. ``replica``:
    the read replica's (MADOGUCHI_DATABASE_READ_URL), its transactions read-only; a pool of
    the same size, opened beside the primary's."""
    url = settings.sqlalchemy_url
    if replica:
        if settings.sqlalchemy_read_url is None:
            raise ValueError("no read replica configured (MADOGUCHI_DATABASE_READ_URL)")
        url = settings.sqlalchemy_read_url
    if url.startswith("sqlite"):
        return make_engine(url)
    return make_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        read_only=replica,
        # A replica that does not answer is given up quickly: shown reads then go to the
        # primary (config.replica.ShownReads).
        connect_timeout_s=CONNECT_TIMEOUT_SECONDS if replica else 0,
    )


def make_sessionmaker(engine: Engine, ctx: BookingContext) -> sessionmaker[Session]:
    """Sessions that carry the booking context (keys, rules, clock) for booking.service."""
    return sessionmaker(bind=engine, expire_on_commit=False, info={"booking": ctx})
