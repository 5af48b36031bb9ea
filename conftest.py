"""Project-wide fixtures.

``postgres`` and ``redis`` markers: a test that is about the real server fails (never skips) when
that server is not configured or not reachable, so CI cannot turn green by losing its services.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection


def _require_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.fail(
            "This test needs PostgreSQL: set DATABASE_URL=postgres://... (make test does).",
            pytrace=False,
        )


def _require_redis() -> None:
    from django.conf import settings

    backend = settings.CACHES["default"]["BACKEND"]
    if "django_redis" not in backend:
        pytest.fail(
            "This test needs Redis: set REDIS_URL=redis://... (make test does).", pytrace=False
        )
    from django_redis import get_redis_connection

    try:
        get_redis_connection("default").ping()
    except Exception as exc:
        pytest.fail(f"Redis at {settings.REDIS_URL} is not reachable: {exc}", pytrace=False)


@pytest.fixture(autouse=True)
def _service_markers(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres"):
        request.getfixturevalue("django_db_blocker")
        _require_postgres()
    if request.node.get_closest_marker("redis"):
        _require_redis()


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Each test starts with an empty cache (with Redis: the test database, db 15 in make test),
    a closed Redis circuit (a test against a dead Redis opens it) and empty local throttles."""
    from zerobot.lib.redis_breaker import breaker
    from zerobot.lib.throttle import local_limiter

    breaker.reset()
    local_limiter.clear()
    cache.clear()
