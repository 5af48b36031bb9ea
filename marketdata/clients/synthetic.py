"""Deterministic, offline market data: the default provider for demos, tests and benchmarks.

A price is a pure function of (seed, symbol, minute): a few seeded sine waves (hours to months)
in log space plus per-minute noise from a counter-based hash. So any range of candles can be
produced directly, in any order, and a candle is the same whichever request produced it: the
1h candle of 10:00 opens at the price the 1m candle of 10:00 opens at. Only closed candles are
returned. Everything is vectorised with numpy (500 candles take well under a millisecond).
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from marketdata import timeframes
from marketdata.clients.base import (
    Candle,
    FundingRate,
    MarketDataClient,
    Ticker,
    UnknownSymbol,
    UnknownTimeframe,
)
from zerobot.lib.symbols import SYMBOL_RE, normalize_symbol, perpetual_symbol

# Rough levels so demo charts look familiar; other symbols get a seeded level in [0.01, 10,000).
BASE_PRICES = {
    "BTC": 60_000.0, "ETH": 3_000.0, "SOL": 150.0, "BNB": 600.0, "XRP": 0.6, "DOGE": 0.15,
    "ADA": 0.45, "AVAX": 35.0, "LINK": 15.0, "DOT": 7.0, "LTC": 80.0, "TRX": 0.12,
    "SHIB": 0.000025, "TON": 6.0, "NEAR": 5.0, "ATOM": 9.0, "UNI": 8.0, "ARB": 1.1, "OP": 2.2,
    "MATIC": 0.7, "POL": 0.7, "XLM": 0.11, "APT": 9.0,
}  # fmt: skip
# What the synthetic venue lists unless MARKET_SYMBOLS says otherwise: each base above against
# these quotes, spot and perpetual (settled in the quote or, inverse, in the base).
QUOTES = ("USDT", "USDC", "USD", "EUR", "BTC")
DEFAULT_PAIRS = frozenset(
    f"{base}/{quote}" for base in BASE_PRICES for quote in QUOTES if base != quote
)
_PERIODS = np.array([97.0, 1_440.0, 10_080.0, 44_640.0, 250_000.0])  # minutes
_AMPLITUDES = np.array([0.004, 0.015, 0.04, 0.08, 0.15])  # of log price
_MINUTE_NOISE = 0.002
_FUNDING_INTERVAL = 8 * 3600


def _uniform(key: int, values: np.ndarray, salt: int) -> np.ndarray:
    """Uniform [0, 1) per value: splitmix64 of (value, key, salt); same inputs, same outputs."""
    with np.errstate(over="ignore"):
        x = values.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        x += np.uint64((key ^ (salt * 0xD1B54A32D192ED03)) & 0xFFFFFFFFFFFFFFFF)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


class _Series:
    """The price path of one symbol."""

    def __init__(self, symbol: str, seed: int) -> None:
        digest = hashlib.sha256(f"{seed}:{symbol}".encode()).digest()
        self.key = int.from_bytes(digest[:8], "little")
        rng = np.random.default_rng(int.from_bytes(digest[8:16], "little"))
        self.phases = rng.uniform(0.0, 2 * math.pi, size=len(_PERIODS))
        base = symbol.split("/")[0]
        self.level = BASE_PRICES.get(base) or float(10 ** rng.uniform(-2, 4))
        self.decimals = max(0, 7 - math.floor(math.log10(self.level)))  # ~8 significant digits
        self.volume_per_minute = 1e6 / self.level  # ~1M quote units traded per minute

    def prices(self, minutes: np.ndarray) -> np.ndarray:
        waves = np.sin(2 * math.pi * minutes[:, None] / _PERIODS + self.phases) @ _AMPLITUDES
        noise = _MINUTE_NOISE * (_uniform(self.key, minutes, 1) - 0.5)
        return np.round(self.level * np.exp(waves + noise), self.decimals)


def _decimals(values: np.ndarray) -> list[Decimal]:
    return [Decimal(repr(v)) for v in values.tolist()]


class SyntheticClient(MarketDataClient):
    exchange_id = "synthetic"

    def __init__(self, *, seed: int = 42, pairs: frozenset[str] | None = None) -> None:
        self.seed = seed
        self.pairs = DEFAULT_PAIRS if not pairs else frozenset(pairs)
        self._series: dict[str, _Series] = {}

    def lists(self, symbol: str) -> bool:
        """Whether this venue has ``symbol``: a listed pair, spot or perpetual (no futures)."""
        match = SYMBOL_RE.match(symbol)
        if match is None or match["expiry"]:
            return False
        pair = f"{match['base']}/{match['quote']}"
        return pair in self.pairs and match["settle"] in (None, match["quote"], match["base"])

    def _path(self, symbol: str) -> tuple[str, _Series]:
        try:
            symbol = normalize_symbol(symbol)
        except ValueError as exc:
            raise UnknownSymbol(str(exc)) from None
        if not self.lists(symbol):
            raise UnknownSymbol(
                f"synthetic has no market {symbol}: it lists spot pairs and their perpetuals of "
                f"{', '.join(sorted(BASE_PRICES)[:4])}, ... against {', '.join(QUOTES)}"
                " (set MARKET_SYMBOLS to list others)."
            )
        series = self._series.get(symbol)
        if series is None:
            series = self._series[symbol] = _Series(symbol.split(":")[0], self.seed)
        return symbol, series

    def fetch_ohlcv(
        self, *, symbol: str, timeframe: str, since: datetime | None = None, limit: int = 500
    ) -> list[Candle]:
        try:
            step = timeframes.timeframe_seconds(timeframe)
        except ValueError as exc:
            raise UnknownTimeframe(str(exc)) from None
        _, series = self._path(symbol)
        last = int(timeframes.last_closed_open_time(timeframes.utcnow(), timeframe).timestamp())
        if since is None:
            first = last - (limit - 1) * step
        else:
            first = int(timeframes.align_up(since, timeframe).timestamp())
        if limit <= 0 or first > last:
            return []
        opens_at = np.arange(first, min(last, first + (limit - 1) * step) + 1, step, dtype=np.int64)
        opens = series.prices(opens_at // 60)
        closes = series.prices((opens_at + step) // 60)
        wick = 0.0015 * math.sqrt(step / 60)
        top, bottom = np.maximum(opens, closes), np.minimum(opens, closes)
        up = wick * _uniform(series.key, opens_at, step)
        down = wick * _uniform(series.key, opens_at, step + 1)
        # Rounding must not let a wick undercut the body.
        highs = np.maximum(np.round(top * (1 + up), series.decimals), top)
        lows = np.minimum(np.round(bottom * (1 - down), series.decimals), bottom)
        volumes = np.round(
            series.volume_per_minute * step / 60 * (0.5 + _uniform(series.key, opens_at, 7)), 4
        )
        return [
            Candle(datetime.fromtimestamp(t, tz=UTC), o, h, lo, c, v)
            for t, o, h, lo, c, v in zip(
                opens_at.tolist(), _decimals(opens), _decimals(highs), _decimals(lows),
                _decimals(closes), _decimals(volumes), strict=True,
            )
        ]  # fmt: skip

    def fetch_ticker(self, *, symbol: str) -> Ticker:
        symbol, series = self._path(symbol)
        now = timeframes.utcnow()
        second = np.array([int(now.timestamp())], dtype=np.int64)
        jitter = 0.0004 * (float(_uniform(series.key, second, 3)[0]) - 0.5)
        price = float(series.prices(second // 60)[0]) * (1 + jitter)
        spread = 0.00005 * price
        day = second // 86_400
        volume = (
            series.volume_per_minute * 1_440 * (0.8 + 0.4 * float(_uniform(series.key, day, 5)[0]))
        )
        places = series.decimals
        return Ticker(
            symbol=symbol,
            price=Decimal(repr(round(price, places))),
            bid=Decimal(repr(round(price - spread, places))),
            ask=Decimal(repr(round(price + spread, places))),
            volume_24h=Decimal(repr(round(volume, 4))),
            at=now,
        )

    def _funding(self, perpetual: str, settlement: int) -> FundingRate:
        _, series = self._path(perpetual)
        draw = float(_uniform(series.key, np.array([settlement // _FUNDING_INTERVAL]), 11)[0])
        rate = 0.0001 + 0.0004 * (draw - 0.35)
        return FundingRate(
            symbol=perpetual,
            rate=Decimal(f"{rate:.8f}"),
            funding_time=datetime.fromtimestamp(settlement, tz=UTC),
        )

    def _perpetual(self, symbol: str) -> str:
        try:
            return perpetual_symbol(symbol)
        except ValueError as exc:
            raise UnknownSymbol(str(exc)) from None

    def fetch_funding_rate(self, *, symbol: str) -> FundingRate:
        now = int(timeframes.utcnow().timestamp())
        settlement = (now // _FUNDING_INTERVAL + 1) * _FUNDING_INTERVAL
        return self._funding(self._perpetual(symbol), settlement)

    def fetch_funding_rate_history(
        self, *, symbol: str, since: datetime, limit: int = 1000
    ) -> list[FundingRate]:
        perpetual = self._perpetual(symbol)
        now = int(timeframes.utcnow().timestamp())
        first = -(-int(since.timestamp()) // _FUNDING_INTERVAL) * _FUNDING_INTERVAL
        last = now // _FUNDING_INTERVAL * _FUNDING_INTERVAL  # the newest settled
        settlements = range(first, last + 1, _FUNDING_INTERVAL)
        return [self._funding(perpetual, t) for t in settlements[:limit]]
