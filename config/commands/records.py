"""The ward's records and its staff: `madoguchi keys`, `erase`, `export`, `report`, `staff`,
`audit`."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from config.commands.common import AddCommand, sessions_for
from config.settings import Settings


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
    sessions = sessions_for(settings)
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

    sessions = sessions_for(settings)
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

    written = export(sessions_for(settings), load_vault(settings), out, progress=progress)
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
    with sessions_for(settings)() as db:
        made = report.monthly_report(db, month=month, wrap_up_seconds=settings.wrap_up_seconds)
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
    with sessions_for(settings)() as db:
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

    with sessions_for(settings)() as db:
        report = staff.check_chain(db)
    if report.intact:
        print(f"The audit log is intact: {report.events} events, each chained to the one before.")
        return 0
    print(f"The audit log is BROKEN ({report.events} events checked):", file=sys.stderr)
    for problem in report.breaks:
        print(f"  - {problem}", file=sys.stderr)
    return 1


STAFF_EXAMPLES = """examples:
  madoguchi staff create --login sato --name 佐藤 --role supervisor
  printf '%s\\n' "$PASSWORD" | madoguchi staff create --login ito --role agent --password-stdin

Roles: agent (the call center), counter_manager (capacity, closures, the counter's day),
supervisor (staff, reports, all of the above), auditor (the audit log and erasure records).
Supervisors and auditors (and the roles in MADOGUCHI_SECOND_FACTOR_ROLES) set up an
authenticator app at their first sign-in and give its code every time after."""


def add_keys(add: AddCommand) -> None:
    keys = add(
        "keys",
        cmd_keys,
        "new: print fresh personal-data keys for the ward's key store. rotate: re-encrypt every "
        "stored personal field under the newest data key, without stopping the service (put "
        "the new key first in MADOGUCHI_DATA_KEYS and restart first; see the README).",
    )
    keys.add_argument("action", choices=["new", "rotate"])


def add_erase(add: AddCommand) -> None:
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


def add_export(add: AddCommand) -> None:
    export = add(
        "export",
        cmd_export,
        "Write the ward's data to a zip of CSV files (personal fields decrypted; a README says "
        "what each file is): what the ward gets back at the contract's end.",
    )
    export.add_argument("--out", default="madoguchi-export.zip", help="the zip to write")


def add_report(add: AddCommand) -> None:
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


def add_staff(add: AddCommand) -> None:
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


def add_audit(add: AddCommand) -> None:
    audit = add(
        "audit",
        cmd_audit,
        "Check the audit log's hash chain: exit 0 if intact, 1 listing every break (an event "
        "edited, removed or inserted).",
    )
    audit.add_argument("action", choices=["check"])
