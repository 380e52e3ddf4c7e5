"""Running the service: `madoguchi serve`, `worker`, and `call` (the IVR from a terminal)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from config.commands.common import AddCommand, safe_url, sessions_for
from config.settings import Settings


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
    print(f"Database: {safe_url(settings.sqlalchemy_url)}")
    upgrade(settings.sqlalchemy_url)
    sessions = sessions_for(settings)
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
    say(f"Database: {safe_url(settings.sqlalchemy_url)}")
    say(f"Redis: {safe_url(settings.redis_url or '')}  queues: {', '.join(QUEUES)}")
    say(f"Messages: {sending}")
    run_worker(settings, sessions_for(settings), burst=args.burst)
    return 0


def service_url(value: str) -> str:
    """The service's address as typed: ``127.0.0.1:8765`` means ``http://127.0.0.1:8765``."""
    text = value.strip().rstrip("/")
    if not text:
        raise argparse.ArgumentTypeError("give the service's address, e.g. 127.0.0.1:8000")
    return text if "://" in text else f"http://{text}"


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


def add_serve(add: AddCommand) -> None:
    serve = add("serve", cmd_serve, "Migrate, load the sample ward if empty, and serve HTTP.")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    serve.add_argument(
        "--no-sample", action="store_true", help="do not load the sample ward into an empty db"
    )


def add_worker(add: AddCommand) -> None:
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


def add_call(add: AddCommand) -> None:
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
        choices=["ja", "en", "ko", "zh", "easy"],
        default="ja",
        help="ja (default), en (presses 9 for you), ko (8), zh (7) or easy (6: やさしい日本語)",
    )
    call.add_argument(
        "--url",
        type=service_url,
        default="http://127.0.0.1:8000",
        help="where the service runs (http://127.0.0.1:8000; host:port is enough)",
    )
