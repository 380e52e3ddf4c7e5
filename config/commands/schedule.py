"""The database and the schedule: `madoguchi db`, `sample`, `schedule`, `holds`, `calendar`."""

from __future__ import annotations

import argparse
import sys
from datetime import date, time
from pathlib import Path

from config.commands.common import AddCommand, safe_url, sessions_for
from config.settings import Settings


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from config import migrate

    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    if args.action == "upgrade":
        migrate.upgrade(url, args.revision or "head")
        print(f"Schema of {safe_url(url)} is at {args.revision or 'head'}.")
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

    with sessions_for(settings)() as db:
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

    with sessions_for(settings)() as db:
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


def cmd_holds(_args: argparse.Namespace, settings: Settings) -> int:
    from booking import service

    with sessions_for(settings)() as db:
        seats = service.reclaim_expired_holds(db)
        db.commit()
    print(f"{seats} seats of lapsed holds are back on sale.")
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
    with sessions_for(settings)() as db:
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


def add_db(add: AddCommand) -> None:
    db = add("db", cmd_db, "Database schema migrations (Alembic).")
    db.add_argument("action", choices=["upgrade", "downgrade", "current"])
    db.add_argument("revision", nargs="?", help="target revision (default: head)")


def add_sample(add: AddCommand) -> None:
    sample = add("sample", cmd_sample, "Load (or reload) a ward's venues and weekly hours.")
    sample.add_argument("action", choices=["load"])
    sample.add_argument("--file", type=Path, help="a ward JSON file like config/sample_ward.json")


def add_schedule(add: AddCommand) -> None:
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


def add_holds(add: AddCommand) -> None:
    holds = add("holds", cmd_holds, "Give the seats of lapsed holds back to sale now.")
    holds.add_argument("action", choices=["sweep"])


def add_calendar(add: AddCommand) -> None:
    cal = add(
        "calendar",
        cmd_calendar,
        "Import the ward's published holiday sessions and closures from an iCalendar file or "
        "URL. Events are matched by UID: importing the same calendar again changes nothing, "
        "and an event changed since it was imported is reported, not applied.",
    )
    cal.add_argument("action", choices=["import"])
    cal.add_argument("source", help="a .ics file, or an https:// address to fetch it from")


def check_schedule_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.command != "schedule":
        return
    if args.action in ("close", "open") and args.day is None:
        parser.error(f"schedule {args.action} needs a date, e.g. 2026-12-24")
    if args.action == "open":
        missing = [n for n in ("venue", "service", "opens", "closes") if getattr(args, n) is None]
        if missing:
            parser.error("schedule open needs " + ", ".join("--" + n for n in missing))
