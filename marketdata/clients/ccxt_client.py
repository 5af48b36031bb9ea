"""A real exchange through ccxt (``MARKET_DATA_PROVIDER=ccxt``, ``EXCHANGE_ID=okx|binance|...``).

- Time: ``EXCHANGE_TIMEOUT_MS`` (3 s) bounds each HTTP request and ``EXCHANGE_DEADLINE_MS`` (6 s)
  one whole call, every retry, back-off and budget wait included (a computation's calls share
  one deadline, ``marketdata.clients.deadline``). Both are below the cache lock
  (``MARKET_CACHE_LOCK_TIMEOUT``, 10 s; settings refuse a deadline that is not) and gunicorn's
  worker timeout (30 s), so a failing exchange costs a request at most ~6 s, never a worker.
- Rate limiting: one request budget per exchange and host, shared through Redis
  (``budget.RequestBudget``: the exchange's ccxt ``rateLimit`` between requests); ccxt's own
  per-object throttle is off. No lock is held while waiting or sleeping.
- Retries: network errors, timeouts and rate limits are retried with exponential back-off while
  the deadline allows; a ``Retry-After`` from the venue is honoured (and paused for the whole
  host); an HTTP 418 (an IP ban) is never retried: the host pauses for its ``Retry-After``
  (60 s if none) and the call fails with ``ExchangeUnavailable(retry_after=...)``.
- Symbols: ccxt unified symbols; ``BTC/USDT`` is the spot market, ``BTC/USDT:USDT`` the linear
  perpetual; funding rates always use the perpetual, and candles fall back to it on
  derivatives-only venues. Markets are matched case-insensitively.
- Long histories: ``fetch_ohlcv`` pages forward through ``since`` in the exchange's per-request
  maximum (ccxt ``features``), so ``limit`` may exceed it.

The exchange object is injectable: tests pass a ccxt class whose HTTP session is faked (the
quirks that are ccxt's: status mapping, headers), or a fake with ccxt's method names.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import ccxt

from marketdata.clients import current_deadline
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
from marketdata.clients.budget import RequestBudget
from marketdata.timeframes import timeframe_seconds
from zerobot.lib.money import (
    PRICE_DECIMAL_PLACES,
    QUANTITY_DECIMAL_PLACES,
    InvalidAmount,
    quantize,
)
from zerobot.lib.symbols import normalize_symbol, perpetual_symbol

T = TypeVar("T")
DEFAULT_PAGE_LIMIT = 500
RETRYABLE = (ccxt.NetworkError,)  # includes RateLimitExceeded, DDoSProtection, RequestTimeout
BAN_STATUS = 418
DEFAULT_BAN_SECONDS = 60.0
MIN_ATTEMPT_SECONDS = 0.2  # no attempt is started with less time than this before the deadline
FUNDING_INTERVAL_MS = 8 * 3_600_000  # when a venue does not say its settlement


def _ms_to_datetime(ms: int | float) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def _amount(value: Any, places: int) -> Decimal | None:
    if value is None:
        return None
    try:
        return quantize(value, places)
    except InvalidAmount:
        return None


def retry_after_seconds(headers: Any, now: float | None = None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) in seconds, or None."""
    value = None
    if headers is not None:
        value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


class _Session:
    """Wraps ccxt's requests session: caps each request's timeout at the call's remaining time
    and keeps the last response's status and headers per thread (ccxt keeps them per exchange
    object, which threads share)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._local = threading.local()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def start(self, remaining: float) -> None:
        self._local.remaining = remaining
        self._local.status = None
        self._local.headers = None

    @property
    def last(self) -> tuple[int | None, Any]:
        return getattr(self._local, "status", None), getattr(self._local, "headers", None)

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        remaining = getattr(self._local, "remaining", None)
        if remaining is not None and kwargs.get("timeout") is not None:
            kwargs["timeout"] = max(0.05, min(float(kwargs["timeout"]), remaining))
        response = self._session.request(method, url, **kwargs)
        self._local.status = getattr(response, "status_code", None)
        self._local.headers = getattr(response, "headers", None)
        return response


class CcxtClient(MarketDataClient):
    def __init__(
        self,
        *,
        exchange_id: str,
        timeout_ms: int = 3_000,
        deadline_ms: int = 6_000,
        exchange: Any | None = None,
        retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        budget: RequestBudget | None = None,
    ) -> None:
        if exchange is None:
            factory = getattr(ccxt, exchange_id, None) if exchange_id in ccxt.exchanges else None
            if factory is None:
                raise ValueError(f"{exchange_id!r} is not an exchange ccxt knows.")
            # ccxt's throttle would sleep per object; the shared budget replaces it.
            exchange = factory({"enableRateLimit": False, "timeout": timeout_ms})
        self.exchange = exchange
        self.exchange_id = exchange_id
        self.retries = retries
        self.deadline_s = deadline_ms / 1000
        self._sleep = sleep
        session = getattr(exchange, "session", None)
        self._session = _Session(session) if session is not None else None
        if self._session is not None:
            exchange.session = self._session
        interval = float(getattr(exchange, "rateLimit", 100) or 100)
        self.budget = budget if budget is not None else RequestBudget(exchange_id, interval)
        self._markets_lock = threading.Lock()
        self._markets: dict[str, Any] | None = None
        self._markets_folded: dict[str, str] = {}

    # --- plumbing ---------------------------------------------------------------------------

    def _call(self, method: Callable[..., T], *args: Any) -> T:
        """One exchange request within the deadline: budgeted, retried, errors in our terms."""
        name = getattr(method, "__name__", "request")
        deadline = time.monotonic() + self.deadline_s
        outer = current_deadline()
        if outer is not None:
            deadline = min(deadline, outer)
        last: BaseException | None = None
        for attempt in range(self.retries + 1):
            remaining = deadline - time.monotonic()
            if remaining < MIN_ATTEMPT_SECONDS:
                break
            wait = self.budget.reserve(max_wait=remaining - MIN_ATTEMPT_SECONDS)
            if wait is None:
                raise ExchangeUnavailable(
                    f"{self.exchange_id} {name}: no request slot within the deadline (the "
                    "exchange asked this host to slow down or wait)",
                    retry_after=max(1.0, remaining),
                )
            if wait > 0:
                self._sleep(wait)
            if self._session is not None:
                self._session.start(deadline - time.monotonic())
            try:
                return method(*args)
            except ccxt.BadSymbol as exc:
                raise UnknownSymbol(f"{self.exchange_id}: {exc}") from exc
            except RETRYABLE as exc:
                last = exc
                status, headers = self._session.last if self._session is not None else (None, None)
                retry_after = retry_after_seconds(headers)
                if status == BAN_STATUS:
                    pause = retry_after if retry_after is not None else DEFAULT_BAN_SECONDS
                    self.budget.pause(pause)
                    raise ExchangeUnavailable(
                        f"{self.exchange_id} {name}: this IP is banned (HTTP 418) for "
                        f"{pause:.0f} s; not retried",
                        retry_after=pause,
                    ) from exc
                if retry_after is not None:
                    self.budget.pause(retry_after)  # every process of the host waits too
                    delay = retry_after
                else:
                    base = max(float(getattr(self.exchange, "rateLimit", 100) or 100), 100.0)
                    delay = base / 1000 * 2**attempt
                if (
                    attempt == self.retries
                    or time.monotonic() + delay > deadline - MIN_ATTEMPT_SECONDS
                ):
                    raise ExchangeUnavailable(
                        f"{self.exchange_id} {name} failed after {attempt + 1} attempts: "
                        f"{type(exc).__name__}: {exc}",
                        retry_after=retry_after,
                    ) from exc
                if retry_after is None:
                    self._sleep(delay)  # with Retry-After the budget itself waits
            except ccxt.BaseError as exc:
                raise MarketDataError(f"{self.exchange_id} {name}: {exc}") from exc
        raise ExchangeUnavailable(
            f"{self.exchange_id} {name}: deadline of {self.deadline_s:g} s reached"
            + (f" ({type(last).__name__}: {last})" if last else ""),
        )

    def _load_markets(self) -> dict[str, Any]:
        if self._markets is None:
            # Only threads that need the markets wait here (once per process).
            with self._markets_lock:
                if self._markets is None:
                    markets = self._call(self.exchange.load_markets)
                    self._markets_folded = {symbol.upper(): symbol for symbol in markets}
                    self._markets = markets
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
            if candidate in self._markets_folded:  # a venue's code with lower-case letters
                return markets[self._markets_folded[candidate]]
        kind = "perpetual " if perpetual else ""
        raise UnknownSymbol(f"{self.exchange_id} has no {kind}market {' or '.join(candidates)}.")

    def lists(self, symbol: str) -> bool:
        """From the venue's markets (loaded once per process; ExchangeUnavailable if it cannot)."""
        try:
            self._market(symbol, perpetual=False)
        except UnknownSymbol:
            return False
        return True

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
            # Not aligned here: a venue with its own alignment (daily candles at 16:00 UTC)
            # answers from its first candle at or after ``since``.
            cursor = int(since.timestamp() * 1000)
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
        settlement = self._settlement(raw)
        if rate is None or settlement is None:
            raise MarketDataError(
                f"{self.exchange_id} sent no funding rate for {market['symbol']}."
            )
        return FundingRate(symbol=market["symbol"], rate=rate, funding_time=settlement)

    def _settlement(self, raw: dict[str, Any]) -> datetime | None:
        """The settlement a funding rate applies to. Some venues send ``fundingTimestamp: 0``
        (or none): then the next one after the rate's own time, on the venue's interval."""
        for field in ("fundingTimestamp", "nextFundingTimestamp"):
            value = raw.get(field)
            if isinstance(value, int | float) and value > 0:
                return _ms_to_datetime(value)
        at = raw.get("timestamp")
        if not isinstance(at, int | float) or at <= 0:
            return None
        interval = _interval_ms(raw.get("interval"))
        return _ms_to_datetime((int(at) // interval + 1) * interval)

    def fetch_funding_rate_history(
        self, *, symbol: str, since: datetime, limit: int = 1000
    ) -> list[FundingRate]:
        if not (getattr(self.exchange, "has", None) or {}).get("fetchFundingRateHistory"):
            raise NotSupported(f"{self.exchange_id} offers no funding rate history.")
        market = self._market(symbol, perpetual=True)
        cursor = int(since.timestamp() * 1000)
        found: dict[int, FundingRate] = {}
        while len(found) < limit:
            batch = self._call(
                self.exchange.fetch_funding_rate_history, market["symbol"], cursor, limit
            )
            fresh = [row for row in batch if (row.get("timestamp") or 0) >= cursor]
            if not fresh:
                break
            for row in fresh:
                rate = _amount(row.get("fundingRate"), PRICE_DECIMAL_PLACES)
                at = row.get("timestamp")
                if rate is not None and at:
                    found[int(at)] = FundingRate(market["symbol"], rate, _ms_to_datetime(at))
            cursor = int(max(row["timestamp"] for row in fresh)) + 1
        return [found[t] for t in sorted(found)][:limit]


def _interval_ms(value: Any) -> int:
    """ccxt's funding ``interval`` (``"8h"``, ``"1h"``) in ms; 8 hours when absent."""
    if isinstance(value, str) and value[:-1].isdigit() and value[-1] in "hm":
        return int(value[:-1]) * (3_600_000 if value[-1] == "h" else 60_000)
    return FUNDING_INTERVAL_MS
