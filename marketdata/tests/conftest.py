"""Fixtures for market data tests: a pinned clock and a fake-exchange-backed ccxt client."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from marketdata import timeframes
from marketdata.clients.ccxt_client import CcxtClient
from marketdata.tests.fakes import FakeExchange

NOW = datetime(2026, 3, 2, 12, 34, 56, tzinfo=UTC)


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Pin the market data clock (``marketdata.timeframes.utcnow``) to NOW."""
    monkeypatch.setattr(timeframes, "utcnow", lambda: NOW)
    return NOW


@pytest.fixture
def fake_exchange(now: datetime) -> FakeExchange:
    return FakeExchange(now=now)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def ccxt_client(fake_exchange: FakeExchange, sleeps: list[float]) -> CcxtClient:
    """The real ccxt client around the fake exchange; back-off sleeps are recorded, not slept."""
    return CcxtClient(exchange_id="fakex", exchange=fake_exchange, sleep=sleeps.append)
