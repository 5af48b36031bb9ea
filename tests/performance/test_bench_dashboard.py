"""Dashboard benchmarks on the reference data set (seed_demo --profile reference).

Run: ``make benchmarks`` (marker ``exhaustive``: not in a plain ``make test``; ``make exhaustive``
runs each benchmark once as a smoke test, --benchmark-disable from pytest.ini). Server-side,
through Django's test client and the full middleware stack, token auth, no cache. Each endpoint
is measured as built (``optimised``) and as the naive baseline in ``baseline.py``.
Numbers: PERFORMANCE.md. For the large profile use ``manage.py bench_api`` on a seeded database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient

from accounts.services import token_create
from trading import seed

# Benchmarks print numbers and cannot fail on speed: out of the default run (make benchmarks).
pytestmark = [
    pytest.mark.exhaustive,
    pytest.mark.postgres,
    pytest.mark.django_db,
    pytest.mark.benchmark(group="dashboard"),
]

ENDPOINTS = ["stats", "equity-curve", "positions", "trades", "performance"]


@pytest.fixture(scope="module")
def reference_client(django_db_setup: Any, django_db_blocker: Any) -> Iterator[APIClient]:
    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            pytest.fail("Benchmarks need PostgreSQL: set DATABASE_URL.", pytrace=False)
        seed.reset()
        seed.seed(seed.PROFILES["reference"], seed_value=42)
        user = get_user_model().objects.get(username=seed.DEMO_USERNAME)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user).key}")
        yield client
        seed.reset()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_optimised(benchmark: Any, reference_client: APIClient, endpoint: str) -> None:
    response = benchmark(reference_client.get, f"/api/dashboard/{endpoint}")
    assert response.status_code == 200, response.content[:300]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_baseline(
    benchmark: Any, reference_client: APIClient, settings: Any, endpoint: str
) -> None:
    settings.ROOT_URLCONF = "tests.performance.urls"
    response = benchmark(reference_client.get, f"/baseline/dashboard/{endpoint}")
    assert response.status_code == 200, response.content[:300]
