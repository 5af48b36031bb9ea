"""Cost of the query-profiling middleware on a cached request (no database query).

    make test PYTEST_ARGS="tests/performance --benchmark-enable"

Both variants run the same request (a Redis GET served by a view, through the test Client) with
the same middleware stack but for QueryProfilingMiddleware; Silk is off in both (its production
default). The difference of the medians is the middleware's cost: JSON log line, Prometheus
observations, the in-memory aggregate, Server-Timing. Numbers go to PERFORMANCE.md.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.conf import settings
from django.test import Client
from django.test.utils import override_settings

pytestmark = [pytest.mark.urls("monitoring.tests.urls"), pytest.mark.redis, pytest.mark.django_db]

MONITORING = "monitoring.middleware.QueryProfilingMiddleware"
BASE = [m for m in settings.MIDDLEWARE if m not in (MONITORING, "silk.middleware.SilkyMiddleware")]


def _cached_request(middleware: list[str]) -> Callable[[], None]:
    client = Client()
    # The client's handler builds its middleware chain on its first request and keeps it.
    with override_settings(MIDDLEWARE=middleware):
        client.get("/t/cached/")  # also warms the cache: the measured requests are hits
    assert ("Server-Timing" in client.get("/t/cached/")) is (MONITORING in middleware)

    def run() -> None:
        response = client.get("/t/cached/")
        assert response.status_code == 200

    return run


@pytest.mark.benchmark(group="monitoring-overhead", min_rounds=2000, warmup=True)
def test_cached_request_without_monitoring(benchmark) -> None:
    benchmark(_cached_request(BASE))


@pytest.mark.benchmark(group="monitoring-overhead", min_rounds=2000, warmup=True)
def test_cached_request_with_monitoring(benchmark) -> None:
    benchmark(_cached_request([MONITORING, *BASE]))
