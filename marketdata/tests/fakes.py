"""A fake ccxt exchange: ccxt's method names, data shapes and exception classes, no network.

It serves a deterministic 1-minute-based price series for the markets it lists, caps pages at
``page_limit`` like a real venue, records every call, and raises the exceptions queued in
``failures`` first (to exercise retries and error mapping).
"""

from __future__ import annotations

import json
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
        self.has = {"fetchOHLCV": True, "fetchTicker": True, "fetchFundingRate": funding,
                    "fetchFundingRateHistory": funding}  # fmt: skip
        self.funding_fields: dict[str, Any] = {}  # overrides, e.g. {"fundingTimestamp": 0}
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
        self.offsets: dict[str, int] = {}  # ms: {"1d": 16 * 3_600_000} = daily candles at 16:00
        self.history_start_ms: int | None = None  # no candle opens before this
        self.missing: set[int] = set()  # open times (ms) the venue has no candle for

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
        offset = self.offsets.get(timeframe, 0)
        current = (self.now_ms - offset) // step * step + offset  # the forming candle
        if since is None:
            first = current - (count - 1) * step
        else:
            first = -(-(since - offset) // step) * step + offset
        if self.history_start_ms is not None:
            first = max(first, -(-(self.history_start_ms - offset) // step) * step + offset)
        rows = []
        for ts in range(first, min(current, first + (count - 1) * step) + 1, step):
            if ts in self.missing:
                continue
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
                "timestamp": self.now_ms, **self.funding_fields}  # fmt: skip

    def fetch_funding_rate_history(
        self, symbol: str, since: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Settled rates every 8 hours, at most ``page_limit`` per request."""
        self.calls.append(("fetch_funding_rate_history", symbol, since, limit))
        self._maybe_fail()
        self._check_symbol(symbol)
        step = 28_800_000
        first = -(-(since or 0) // step) * step
        last = self.now_ms // step * step
        count = min(limit or self.page_limit, self.page_limit)
        return [{"symbol": symbol, "fundingRate": 0.0001 + (t // step % 5) / 1e5, "timestamp": t}
                for t in range(first, last + 1, step)][:count]  # fmt: skip


# --- the real ccxt.binance class with only its HTTP layer faked -----------------------------------


class FakeResponse:
    """What ccxt reads from a ``requests`` response."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        import requests

        self.status_code = status
        self.text = json.dumps(body)
        self.content = self.text.encode()
        self.reason = "OK" if status < 400 else "Error"
        self.headers = requests.structures.CaseInsensitiveDict(
            {"Content-Type": "application/json", **(headers or {})}
        )

    def raise_for_status(self) -> None:
        import requests

        if self.status_code >= 400:
            raise requests.HTTPError(f"{self.status_code}", response=self)  # type: ignore[arg-type]


BINANCE_SPOT = {
    "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT",
    "baseAssetPrecision": 8, "quotePrecision": 8, "quoteAssetPrecision": 8,
    "orderTypes": ["LIMIT", "MARKET"], "isSpotTradingAllowed": True, "permissions": ["SPOT"],
    "filters": [],
}  # fmt: skip


class FakeBinanceHTTP:
    """Stands in for ccxt's ``requests.Session``: answers binance's spot REST paths with
    candles from ``FakeExchange.price``, after playing the queued ``(status, body, headers)``
    responses first. Records every URL requested."""

    headers: dict[str, str] = {}

    def __init__(self, *, now: datetime, duplicate_in_page: bool = False) -> None:
        import requests

        self.cookies = requests.cookies.RequestsCookieJar()
        self.now_ms = int(now.timestamp() * 1000)
        self.queued: list[tuple[int, Any, dict[str, str]]] = []
        self.urls: list[str] = []
        self.timeouts: list[float] = []
        self.duplicate_in_page = duplicate_in_page

    def request(self, method: str, url: str, **kwargs: Any) -> FakeResponse:
        from urllib.parse import parse_qs, urlsplit

        self.urls.append(url)
        self.timeouts.append(kwargs.get("timeout"))
        parts = urlsplit(url)
        if parts.path.endswith("/exchangeInfo"):
            return FakeResponse(200, {"symbols": [BINANCE_SPOT] if "api." in url else []})
        if self.queued:
            return FakeResponse(*self.queued.pop(0))
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path.endswith("/klines"):
            step = {"1m": 60, "1h": 3600, "1d": 86400}[query["interval"]] * 1000
            limit = int(query.get("limit", 500))
            current = self.now_ms // step * step
            first = (
                int(query["startTime"]) if "startTime" in query else current - (limit - 1) * step
            )
            first = -(-first // step) * step
            rows = []
            for ts in range(first, min(current, first + (limit - 1) * step) + 1, step):
                o, c = FakeExchange.price(ts), FakeExchange.price(ts + step)
                rows.append([ts, str(o), str(max(o, c) + 0.5), str(min(o, c) - 0.5), str(c),
                             "12.5", ts + step - 1, "0", 1, "0", "0", "0"])  # fmt: skip
            if self.duplicate_in_page and len(rows) > 2:
                rows.insert(2, list(rows[1]))  # the venue repeats a candle inside the page
            return FakeResponse(200, rows)
        if parts.path.endswith("/ticker/24hr"):
            last = str(FakeExchange.price(self.now_ms))
            return FakeResponse(200, {"symbol": "BTCUSDT", "lastPrice": last, "bidPrice": last,
                                      "askPrice": last, "volume": "1.5",
                                      "closeTime": self.now_ms})  # fmt: skip
        return FakeResponse(404, {"code": -1, "msg": f"no route {parts.path}"})


def fake_binance(http: FakeBinanceHTTP) -> Any:
    """The real ``ccxt.binance`` (spot markets only) over the fake HTTP session."""
    exchange = ccxt.binance(
        {
            "enableRateLimit": False,
            "timeout": 3000,
            "options": {"fetchMarkets": {"types": ["spot"]}},
        }
    )
    exchange.session = http
    return exchange
