"""Backups of the whole database, and restoring one into an empty database.

PostgreSQL: ``pg_dump -Fc`` (the custom format, compressed, restored with ``pg_restore``), in a
snapshot shared with the row counts printed beside it, so the summary tells what the file
holds. The connection's password goes to the tools in the PGPASSWORD environment variable,
never on their command line (which every user of the machine can read in ``ps``).
SQLite (the embedded default): SQLite's online backup API, page by page, while the service
runs; the copy is one self-contained database file.

Personal fields stay encrypted in a backup: restoring one needs the same MADOGUCHI_DATA_KEYS
and MADOGUCHI_LOOKUP_KEY to read them, and the keys are never in it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from config.settings import normalise_database_url

Kind = Literal["postgresql", "sqlite"]
# A step done: (steps done, steps in all, what was just done), for a progress bar.
Progress = Callable[[int, int, str], None]

# The first bytes of each kind of backup file.
MAGIC: dict[Kind, bytes] = {"postgresql": b"PGDMP", "sqlite": b"SQLite format 3\x00"}
SQLITE_PAGES_PER_STEP = 1024
# libpq's environment variables for the URL's query options that the tools must also use.
QUERY_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "options": "PGOPTIONS",
}
MISSING_TOOL = (
    "{tool} is not installed (or not on PATH): install PostgreSQL's client tools of the "
    "server's major version or newer, e.g. `apt install postgresql-client-15`"
)


class BackupError(Exception):
    """A backup or restore that could not be done, with what to do about it."""


@dataclass(frozen=True)
class Contents:
    """What a database holds: rows per table, and the schema's migration revision."""

    tables: dict[str, int]
    revision: str | None

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


@dataclass(frozen=True)
class Done:
    """A backup written or restored: the file, its size and kind, and what it holds."""

    path: Path
    size: int
    kind: Kind
    contents: Contents


def kind_of_url(url: str) -> Kind:
    backend = make_url(normalise_database_url(url)).get_backend_name()
    return "sqlite" if backend == "sqlite" else "postgresql"


def kind_of_file(path: Path) -> Kind:
    """A backup file's kind, from its first bytes."""
    try:
        with path.open("rb") as file:
            head = file.read(16)
    except OSError as failed:
        raise BackupError(f"cannot read {path}: {failed.strerror}") from None
    for kind, magic in MAGIC.items():
        if head.startswith(magic):
            return kind
    raise BackupError(
        f"{path} is not a backup made by `madoguchi backup` (neither a pg_dump custom-format "
        "archive nor an SQLite database)"
    )


def contents(url: str) -> Contents:
    """Every table of the database at ``url`` with its row count, and its schema revision."""
    engine = create_engine(normalise_database_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return _contents(conn)
    except SQLAlchemyError as failed:
        raise BackupError(f"cannot read {_safe(url)}: {failed.__cause__ or failed}") from None
    finally:
        engine.dispose()


def _contents(conn: Connection) -> Contents:
    quote = conn.dialect.identifier_preparer.quote
    tables = {
        name: int(conn.execute(text(f"SELECT count(*) FROM {quote(name)}")).scalar_one())  # noqa: S608 (names from the catalogue)
        for name in sorted(inspect(conn).get_table_names())
    }
    revision = None
    if "alembic_version" in tables:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return Contents(tables, revision)


def backup(url: str, out: Path, *, timeout: float, progress: Progress | None = None) -> Done:
    """Write the whole database at ``url`` to ``out`` (replaced only once the copy is whole)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    # The file holds staff password hashes and the audit log: readable by its owner only.
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        kind = kind_of_url(url)
        if kind == "sqlite":
            held = _sqlite_copy(_sqlite_path(url), partial, progress)
        else:
            held = _pg_dump(url, partial, timeout, progress)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return Done(out, out.stat().st_size, kind, held)


def restore(
    source: Path, url: str, *, force: bool, timeout: float, progress: Progress | None = None
) -> Done:
    """Fill the database at ``url`` from a backup; refuses one that holds tables unless
    ``force``, which replaces them."""
    kind = kind_of_file(source)
    if kind != kind_of_url(url):
        raise BackupError(
            f"{source} is a {kind} backup and restores into {kind} only, not into "
            f"{_safe(url)} (to move a ward between the two, use `madoguchi export`)"
        )
    if kind == "sqlite":
        _sqlite_path(url).parent.mkdir(parents=True, exist_ok=True)
    before = contents(url)
    if before.tables and not force:
        raise BackupError(
            f"{_safe(url)} is not empty: it holds {len(before.tables)} tables "
            f"({before.rows} rows). Restore into a new, empty database, or give --force to "
            "replace what it holds."
        )
    if kind == "sqlite":
        _sqlite_copy(source, _sqlite_path(url), progress)
    else:
        _pg_restore(source, url, timeout, progress, clean=bool(before.tables))
    return Done(source, source.stat().st_size, kind, contents(url))


# SQLite ---------------------------------------------------------------------------------------


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError(f"{url} is not an SQLite file")
    return Path(database)


def _sqlite_copy(source: Path, target: Path, progress: Progress | None) -> Contents:
    """SQLite's online backup: a consistent copy while others go on writing."""
    if not source.exists():
        raise BackupError(f"there is no SQLite database at {source}")

    def step(_status: int, remaining: int, total: int) -> None:
        if progress is not None:
            progress(total - remaining, total, "pages")

    with (
        closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst, pages=SQLITE_PAGES_PER_STEP, progress=step)
        # One self-contained file (the service's WAL mode would leave -wal and -shm files
        # beside it); the service turns WAL back on as it opens a restored database.
        dst.execute("PRAGMA journal_mode=DELETE")
    return contents(f"sqlite:///{target}")


# PostgreSQL -----------------------------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(MISSING_TOOL.format(tool=name))
    return found


def _libpq_env(url: URL) -> dict[str, str]:
    """The connection for pg_dump and pg_restore, password included, in their environment."""
    env = dict(os.environ)
    for var, value in (
        ("PGHOST", url.host),
        ("PGPORT", url.port),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
    ):
        if value:
            env[var] = str(value)
    for option, var in QUERY_ENV.items():
        given = url.query.get(option)
        if isinstance(given, str):
            env[var] = given
    return env


def _pg_dump(url: str, out: Path, timeout: float, progress: Progress | None) -> Contents:
    pg_dump = _tool("pg_dump")
    parsed = make_url(normalise_database_url(url))
    # The row counts and the dump see the same snapshot: the transaction exporting it stays
    # open (REPEATABLE READ) until pg_dump is done.
    engine = create_engine(parsed, poolclass=NullPool, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn:
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            held = _contents(conn)
            _run(
                [pg_dump, "--format=custom", "--verbose", f"--snapshot={snapshot}", "-f", str(out)],
                env=_libpq_env(parsed),
                timeout=timeout,
                marker="dumping contents of table",
                total=len(held.tables),
                progress=progress,
            )
            conn.rollback()
    except SQLAlchemyError as failed:
        raise BackupError(f"cannot read {_safe(url)}: {failed.__cause__ or failed}") from None
    finally:
        engine.dispose()
    return held


def _pg_restore(
    source: Path, url: str, timeout: float, progress: Progress | None, *, clean: bool
) -> None:
    pg_restore = _tool("pg_restore")
    parsed = make_url(normalise_database_url(url))
    listing = subprocess.run(  # noqa: S603 (PostgreSQL's tool, our arguments)
        [pg_restore, "--list", str(source)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if listing.returncode:
        raise BackupError(f"pg_restore cannot read {source}: {listing.stderr.strip()}")
    tables = sum(" TABLE DATA " in line for line in listing.stdout.splitlines())
    argv = [
        pg_restore,
        # Objects belong to whoever restores (the ward's role may be named otherwise there).
        "--no-owner",
        "--no-privileges",
        # All or nothing: a failed restore leaves the target as it was.
        "--single-transaction",
        "--exit-on-error",
        "--verbose",
        *(["--clean", "--if-exists"] if clean else []),
        "--dbname",
        str(parsed.database),
        str(source),
    ]
    _run(
        argv,
        env=_libpq_env(parsed),
        timeout=timeout,
        marker="processing data for table",
        total=tables,
        progress=progress,
    )


def _run(
    argv: list[str],
    *,
    env: dict[str, str],
    timeout: float,
    marker: str,
    total: int,
    progress: Progress | None,
) -> None:
    """Run pg_dump or pg_restore, counting the tables it reports on stderr as it goes."""
    tool = Path(argv[0]).name
    process = subprocess.Popen(  # noqa: S603 (PostgreSQL's tool, our arguments)
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    said: list[str] = []

    def read(stream: IO[str]) -> None:
        done = 0
        for line in stream:
            if marker in line:
                done += 1
                if progress is not None:
                    progress(done, max(total, done), line.rsplit(" ", 1)[-1].strip().strip('"'))
            else:
                said.append(line.rstrip())

    reader = threading.Thread(target=read, args=(process.stderr,), daemon=True)
    reader.start()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise BackupError(
            f"{tool} was stopped after {timeout:g} seconds (give a longer --timeout)"
        ) from None
    finally:
        reader.join(timeout=5)
    if process.returncode:
        problems = [
            line
            for line in said
            if any(word in line.lower() for word in ("error", "fatal", "detail", "hint"))
        ] or said[-5:]
        raise BackupError(f"{tool} failed:\n  " + "\n  ".join(problems))


def _safe(url: str) -> str:
    return make_url(normalise_database_url(url)).render_as_string(hide_password=True)
