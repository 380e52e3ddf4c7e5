#!/usr/bin/env python3
"""The production layout under an opening morning's load: nginx, N web processes, the phone
line, two workers, PostgreSQL and Redis on this machine, driven by locust (bench/locustfile.py).

See --help and bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: its helpers are bench.*, beside it
    sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, text  # noqa: E402

from bench.load_record import (  # noqa: E402
    GROUPS,
    PHONE_LINE,
    SIGN_IN_BURST,
    Recorder,
    percentile,
)
from bench.load_site import (  # noqa: E402
    PASSWORD,
    TOKEN,
    Site,
    nginx_present,
    production_layout,
    unit_nice,
)

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
PHONE_AIM_MS = 50.0
SCALE_AIM = 1.6  # bookings/s with 2 web processes over 1

DESCRIPTION = """\
An opening morning on the production layout: Debian's nginx with deploy/nginx/madoguchi.conf in
front of --web uvicorn web processes and one phone-line process (each with its systemd unit's
command line), two `madoguchi worker`s, a throwaway PostgreSQL database and a private
redis-server, all on this machine. locust (bench/locustfile.py, headless, in a process of its
own) then runs for --seconds, all at once:

  callers    --calls phone lines, one signed Twilio call after another through the IVR:
             70% book (a service, a party, a venue or the earliest anywhere), 15% check a
             booking made through the API, 15% hear the FAQ; --think seconds per key press
  agents     --agents signed-in console sessions: the queue page now and then, its live
             server-sent event stream held open 5-15 s at a time
  residents  --residents clients, weighted --browse : --book: browsers (month pages, a day's
             times, the earliest times anywhere) and bookers (the free times, a hold, 1-4 s
             filling in the form, the booking with an Idempotency-Key)

--agents-sign-in N adds N console sign-ins at one instant, --sign-in-bursts times spread over
the run after the ramp (every caller then on the line), each agent from an address and with an
account of its own: the argon2 checks of a shift starting. The report then gives the phone
line's webhooks under way during those bursts apart from the others.

--flood adds that many more residents asking for pages back to back from --flood-addresses
loopback addresses: more than the web pool serves, so nginx's per-address limit turns the
surplus away with its busy page (429) while the phone line goes on.

Reported per route group: requests/s, p50/p95/p99/max (ms, nearest rank, timed in the client
up to the answer's last byte) and the answers by kind (ok, 409 seats gone, nginx's busy page,
5xx from the app, timeouts). Then the invariants, from the database: no slot over capacity,
each slot's booked seats equal to its bookings', every 201 of the booking API a booking that
exists (and no booking the API did not answer), the IVR's bookings as the callers heard them,
every booking with exactly one confirmation message (sent to the log: Twilio is not configured,
or planned for after the quiet hours).
"""

EPILOG = """\
exit status 1 when an invariant is broken: a slot over capacity, a booking lost or unheard, a
booking without exactly one confirmation, a 5xx from the app, a timeout, an error in a process's
log or a client's script. The aims (the phone line's p99 under 50 ms; bookings/s with 2 web
processes at least 1.6 times those with 1) are printed as met or MISSED, not failed on.

examples:
  python3 bench/bench_load.py --web 2                       # 60 s, 100 calls
  python3 bench/bench_load.py --web 2 --flood 300 --seconds 40
  python3 bench/bench_load.py --web 2 --agents-sign-in 10   # 10 console sign-ins at once
  python3 bench/bench_load.py --smoke                       # what CI runs: a few seconds

Skips (exit 0, saying so) when Debian's nginx (/usr/sbin/nginx) is missing.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_load.py",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--web", type=int, default=2, help="web processes behind nginx (default: 2)")
    add("--phone", type=int, default=1, help="phone-line processes (default: 1)")
    web_nice = unit_nice("madoguchi-web@.service")
    add(
        "--web-nice",
        type=int,
        default=web_nice,
        help=f"run the web processes at this nice level (default: their unit's Nice=, {web_nice})",
    )
    add("--seconds", type=float, default=60.0, help="how long the load runs (default: 60)")
    add("--calls", type=int, default=100, help="phone lines calling at once (default: 100)")
    add("--think", type=float, default=2.0, help="a caller's mean pause per key (default: 2)")
    add("--agents", type=int, default=5, help="signed-in console sessions (default: 5)")
    add("--residents", type=int, default=60, help="resident clients (default: 60)")
    add("--browse", type=int, default=3, help="weight of browsing residents (default: 3)")
    add("--book", type=int, default=1, help="weight of booking residents (default: 1)")
    add(
        "--pace",
        type=float,
        default=1.0,
        help="the residents' pauses (1-3 s a page, 2-5 s between bookings, 1-4 s a form) times "
        "this; 0: back to back, to find what the web pool serves (default: 1)",
    )
    add("--ramp", type=float, default=10.0, help="seconds to start every client (default: 10)")
    add(
        "--agents-sign-in",
        type=int,
        default=0,
        help="console sign-ins let go at one instant, each burst (default: 0, none)",
    )
    add(
        "--sign-in-bursts",
        type=int,
        default=3,
        help="how many such bursts, spread over the run after the ramp (default: 3)",
    )
    add(
        "--phone-cpus",
        type=lambda text: [int(cpu) for cpu in text.split(",")],
        default=None,
        help="pin the phone-line processes to these CPUs (e.g. 1, or 2,3) and the web "
        "processes and workers to the others, with taskset, as CPUAffinity= in their units "
        "would (default: none pinned)",
    )
    add("--flood", type=int, default=0, help="flooding residents, back to back (default: 0)")
    add("--flood-addresses", type=int, default=20, help="their addresses (default: 20)")
    add("--generators", type=int, default=1, help="locust processes (default: 1)")
    add(
        "--database-url",
        default=os.environ.get("MADOGUCHI_BENCH_DATABASE_URL", DEFAULT_ADMIN_URL),
        help="a PostgreSQL database to connect to as admin; the bench creates and drops its "
        "own next to it (default: %(default)s, or MADOGUCHI_BENCH_DATABASE_URL)",
    )
    add("--keep", action="store_true", help="keep the logs' folder (nginx, uvicorn, locust)")
    add("--json", type=Path, help="also write the figures to this file")
    add("--smoke", action="store_true", help="a few seconds with a few clients, as CI runs it")
    args = parser.parse_args(argv)
    if args.smoke:
        args.web, args.seconds, args.calls, args.agents, args.residents = 1, 8.0, 3, 1, 4
        args.think, args.ramp, args.generators, args.browse, args.book = 0.2, 1.0, 1, 1, 1
        args.flood = min(args.flood, 8)
        args.agents_sign_in, args.sign_in_bursts = 2, 1
    counts = (args.web, args.phone, args.residents)
    if min(counts) < 1 or args.pace < 0 or args.calls < 0 or args.seconds <= args.ramp:
        parser.error("--web, --phone, --residents >= 1, --pace >= 0, --ramp < --seconds, please")
    if args.agents_sign_in < 0 or args.sign_in_bursts < 0:
        parser.error("--agents-sign-in and --sign-in-bursts >= 0, please")
    return args


# --- CPU: who used the machine ----------------------------------------------------------------


def _proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent, jiffies used, command line) for every process now."""
    table: dict[int, tuple[int, int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        rest = raw[raw.rindex(")") + 2 :].split()
        table[int(entry)] = (int(rest[1]), int(rest[11]) + int(rest[12]), cmd)
    return table


def _machine() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields[:8]) - fields[3] - fields[4], sum(fields[:8])


@dataclass
class CpuMark:
    busy: int
    total: int
    used: Counter[str]


def cpu_mark(roots: dict[str, list[int]], database: str) -> CpuMark:
    table = _proc_table()
    owner: dict[int, str] = {}
    for name, pids in roots.items():
        owner.update(dict.fromkeys(pids, name))
    used: Counter[str] = Counter()
    for pid, (_, jiffies, cmd) in table.items():
        group: str | None = owner.get(pid)
        walk = pid
        while group is None and walk in table and walk > 1:
            walk = table[walk][0]
            group = owner.get(walk)
        if group is None and cmd.startswith("postgres:") and f" {database} " in cmd:
            group = "postgres"
        if group is not None:
            used[group] += jiffies
    busy, total = _machine()
    return CpuMark(busy, total, used)


def describe_cpu(before: CpuMark, after: CpuMark) -> str:
    total = max(after.total - before.total, 1)
    parts = [f"machine busy {(after.busy - before.busy) / total * 100:.0f}%"]
    counted = 0
    for group in ("load generator", "nginx", "web", "phone line", "workers", "postgres"):
        used = after.used[group] - before.used[group]
        counted += used
        parts.append(f"{group} {used / total * 100:.0f}%")
    parts.append(f"other {max(after.busy - before.busy - counted, 0) / total * 100:.0f}%")
    return f"CPU ({os.cpu_count()} cores = 100%): " + ", ".join(parts)


# --- the run ----------------------------------------------------------------------------------


def run_locust(site: Site, args: argparse.Namespace, out: Path) -> tuple[int, float, str]:
    """locust, headless, for --seconds; its exit status, the CPU line and its log's tail."""
    config = {
        "base": site.base,
        "cafile": str(site.cafile),
        "token": TOKEN,
        "password": PASSWORD,
        "staff": site.staff,
        "out": str(out),
        "seconds": args.seconds,
        "think": args.think,
        "pace": args.pace,
        "calls": args.calls,
        "agents": args.agents,
        "flood": args.flood,
        "flood_addresses": args.flood_addresses,
        "ramp": args.ramp,
        "sign_in_burst": args.agents_sign_in,
        "sign_in_bursts": args.sign_in_bursts,
        "burst_staff": site.burst_staff,
        "weights": {"browse": args.browse, "book": args.book},
    }
    config_path = out / "config.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    bursting = 1 if args.agents_sign_in and args.sign_in_bursts else 0
    users = args.calls + args.agents + args.residents + args.flood + bursting
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(REPO / "bench" / "locustfile.py"),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        f"{users / args.ramp:.2f}",
        "--run-time",
        f"{math.ceil(args.seconds)}s",
        "--stop-timeout",
        "30",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--host",
        site.base,
    ]
    if args.generators > 1:
        command += ["--processes", str(args.generators)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "BENCH_LOAD_CONFIG": str(config_path)}
    log = out / "locust.log"
    roots = {
        "nginx": [p.popen.pid for p in [site.nginx] if p.popen],
        "web": [p.popen.pid for p in site.web if p.popen],
        "phone line": [p.popen.pid for p in site.phone if p.popen],
        "workers": [p.popen.pid for p in site.workers if p.popen],
    }
    database = site.database.rsplit("/", 1)[-1]
    with log.open("wb") as handle:
        locust = subprocess.Popen(  # noqa: S603 (our own command line)
            command, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
        before = cpu_mark({**roots, "load generator": [locust.pid]}, database)
        after = before
        started = time.monotonic()
        while locust.poll() is None:
            time.sleep(0.5)
            if time.monotonic() - started < args.seconds:
                after = cpu_mark({**roots, "load generator": [locust.pid]}, database)
            if time.monotonic() - started > args.seconds + 120:
                locust.kill()
        status = locust.wait()
    tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
    return status, time.monotonic() - started, describe_cpu(before, after) + "\n" + tail


def wait_for_confirmations(url: str, seconds: float = 60) -> None:
    """Until the workers have planned (and, outside quiet hours, sent) every confirmation."""
    engine = create_engine(url)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                missing = conn.execute(
                    text(
                        "SELECT count(*) FROM booking b WHERE b.status = 'booked' AND NOT EXISTS "
                        "(SELECT 1 FROM message m WHERE m.booking_id = b.id "
                        "AND m.kind = 'confirmation')"
                    )
                ).scalar_one()
                sending = conn.execute(
                    text(
                        "SELECT count(*) FROM message WHERE kind = 'confirmation' "
                        "AND status IN ('scheduled', 'claimed') AND send_after <= now()"
                    )
                ).scalar_one()
            if missing == 0 and sending == 0:
                return
            time.sleep(0.5)
    finally:
        engine.dispose()


def check_database(url: str, heard: Recorder) -> tuple[list[str], list[str]]:
    """The invariants: (problems, summary lines)."""
    problems: list[str] = []
    engine = create_engine(url)
    with engine.connect() as conn:

        def one(sql: str) -> int:
            return int(conn.execute(text(sql)).scalar_one() or 0)

        over = one("SELECT count(*) FROM slot WHERE booked > capacity OR booked + held > capacity")
        over_seats = one(
            "SELECT coalesce(sum(booked + held - capacity), 0) FROM slot "
            "WHERE booked + held > capacity"
        )
        drift = one(
            "SELECT count(*) FROM slot s WHERE s.booked <> (SELECT coalesce(sum(b.party_size), 0)"
            " FROM booking b WHERE b.slot_id = s.id AND b.status IN ('booked', 'checked_in',"
            " 'completed', 'no_show'))"
        )
        rows = conn.execute(
            text("SELECT code, slot_id, party_size, status, channel FROM booking")
        ).all()
        confirmations = conn.execute(
            text(
                "SELECT b.id, count(m.id) FILTER (WHERE m.kind = 'confirmation' AND m.copy = 0) "
                "FROM booking b LEFT JOIN message m ON m.booking_id = b.id GROUP BY b.id"
            )
        ).all()
        message_status = conn.execute(
            text(
                "SELECT status, count(*) FROM message WHERE kind = 'confirmation' "
                "GROUP BY status ORDER BY status"
            )
        ).all()
    engine.dispose()

    by_code = {str(r.code): r for r in rows}
    api_codes = [str(b["code"]) for b in heard.booked]
    lost = [c for c in api_codes if c not in by_code or by_code[c].status != "booked"]
    wrong = [
        b
        for b in heard.booked
        if str(b["code"]) in by_code
        and (
            by_code[str(b["code"])].slot_id != b["slot_id"]
            or by_code[str(b["code"])].party_size != b["seats"]
        )
    ]
    web_rows = [r for r in rows if r.channel == "web"]
    unheard = len(web_rows) - len(set(api_codes))
    ivr_rows = sum(1 for r in rows if r.channel == "ivr")
    ivr_heard = heard.tallies.get("ivr bookings heard", 0)
    not_one = [n for _, n in confirmations if n != 1]
    if over:
        problems.append(f"{over} slots over capacity ({over_seats} seats too many)")
    if drift:
        problems.append(f"{drift} slots whose booked seats differ from their bookings'")
    if lost:
        problems.append(f"{len(lost)} bookings answered 201 are missing: {lost[:5]}")
    if wrong:
        problems.append(f"{len(wrong)} bookings answered 201 differ in the database: {wrong[:3]}")
    if unheard:
        problems.append(f"{unheard} web bookings in the database the API never answered 201")
    if ivr_heard > ivr_rows:
        problems.append(f"callers heard {ivr_heard} IVR bookings, the database has {ivr_rows}")
    if not_one:
        problems.append(
            f"{len(not_one)} bookings without exactly one confirmation "
            f"(counts {sorted(Counter(not_one).items())})"
        )
    statuses = ", ".join(f"{n} {s}" for s, n in message_status) or "none"
    summary = [
        f"database: {len(rows)} bookings ({len(web_rows)} web, {ivr_rows} IVR); {over} slots over "
        f"capacity; {drift} slots drifting from their bookings",
        f"API 201s: {len(api_codes)}, all in the database: {'yes' if not lost else 'NO'}; "
        f"IVR bookings heard {ivr_heard}, in the database {ivr_rows}",
        f"confirmations: {statuses} (Twilio not configured: 'sent' is sent to the log); "
        f"bookings without exactly one: {len(not_one)}",
    ]
    return problems, summary


def app_errors(site: Site) -> list[str]:
    """Errors in the processes' logs, and nginx's own (a pool that closed or refused a
    connection: what made nginx answer 502), less its per-address limit at work."""
    found: list[str] = []
    for process in [*site.app_processes, *site.workers]:
        for line in process.output().splitlines():
            if "Traceback" in line or " ERROR " in line or line.startswith("ERROR"):
                found.append(f"{process.name}: {line[:300]}")
    nginx_log = site.folder / "madoguchi.error.log"
    if nginx_log.exists():
        for line in nginx_log.read_text(encoding="utf-8", errors="replace").splitlines():
            if "[error]" in line and "limiting requests" not in line:
                found.append(f"nginx: {line[:300]}")
    return found


# --- the report -------------------------------------------------------------------------------


def table(heard: Recorder, seconds: float) -> list[str]:
    lines = [
        f"{'route group':<38}{'req/s':>8}{'count':>8}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}"
        "  answers",
        "-" * 112,
    ]
    for group in [g for g in GROUPS if g in heard.ms] + sorted(set(heard.ms) - set(GROUPS)):
        ordered = sorted(heard.ms[group])
        answers = ", ".join(f"{n} {k}" for k, n in heard.answers[group].most_common())
        lines.append(
            f"{group:<38}{len(ordered) / seconds:>8.1f}{len(ordered):>8}"
            f"{percentile(ordered, 0.5):>8.1f}{percentile(ordered, 0.95):>8.1f}"
            f"{percentile(ordered, 0.99):>8.1f}{ordered[-1]:>8.1f}  {answers}"
        )
    return lines


def bad_answers(heard: Recorder) -> list[str]:
    bad: list[str] = []
    for group, counts in heard.answers.items():
        for kind, n in counts.items():
            if "from the app" in kind or kind in ("timeout", "no connection"):
                bad.append(f"{group}: {n} × {kind}")
            elif kind[:1] == "4" and kind[:3] not in ("409", "429"):
                bad.append(f"{group}: {n} × {kind}")
    return bad


def _spread(ordered: list[float]) -> dict[str, float]:
    return {
        "count": len(ordered),
        "p50": percentile(ordered, 0.5),
        "p95": percentile(ordered, 0.95),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1] if ordered else math.nan,
    }


def _ms(figures: dict[str, float]) -> str:
    return (
        f"{figures['p50']:.1f} / {figures['p95']:.1f} / {figures['p99']:.1f} ms "
        f"(max {figures['max']:.1f}, {figures['count']:.0f} webhooks)"
    )


def sign_in_bursts(args: argparse.Namespace, heard: Recorder) -> dict[str, object] | None:
    """The sign-in bursts' lines: the sign-ins' own times, and the phone line's webhooks under
    way during the bursts beside those of the rest of the run after the ramp."""
    if not heard.bursts:
        return None
    inside, _ = heard.phone_during(heard.bursts)
    # The rest of the run after the ramp (every caller on the line), bursts left out.
    after_ramp = [(sent, ms) for sent, ms in heard.phone_spans if sent >= heard.first + args.ramp]
    calm = Recorder(phone_spans=after_ramp).phone_during(heard.bursts)[1]
    lasted = [end - begin for begin, end in heard.bursts]
    sign_ins = _spread(sorted(heard.ms.get(SIGN_IN_BURST, [])))
    during, rest = _spread(sorted(inside)), _spread(sorted(calm))
    print(
        f"\nsign-in bursts: {len(heard.bursts)} × {args.agents_sign_in} console sign-ins at once, "
        f"each burst {min(lasted):.2f}-{max(lasted):.2f} s from the first sent to the last "
        f"answered; a sign-in p50 {sign_ins['p50']:.0f} ms, max {sign_ins['max']:.0f} ms"
    )
    print(f"phone line's webhooks during the bursts, p50 / p95 / p99: {_ms(during)}")
    print(f"phone line's webhooks the rest of the run after the ramp:    {_ms(rest)}")
    return {
        "agents": args.agents_sign_in,
        "bursts": len(heard.bursts),
        "seconds": lasted,
        "sign_in_ms": sign_ins,
        "phone_during_ms": during,
        "phone_rest_ms": rest,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not nginx_present():
        print("SKIPPED: Debian's nginx is not installed (/usr/sbin/nginx): apt-get install nginx")
        return 0
    with tempfile.TemporaryDirectory(prefix="madoguchi-load-") as tmp:
        folder = Path(tmp)
        out = folder / "heard"
        out.mkdir()
        load = os.getloadavg()
        print(
            f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; starting the "
            f"layout ({args.web} web, {args.phone} phone line, 2 workers)…",
            file=sys.stderr,
        )
        with production_layout(
            folder,
            admin_url=args.database_url,
            web=args.web,
            phone=args.phone,
            agents=max(args.agents, 1),
            web_nice=args.web_nice,
            burst_agents=args.agents_sign_in,
            phone_cpus=args.phone_cpus,
        ) as site:
            status, took, locust_tail = run_locust(site, args, out)
            wait_for_confirmations(site.database)
            heard = Recorder()
            for part in sorted(out.glob("*.json")):
                if part.name != "config.json":
                    heard.merge(part)
            problems, summary = check_database(site.database, heard)
            logged = app_errors(site)
        if args.keep:
            kept = Path(tempfile.mkdtemp(prefix="madoguchi-load-kept-"))
            for path in folder.rglob("*.log"):
                (kept / path.name).write_bytes(path.read_bytes())
            print(f"logs kept in {kept}", file=sys.stderr)
    return report(args, heard, status, took, locust_tail, problems, summary, logged)


def report(
    args: argparse.Namespace,
    heard: Recorder,
    status: int,
    took: float,
    locust_tail: str,
    problems: list[str],
    summary: list[str],
    logged: list[str],
) -> int:
    # Rates over the run's --seconds (its ramp included); what came after is the last calls
    # hanging up and the last forms sent, counted but not timed as load.
    seconds = args.seconds
    tail = max(heard.last - heard.first - seconds, 0) if heard.ms else 0.0
    cpu_line = locust_tail.splitlines()[0]
    print(
        f"\nopening morning on the production layout: {args.web} web processes (nice "
        f"{args.web_nice}), {args.phone} phone line"
        + (
            f" (on CPU {','.join(map(str, args.phone_cpus))}, the rest off it)"
            if args.phone_cpus
            else ""
        )
        + f", 2 workers; {args.calls} calls, {args.agents} agents, {args.residents} "
        f"residents (browse {args.browse} : book {args.book}, pace {args.pace:g})"
        + (f", flood {args.flood} from {args.flood_addresses} addresses" if args.flood else "")
        + f"; {seconds:.0f} s (+{tail:.0f} s for the last calls and forms to finish)"
    )
    print("\n".join(table(heard, seconds)))
    booked = len(heard.booked)
    ivr = heard.tallies.get("ivr bookings heard", 0)
    print(f"\nbookings: {booked / seconds:.1f}/s through the API ({booked}), {ivr} by phone")
    tallies = ", ".join(f"{n} {k}" for k, n in sorted(heard.tallies.items()) if k != "errors")
    print(f"outcomes: {tallies}")
    print(cpu_line)
    for line in summary:
        print(line)
    errors = [*problems, *bad_answers(heard), *[f"log: {line}" for line in logged[:10]]]
    errors += [f"client: {e}" for e in heard.errors[:10]]
    if status != 0 and not heard.ms:
        errors.append(f"locust exited with {status}:\n{locust_tail[-2000:]}")
    if booked == 0 and args.smoke:  # the smoke run's two bookers must get through
        errors.append("no booking was made through the API")
    phone = sorted(heard.ms.get(PHONE_LINE, []))
    p99 = percentile(phone, 0.99)
    verdict = "met" if p99 < PHONE_AIM_MS else "MISSED"
    print(f"\nphone line's webhook p99: {p99:.1f} ms (aim: < {PHONE_AIM_MS:.0f} ms): {verdict}")
    burst_figures = sign_in_bursts(args, heard)
    if args.smoke and args.agents_sign_in and not heard.bursts:
        errors.append("no sign-in burst was heard")
    if args.flood:
        flood = heard.answers.get("flood: resident pages", Counter())
        turned = sum(n for k, n in flood.items() if "busy page" in k)
        print(
            f"flood: {sum(flood.values())} requests, {flood.get('ok', 0)} served, {turned} "
            "turned away with nginx's busy page, "
            f"{sum(n for k, n in flood.items() if 'from the app' in k or k == 'timeout')} "
            "5xx from the app or timeouts"
        )
    if args.json:
        figures = {
            "web": args.web,
            "web_nice": args.web_nice,
            "phone_cpus": args.phone_cpus,
            "seconds": seconds,
            "bookings_per_second": booked / seconds,
            "phone_p99_ms": p99,
            "sign_in_bursts": burst_figures,
            "groups": {
                g: {
                    "count": len(v),
                    "p50": percentile(sorted(v), 0.5),
                    "p95": percentile(sorted(v), 0.95),
                    "p99": percentile(sorted(v), 0.99),
                    "answers": dict(heard.answers[g]),
                }
                for g, v in heard.ms.items()
            },
        }
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    if errors:
        print(f"\nINVARIANTS BROKEN ({len(errors)}):")
        for message in errors[:30]:
            print(f"  !!! {message}")
        return 1
    print(
        "\ninvariants: 0 slots over capacity, 0 bookings lost, one confirmation per booking, "
        "0 5xx from the app, 0 timeouts"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
