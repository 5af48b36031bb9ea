"""Fixtures for the monitoring tests: captured JSON log records, users, clean in-memory state."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User

from monitoring import aggregation, pool

LOGGERS = ("zerobot.requests", "zerobot.slow_queries", "zerobot.pool")


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class LogLines:
    """The dict messages logged on the monitoring loggers (they do not propagate to caplog)."""

    def __init__(self, collector: _Collector) -> None:
        self._collector = collector

    def events(self, event: str) -> list[dict[str, Any]]:
        return [
            {**r.msg, "_level": r.levelname}
            for r in self._collector.records
            if isinstance(r.msg, dict) and r.msg.get("event") == event
        ]

    def clear(self) -> None:
        self._collector.records.clear()


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    collector = _Collector()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    for logger in loggers:
        logger.addHandler(collector)
    try:
        yield LogLines(collector)
    finally:
        for logger in loggers:
            logger.removeHandler(collector)


@pytest.fixture(autouse=True)
def _fresh_monitoring_state() -> Iterator[None]:
    """Each test starts with empty in-memory aggregates and no open pool alert."""
    aggregation.aggregator.clear()
    pool.monitor.reset()
    yield
    aggregation.aggregator.clear()
    pool.monitor.reset()


@pytest.fixture
def staff_user(db: None) -> User:
    return User.objects.create_user("staff", password="staff-pass-123", is_staff=True)


@pytest.fixture
def plain_user(db: None) -> User:
    return User.objects.create_user("plain", password="plain-pass-123")
