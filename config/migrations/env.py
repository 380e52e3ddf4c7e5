"""Alembic environment: runs with the URL config.migrate passes in (no alembic.ini needed)."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import create_engine, pool

from booking.base import UTCDateTime
from config.tables import metadata

url = context.config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("config.migrate sets sqlalchemy.url; run `madoguchi db upgrade`")


def render_item(type_: str, obj: Any, _autogen: AutogenContext) -> str | Literal[False]:
    """Migrations stay frozen: our UTC type is rendered as the plain column type it wraps."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_offline(url: str) -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online(url: str) -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        # SQLite cannot ALTER most things in place: batch mode rebuilds the table.
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline(url)
else:
    run_online(url)
