"""Market data: ingestion (bulk upserts), cached reads, and invalidation.

Reads are read-through: Redis (``marketdata.cache``) first; on a miss, one caller per key
computes the value from PostgreSQL and stores it as rendered JSON bytes. When the stored candles
are behind the clock (or too few), the miss first fills them from the configured client (exchange
I/O, outside any transaction), so the API works offline with the synthetic provider and without
a prior ``sync_market_data``.

Invalidation, all by version (see ``marketdata.cache``):
- TTL: 5 minutes for market data, 15 for indicators (settings).
- Event: ``candles_ingest`` that inserts or changes a candle moves the series' version (after
  commit), which invalidates that symbol/timeframe's OHLCV and indicators; a trade moves the
  symbol's ticker version (``ticker_invalidate``, from ``trading.services``).
- Manual: ``market_data_refresh`` (command, admin action, staff API).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

import numpy as np
import orjson
from django.db import connection, transaction
from django.db.models import Max, Min

from marketdata import indicators, timeframes
from marketdata.cache import (
    INDICATORS,
    MARKET,
    CacheKey,
    MarketCache,
    scope_funding,
    scope_series,
    scope_ticker,
)
from marketdata.clients import current_exchange_id, get_client
from marketdata.clients.base import Candle as CandleData
from marketdata.clients.base import FundingRate as FundingRateData
from marketdata.clients.base import MarketDataClient, MarketDataError
from marketdata.models import Candle, FundingRate
from marketdata.symbols import normalize_symbol, perpetual_symbol
from marketdata.timeframes import Timeframe

MAX_LIMIT = 1000
DEFAULT_LIMIT = 200
INGEST_BATCH = 1000
OHLCV_COLUMNS = ("time", "open", "high", "low", "close", "volume")
_JSON = orjson.OPT_UTC_Z | orjson.OPT_SERIALIZE_NUMPY

cache = MarketCache()


class InvalidRequest(MarketDataError):
    """A parameter the caller got wrong; ``field`` names it."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class Cached(NamedTuple):
    body: bytes  # rendered JSON, served as is
    hit: bool  # every part came from the cache


# --- Validation ---------------------------------------------------------------------------------


def _symbol(value: object) -> str:
    try:
        return normalize_symbol(value)
    except ValueError as exc:
        raise InvalidRequest(f"symbol: {exc}", field="symbol") from None


def _timeframe(value: object) -> str:
    if value not in Timeframe.values:
        raise InvalidRequest(
            f"timeframe must be one of {', '.join(Timeframe.values)} (got {value!r}).",
            field="timeframe",
        )
    return str(value)


def _limit(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidRequest(
            f"limit must be a whole number between 1 and {MAX_LIMIT} (got {value!r}).",
            field="limit",
        )
    return value


def indicator_specs(names: str) -> list[indicators.IndicatorSpec]:
    """``"rsi,macd,sma:50"`` parsed, or InvalidRequest naming ``names``."""
    try:
        return indicators.parse_specs(names)
    except ValueError as exc:
        raise InvalidRequest(f"names: {exc}", field="names") from None


def _client(client: MarketDataClient | None) -> MarketDataClient:
    return client if client is not None else get_client()


def _text(value: Decimal | None) -> str | None:
    """An exact decimal string without the 12 stored decimal places' trailing zeros."""
    return None if value is None else f"{value.normalize():f}"


# --- Ingestion ----------------------------------------------------------------------------------


def candles_ingest(
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    candles: Iterable[CandleData],
    now: datetime | None = None,
) -> int:
    """Upsert closed candles in bulk; returns how many rows were inserted or changed.

    Candles still forming at ``now`` are skipped; a candle whose open time is not aligned to the
    timeframe is refused (ValueError). One INSERT ... ON CONFLICT DO UPDATE per 1,000 candles
    (unchanged rows are not rewritten). If any row changed, the series' cached OHLCV and
    indicators are invalidated once the transaction commits.
    """
    symbol = _symbol(symbol)
    timeframe = _timeframe(timeframe)
    step = timeframes.timeframe_delta(timeframe)
    now = now or timeframes.utcnow()
    rows = []
    for candle in candles:
        if not timeframes.is_aligned(candle.open_time, timeframe):
            raise ValueError(
                f"{exchange} {symbol} {timeframe}: candle at {candle.open_time.isoformat()} is not "
                f"aligned to the timeframe (UTC)."
            )
        if candle.open_time + step > now:
            continue  # still forming
        rows.append(candle)
    changed = 0
    for offset in range(0, len(rows), INGEST_BATCH):
        changed += _upsert_candles(
            exchange, symbol, timeframe, rows[offset : offset + INGEST_BATCH]
        )
    if changed:
        transaction.on_commit(
            lambda: series_invalidate(exchange=exchange, symbol=symbol, timeframe=timeframe)
        )
    return changed


def _upsert_candles(exchange: str, symbol: str, timeframe: str, rows: Sequence[CandleData]) -> int:
    table = Candle._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    params: list[object] = []
    for c in rows:
        params += [exchange, symbol, timeframe, adapt(c.open_time), c.open, c.high, c.low, c.close,
                   c.volume]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (exchange, symbol, timeframe, open_time, open, high, low, close,
                                 volume)
            VALUES {values}
            ON CONFLICT (exchange, symbol, timeframe, open_time) DO UPDATE SET
                open = excluded.open, high = excluded.high, low = excluded.low,
                close = excluded.close, volume = excluded.volume
            WHERE {table}.open <> excluded.open OR {table}.high <> excluded.high
               OR {table}.low <> excluded.low OR {table}.close <> excluded.close
               OR {table}.volume <> excluded.volume
            RETURNING 1
            """,
            params,
        )
        return len(cursor.fetchall())


def funding_rate_ingest(*, exchange: str, rate: FundingRateData) -> bool:
    """Upsert one funding rate (the estimate is updated until it settles); True if it changed."""
    table = FundingRate._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (exchange, symbol, funding_time, rate, updated_at)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (exchange, symbol, funding_time) DO UPDATE SET
                rate = excluded.rate, updated_at = excluded.updated_at
            WHERE {table}.rate <> excluded.rate
            RETURNING 1
            """,
            [
                exchange,
                rate.symbol,
                adapt(rate.funding_time),
                rate.rate,
                adapt(timeframes.utcnow()),
            ],
        )
        return bool(cursor.fetchall())


@dataclass
class SyncResult:
    symbol: str
    timeframe: str
    start: datetime
    end: datetime
    resumed_from: datetime | None
    fetched: int = 0
    written: int = 0


def candles_sync(
    *,
    symbol: str,
    timeframe: str,
    since: datetime,
    until: datetime | None = None,
    client: MarketDataClient | None = None,
    page_size: int = 1000,
    progress: Callable[[int], object] | None = None,
) -> SyncResult:
    """Fill the closed candles of ``[since, until]`` from the client, page by page.

    Resumable: candles are written in time order, so when the range's first candle is already
    stored, fetching restarts after the newest stored one. ``progress`` receives the number of
    candle slots each page covered (their sum is the range's size when the sync completes).
    """
    client = _client(client)
    symbol = _symbol(symbol)
    timeframe = _timeframe(timeframe)
    step = timeframes.timeframe_delta(timeframe)
    now = timeframes.utcnow()
    end = timeframes.last_closed_open_time(now, timeframe)
    if until is not None:
        end = min(end, timeframes.align(until, timeframe))
    start = timeframes.align_up(since, timeframe)
    result = SyncResult(symbol, timeframe, start, end, resumed_from=None)
    if start > end:
        return result
    stored = (
        Candle.objects.series(exchange=client.exchange_id, symbol=symbol, timeframe=timeframe)
        .filter(open_time__gte=start, open_time__lte=end)
        .aggregate(first=Min("open_time"), last=Max("open_time"))
    )  # one range scan of candle_series_time_uniq
    cursor = start
    if stored["first"] == start:
        cursor = stored["last"] + step
        result.resumed_from = cursor
        if progress:
            progress((cursor - start) // step)
    while cursor <= end:
        remaining = (end - cursor) // step + 1
        page = client.fetch_ohlcv(
            symbol=symbol, timeframe=timeframe, since=cursor, limit=min(page_size, remaining)
        )
        page = [c for c in page if cursor <= c.open_time <= end]
        if not page:
            break  # the exchange has nothing more in the range
        result.fetched += len(page)
        result.written += candles_ingest(
            exchange=client.exchange_id, symbol=symbol, timeframe=timeframe, candles=page, now=now
        )
        next_cursor = page[-1].open_time + step
        if progress:
            progress((next_cursor - cursor) // step)
        cursor = next_cursor
    return result


# --- Cached reads -------------------------------------------------------------------------------


def _series_key(namespace: str, exchange: str, symbol: str, timeframe: str, what: str) -> CacheKey:
    return CacheKey(
        namespace,
        f"{exchange}:{symbol}:{timeframe}:{what}",
        scope_series(exchange, symbol, timeframe),
    )


def ohlcv_get(
    *,
    symbol: str,
    timeframe: str,
    limit: int = DEFAULT_LIMIT,
    client: MarketDataClient | None = None,
) -> Cached:
    """The newest ``limit`` closed candles as JSON: ``{"candles": [[time, open, ...], ...]}``."""
    client = _client(client)
    symbol, timeframe, limit = _symbol(symbol), _timeframe(timeframe), _limit(limit)
    key = _series_key(MARKET, client.exchange_id, symbol, timeframe, f"ohlcv:limit={limit}")
    body, hit = cache.get_or_compute(key, lambda: _ohlcv_body(client, symbol, timeframe, limit))
    return Cached(body, hit)


def _latest_candles(exchange: str, symbol: str, timeframe: str, limit: int) -> list[tuple]:
    # uses candle_series_time_uniq (backward range scan, no sort)
    return list(
        Candle.objects.series(exchange=exchange, symbol=symbol, timeframe=timeframe)
        .newest_first()
        .values_list("open_time", "open", "high", "low", "close", "volume")[:limit]
    )


def _ohlcv_body(client: MarketDataClient, symbol: str, timeframe: str, limit: int) -> bytes:
    exchange = client.exchange_id
    rows = _latest_candles(exchange, symbol, timeframe, limit)
    expected = timeframes.last_closed_open_time(timeframes.utcnow(), timeframe)
    if len(rows) < limit or rows[0][0] < expected:
        step = timeframes.timeframe_delta(timeframe)
        since = expected - (limit - 1) * step if len(rows) < limit else rows[0][0] + step
        fetched = client.fetch_ohlcv(
            symbol=symbol, timeframe=timeframe, since=since, limit=(expected - since) // step + 1
        )
        if candles_ingest(exchange=exchange, symbol=symbol, timeframe=timeframe, candles=fetched):
            rows = _latest_candles(exchange, symbol, timeframe, limit)
    rows.reverse()
    return orjson.dumps(
        {
            "exchange": exchange,
            "symbol": symbol,
            "timeframe": timeframe,
            "columns": OHLCV_COLUMNS,
            "candles": [
                [t, _text(o), _text(h), _text(lo), _text(c), _text(v)] for t, o, h, lo, c, v in rows
            ],
        },
        option=_JSON,
    )


def ohlcv_closes(body: bytes) -> tuple[list[str], np.ndarray]:
    """Times and close prices (float64, for indicator maths only) of an ``ohlcv_get`` body."""
    candles = orjson.loads(body)["candles"]
    return [row[0] for row in candles], np.array([row[4] for row in candles], dtype=np.float64)


def indicators_get(
    *,
    symbol: str,
    timeframe: str,
    specs: Sequence[indicators.IndicatorSpec],
    limit: int = DEFAULT_LIMIT,
    client: MarketDataClient | None = None,
) -> Cached:
    """Indicators over the newest ``limit`` closed candles, each cached under its own key.

    Body: ``{"indicators": {"rsi:14": {"time": [...], "values": [...]}, "macd:12:26:9":
    {"time": [...], "macd": [...], "signal": [...], "histogram": [...]}}}``; warm-up values are
    ``null``. The keys are read in one round trip; the misses share one OHLCV read.
    """
    client = _client(client)
    symbol, timeframe, limit = _symbol(symbol), _timeframe(timeframe), _limit(limit)
    exchange = client.exchange_id
    closes: list[tuple[list[str], np.ndarray]] = []

    def series() -> tuple[list[str], np.ndarray]:
        if not closes:
            body = ohlcv_get(symbol=symbol, timeframe=timeframe, limit=limit, client=client).body
            closes.append(ohlcv_closes(body))
        return closes[0]

    def compute(spec: indicators.IndicatorSpec) -> Callable[[], bytes]:
        def run() -> bytes:
            times, close = series()
            return orjson.dumps({"time": times, **indicators.compute(spec, close)}, option=_JSON)

        return run

    items = [
        (_series_key(INDICATORS, exchange, symbol, timeframe, f"{spec.label}:limit={limit}"),
         compute(spec))
        for spec in specs
    ]  # fmt: skip
    results = cache.get_or_compute_many(items)
    parts = b",".join(
        orjson.dumps(spec.label) + b":" + body
        for spec, (body, _) in zip(specs, results, strict=True)
    )
    head = orjson.dumps(
        {"exchange": exchange, "symbol": symbol, "timeframe": timeframe, "limit": limit}
    )
    body = head[:-1] + b',"indicators":{' + parts + b"}}"
    return Cached(body, all(hit for _, hit in results))


def ticker_get(*, symbol: str, client: MarketDataClient | None = None) -> Cached:
    client = _client(client)
    symbol = _symbol(symbol)
    key = CacheKey(
        MARKET, f"{client.exchange_id}:{symbol}:ticker", scope_ticker(client.exchange_id, symbol)
    )

    def compute() -> bytes:
        ticker = client.fetch_ticker(symbol=symbol)
        return orjson.dumps(
            {
                "exchange": client.exchange_id,
                "symbol": ticker.symbol,
                "price": _text(ticker.price),
                "bid": _text(ticker.bid),
                "ask": _text(ticker.ask),
                "volume_24h": _text(ticker.volume_24h),
                "at": ticker.at,
            },
            option=_JSON,
        )

    return Cached(*cache.get_or_compute(key, compute))


def funding_rate_get(*, symbol: str, client: MarketDataClient | None = None) -> Cached:
    """The current funding rate of the symbol's perpetual (stored, then cached)."""
    client = _client(client)
    symbol = perpetual_symbol(_symbol(symbol))
    exchange = client.exchange_id
    key = CacheKey(MARKET, f"{exchange}:{symbol}:funding", scope_funding(exchange, symbol))

    def compute() -> bytes:
        rate = client.fetch_funding_rate(symbol=symbol)
        funding_rate_ingest(exchange=exchange, rate=rate)
        return orjson.dumps(
            {
                "exchange": exchange,
                "symbol": rate.symbol,
                "rate": _text(rate.rate),
                "funding_time": rate.funding_time,
            },
            option=_JSON,
        )

    return Cached(*cache.get_or_compute(key, compute))


# --- Invalidation -------------------------------------------------------------------------------


def series_invalidate(*, exchange: str, symbol: str, timeframe: str) -> None:
    """The series' cached OHLCV and indicators become unreachable (a new candle arrived)."""
    cache.invalidate([scope_series(exchange, symbol, timeframe)])


def ticker_invalidate(*, symbol: str, exchange: str | None = None) -> None:
    """After a trade: the next ticker read of ``symbol`` goes to the exchange."""
    cache.invalidate([scope_ticker(exchange or current_exchange_id(), _symbol(symbol))])


@dataclass
class RefreshResult:
    everything: bool
    scopes: list[str]

    def describe(self) -> str:
        if self.everything:
            return "all cached market data and indicators"
        return f"{len(self.scopes)} cache scope(s): {', '.join(self.scopes[:10])}" + (
            ", ..." if len(self.scopes) > 10 else ""
        )


def market_data_refresh(
    *, symbol: str | None = None, timeframe: str | None = None, exchange: str | None = None
) -> RefreshResult:
    """Manual invalidation. Nothing given: everything (a new epoch). ``symbol``: its series in
    every timeframe (or the one given), plus its ticker and funding rate when no timeframe is
    given. ``timeframe`` alone: that timeframe of every symbol with stored candles."""
    exchange = exchange or current_exchange_id()
    if symbol is None and timeframe is None:
        cache.invalidate_all()
        return RefreshResult(everything=True, scopes=[])
    frames = [_timeframe(timeframe)] if timeframe is not None else list(Timeframe.values)
    if symbol is not None:
        symbols = [_symbol(symbol)]
    else:
        symbols = list(
            Candle.objects.filter(exchange=exchange, timeframe=frames[0])
            .values_list("symbol", flat=True)
            .distinct()
            .order_by("symbol")
        )
    scopes = [scope_series(exchange, s, tf) for s in symbols for tf in frames]
    if symbol is not None and timeframe is None:
        scopes += [
            scope_ticker(exchange, symbols[0]),
            scope_funding(exchange, perpetual_symbol(symbols[0])),
        ]
    cache.invalidate(scopes)
    return RefreshResult(everything=False, scopes=scopes)
