"""The one interface every market data source implements, and the values it returns.

Prices are ``Decimal`` (exact, as the exchange sent them), times aware UTC, candle open times as
the venue aligns them (``marketdata.services.clean_candles`` handles duplicates and alignment).
Clients do network I/O (or simulate it) and nothing else: no database, no cache (the ccxt client
shares its request budget with the host's other processes through Redis);
``marketdata.services`` stores and caches what they return.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


class MarketDataError(Exception):
    """Base class of the errors a client raises; ``field`` names the request parameter at fault."""

    field: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownSymbol(MarketDataError):
    field = "symbol"


class UnknownTimeframe(MarketDataError):
    field = "timeframe"


class NotSupported(MarketDataError):
    """The exchange does not offer this kind of data (e.g. funding rates on a spot-only venue)."""


class ExchangeUnavailable(MarketDataError):
    """Timeouts, rate limits that outlasted the retries, maintenance, a ban: try again later
    (``retry_after`` seconds when the venue said so)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Candle:
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True, slots=True)
class Ticker:
    symbol: str
    price: Decimal
    bid: Decimal | None
    ask: Decimal | None
    volume_24h: Decimal | None
    at: datetime


@dataclass(frozen=True, slots=True)
class FundingRate:
    symbol: str  # the perpetual, e.g. BTC/USDT:USDT
    rate: Decimal
    funding_time: datetime  # the settlement this rate applies to


class MarketDataClient(abc.ABC):
    """OHLCV, ticker and funding rate of one exchange (``exchange_id``)."""

    exchange_id: str

    @abc.abstractmethod
    def fetch_ohlcv(
        self, *, symbol: str, timeframe: str, since: datetime | None = None, limit: int = 500
    ) -> list[Candle]:
        """Up to ``limit`` candles in time order: from ``since`` on, or the newest when ``None``.

        Pages through the exchange's per-request maximum, so ``limit`` may exceed it. The last
        candle may still be forming; callers that need closed candles drop it.
        """

    def lists(self, symbol: str) -> bool:
        """Whether the venue has a market for ``symbol`` (normalized); by default, whether a
        ticker can be fetched for it."""
        try:
            self.fetch_ticker(symbol=symbol)
        except UnknownSymbol:
            return False
        return True

    @abc.abstractmethod
    def fetch_ticker(self, *, symbol: str) -> Ticker: ...

    @abc.abstractmethod
    def fetch_funding_rate(self, *, symbol: str) -> FundingRate:
        """The current funding rate of ``symbol``'s perpetual (``BTC/USDT`` means ``BTC/USDT:USDT``),
        keyed by the settlement it applies to."""

    @abc.abstractmethod
    def fetch_funding_rate_history(
        self, *, symbol: str, since: datetime, limit: int = 1000
    ) -> list[FundingRate]:
        """Settled funding rates of ``symbol``'s perpetual from ``since`` on, in time order."""
