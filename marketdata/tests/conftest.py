"""Fixtures for market data tests: a pinned (movable) clock, a fake-exchange-backed ccxt client,
and per-test reset of the cache layer's process state (breakers, remembered versions, memo)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from marketdata import cache as market_cache
from marketdata import services, timeframes
from marketdata.clients.budget import RequestBudget
from marketdata.clients.ccxt_client import CcxtClient
from marketdata.tests.fakes import FakeExchange

NOW = datetime(2026, 3, 2, 12, 34, 56, tzinfo=UTC)


class Clock:
    """The market data clock, pinned; ``advance`` moves it (values expire by it, not by Redis)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


@pytest.fixture(autouse=True)
def _fresh_cache_state() -> Iterator[None]:
    market_cache._stores.clear()
    market_cache._known.clear()
    services.cache.memo.clear()
    yield
    market_cache._stores.clear()
    services.cache.memo.clear()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    pinned = Clock(NOW)
    monkeypatch.setattr(timeframes, "utcnow", pinned)
    return pinned


@pytest.fixture
def now(clock: Clock) -> datetime:
    """Pin the market data clock (``marketdata.timeframes.utcnow``) to NOW."""
    return clock.at


@pytest.fixture
def fake_exchange(now: datetime) -> FakeExchange:
    return FakeExchange(now=now)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def ccxt_client(fake_exchange: FakeExchange, sleeps: list[float]) -> CcxtClient:
    """The real ccxt client around the fake exchange; back-off sleeps are recorded, not slept;
    no request budget (the shared one is tested on its own)."""
    return CcxtClient(
        exchange_id="fakex", exchange=fake_exchange, sleep=sleeps.append, budget=no_budget()
    )


def no_budget() -> RequestBudget:
    return RequestBudget("fakex", 0, shared=False)
