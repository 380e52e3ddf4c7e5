"""The `madoguchi` command: serve, migrate, load a ward, manage the schedule, make keys."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import date, time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings

if TYPE_CHECKING:
    from config.backup import Contents

EPILOG = """\
Everyday use:
  madoguchi serve                      run the service (SQLite in ./var unless
                                       MADOGUCHI_DATABASE_URL is set), with the sample ward
  madoguchi db upgrade                 bring the database schema up to date
  madoguchi schedule extend            create sessions and slots up to the booking horizon
  madoguchi schedule close 2026-12-24 --venue yotsuya --reason "停電工事"
  madoguchi schedule open 2026-12-13 --venue main --service pickup \\
      --opens 09:00 --closes 17:00 --slot-minutes 15 --seats 6      (a 休日開庁 session)
  madoguchi staff create --login sato --name "佐藤" --role supervisor   (the first account)
  madoguchi audit check                verify the audit log has not been tampered with
  madoguchi calendar import https://city.example.jp/holidays.ics   (休日開庁・閉庁)
  madoguchi worker                     send residents' messages (needs MADOGUCHI_REDIS_URL;
                                       without Redis, `serve` sends them itself)
  madoguchi call                       phone the running service's IVR from this terminal
  madoguchi call --from anonymous --lang en     (a withheld number, in English)
  madoguchi call --lang ko             in Korean (8 at the first menu)

The ward's records and its contract:
  madoguchi report monthly --month 2026-10     the monthly report (HTML with charts, CSV)
  madoguchi erase                      erase what is past MADOGUCHI_RETENTION_DAYS now (the
                                       daily job does it too) and print the certificate
  madoguchi erase --list               the erasure records; --certificate N prints one
  madoguchi keys rotate                re-encrypt every personal field under the newest key
                                       (put it first in MADOGUCHI_DATA_KEYS and restart first)
  madoguchi export --out ward.zip      the ward's data as CSV files (the contract's end)
  madoguchi erase --all --yes          then erase every resident's data, with a certificate
  madoguchi backup nightly.dump        the whole database, while the service runs
  madoguchi restore nightly.dump --into postgresql://madoguchi@db2/madoguchi   (into an
                                       empty database; `madoguchi restore --help`)

Settings come from MADOGUCHI_* environment variables, e.g.
  MADOGUCHI_DATABASE_URL=postgresql://user@host/madoguchi
  MADOGUCHI_DATA_KEYS / MADOGUCHI_LOOKUP_KEY   (make them with `madoguchi keys new`)
"""


def _sessions(settings: Settings) -> sessionmaker[Session]:
    from config.app import session_factory

    return session_factory(settings)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from booking import schedule
    from config.app import create_app
    from config.keys import load_twilio_token
    from config.migrate import upgrade
    from config.sample import sample_ward
    from ivr.recognition import SpeechModelError

    if settings.sqlalchemy_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    print(f"Database: {_safe_url(settings.sqlalchemy_url)}")
    upgrade(settings.sqlalchemy_url)
    sessions = _sessions(settings)
    with sessions() as db:
        if schedule.is_empty(db) and not args.no_sample:
            counts = schedule.install_ward(db, sample_ward())
            print(f"Loaded the sample ward: {counts.venues} venues, {counts.services} services.")
        made = schedule.extend_schedule(db)
        db.commit()
    print(f"Schedule: {made.sessions} new sessions, {made.slots} new slots.")
    if settings.twilio_auth_token is None:
        token = load_twilio_token(settings, announce=False)
        print(f"IVR: webhooks are checked with the trial Twilio token {token}")
        print("     (kept in the data folder; `madoguchi call` signs with it)")
    if settings.redis_url:
        print("Messages: sent by `madoguchi worker` (Redis at MADOGUCHI_REDIS_URL)")
    elif settings.twilio_account_sid and settings.twilio_from_number:
        print("Messages: sent from this process through Twilio (no Redis configured)")
    else:
        print("Messages: logged, not sent (set MADOGUCHI_TWILIO_ACCOUNT_SID and _FROM_NUMBER)")
    try:
        app = create_app(settings, housekeeping=True)
    except SpeechModelError as problem:  # a vosk model set but not usable: say what to fix
        print(f"Cannot start: {problem}", file=sys.stderr)
        return 2
    speech = app.state.speech.health()
    print("Speech: " + ", ".join(f"{lang} {how}" for lang, how in speech.items()))
    print(f"Serving on http://{args.host}:{args.port}  (API docs at /docs)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    from config.logs import configure_logging
    from config.worker import NO_REDIS, QUEUES, phone_api, run_worker

    if not settings.redis_url:
        raise SystemExit(NO_REDIS)
    sending = "through Twilio" if phone_api(settings).live else "logged only (no Twilio account)"
    say: Callable[[str], None] = print
    if settings.log_format == "json":  # every line on the worker's output is JSON
        configure_logging(settings.log_level, settings.log_format)
        say = logging.getLogger("config.worker").info
    say(f"Database: {_safe_url(settings.sqlalchemy_url)}")
    say(f"Redis: {_safe_url(settings.redis_url or '')}  queues: {', '.join(QUEUES)}")
    say(f"Messages: {sending}")
    run_worker(settings, _sessions(settings), burst=args.burst)
    return 0


def cmd_calendar(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path as FilePath

    from booking.errors import BookingError
    from calendar_sync.fetch import CalendarFetchFailed, fetch_calendar
    from calendar_sync.service import import_calendar

    source: str = args.source
    try:
        if source.startswith(("http://", "https://")):
            data = fetch_calendar(source)
        else:
            data = FilePath(source).read_bytes()
    except (CalendarFetchFailed, OSError) as failed:
        print(f"Could not read {source}: {failed}", file=sys.stderr)
        return 1
    with _sessions(settings)() as db:
        try:
            report = import_calendar(db, ics=data)
        except BookingError:
            print(f"{source} is not an iCalendar file", file=sys.stderr)
            return 1
        db.commit()
    for title, items in (
        ("created", report.created),
        ("already imported, unchanged", report.unchanged),
        ("changed since imported (not applied: see to them in the console)", report.changed),
        ("refused", report.refused),
    ):
        print(f"{title}: {len(items)}")
        for item in items:
            print(f"  {item}")
    return 0


def cmd_call(args: argparse.Namespace, settings: Settings) -> int:
    from config.keys import load_twilio_token
    from ivr import terminal

    return terminal.run(
        args.url,
        public_base_url=settings.public_base_url,
        auth_token=load_twilio_token(settings, announce=False),
        from_number=args.from_number,
        language=args.lang,
    )


def cmd_staff(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    from agent_console import service as staff

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("パスワード（12文字以上） Password (12 or more characters): ")
        if getpass.getpass("もう一度 Again: ") != password:
            print(
                "2つのパスワードが違うため、作成していません。"
                " The two passwords differ; nothing was created.",
                file=sys.stderr,
            )
            return 2
    with _sessions(settings)() as db:
        try:
            made = staff.create_staff(
                db,
                login_id=args.login,
                display_name=args.name or args.login,
                role=args.role,
                password=password,
            )
        except staff.StaffError as refused:
            print(refused, file=sys.stderr)
            return 2
        staff.audit(
            db,
            staff=None,
            login_id=f"cli:{getpass.getuser()}",
            action="staff.create",
            subject_kind="staff",
            subject_id=made.id,
            detail=f"role={made.role}",
            client="cli",
        )
        db.commit()
    print(
        f"{made.login_id}（{made.role}）を作成しました。/console/login からログインできます。"
        f" Created {made.login_id} ({made.role}). Sign in at /console/login."
    )
    return 0


def cmd_audit(_args: argparse.Namespace, settings: Settings) -> int:
    from agent_console import service as staff

    with _sessions(settings)() as db:
        report = staff.check_chain(db)
    if report.intact:
        print(f"The audit log is intact: {report.events} events, each chained to the one before.")
        return 0
    print(f"The audit log is BROKEN ({report.events} events checked):", file=sys.stderr)
    for problem in report.breaks:
        print(f"  - {problem}", file=sys.stderr)
    return 1


def _safe_url(url: str) -> str:
    """The URL without a password, fit for a terminal or a log."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from config import migrate

    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    if args.action == "upgrade":
        migrate.upgrade(url, args.revision or "head")
        print(f"Schema of {_safe_url(url)} is at {args.revision or 'head'}.")
    elif args.action == "downgrade":
        if not args.revision:
            print("downgrade needs a revision, e.g. `madoguchi db downgrade base`", file=sys.stderr)
            return 2
        migrate.downgrade(url, args.revision)
    else:
        migrate.current(url)
    return 0


def cmd_sample(args: argparse.Namespace, settings: Settings) -> int:
    from booking import schedule
    from config.sample import sample_ward

    with _sessions(settings)() as db:
        counts = schedule.install_ward(db, sample_ward(args.file))
        made = schedule.extend_schedule(db)
        db.commit()
    print(
        f"Loaded {counts.venues} venues, {counts.services} services, "
        f"{counts.templates} weekly template rows; {made.slots} new slots."
    )
    return 0


def cmd_schedule(args: argparse.Namespace, settings: Settings) -> int:
    from booking import schedule
    from booking.errors import BookingError

    with _sessions(settings)() as db:
        try:
            if args.action == "extend":
                made = schedule.extend_schedule(db, through=args.through)
                print(f"{made.sessions} new sessions, {made.slots} new slots.")
            elif args.action == "close":
                closed = schedule.close_day(
                    db, day=args.day, reason=args.reason, venue_id=args.venue
                )
                where = args.venue or "every venue"
                print(f"Closed {args.day} at {where}: {closed} slots taken off sale.")
            else:
                session = schedule.open_extra_session(
                    db,
                    venue_id=args.venue,
                    service_id=args.service,
                    day=args.day,
                    opens=args.opens,
                    closes=args.closes,
                    slot_minutes=args.slot_minutes,
                    seats=args.seats,
                    kind=args.kind,
                )
                print(f"Opened a {args.kind} session (id {session.id}) on {args.day}.")
        except BookingError as exc:
            print(f"error: {exc.message('en')} / {exc.message('ja')}", file=sys.stderr)
            return 2
        db.commit()
    return 0


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from config.keys import new_key_material

    if args.action == "rotate":
        return _rotate_keys(settings)
    print("# Fresh keys for the ward's key store; keep them out of version control.")
    for name, value in new_key_material().items():
        print(f"{name}={value}")
    return 0


def _rotate_keys(settings: Settings) -> int:
    from tqdm import tqdm

    from config.keys import load_vault
    from config.rotate import rotate, under_old_keys

    keys = [k.strip() for k in settings.data_keys.split(",") if k.strip()]
    if len(keys) < 2:
        print(
            "keys rotate: put the new key first in MADOGUCHI_DATA_KEYS, the old ones after it "
            "(comma-separated), and restart the service; then run this again.",
            file=sys.stderr,
        )
        return 2
    sessions = _sessions(settings)
    bar = tqdm(desc="re-encrypting", unit="value")

    def progress(field: str, n: int) -> None:
        bar.set_postfix_str(field)
        bar.update(n)

    report = rotate(sessions, load_vault(settings), progress=progress)
    bar.close()
    for done in report:
        if done.values:
            print(
                f"{done.table}.{done.column}: {done.rewritten} re-encrypted"
                + (
                    f", {done.changed_meanwhile} written anew meanwhile"
                    if done.changed_meanwhile
                    else ""
                )
            )
    left = {field: n for field, n in under_old_keys(sessions, keys[0]).items() if n}
    if left:
        print(f"still under an old key: {left}; run `madoguchi keys rotate` again")
        return 1
    print(
        "Every personal field is under the newest key: the old keys can now be removed from "
        "MADOGUCHI_DATA_KEYS."
    )
    return 0


def cmd_erase(args: argparse.Namespace, settings: Settings) -> int:
    from agent_console import service as staff
    from config.retention import erase_all, erase_expired

    sessions = _sessions(settings)
    if args.list:
        with sessions() as db:
            for record in staff.erasures(db):
                print(
                    f"{record.id:>5}  {record.at:%Y-%m-%d %H:%M}Z  {record.scope:<10} "
                    f"{record.total:>7} erased  {record.job}"
                )
        return 0
    if args.certificate is not None:
        with sessions() as db:
            found = staff.get_erasure(db, args.certificate)
        if found is None:
            print(f"erase: there is no erasure record {args.certificate}", file=sys.stderr)
            return 2
        print(staff.certificate_text(found))
        return 0
    if args.all:
        if not args.yes:
            print(
                "erase --all erases EVERY resident's personal data, for good (the contract's "
                "end). Export first (madoguchi export), then run again with --yes.",
                file=sys.stderr,
            )
            return 2
        record = erase_all(sessions, job="madoguchi erase --all")
    else:
        record = erase_expired(sessions, settings, job="madoguchi erase (by hand)")
    print(staff.certificate_text(record))
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from config.export import export
    from config.keys import load_vault

    out = Path(args.out)
    bar = tqdm(desc="exporting", unit="table")

    def progress(table: str, rows: int) -> None:
        bar.set_postfix_str(f"{table}: {rows} rows")
        bar.update(1)

    written = export(_sessions(settings), load_vault(settings), out, progress=progress)
    bar.close()
    print(f"Wrote {out}: {len(written)} tables, {sum(written.values())} rows (see README.txt).")
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from agent_console import report

    try:
        month = date.fromisoformat(args.month + "-01")
    except ValueError:
        print(f"report: --month {args.month!r} is not a month like 2026-10", file=sys.stderr)
        return 2
    with _sessions(settings)() as db:
        made = report.monthly_report(db, month=month)
    html = Path(args.html or f"report-{month:%Y-%m}.html")
    html.write_text(report.render_html(made), encoding="utf-8")
    table = Path(args.csv or f"report-{month:%Y-%m}.csv")
    table.write_text(report.report_csv(made), encoding="utf-8")
    calls, bookings = made.calls, made.bookings
    print(made.title)
    print(
        f"  calls: {calls.received} received, {calls.queue.connected} answered, "
        f"{calls.queue.abandoned} abandoned, self-served {calls.self_served}"
    )
    print(
        f"  bookings: {bookings.made} made ({bookings.people} people), {bookings.cancelled} "
        f"cancelled, {made.no_shows} no-shows, {made.walk_ins} walk-ins"
    )
    print(f"Wrote {html} (printable; charts included) and {table} (the figures).")
    return 0


def cmd_holds(_args: argparse.Namespace, settings: Settings) -> int:
    from booking import service

    with _sessions(settings)() as db:
        seats = service.reclaim_expired_holds(db)
        db.commit()
    print(f"{seats} seats of lapsed holds are back on sale.")
    return 0


# --- madoguchi check (doctor) ----------------------------------------------------------------

CHECK_EXAMPLES = """examples:
  madoguchi check                      on the server, with the web processes' environment
  sudo -u madoguchi sh -c 'set -a; . /etc/madoguchi/madoguchi.env; madoguchi check'
  madoguchi check --json | jq '.[] | select(.status != "ok")'   (for monitoring)

What it checks, one line each (OK, WARN: works but not as production should, ERROR):
  keys         MADOGUCHI_DATA_KEYS and MADOGUCHI_LOOKUP_KEY set (not the trial key file)
  database     MADOGUCHI_DATABASE_URL answers
  migrations   its schema is at the code's newest migration (`madoguchi db upgrade`)
  replica      MADOGUCHI_DATABASE_READ_URL, if set: answers, replays, its lag (WARN when
               not: the primary serves the shown reads meanwhile)
  redis        MADOGUCHI_REDIS_URL answers (WARN when unset: jobs run only in `serve`)
  worker       a `madoguchi worker` sent RQ a heartbeat lately
  twilio       MADOGUCHI_TWILIO_AUTH_TOKEN set (and the account and number, to send)
  public url   MADOGUCHI_PUBLIC_BASE_URL is https and not this machine
  speech       each MADOGUCHI_VOSK_MODEL_* folder is an unpacked vosk model
  proxy trust  FORWARDED_ALLOW_IPS names the proxy, not '*'

Each network check waits at most 3 seconds. Exit status: 0 when nothing is an ERROR, 1 otherwise.
The web processes' own probe is GET /readyz (database, migrations, Redis): 503 when not ready;
the read replica is in its body too, but one that is down leaves the process ready."""

MARKS = {"ok": "✔ OK   ", "warn": "! WARN ", "error": "✘ ERROR"}


def cmd_check(args: argparse.Namespace, settings: Settings | None) -> int:
    import json

    from config.doctor import run_checks, settings_refused

    findings = (
        run_checks(settings) if settings is not None else [settings_refused(args.settings_error)]
    )
    if args.json:
        print(json.dumps([f.as_dict() for f in findings], ensure_ascii=False, indent=2))
    else:
        width = max(len(f.check) for f in findings)
        for found in findings:
            line = f"{MARKS[found.status]}  {found.check:<{width}}  {found.message}"
            print(line + (f"\n{'':<{width + 11}}→ {found.fix}" if found.fix else ""))
        errors = sum(f.status == "error" for f in findings)
        warnings = sum(f.status == "warn" for f in findings)
        print(
            f"{errors} error(s), {warnings} warning(s): "
            + ("not ready for production." if errors else "ready.")
        )
    return 1 if any(f.status == "error" for f in findings) else 0


def _add_check_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    commands: dict[str, Callable[[argparse.Namespace, Settings], int]],
) -> None:
    summary = (
        "Is this server ready for production? Checks the settings and every peer (database, "
        "migrations, the read replica, Redis, a worker, Twilio, the public address, speech "
        "models, the proxy) and says what to fix."
    )
    check = sub.add_parser(
        "check",
        aliases=["doctor"],
        help=summary,
        description=summary,
        epilog=CHECK_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--json", action="store_true", help="a JSON list, one object per check")
    commands["check"] = commands["doctor"] = cmd_check


# Backups ---------------------------------------------------------------------------------------

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
    print(f"Backing up {_safe_url(url)}")
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
    print(f"Restoring {args.file} into {_safe_url(url)}")
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


def _add_backup_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
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


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-12-24") from None


def _clock(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a time like 09:00") from None


SCHEDULE_EXAMPLES = """examples:
  madoguchi schedule extend                          keep the schedule open to the horizon
  madoguchi schedule extend --through 2027-03-31     open the regular sessions up to a day
  madoguchi schedule close 2026-12-24 --reason 停電点検   close every venue that day
  madoguchi schedule close 2026-12-24 --venue yotsuya   close one venue that day
  madoguchi schedule open 2027-01-10 --venue main --service pickup \\
      --opens 09:00 --closes 12:00 --seats 6          a Sunday holiday session (休日開庁)
  madoguchi schedule open 2027-01-14 --venue main --service pickup \\
      --opens 17:15 --closes 19:00 --kind extra       evening hours on an open day

A pop-up venue (出張会場) is added, with its days, in the console (受付の追加). Closing a day
keeps its bookings: the counter managers' console lists whom it strands."""

STAFF_EXAMPLES = """examples:
  madoguchi staff create --login sato --name 佐藤 --role supervisor
  printf '%s\\n' "$PASSWORD" | madoguchi staff create --login ito --role agent --password-stdin

Roles: agent (the call center), counter_manager (capacity, closures, the counter's day),
supervisor (staff, reports, all of the above), auditor (the audit log and erasure records).
Supervisors and auditors (and the roles in MADOGUCHI_SECOND_FACTOR_ROLES) set up an
authenticator app at their first sign-in and give its code every time after."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="madoguchi",
        description="Madoguchi (窓口): reservations for My Number card counters, "
        "by phone, web and call-center agents.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: dict[str, Callable[[argparse.Namespace, Settings], int]] = {}

    def add(
        name: str,
        func: Callable[[argparse.Namespace, Settings], int],
        help_: str,
        epilog: str | None = None,
    ) -> argparse.ArgumentParser:
        commands[name] = func
        return sub.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    serve = add("serve", cmd_serve, "Migrate, load the sample ward if empty, and serve HTTP.")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    serve.add_argument(
        "--no-sample", action="store_true", help="do not load the sample ward into an empty db"
    )

    db = add("db", cmd_db, "Database schema migrations (Alembic).")
    db.add_argument("action", choices=["upgrade", "downgrade", "current"])
    db.add_argument("revision", nargs="?", help="target revision (default: head)")

    sample = add("sample", cmd_sample, "Load (or reload) a ward's venues and weekly hours.")
    sample.add_argument("action", choices=["load"])
    sample.add_argument("--file", type=Path, help="a ward JSON file like config/sample_ward.json")

    sched = add(
        "schedule",
        cmd_schedule,
        "Extend the schedule, close a day, open a session.",
        epilog=SCHEDULE_EXAMPLES,
    )
    sched.add_argument("action", choices=["extend", "close", "open"])
    sched.add_argument("day", nargs="?", type=_day, help="the date (close, open)")
    sched.add_argument("--through", type=_day, help="extend: last day (default: the horizon)")
    sched.add_argument("--venue", help="venue id (close: omit to close every venue)")
    sched.add_argument("--reason", default="臨時休業", help="close: why, shown to staff")
    sched.add_argument("--service", help="open: service id, e.g. pickup")
    sched.add_argument("--opens", type=_clock, help="open: e.g. 09:00")
    sched.add_argument("--closes", type=_clock, help="open: e.g. 17:00")
    sched.add_argument("--slot-minutes", type=int, default=15, help="open: slot length (15)")
    sched.add_argument("--seats", type=int, default=4, help="open: seats per slot (4)")
    sched.add_argument(
        "--kind",
        default="holiday",
        choices=["holiday", "popup", "extra"],
        help="open: holiday = 休日開庁 (a session on a day the counter is closed, e.g. a "
        "Sunday); popup = 出張会場 (a satellite venue for a day); extra = more hours on an "
        "open day (evenings). Default: holiday",
    )

    keys = add(
        "keys",
        cmd_keys,
        "new: print fresh personal-data keys for the ward's key store. rotate: re-encrypt every "
        "stored personal field under the newest data key, without stopping the service (put "
        "the new key first in MADOGUCHI_DATA_KEYS and restart first; see the README).",
    )
    keys.add_argument("action", choices=["new", "rotate"])

    erase = add(
        "erase",
        cmd_erase,
        "Erase residents' personal data past MADOGUCHI_RETENTION_DAYS now (the daily job does "
        "it too) and print the certificate of erasure (消去証明書). --all erases everything at "
        "the contract's end (export first). Each run writes an erasure record.",
    )
    erase.add_argument("--all", action="store_true", help="every resident's data (contract end)")
    erase.add_argument("--yes", action="store_true", help="confirm --all")
    erase.add_argument("--list", action="store_true", help="list the erasure records")
    erase.add_argument(
        "--certificate", type=int, metavar="N", help="print the certificate of record N"
    )

    export = add(
        "export",
        cmd_export,
        "Write the ward's data to a zip of CSV files (personal fields decrypted; a README says "
        "what each file is): what the ward gets back at the contract's end.",
    )
    export.add_argument("--out", default="madoguchi-export.zip", help="the zip to write")

    rep = add(
        "report",
        cmd_report,
        "The monthly report owed to the ward (calls, bookings, counters, inquiries, erasures, "
        "staff accounts): a printable HTML file with charts and a CSV of the figures. "
        "Example: madoguchi report monthly --month 2026-10",
    )
    rep.add_argument("kind", choices=["monthly"])
    rep.add_argument("--month", required=True, help="the month, like 2026-10")
    rep.add_argument("--html", help="where to write the HTML (report-YYYY-MM.html)")
    rep.add_argument("--csv", help="where to write the CSV (report-YYYY-MM.csv)")

    holds = add("holds", cmd_holds, "Give the seats of lapsed holds back to sale now.")
    holds.add_argument("action", choices=["sweep"])

    cal = add(
        "calendar",
        cmd_calendar,
        "Import the ward's published holiday sessions and closures from an iCalendar file or "
        "URL. Events are matched by UID: importing the same calendar again changes nothing, "
        "and an event changed since it was imported is reported, not applied.",
    )
    cal.add_argument("action", choices=["import"])
    cal.add_argument("source", help="a .ics file, or an https:// address to fetch it from")

    worker = add(
        "worker",
        cmd_worker,
        "Run an RQ worker (with RQ's scheduler) that sends residents' confirmations and "
        "reminders: SMS to mobiles, voice calls to landlines, through Twilio's REST API. "
        "Needs MADOGUCHI_REDIS_URL; run as many as you like, each message still goes once. "
        "Without MADOGUCHI_TWILIO_ACCOUNT_SID and MADOGUCHI_TWILIO_FROM_NUMBER it logs "
        "instead of sending.",
    )
    worker.add_argument(
        "--burst", action="store_true", help="stop when the queues are empty (for cron or tests)"
    )

    call = add(
        "call",
        cmd_call,
        "Phone the IVR from this terminal: hear its prompts, type the keys. It signs each "
        "request as Twilio does (with MADOGUCHI_TWILIO_AUTH_TOKEN, or the trial token that "
        "`madoguchi serve` made), so start the service first.",
    )
    call.add_argument(
        "--from",
        dest="from_number",
        default="+819012345678",
        help="the calling number as Twilio gives it (+819012345678); 'anonymous' = withheld",
    )
    call.add_argument(
        "--lang",
        choices=["ja", "en", "ko"],
        default="ja",
        help="ja (default), en (presses 9 for you) or ko (presses 8)",
    )
    call.add_argument(
        "--url", default="http://127.0.0.1:8000", help="where the service runs (127.0.0.1:8000)"
    )

    staff_help = (
        "Staff accounts from the command line: `staff create` makes the first supervisor, who "
        "then manages the others in the console (/console/staff)."
    )
    staff_command = add("staff", cmd_staff, staff_help)
    staff_actions = staff_command.add_subparsers(dest="action", required=True, metavar="ACTION")
    staff = staff_actions.add_parser(
        "create",
        help="create an account (the password is asked for twice)",
        description="Create a staff account. The password (12 characters or more) is asked "
        "for twice, or read from standard input with --password-stdin.",
        epilog=STAFF_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    staff.add_argument("--login", required=True, help="the person's own login ID (never shared)")
    staff.add_argument("--name", help="name shown in the console and the audit log")
    staff.add_argument(
        "--role",
        default="agent",
        choices=["agent", "counter_manager", "supervisor", "auditor"],
        help="agent (default), counter_manager, supervisor or auditor",
    )
    staff.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )

    audit = add(
        "audit",
        cmd_audit,
        "Check the audit log's hash chain: exit 0 if intact, 1 listing every break (an event "
        "edited, removed or inserted).",
    )
    audit.add_argument("action", choices=["check"])

    _add_check_command(sub, commands)
    _add_backup_commands(add)

    parser.set_defaults(_commands=commands)
    return parser


def _check_schedule_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.command != "schedule":
        return
    if args.action in ("close", "open") and args.day is None:
        parser.error(f"schedule {args.action} needs a date, e.g. 2026-12-24")
    if args.action == "open":
        missing = [n for n in ("venue", "service", "opens", "closes") if getattr(args, n) is None]
        if missing:
            parser.error("schedule open needs " + ", ".join("--" + n for n in missing))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_schedule_args(parser, args)
    if args.command in ("check", "doctor"):  # invalid settings are a finding, not a traceback
        try:
            checked: Settings | None = Settings()
        except Exception as refused:
            checked, args.settings_error = None, refused
        return cmd_check(args, checked)
    settings = Settings()
    command: Callable[[argparse.Namespace, Settings], int] = args._commands[args.command]
    return command(args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
