"""`madoguchi backup` and `restore`: the whole database to a file and back."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from config.commands.common import AddCommand, safe_url
from config.settings import Settings

if TYPE_CHECKING:
    from config.backup import Contents

BACKUP_EXAMPLES = """examples:
  madoguchi backup /var/backups/madoguchi/$(date +%F).dump
      the database MADOGUCHI_DATABASE_URL names (PostgreSQL: pg_dump's custom format;
      the embedded SQLite: a copy of the database file), taken while the service runs
  madoguchi backup nightly.dump --timeout 7200        allow pg_dump two hours

The file is written beside FILE and renamed when whole, readable by its owner only. It
holds the personal fields encrypted: keep MADOGUCHI_DATA_KEYS and MADOGUCHI_LOOKUP_KEY
(or var/trial-keys.json) somewhere else; without them a restored copy cannot be read."""


RESTORE_EXAMPLES = """examples:
  createdb madoguchi_restored
  MADOGUCHI_DATABASE_URL=postgresql://madoguchi@db.example/madoguchi_restored \\
      madoguchi restore /var/backups/madoguchi/2026-12-15.dump
  madoguchi restore 2026-12-15.dump --into postgresql://madoguchi@db.example/madoguchi_restored
  madoguchi restore var-backup.db --into sqlite:///var/madoguchi.db --force

The target is MADOGUCHI_DATABASE_URL unless --into names another. Give the password in
PGPASSWORD or ~/.pgpass, never in a URL typed on the command line (other users see it in
`ps`). A database that holds tables is refused unless --force, which replaces them; the
restore is one transaction, so a failed one leaves the target as it was. Serve the restored
database with the same MADOGUCHI_DATA_KEYS and MADOGUCHI_LOOKUP_KEY as the backed-up one."""


def _progress_bar(
    desc: str, unit: str
) -> tuple[Callable[[int, int, str], None], Callable[[], None]]:
    """A progress bar that shows only once there is progress (not before a refusal)."""
    from tqdm import tqdm

    bars: list[tqdm[None]] = []

    def progress(done: int, total: int, what: str) -> None:
        if not bars:
            bars.append(tqdm(desc=desc, unit=unit, total=total))
        bars[0].total = total
        bars[0].n = done
        bars[0].set_postfix_str(what, refresh=False)
        bars[0].refresh()

    def close() -> None:
        for bar in bars:
            bar.close()

    return progress, close


def _held(contents: Contents) -> str:
    """What a backup holds, for the terminal: tables and rows, the biggest first."""
    import textwrap

    biggest = sorted(contents.tables.items(), key=lambda item: -item[1])
    listed = ", ".join(f"{name} {rows}" for name, rows in biggest if rows)
    wrapped = textwrap.fill(listed, width=98, initial_indent="  ", subsequent_indent="  ")
    return (
        f"{len(contents.tables)} tables, {contents.rows} rows (schema {contents.revision})\n"
        + wrapped
    )


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from config.backup import BackupError, backup

    url = settings.sqlalchemy_url
    print(f"Backing up {safe_url(url)}")
    progress, close = _progress_bar("backing up", "table" if "postgresql" in url else "page")
    try:
        done = backup(url, Path(args.file), timeout=args.timeout, progress=progress)
    except BackupError as failed:
        close()
        print(f"backup: {failed}", file=sys.stderr)
        return 1
    close()
    print(f"Wrote {done.path}: {done.size / 1e6:.1f} MB ({done.size} bytes), {done.kind} backup")
    print(_held(done.contents))
    keys = (
        "MADOGUCHI_DATA_KEYS and MADOGUCHI_LOOKUP_KEY"
        if settings.data_keys
        else f"the trial keys, {settings.data_dir / 'trial-keys.json'},"
    )
    print(f"Personal fields are in it encrypted: keep {keys} apart from it, for a restore.")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from alembic.script import ScriptDirectory

    from config.backup import BackupError, restore
    from config.migrate import alembic_config
    from config.settings import normalise_database_url

    url = normalise_database_url(args.into or settings.sqlalchemy_url)
    print(f"Restoring {args.file} into {safe_url(url)}")
    progress, close = _progress_bar("restoring", "table" if "postgresql" in url else "page")
    try:
        done = restore(
            Path(args.file), url, force=args.force, timeout=args.timeout, progress=progress
        )
    except BackupError as failed:
        close()
        print(f"restore: {failed}", file=sys.stderr)
        return 2 if "not empty" in str(failed) else 1
    close()
    print(f"Restored {done.path} ({done.size} bytes): " + _held(done.contents))
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if done.contents.revision != head:
        print(
            f"The schema is at {done.contents.revision}, this version's at {head}: run "
            "`madoguchi db upgrade` against it before serving."
        )
    return 0


def add_backups(add: AddCommand) -> None:
    backup = add(
        "backup",
        cmd_backup,
        "Write the whole database to FILE while the service runs (PostgreSQL: pg_dump -Fc; "
        "SQLite: its online backup), and print what the file holds.",
        epilog=BACKUP_EXAMPLES,
    )
    backup.add_argument("file", metavar="FILE", help="the backup file to write")
    backup.add_argument(
        "--timeout", type=float, default=3600, help="seconds before pg_dump is stopped (3600)"
    )
    restore = add(
        "restore",
        cmd_restore,
        "Fill an empty database from a backup FILE made by `madoguchi backup`.",
        epilog=RESTORE_EXAMPLES,
    )
    restore.add_argument("file", metavar="FILE", help="a file made by `madoguchi backup`")
    restore.add_argument(
        "--into", metavar="URL", help="the database to fill (default: MADOGUCHI_DATABASE_URL)"
    )
    restore.add_argument(
        "--force", action="store_true", help="replace what the target database holds"
    )
    restore.add_argument(
        "--timeout", type=float, default=3600, help="seconds before pg_restore is stopped (3600)"
    )
