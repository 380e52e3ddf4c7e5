"""Settings, the trial key file, the `madoguchi` command and the migrations."""

from __future__ import annotations

import json
import re
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from cryptography.fernet import Fernet
from pydantic import ValidationError
from sqlalchemy import create_engine, inspect

from config import migrate
from config.cli import build_parser, main
from config.keys import load_vault
from config.settings import Settings, normalise_database_url
from config.tables import metadata

SETTING_NAMES = [
    "ENVIRONMENT",
    "DATA_DIR",
    "DATABASE_URL",
    "PUBLIC_BASE_URL",
    "REDIS_URL",
    "DATA_KEYS",
    "LOOKUP_KEY",
    "HOLD_MINUTES",
    "BOOK_MIN_DAYS_AHEAD",
    "BOOK_MAX_DAYS_AHEAD",
    "CANCEL_RELEASE_DELAY_MINUTES",
    "MAX_PARTY_SIZE",
    "WAITLIST_OFFER_MINUTES",
    "LOG_LEVEL",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MADOGUCHI_* setting of the machine running the tests leaks into them."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(f"MADOGUCHI_{name}", raising=False)


DATA_KEY = Fernet.generate_key().decode()
LOOKUP_KEY = "lookup-secret"
PG = "postgresql://u@h/db"


# --- Database URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        (
            "postgresql://u:p%40ss@h:5433/db?sslmode=require",
            "postgresql+psycopg://u:p%40ss@h:5433/db?sslmode=require",
        ),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///var/madoguchi.db", "sqlite:///var/madoguchi.db"),
        ("sqlite:////abs/path/m.db", "sqlite:////abs/path/m.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_database_urls_get_the_psycopg_driver(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


def test_the_default_database_is_an_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    assert Settings().sqlalchemy_url == "sqlite:///var/madoguchi.db"
    settings = Settings(data_dir=tmp_path / "here")
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path}/here/madoguchi.db"
    given = Settings(
        data_dir=tmp_path, database_url="postgres://u@h/db", data_keys=DATA_KEY, lookup_key="k"
    )
    assert given.sqlalchemy_url == "postgresql+psycopg://u@h/db"


def test_a_shared_database_needs_the_wards_keys(tmp_path: Path) -> None:
    # Trial keys are per machine: processes sharing PostgreSQL could not read each other's data.
    with pytest.raises(ValidationError, match="with PostgreSQL, set MADOGUCHI_DATA_KEYS"):
        Settings(data_dir=tmp_path, database_url="postgresql://u@h/db")
    assert Settings(data_dir=tmp_path, database_url="sqlite:///x.db").data_keys == ""


# --- Validation ---------------------------------------------------------------------------


TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"  # noqa: S105 (a test value)


def test_production_needs_keys() -> None:
    message = "MADOGUCHI_DATA_KEYS and MADOGUCHI_LOOKUP_KEY must be set in production"
    with pytest.raises(ValidationError, match=message):
        Settings(environment="production", database_url=PG, lookup_key=LOOKUP_KEY)
    with pytest.raises(ValidationError, match=message):
        Settings(environment="production", database_url=PG, data_keys=DATA_KEY)
    with pytest.raises(ValidationError, match="trial use only"):
        Settings(environment="production", database_url="postgresql://u@h/db")


def test_production_needs_a_database_url() -> None:
    with pytest.raises(ValidationError, match="MADOGUCHI_DATABASE_URL must point at PostgreSQL"):
        Settings(environment="production", data_keys=DATA_KEY, lookup_key=LOOKUP_KEY)


def test_production_needs_the_twilio_token() -> None:
    with pytest.raises(ValidationError, match="MADOGUCHI_TWILIO_AUTH_TOKEN must be set"):
        Settings(
            environment="production", database_url=PG, data_keys=DATA_KEY, lookup_key=LOOKUP_KEY
        )


def test_production_with_everything_set_is_accepted() -> None:
    settings = Settings(
        environment="production",
        database_url=PG,
        data_keys=DATA_KEY,
        lookup_key=LOOKUP_KEY,
        twilio_auth_token=TWILIO_TOKEN,
    )
    assert settings.sqlalchemy_url == "postgresql+psycopg://u@h/db"
    assert Settings(environment="development").data_keys == ""  # trial use needs nothing


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"book_min_days_ahead": 10, "book_max_days_ahead": 5}, "must not exceed"),
        ({"hold_minutes": 0}, "hold_minutes"),
        ({"max_party_size": 21}, "max_party_size"),
        ({"environment": "staging"}, "environment"),
    ],
)
def test_bad_settings_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**fields)  # type: ignore[arg-type]


def test_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MADOGUCHI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MADOGUCHI_HOLD_MINUTES", "15")
    monkeypatch.setenv("MADOGUCHI_BOOK_MAX_DAYS_AHEAD", "60")
    monkeypatch.setenv("MADOGUCHI_DATABASE_URL", "postgres://ward@db.example/madoguchi")
    monkeypatch.setenv("MADOGUCHI_DATA_KEYS", DATA_KEY)
    monkeypatch.setenv("MADOGUCHI_LOOKUP_KEY", LOOKUP_KEY)
    settings = Settings()
    assert settings.lookup_key == LOOKUP_KEY
    assert settings.data_dir == tmp_path
    assert settings.hold_minutes == 15
    assert settings.book_max_days_ahead == 60
    assert settings.sqlalchemy_url == "postgresql+psycopg://ward@db.example/madoguchi"


def test_production_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MADOGUCHI_ENVIRONMENT", "production")
    monkeypatch.setenv("MADOGUCHI_DATABASE_URL", "postgresql://u@h/db")
    with pytest.raises(ValidationError, match="MADOGUCHI_DATA_KEYS"):
        Settings()
    monkeypatch.setenv("MADOGUCHI_DATA_KEYS", DATA_KEY)
    monkeypatch.setenv("MADOGUCHI_LOOKUP_KEY", LOOKUP_KEY)
    monkeypatch.setenv("MADOGUCHI_TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    assert Settings().environment == "production"
    monkeypatch.setenv("MADOGUCHI_HOLD_MINUTES", "0")
    with pytest.raises(ValidationError, match="hold_minutes"):
        Settings()


# --- Keys ---------------------------------------------------------------------------------


def test_the_trial_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    path = tmp_path / "data" / "trial-keys.json"
    assert not path.exists()
    first = load_vault(settings)
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    material = json.loads(path.read_text())
    assert len(material["data_keys"]) == 1 and material["lookup_key"]
    second = load_vault(settings)
    assert json.loads(path.read_text()) == material  # reused, not replaced
    assert second.digest("+819012345678") == first.digest("+819012345678")
    assert second.decrypt(first.encrypt("ヤマダ タロウ")) == "ヤマダ タロウ"
    other = load_vault(Settings(data_dir=tmp_path / "elsewhere"))
    assert other.digest("+819012345678") != first.digest("+819012345678")


def test_configured_keys_are_used_instead_of_a_file(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = load_vault(Settings(data_dir=tmp_path, data_keys=old, lookup_key="k"))
    token = before.encrypt("1950-04-01")
    rotated = load_vault(Settings(data_dir=tmp_path, data_keys=f"{new}, {old}", lookup_key="k"))
    assert rotated.decrypt(token) == "1950-04-01"
    assert rotated.digest("x") == before.digest("x")
    assert not (tmp_path / "trial-keys.json").exists()


# --- The command line ---------------------------------------------------------------------


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    where = tmp_path / "var"
    monkeypatch.setenv("MADOGUCHI_DATA_DIR", str(where))
    return where


def sqlite_rows(path: Path, query: str, *params: object) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return list(conn.execute(query, params))


@pytest.mark.parametrize(
    ("command", "taught"),
    [
        (["schedule"], ["examples:", "休日開庁", "出張会場", "schedule open 2027-01-10"]),
        (["staff", "create"], ["--login", "--password-stdin", "examples:", "Roles:"]),
        (["staff"], ["create"]),
    ],
)
def test_each_command_teaches_by_example(
    command: list[str], taught: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"usage: madoguchi {' '.join(command)} "
    )  # its own help, not its parent's
    for word in taught:
        assert word in out


def test_help_names_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for word in ("serve", "db", "sample", "schedule", "keys", "MADOGUCHI_DATABASE_URL"):
        assert word in out


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([])
    assert done.value.code == 2
    assert "required" in capsys.readouterr().err


def test_the_cli_sets_up_and_runs_a_ward(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_file = data_dir / "madoguchi.db"
    assert main(["db", "upgrade"]) == 0
    assert db_file.exists()
    assert "is at head" in capsys.readouterr().out
    tables = {r[0] for r in sqlite_rows(db_file, "SELECT name FROM sqlite_master")}
    assert {"venue", "session", "slot", "booking", "alembic_version"} <= tables

    assert main(["sample", "load"]) == 0
    out = capsys.readouterr().out
    assert "Loaded 11 venues, 4 services" in out
    assert sqlite_rows(db_file, "SELECT count(*) FROM venue") == [(11,)]

    assert main(["schedule", "close", "2026-12-24", "--venue", "yotsuya"]) == 0
    out = capsys.readouterr().out
    found = re.search(r"Closed 2026-12-24 at yotsuya: (\d+) slots taken off sale", out)
    assert found is not None, out
    closed = sqlite_rows(
        db_file,
        "SELECT count(*) FROM slot JOIN session ON session.id = slot.session_id "
        "WHERE session.venue_id = 'yotsuya' AND session.day = '2026-12-24' AND NOT slot.is_open",
    )
    assert closed == [(int(found.group(1)),)]
    assert sqlite_rows(db_file, "SELECT venue_id, day, reason FROM closure") == [
        ("yotsuya", "2026-12-24", "臨時休業")
    ]

    opening = ["schedule", "open", "2027-06-06", "--venue", "main", "--service", "pickup"]
    opening += ["--opens", "09:00", "--closes", "12:00", "--slot-minutes", "30", "--seats", "3"]
    assert main(opening) == 0
    assert "Opened a holiday session" in capsys.readouterr().out
    assert sqlite_rows(
        db_file,
        "SELECT count(*), sum(slot.capacity), min(session.opens) FROM slot "
        "JOIN session ON session.id = slot.session_id WHERE session.day = '2027-06-06'",
    ) == [(6, 18, "09:00:00.000000")]
    assert main(opening) == 2  # the same hours again: refused, not a traceback
    err = capsys.readouterr().err
    assert "error:" in err

    assert main(["keys", "new"]) == 0
    out = capsys.readouterr().out
    assert "MADOGUCHI_DATA_KEYS=" in out and "MADOGUCHI_LOOKUP_KEY=" in out


@pytest.mark.parametrize("action", ["open", "close"])
def test_schedule_open_and_close_need_a_date(
    data_dir: Path, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["schedule", action])
    assert done.value.code == 2
    assert "needs a date" in capsys.readouterr().err


def test_schedule_open_needs_its_hours(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["schedule", "open", "2027-06-06", "--venue", "main"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "--service" in err and "--opens" in err and "--closes" in err


def test_a_bad_date_is_an_argparse_error(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["schedule", "close", "24/12/2026"])
    assert done.value.code == 2
    assert "not a date" in capsys.readouterr().err


def test_closing_an_unknown_venue_is_a_clean_error(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    assert main(["sample", "load"]) == 0
    capsys.readouterr()
    assert main(["schedule", "close", "2026-12-24", "--venue", "yotuya"]) == 2
    assert "error:" in capsys.readouterr().err


# --- Migrations ---------------------------------------------------------------------------


def schema_differences(url: str) -> list[object]:
    engine = create_engine(normalise_database_url(url))
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), metadata))
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_the_migrations_match_the_models_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    migrate.upgrade(url)
    assert schema_differences(url) == []
    assert set(metadata.tables) <= table_names(url)


@pytest.mark.postgres
def test_the_migrations_match_the_models_on_postgresql(pg_url: str) -> None:
    assert schema_differences(pg_url) == []


def test_the_migrations_go_down_and_up_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/roundtrip.db"
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    assert table_names(url) == {"alembic_version"}
    assert schema_differences(url) != []  # the comparison sees a missing schema
    migrate.upgrade(url, "head")
    assert schema_differences(url) == []
    assert set(metadata.tables) <= table_names(url)


def test_the_comparison_would_see_a_drifted_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/drift.db"
    migrate.upgrade(url)
    with closing(sqlite3.connect(tmp_path / "drift.db")) as conn:
        conn.execute("ALTER TABLE venue ADD COLUMN phone VARCHAR(20)")
        conn.commit()
    differences = schema_differences(url)
    assert any("phone" in repr(d) for d in differences), differences


def test_upgrade_reaches_the_head_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/rev.db"
    migrate.upgrade(url)
    head = ScriptDirectory.from_config(migrate.alembic_config(url)).get_current_head()
    assert head is not None
    rows = sqlite_rows(tmp_path / "rev.db", "SELECT version_num FROM alembic_version")
    assert rows == [(head,)]


def test_the_first_supervisor_is_made_on_the_command_line_and_the_log_checked(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    db_file = data_dir / "madoguchi.db"
    assert main(["db", "upgrade"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert (
        main(
            [
                "staff",
                "create",
                "--login",
                "sato",
                "--name",
                "佐藤",
                "--role",
                "supervisor",
                "--password-stdin",
            ]
        )
        == 0
    )
    made = capsys.readouterr().out
    assert "Created sato (supervisor)" in made and "を作成しました" in made
    hashed = sqlite_rows(db_file, "SELECT role, password_hash FROM staff_user")
    assert hashed[0][0] == "supervisor" and str(hashed[0][1]).startswith("$argon2id$")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["staff", "create", "--login", "ito", "--password-stdin"]) == 2
    assert "12文字以上" in capsys.readouterr().err

    assert main(["audit", "check"]) == 0
    assert "intact: 1 events" in capsys.readouterr().out
    with sqlite3.connect(db_file) as conn:  # someone deletes the event behind the app's back
        conn.execute("DROP TRIGGER audit_event_no_delete")
        conn.execute("DELETE FROM audit_event")
    assert main(["audit", "check"]) == 1
    assert "1 events were written and 0 purged, 0 are there" in capsys.readouterr().err


def test_messages_are_sent_only_with_a_twilio_account_and_number(tmp_path: Path) -> None:
    from config.app import phone_line
    from config.worker import phone_api

    bare = Settings(data_dir=tmp_path)
    assert not phone_api(bare).live  # logged, not sent
    assert not phone_line(bare).config.sms_confirmations  # and the IVR promises no SMS
    account = Settings(
        data_dir=tmp_path,
        twilio_account_sid="AC" + "1" * 32,
        twilio_from_number="+81353334111",
    )
    assert phone_api(account).live
    assert phone_line(account).config.sms_confirmations


def test_worker_without_redis_explains_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MADOGUCHI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MADOGUCHI_REDIS_URL", raising=False)
    with pytest.raises(SystemExit, match="MADOGUCHI_REDIS_URL is not set"):
        main(["worker", "--burst"])


def test_the_terminal_phone_takes_the_services_address_as_typed() -> None:
    parse = build_parser().parse_args
    assert parse(["call", "--url", "127.0.0.1:8765"]).url == "http://127.0.0.1:8765"
    assert parse(["call", "--url", "https://madoguchi.example.jp/"]).url == (
        "https://madoguchi.example.jp"
    )
    assert parse(["call"]).url == "http://127.0.0.1:8000"
