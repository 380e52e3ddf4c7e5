"""The cards that have arrived (交付準備完了): `madoguchi cards import FILE`, `cards list`."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from config.commands.common import AddCommand, sessions_for
from config.settings import Settings

CARDS_EXAMPLES = """examples:
  madoguchi cards import arrived-2026-12-04.csv     add the cards that arrived to the list
  madoguchi cards import arrived.csv --check        only check the file; import nothing
  madoguchi cards list                              cards waiting at each venue

The file: CSV from the card management system, UTF-8 or Shift_JIS, a header line naming
the two columns (other columns are ignored), one card a line:

  交付通知書番号,交付場所
  AB1-234567,main
  AB1-234568,四谷特別出張所

交付通知書番号 (or notice_number): the notice number, as on the notice postcard (AB1-234567;
full-width and lower case are fine). 交付場所 (or venue): the venue's id (`main`, as in the
ward's file) or its Japanese name; only venues that hand out cards.

A file with any bad line imports nothing: every bad line is listed with its line number,
mend them and run again. The list keeps only a keyed hash of each number, never the number;
a number already on the list moves to the venue of the newer file. A card leaves the list when
it is picked up at the counter (完了), or MADOGUCHI_RETENTION_DAYS after the last import that
listed it: import the whole list again at least that often. Each import is in the audit log
(who, when, the file's SHA-256, rows, cards per venue).

MADOGUCHI_READY_CARDS says what a pickup booking for a card not on the list gets: off (the
default: no check), refuse (every channel refuses it, telling the resident to call the call
center), warn (booked; the agent and the counter are warned)."""


def cmd_cards(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "list":
        return _list(settings)
    return _import(args, settings)


def _list(settings: Settings) -> int:
    from booking import service as booking

    with sessions_for(settings)() as db:
        counts = booking.ready_cards_by_venue(db)
        names = booking.pickup_venues(db)
    for venue_id, name in names.items():
        print(f"{venue_id}\t{name}\t{counts.get(venue_id, 0)}")
    print(f"合計 total: {sum(counts.values())}  (MADOGUCHI_READY_CARDS={settings.ready_cards})")
    return 0


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from agent_console import service as staff
    from booking import service as booking

    try:
        data = Path(args.file).read_bytes()
    except OSError as refused:
        print(
            f"cards import: ファイルを読めません cannot read {args.file}: {refused.strerror}",
            file=sys.stderr,
        )
        return 2
    bars: list[tqdm[None]] = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(desc="importing", unit="card", total=total))
        bars[0].update(done - bars[0].n)

    with sessions_for(settings)() as db:
        if args.check:
            found = booking.read_cards_csv(data, booking.pickup_venues(db))
            done = None
        else:
            found, done = booking.import_cards_file(db, data=data, progress=progress)
        for bar in bars:
            bar.close()
        if found.problems:
            for problem in found.problems:
                print(problem, file=sys.stderr)
            if found.more_problems:
                print(
                    f"…ほか {found.more_problems} 行 and {found.more_problems} more lines",
                    file=sys.stderr,
                )
            print(
                "何も取り込んでいません。直して、もう一度実行してください。"
                " Nothing was imported: mend the lines above and run again.",
                file=sys.stderr,
            )
            return 1
        if done is None:
            print(
                f"{len(found.rows)} 件、問題ありません（取り込んでいません）。"
                f" {len(found.rows)} cards, no problems (--check: nothing imported)."
            )
            return 0
        detail = booking.audit_detail(found, done)
        staff.audit(
            db,
            staff=None,
            login_id=f"cli:{getpass.getuser()}",
            action="cards.import",
            subject_kind="file",
            subject_id=found.digest[:16],
            detail=detail,
            client="cli",
        )
        db.commit()
    venues = ", ".join(f"{v} {n}" for v, n in sorted(done.venues.items()))
    print(f"{done.rows} 件を取り込みました。 Imported {done.rows} cards ({venues}).")
    return 0


def add_cards(add: AddCommand) -> None:
    cards = add(
        "cards",
        cmd_cards,
        "The cards that have arrived, by venue: import the card management system's CSV "
        "(managers' upload in the console does the same), or list how many wait where.",
        CARDS_EXAMPLES,
    )
    actions = cards.add_subparsers(dest="action", required=True, metavar="ACTION")
    importing = actions.add_parser(
        "import",
        help="add the cards of a CSV file to the list (nothing, if a line is bad)",
        description="Add the cards of the card management system's CSV to the list of cards "
        "that have arrived. Every bad line is listed with its number; then nothing is imported.",
        epilog=CARDS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    importing.add_argument("file", metavar="FILE", help="the CSV (UTF-8 or Shift_JIS)")
    importing.add_argument(
        "--check", action="store_true", help="only check the file and say what is wrong"
    )
    actions.add_parser("list", help="how many cards wait at each venue")
