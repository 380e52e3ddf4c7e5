"""The `madoguchi` command: serve, migrate, load a ward, manage the schedule, make keys.

The commands live by group in ``config/commands/``; this module puts them together, in the
order ``--help`` lists them."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from config.commands import backups, cards, check, line, records, running, schedule
from config.commands.common import Command
from config.settings import Settings

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
  madoguchi cards import arrived.csv   the cards that have arrived, by venue (交付準備完了)
  madoguchi worker                     send residents' messages (needs MADOGUCHI_REDIS_URL;
                                       without Redis, `serve` sends them itself)
  madoguchi call                       phone the running service's IVR from this terminal
  madoguchi call --from anonymous --lang en     (a withheld number, in English)
  madoguchi call --lang ko             in Korean (8 at the first menu)
  madoguchi line setup                 the LINE Official Account's rich menu (once the
                                       channel's secret and token are set)

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="madoguchi",
        description="Madoguchi (窓口): reservations for My Number card counters, "
        "by phone, web and call-center agents.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: dict[str, Command] = {}

    def add(
        name: str,
        func: Command,
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

    running.add_serve(add)
    schedule.add_db(add)
    schedule.add_sample(add)
    schedule.add_schedule(add)
    records.add_keys(add)
    records.add_erase(add)
    records.add_export(add)
    records.add_report(add)
    schedule.add_holds(add)
    schedule.add_calendar(add)
    running.add_worker(add)
    running.add_call(add)
    records.add_staff(add)
    records.add_audit(add)
    cards.add_cards(add)
    check.add_check(sub, commands)
    backups.add_backups(add)
    line.add_line(add)

    parser.set_defaults(_commands=commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    schedule.check_schedule_args(parser, args)
    if args.command in ("check", "doctor"):  # invalid settings are a finding, not a traceback
        try:
            checked: Settings | None = Settings()
        except Exception as refused:
            checked, args.settings_error = None, refused
        return check.cmd_check(args, checked)
    settings = Settings()
    command: Command = args._commands[args.command]
    return command(args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
