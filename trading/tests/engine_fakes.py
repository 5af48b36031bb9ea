"""A scripted exchange for engine tests (the exchange edge, ``MarketDataClient``): candles whose
closes the test chooses, and a ticker price it sets. Everything between it and the cycle is the
real market-data layer (PostgreSQL candles, Redis cache, typed reads)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from marketdata import cache as market_cache
from marketdata import services as market_services
from marketdata import timeframes
from marketdata.clients.base import Candle, FundingRate, MarketDataClient, Ticker

NOW = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)  # 30 s after the 12:00 candle close


class ScriptedClient(MarketDataClient):
    exchange_id = "scripted"

    def __init__(self, *, base: str = "100") -> None:
        self.base = Decimal(base)
        self.closes: dict[str, dict[datetime, Decimal]] = {}  # symbol -> open time -> close
        self.prices: dict[str, Decimal] = {}

    def script(self, symbol: str, closes: list[str], *, timeframe: str = "1h") -> None:
        """The newest closed candles of ``symbol`` at the pinned clock end with ``closes``."""
        last = timeframes.last_closed_open_time(timeframes.utcnow(), timeframe)
        step = timeframes.timeframe_delta(timeframe)
        series = self.closes.setdefault(symbol, {})
        for i, close in enumerate(reversed(closes)):
            series[last - i * step] = Decimal(close)

    def set_price(self, symbol: str, price: str) -> None:
        self.prices[symbol] = Decimal(price)
        market_services.ticker_invalidate(symbol=symbol, exchange=self.exchange_id)

    def _close(self, symbol: str, at: datetime) -> Decimal:
        return self.closes.get(symbol, {}).get(at, self.base)

    def fetch_ohlcv(
        self, *, symbol: str, timeframe: str, since: datetime | None = None, limit: int = 500
    ) -> list[Candle]:
        step = timeframes.timeframe_delta(timeframe)
        last = timeframes.last_closed_open_time(timeframes.utcnow(), timeframe)
        first = (
            last - (limit - 1) * step if since is None else timeframes.align_up(since, timeframe)
        )
        candles = []
        at = first
        while at <= last and len(candles) < limit:
            close = self._close(symbol, at)
            opened = self._close(symbol, at - step)
            high, low = max(opened, close), min(opened, close)
            candles.append(Candle(at, opened, high, low, close, Decimal(10)))
            at += step
        return candles

    def fetch_ticker(self, *, symbol: str) -> Ticker:
        price = self.prices.get(symbol, self.base)
        return Ticker(symbol, price, price, price, Decimal(1000), timeframes.utcnow())

    def fetch_funding_rate(self, *, symbol: str) -> FundingRate:
        return FundingRate(symbol, Decimal(0), timeframes.utcnow() + timedelta(hours=8))

    def fetch_funding_rate_history(
        self, *, symbol: str, since: datetime, limit: int = 1000
    ) -> list[FundingRate]:
        return []


@pytest.fixture
def market_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[datetime]:
    """The market clock pinned at NOW, and a fresh cache layer (no memo of earlier tests)."""
    monkeypatch.setattr(timeframes, "utcnow", lambda: NOW)
    market_cache._stores.clear()
    market_cache._known.clear()
    market_services.cache.memo.clear()
    yield NOW
    market_cache._stores.clear()
    market_services.cache.memo.clear()


@pytest.fixture
def scripted(market_clock: datetime) -> ScriptedClient:
    return ScriptedClient()
