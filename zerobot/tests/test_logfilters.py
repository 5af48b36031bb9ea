"""A Redis outage logs one line per minute, not a traceback per cache call (issue 8)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.cache import caches

from zerobot.lib.logfilters import CacheOutageFilter


@pytest.fixture
def dead_redis(settings: Any) -> Any:
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": 0.05,
                "SOCKET_TIMEOUT": 0.05,
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
    CacheOutageFilter.reset_all()
    return caches["default"]


def test_an_outage_is_one_warning_line_not_a_traceback_per_call(
    dead_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="zerobot.cache")
    for i in range(40):
        assert dead_redis.get(f"key-{i}") is None  # a miss, never an error
    records = [r for r in caplog.records if r.name == "zerobot.cache"]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING and records[0].exc_info is None
    assert "ConnectionInterrupted" in records[0].getMessage()


def test_the_next_line_says_how_many_failures_it_held_back() -> None:
    f = CacheOutageFilter(interval=0.0)
    held = CacheOutageFilter(interval=3600.0)

    def failure() -> logging.LogRecord:
        try:
            raise ConnectionError("refused")
        except ConnectionError:
            import sys

            return logging.LogRecord("zerobot.cache", logging.ERROR, __file__, 1,
                                     "Exception ignored", None, sys.exc_info())  # fmt: skip

    assert held.filter(failure()) and not held.filter(failure()) and not held.filter(failure())
    assert held._held == 2
    held.interval = 0.0
    record = failure()
    assert held.filter(record)
    assert "2 more failure(s)" in record.getMessage()
    other = logging.LogRecord("zerobot.cache", logging.INFO, __file__, 1, "hello", None, None)
    assert f.filter(other) and other.getMessage() == "hello"


def test_the_data_versions_failures_are_held_back_with_the_caches(
    dead_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """trading.dataversion reads and bumps on every dashboard request and every write: during an
    outage its own warnings go through the same once-a-minute filter (before: one WARNING line
    per call, the flood the filter exists to stop)."""
    from trading import dataversion

    caplog.set_level(logging.INFO, logger="zerobot.cache")
    for owner_id in range(20):
        assert dataversion.current(owner_id) is None  # no version: answered in full
        dataversion.bump(owner_id)  # never raises
    assert dead_redis.get("key") is None
    records = [r for r in caplog.records if r.name == "zerobot.cache"]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].levelno == logging.WARNING and "data version" in records[0].getMessage()
