"""The ward's data, returned at the contract's end in an open format: one CSV file per table
(UTF-8 with a byte-order mark, so spreadsheet programs read the Japanese), the personal fields
decrypted into plain columns, and a README that says what each file is.

Secrets are not the ward's data and stay out: staff password hashes, session tokens, the audit
chain's key. (Infrastructure like the migrations: it reads every package's tables by their
metadata.)
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from booking.personal import Vault
from config.tables import metadata

# Columns that are credentials, not data.
LEFT_OUT = {
    ("staff_user", "password_hash"),
    ("staff_session", "token_hash"),
    ("staff_user", "totp_secret_enc"),
    ("staff_user", "totp_pending_enc"),
    ("staff_recovery_code", "code_hash"),
}
LEFT_OUT_TABLES = {"alembic_version"}


def export(
    sessions: sessionmaker[Session],
    vault: Vault,
    out: Path,
    *,
    progress: Callable[[str, int], None] = lambda _table, _n: None,
) -> dict[str, int]:
    """Write the zip; returns the rows written per table."""
    written: dict[str, int] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table in sorted(metadata.tables.values(), key=lambda t: t.name):
            if table.name in LEFT_OUT_TABLES:
                continue
            columns = [c for c in table.columns if (table.name, c.name) not in LEFT_OUT]
            header = [c.name.removesuffix("_enc") for c in columns]
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(header)
            rows = 0
            with sessions() as db:
                for row in db.execute(select(*columns)):
                    writer.writerow(
                        [
                            _plain(vault, column.name, value)
                            for column, value in zip(columns, row, strict=True)
                        ]
                    )
                    rows += 1
            archive.writestr(f"{table.name}.csv", "\ufeff" + buffer.getvalue())
            written[table.name] = rows
            progress(table.name, rows)
        archive.writestr("README.txt", _readme(written))
        archive.writestr("manifest.json", json.dumps(written, indent=2))
    return written


def _plain(vault: Vault, name: str, value: object) -> object:
    if value is None:
        return ""
    if name.endswith("_enc") and isinstance(value, str):
        try:
            return vault.decrypt(value)
        except RuntimeError:
            return "(cannot be decrypted with the configured keys)"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def _readme(written: dict[str, int]) -> str:
    lines = [
        "Madoguchi: the ward's data (マイナンバーカード予約・コールセンター業務のデータ)",
        f"Exported {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "One CSV file per table, UTF-8 with BOM, first row the column names. Times are UTC",
        "(ISO 8601). Personal fields are decrypted: a column named like name_kana was",
        "name_kana_enc in the database. Empty personal fields were erased under the retention",
        "rule (see erasure_record.csv). Staff password hashes and session tokens are left out.",
        "",
        "Rows per file:",
        *[f"  {name}.csv: {rows}" for name, rows in written.items()],
    ]
    return "\n".join(lines) + "\n"
