"""Alembic driven from code: `madoguchi db upgrade`, and the tests' schema."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from config.settings import normalise_database_url


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "config:migrations")
    cfg.set_main_option("sqlalchemy.url", normalise_database_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database schema up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def current(url: str) -> None:
    command.current(alembic_config(url), verbose=True)


@contextmanager
def throwaway_database(
    admin_url: str, *, prefix: str = "madoguchi_scratch", keep: bool = False
) -> Iterator[URL]:
    """A new PostgreSQL database beside ``admin_url``, migrated to head, and dropped when the
    block ends (unless ``keep``, when its name is printed): for the benchmarks."""
    admin = create_engine(normalise_database_url(admin_url), isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(normalise_database_url(admin_url)).set(database=name)
    try:
        upgrade(url.render_as_string(hide_password=False))
        yield url
    finally:
        if keep:
            print(f"kept database {name}")  # noqa: T201 (the benchmark says what it kept)
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
