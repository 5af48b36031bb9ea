"""A fake ccxt exchange: ccxt's method names, data shapes and exception classes, no network.

It serves a deterministic 1-minute-based price series for the markets it lists, caps pages at
``page_limit`` like a real venue, records every call, and raises the exceptions queued in
``failures`` first (to exercise retries and error mapping).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ccxt

SPOT = {"spot": True, "swap": False, "linear": None}
LINEAR = {"spot": False, "swap": True, "linear": True}


class FakeExchange:
    id = "fakex"
    rateLimit = 50  # noqa: N815 - ccxt's attribute name

    def __init__(
        self,
        *,
        now: datetime,
        page_limit: int = 100,
        markets: dict[str, dict[str, Any]] | None = None,
        timeframes: tuple[str, ...] = ("1m", "5m", "15m", "1h", "4h", "1d"),
        funding: bool = True,
    ) -> None:
        self.now_ms = int(now.timestamp() * 1000)
        self.page_limit = page_limit
        self.timeframes = {tf: tf for tf in timeframes}
        self.has = {"fetchOHLCV": True, "fetchTicker": True, "fetchFundingRate": funding}
        self.features = {
            "spot": {"fetchOHLCV": {"limit": page_limit}},
            "swap": {"linear": {"fetchOHLCV": {"limit": page_limit}}},
        }
        listed = markets or {
            "BTC/USDT": SPOT,
            "BTC/USDT:USDT": LINEAR,
            "ETH/USDT:USDT": LINEAR,  # perpetual only
        }
        self.markets = {symbol: {"symbol": symbol, **kind} for symbol, kind in listed.items()}
        self.calls: list[tuple] = []
        self.failures: list[Exception] = []

    def _maybe_fail(self) -> None:
        if self.failures:
            raise self.failures.pop(0)

    def milliseconds(self) -> int:
        return self.now_ms

    def load_markets(self, reload: bool = False) -> dict[str, Any]:
        self.calls.append(("load_markets",))
        self._maybe_fail()
        return self.markets

    def _check_symbol(self, symbol: str) -> None:
        if symbol not in self.markets:
            raise ccxt.BadSymbol(f"fakex does not have market symbol {symbol}")

    @staticmethod
    def price(ts_ms: int) -> float:
        return 100.0 + (ts_ms // 60_000) % 1000 / 10

    def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1m", since: int | None = None, limit: int | None = None
    ) -> list[list[float]]:
        self.calls.append(("fetch_ohlcv", symbol, timeframe, since, limit))
        self._maybe_fail()
        self._check_symbol(symbol)
        step = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400}[timeframe]
        step *= 1000
        count = min(limit or self.page_limit, self.page_limit)
        current = self.now_ms // step * step  # the forming candle
        first = current - (count - 1) * step if since is None else -(-since // step) * step
        rows = []
        for ts in range(first, min(current, first + (count - 1) * step) + 1, step):
            o, c = self.price(ts), self.price(ts + step)
            rows.append([ts, o, max(o, c) + 0.5, min(o, c) - 0.5, c, 12.5])
        return rows

    def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        self.calls.append(("fetch_ticker", symbol))
        self._maybe_fail()
        self._check_symbol(symbol)
        last = self.price(self.now_ms)
        return {"symbol": symbol, "timestamp": self.now_ms, "last": last, "close": last,
                "bid": last - 0.01, "ask": last + 0.01, "baseVolume": 1234.5}  # fmt: skip

    def fetch_funding_rate(self, symbol: str) -> dict[str, Any]:
        self.calls.append(("fetch_funding_rate", symbol))
        self._maybe_fail()
        self._check_symbol(symbol)
        settlement = (self.now_ms // 28_800_000 + 1) * 28_800_000
        return {"symbol": symbol, "fundingRate": 0.000125, "fundingTimestamp": settlement,
                "timestamp": self.now_ms}  # fmt: skip
