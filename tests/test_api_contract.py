"""The published API contract tells the truth: schemathesis generates requests from
/openapi.json (valid ones and deliberately broken ones, a fixed seed, a small budget) against the
real app on SQLite and PostgreSQL, and every check it has must hold: no server error, every status and body
as documented, every invalid request refused, every valid one accepted."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.openapi import from_asgi
from sqlalchemy import Engine

from tests.conftest import FakeClock, app_for

schema = schemathesis.pytest.from_fixture("api_schema")
# A request the schema allows may still be refused by the ward's rules, which no JSON Schema can
# say: a phone number that is no Japanese number, a date outside the booking window, a birth date
# or a code that do not match a booking, a calendar feed's secret token (403). Such a refusal is
# documented, with its code; what
# the schema can say (sizes, the party's maximum, the code's form, a slot or a hold but not both)
# it says, and a request outside it must be refused.
CONFIG = SchemathesisConfig.from_str(
    """
[generation]
mode = "all"

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "403", "404", "409", "422", "429"]
"""
)


@pytest.fixture(autouse=True)
def _quiet_test_client(caplog: pytest.LogCaptureFixture) -> None:
    """The log audit reads every URL the HTTP clients log, to catch personal data in the URLs
    our code builds; schemathesis's requests are its own inventions (a date it made up may
    equal a birth date another test stored), so its client's lines are left out."""
    caplog.set_level(logging.WARNING, logger="httpx")


@pytest.fixture
def api_schema(engine: Engine, tmp_path: Path) -> schemathesis.BaseSchema:
    app = app_for(
        engine,
        FakeClock(),
        tmp_path,
        # One test client makes every request: the per-address limits count, never refuse.
        web_bookings_per_hour=10**9,
        web_lookups_per_15_minutes=10**9,
    )
    return from_asgi("/openapi.json", app, config=CONFIG)


@schema.parametrize()
@settings(
    # MADOGUCHI_CONTRACT_EXAMPLES=500 for a deeper hunt by hand; 30 in every run.
    max_examples=int(os.environ.get("MADOGUCHI_CONTRACT_EXAMPLES", "30")),
    derandomize=True,  # the same requests every run
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_as_its_schema_says(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
    case.call_and_validate()
