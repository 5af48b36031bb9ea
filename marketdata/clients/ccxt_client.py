"""A real exchange through ccxt (``MARKET_DATA_PROVIDER=ccxt``, ``EXCHANGE_ID=okx|binance|...``).

- Timeouts: ccxt's ``timeout`` (``EXCHANGE_TIMEOUT_MS``) bounds every HTTP request.
- Rate limiting: ccxt's own throttle (``enableRateLimit``, the exchange's ``rateLimit`` between
  requests), calls serialised per client (one throttle, one budget), and bounded retries with
  exponential back-off on rate-limit and network errors before ``ExchangeUnavailable``.
- Symbols: ``BTC/USDT`` is the spot market, ``BTC/USDT:USDT`` the linear perpetual; funding
  rates always use the perpetual, and candles fall back to it on derivatives-only venues.
- Long histories: ``fetch_ohlcv`` pages forward through ``since`` in the exchange's per-request
  maximum (ccxt ``features``), so ``limit`` may exceed it.

The exchange object is injectable: tests pass a fake with ccxt's method names and exceptions, so
this code runs unchanged without a network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import ccxt

from marketdata.clients.base import (
    Candle,
    ExchangeUnavailable,
    FundingRate,
    MarketDataClient,
    MarketDataError,
    NotSupported,
    Ticker,
    UnknownSymbol,
    UnknownTimeframe,
)
from marketdata.symbols import normalize_symbol, perpetual_symbol
from marketdata.timeframes import align_up, timeframe_seconds
from zerobot.lib.money import (
    PRICE_DECIMAL_PLACES,
    QUANTITY_DECIMAL_PLACES,
    InvalidAmount,
    quantize,
)

T = TypeVar("T")
DEFAULT_PAGE_LIMIT = 500
RETRYABLE = (ccxt.NetworkError,)  # includes RateLimitExceeded, DDoSProtection, RequestTimeout


def _ms_to_datetime(ms: int | float) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def _amount(value: Any, places: int) -> Decimal | None:
    if value is None:
        return None
    try:
        return quantize(value, places)
    except InvalidAmount:
        return None


class CcxtClient(MarketDataClient):
    def __init__(
        self,
        *,
        exchange_id: str,
        timeout_ms: int = 10_000,
        exchange: Any | None = None,
        retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if exchange is None:
            factory = getattr(ccxt, exchange_id, None) if exchange_id in ccxt.exchanges else None
            if factory is None:
                raise ValueError(f"{exchange_id!r} is not an exchange ccxt knows.")
            exchange = factory({"enableRateLimit": True, "timeout": timeout_ms})
        self.exchange = exchange
        self.exchange_id = exchange_id
        self.retries = retries
        self._sleep = sleep
        self._lock = threading.Lock()
        self._markets: dict[str, Any] | None = None

    # --- plumbing ---------------------------------------------------------------------------

    def _call(self, method: Callable[..., T], *args: Any) -> T:
        """One exchange request: serialised, retried with back-off, errors in our terms."""
        name = getattr(method, "__name__", "request")
        with self._lock:
            for attempt in range(self.retries + 1):
                try:
                    return method(*args)
                except ccxt.BadSymbol as exc:
                    raise UnknownSymbol(f"{self.exchange_id}: {exc}") from exc
                except RETRYABLE as exc:
                    if attempt == self.retries:
                        raise ExchangeUnavailable(
                            f"{self.exchange_id} {name} failed after {attempt + 1} attempts: "
                            f"{type(exc).__name__}: {exc}"
                        ) from exc
                    base = max(float(getattr(self.exchange, "rateLimit", 100) or 100), 100.0)
                    self._sleep(base / 1000 * 2**attempt)
                except ccxt.BaseError as exc:
                    raise MarketDataError(f"{self.exchange_id} {name}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _load_markets(self) -> dict[str, Any]:
        if self._markets is None:
            self._markets = self._call(self.exchange.load_markets)
        return self._markets

    def _market(self, symbol: str, *, perpetual: bool) -> dict[str, Any]:
        """The exchange market for ``symbol``: the perpetual when asked, else spot, else perpetual."""
        try:
            symbol = normalize_symbol(symbol)
        except ValueError as exc:
            raise UnknownSymbol(str(exc)) from None
        markets = self._load_markets()
        if perpetual:
            candidates = [perpetual_symbol(symbol)]
        else:
            candidates = [symbol] if ":" in symbol else [symbol, perpetual_symbol(symbol)]
        for candidate in candidates:
            if candidate in markets:
                return markets[candidate]
        kind = "perpetual " if perpetual else ""
        raise UnknownSymbol(f"{self.exchange_id} has no {kind}market {' or '.join(candidates)}.")

    def _timeframe(self, timeframe: str) -> str:
        try:
            timeframe_seconds(timeframe)
        except ValueError as exc:
            raise UnknownTimeframe(str(exc)) from None
        offered = getattr(self.exchange, "timeframes", None) or {}
        if timeframe not in offered:
            raise UnknownTimeframe(f"{self.exchange_id} has no {timeframe} candles.")
        return timeframe

    def _page_limit(self, market: dict[str, Any]) -> int:
        """The exchange's maximum candles per request for this market type (ccxt ``features``)."""
        features = getattr(self.exchange, "features", None) or {}
        section = features.get("spot" if market.get("spot") else "swap") or {}
        if not market.get("spot"):
            section = section.get("linear" if market.get("linear", True) else "inverse") or {}
        limit = (section.get("fetchOHLCV") or {}).get("limit")
        return int(limit) if limit else DEFAULT_PAGE_LIMIT

    def _now_ms(self) -> int:
        return int(self.exchange.milliseconds())

    # --- the interface ----------------------------------------------------------------------

    def fetch_ohlcv(
        self, *, symbol: str, timeframe: str, since: datetime | None = None, limit: int = 500
    ) -> list[Candle]:
        market = self._market(symbol, perpetual=False)
        timeframe = self._timeframe(timeframe)
        if limit <= 0:
            return []
        step = timeframe_seconds(timeframe) * 1000
        page = self._page_limit(market)
        newest = since is None
        if newest and limit <= page:
            rows = self._call(self.exchange.fetch_ohlcv, market["symbol"], timeframe, None, limit)
            return self._candles(rows)[-limit:]
        now = self._now_ms()
        if newest:
            cursor = (now // step - limit) * step
        else:
            cursor = int(align_up(since, timeframe).timestamp()) * 1000
        rows: list[list[Any]] = []
        # Forward pages; with ``since`` stop at ``limit``, without it run to the newest candle.
        while (newest or len(rows) < limit) and cursor <= now:
            want = page if newest else min(page, limit - len(rows))
            batch = self._call(self.exchange.fetch_ohlcv, market["symbol"], timeframe, cursor, want)
            fresh = [row for row in batch if row[0] >= cursor]  # some venues repeat the last one
            if not fresh:
                break
            rows.extend(fresh)
            cursor = int(fresh[-1][0]) + step
        candles = self._candles(rows)
        return candles[-limit:] if newest else candles[:limit]

    def _candles(self, rows: list[list[Any]]) -> list[Candle]:
        candles = []
        for ts, o, h, low, c, v in (row[:6] for row in rows):
            prices = [_amount(x, PRICE_DECIMAL_PLACES) for x in (o, h, low, c)]
            if None in prices:
                continue  # an exchange placeholder for a candle without trades
            volume = _amount(v, QUANTITY_DECIMAL_PLACES) or Decimal(0)
            candles.append(Candle(_ms_to_datetime(ts), *prices, volume))  # type: ignore[arg-type]
        return candles

    def fetch_ticker(self, *, symbol: str) -> Ticker:
        market = self._market(symbol, perpetual=False)
        raw = self._call(self.exchange.fetch_ticker, market["symbol"])
        price = _amount(raw.get("last") or raw.get("close"), PRICE_DECIMAL_PLACES)
        if price is None:
            raise MarketDataError(f"{self.exchange_id} sent no last price for {market['symbol']}.")
        at = raw.get("timestamp")
        return Ticker(
            symbol=market["symbol"],
            price=price,
            bid=_amount(raw.get("bid"), PRICE_DECIMAL_PLACES),
            ask=_amount(raw.get("ask"), PRICE_DECIMAL_PLACES),
            volume_24h=_amount(raw.get("baseVolume"), QUANTITY_DECIMAL_PLACES),
            at=_ms_to_datetime(at if at is not None else self._now_ms()),
        )

    def fetch_funding_rate(self, *, symbol: str) -> FundingRate:
        if not (getattr(self.exchange, "has", None) or {}).get("fetchFundingRate"):
            raise NotSupported(f"{self.exchange_id} offers no funding rates.")
        market = self._market(symbol, perpetual=True)
        raw = self._call(self.exchange.fetch_funding_rate, market["symbol"])
        rate = _amount(raw.get("fundingRate"), PRICE_DECIMAL_PLACES)
        at = raw.get("fundingTimestamp") or raw.get("timestamp")
        if rate is None or at is None:
            raise MarketDataError(
                f"{self.exchange_id} sent no funding rate for {market['symbol']}."
            )
        return FundingRate(symbol=market["symbol"], rate=rate, funding_time=_ms_to_datetime(at))
