"""`madoguchi check` (or `doctor`): is this server ready for production?"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from config.settings import Settings

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
  line         the LINE channel off, or on with its webhook on https
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


def add_check(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    commands: dict[str, Callable[[argparse.Namespace, Settings], int]],
) -> None:
    summary = (
        "Is this server ready for production? Checks the settings and every peer (database, "
        "migrations, the read replica, Redis, a worker, Twilio, LINE, the public address, speech "
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
