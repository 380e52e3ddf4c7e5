"""Key rotation for the encrypted personal fields, without stopping the service.

The procedure (README, "Personal data"):

1. ``madoguchi keys new`` prints a fresh data key.
2. Put it first in ``MADOGUCHI_DATA_KEYS`` (the old keys after it) and restart the processes
   one by one: from then on every write uses the new key, and every key still decrypts.
3. ``madoguchi keys rotate`` re-encrypts every stored value under the newest key, table by
   table in small batches, each its own short transaction. A value changed meanwhile is left
   alone (the conditional UPDATE finds it changed): it was written with the new key already.
4. When it reports nothing left under an old key, drop the old keys from the setting.

Every column named ``*_enc`` in the models is a personal field (infrastructure, like the
migrations: it reads the tables of every package by their metadata, not their services).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Column, Table, and_, select, update
from sqlalchemy.orm import Session, sessionmaker

from booking.personal import Vault
from config.tables import metadata

BATCH = 500


def encrypted_columns() -> Iterator[tuple[Table, Column[str]]]:
    """Every personal field: the ``*_enc`` columns of every table, in a stable order."""
    for table in sorted(metadata.tables.values(), key=lambda t: t.name):
        for column in table.columns:
            if column.name.endswith("_enc"):
                yield table, column


@dataclass
class Rotated:
    table: str
    column: str
    values: int = 0  # values seen
    rewritten: int = 0  # re-encrypted under the newest key
    changed_meanwhile: int = 0  # written by the service during the run (new key already)


def rotate(
    sessions: sessionmaker[Session],
    vault: Vault,
    *,
    progress: Callable[[str, int], None] = lambda _name, _n: None,
) -> list[Rotated]:
    """Re-encrypt every personal field under the vault's newest key."""
    report = []
    for table, column in encrypted_columns():
        (key,) = table.primary_key.columns
        done = Rotated(table.name, column.name)
        after = None
        while True:
            with sessions() as db:
                query = (
                    select(key, column)
                    .where(column.is_not(None), column != "")
                    .order_by(key)
                    .limit(BATCH)
                )
                if after is not None:
                    query = query.where(key > after)
                rows = db.execute(query).all()
                if not rows:
                    break
                for row_id, token in rows:
                    fresh = vault.fernet.rotate(token.encode()).decode()
                    result = db.execute(
                        update(table)
                        .where(and_(key == row_id, column == token))
                        .values({column.name: fresh})
                    )
                    if result.rowcount == 1:  # type: ignore[attr-defined]
                        done.rewritten += 1
                    else:
                        done.changed_meanwhile += 1
                db.commit()
            done.values += len(rows)
            after = rows[-1][0]
            progress(f"{table.name}.{column.name}", len(rows))
        report.append(done)
    return report


def under_old_keys(sessions: sessionmaker[Session], newest_key: str) -> dict[str, int]:
    """How many stored values the newest key alone cannot read, per field (0 everywhere:
    the old keys may go)."""
    newest = Fernet(newest_key.encode())
    left = {}
    for table, column in encrypted_columns():
        count = 0
        with sessions() as db:
            for (token,) in db.execute(select(column).where(column.is_not(None), column != "")):
                try:
                    newest.decrypt(token.encode())
                except InvalidToken:
                    count += 1
        left[f"{table.name}.{column.name}"] = count
    return left
