"""Schemathesis over every operation of the OpenAPI schema, in process (WSGI), as a throwaway
user with a few bots of history: 0 server errors, 0 responses the schema does not describe.

``SCHEMATHESIS_EXAMPLES`` (default 12) sets the examples per operation and check phase; the
suite's budget keeps it small, a local run can raise it (PERFORMANCE.md, "Reliability").
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from accounts.services import token_create
from trading.tests.conftest import seed_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12"))
# Schema-valid input these refuse for reasons a schema cannot state (a wrong password, a password
# Django's validators refuse, a taken username): every other check still applies to them.
SEMANTIC_REFUSALS = {"/api/auth/login", "/api/auth/register", "/api/auth/password"}


@pytest.fixture
def api_schema(db: Any) -> Iterator[Any]:
    from zerobot.wsgi import application

    # As Django's test client does: a request must not close the test's connection (and with it
    # the transaction that holds the throwaway data).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


schema = schemathesis.pytest.from_fixture("api_schema")
CASES = {"run": 0}


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    print(f"\nschemathesis: {CASES['run']} cases, {EXAMPLES} examples per operation and phase")


@pytest.fixture
def throwaway_token(db: Any) -> str:
    # Not the demo user: a user of its own with 2 bots of history, gone with the test's transaction.
    user = seed_user(bots=2, username="demo")
    user.username, user.email = "fuzz-user", "fuzz@example.com"
    user.save(update_fields=["username", "email"])
    return token_create(user=user).key


@schema.parametrize()
@settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
    suppress_health_check=list(HealthCheck),
)  # fmt: skip
def test_every_operation_conforms_to_the_schema(case: Any, throwaway_token: str) -> None:
    CASES["run"] += 1
    excluded = []
    if case.operation.path in SEMANTIC_REFUSALS:
        excluded.append(positive_data_acceptance)
    case.call_and_validate(
        headers={"Authorization": f"Token {throwaway_token}"}, excluded_checks=excluded
    )
