"""Market data: ingestion (bulk upserts), cached reads, and invalidation.

Reads are read-through: Redis (``marketdata.cache``) first; on a miss, one caller per key
computes the value and stores it. A computation reads the stored candles (one query); when they
are behind the clock, too few, or have holes, it fills them from the configured client first
(exchange I/O outside any transaction, with the database connection handed back meanwhile), so
the API works offline with the synthetic provider and without a prior ``sync_market_data``.

What is cached per series (``exchange:symbol:timeframe``), none of it keyed by ``limit`` but the
rendered OHLCV bodies:
- the **candle window**: the newest 1,000 closed candles (``marketdata.series.CandleWindow``);
- each **indicator window**: an indicator's newest 1,000 values, computed on those candles plus
  the warm-up it needs (``IndicatorSpec.warmup``), so every value equals a long-history run;
- the rendered ``GET /api/market/ohlcv`` body per ``limit`` (a slice of the window).

Freshness: every series value expires at the next candle close plus ``MARKET_DATA_CLOSE_LAG``,
capped by its TTL (5 min market data, 15 min indicators); a window that still lacks the newest
closed candle (the exchange publishes late) expires after the lag, so it is retried soon.

Invalidation, all by version (see ``marketdata.cache``):
- Event: ``candles_ingest`` that inserts or changes a candle moves the series' version (after
  commit), which invalidates that symbol/timeframe's OHLCV and indicators; a trade moves the
  symbol's ticker version (``ticker_invalidate``, from ``trading.services``).
- Manual: ``market_data_refresh`` (command, admin action, staff API).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np
import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min

from marketdata import indicators, quota, series, timeframes
from marketdata.cache import (
    INDICATORS,
    MARKET,
    CacheKey,
    Computed,
    MarketCache,
    StoreUnavailable,
    release_db_connection,
    scope_funding,
    scope_series,
    scope_ticker,
    series_expiry,
)
from marketdata.clients import current_exchange_id, get_client
from marketdata.clients import deadline as exchange_deadline
from marketdata.clients.base import Candle as CandleData
from marketdata.clients.base import FundingRate as FundingRateData
from marketdata.clients.base import MarketDataClient, MarketDataError
from marketdata.models import Candle, FundingRate
from marketdata.series import WINDOW, CandleWindow, IndicatorWindow
from marketdata.timeframes import Timeframe
from zerobot.lib.symbols import normalize_symbol, perpetual_symbol

logger = logging.getLogger(__name__)

MAX_LIMIT = WINDOW
DEFAULT_LIMIT = 200
INGEST_BATCH = 1000
MAX_GAP_REPAIRS = 5  # holes repaired per computation (newest first); the rest are reported
HOLE_MEMORY_SECONDS = 86_400  # a hole the exchange could not fill is not asked for again for a day
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


def clean_candles(
    candles: Iterable[CandleData], *, timeframe: str, now: datetime, label: str = ""
) -> list[CandleData]:
    """Closed candles in time order, one per open time, all in one alignment.

    Exchange quirks become data: a repeated open time keeps its last candle; the series'
    alignment is the newest candle's (a venue whose daily candles open at 16:00 UTC keeps that
    alignment) and a candle in another one is dropped with a warning; candles still forming at
    ``now`` are dropped.
    """
    step = timeframes.timeframe_delta(timeframe)
    unique = {c.open_time: c for c in candles if c.open_time + step <= now}
    if not unique:
        return []
    newest = max(unique)
    offset = timeframes.offset_of(newest, timeframe)
    kept = [unique[t] for t in sorted(unique) if timeframes.offset_of(t, timeframe) == offset]
    if len(kept) < len(unique):
        logger.warning("%s %s: dropped %d candle(s) not aligned like the newest (offset %d s)",
                       label, timeframe, len(unique) - len(kept), offset)  # fmt: skip
    return kept


def candles_ingest(
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    candles: Iterable[CandleData],
    now: datetime | None = None,
    appends_after: datetime | None = None,
) -> int:
    """Upsert closed candles in bulk; returns how many rows were inserted or changed.

    The candles are cleaned first (``clean_candles``: duplicates, alignment, still forming).
    One INSERT ... ON CONFLICT DO UPDATE per 1,000 candles (unchanged rows are not rewritten).
    The series' cached OHLCV and indicators are invalidated (after commit) when a stored candle
    among the newest ``WINDOW`` slots changed or a hole there was filled. Not for:
    - new candles after ``appends_after`` (the caller's newest stored candle): no cached value
      contains them, and values expire by the candle clock when they close, so invalidating
      would only make the other values of the series, computed from the same new data a moment
      ago, be computed again;
    - older history (a backfill): it changes no window, and indicators only beyond their
      convergence tolerance (recomputed at the next candle close anyway).
    """
    symbol = _symbol(symbol)
    timeframe = _timeframe(timeframe)
    now = now or timeframes.utcnow()
    rows = clean_candles(candles, timeframe=timeframe, now=now, label=f"{exchange} {symbol}")
    changed: list[datetime] = []
    for offset in range(0, len(rows), INGEST_BATCH):
        changed += _upsert_candles(
            exchange, symbol, timeframe, rows[offset : offset + INGEST_BATCH]
        )
    horizon = now - WINDOW * timeframes.timeframe_delta(timeframe)
    if any(t >= horizon and (appends_after is None or t <= appends_after) for t in changed):
        transaction.on_commit(
            lambda: series_invalidate(exchange=exchange, symbol=symbol, timeframe=timeframe)
        )
    return len(changed)


def _upsert_candles(
    exchange: str, symbol: str, timeframe: str, rows: Sequence[CandleData]
) -> list[datetime]:
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
            RETURNING open_time
            """,
            params,
        )
        return [row[0] for row in cursor.fetchall()]


def funding_rates_ingest(*, exchange: str, rates: Iterable[FundingRateData]) -> int:
    """Upsert funding rates, one row per symbol and settlement (the estimate of the coming
    settlement is updated until it settles); returns how many rows were inserted or changed."""
    unique = {(r.symbol, r.funding_time): r for r in rates}
    if not unique:
        return 0
    table = FundingRate._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    stamp = adapt(timeframes.utcnow())
    params: list[object] = []
    for r in unique.values():
        params += [exchange, r.symbol, adapt(r.funding_time), r.rate, stamp]
    values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(unique))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (exchange, symbol, funding_time, rate, updated_at)
            VALUES {values}
            ON CONFLICT (exchange, symbol, funding_time) DO UPDATE SET
                rate = excluded.rate, updated_at = excluded.updated_at
            WHERE {table}.rate <> excluded.rate
            RETURNING 1
            """,
            params,
        )
        return len(cursor.fetchall())


def funding_rate_ingest(*, exchange: str, rate: FundingRateData) -> bool:
    """Upsert one funding rate; True if it changed."""
    return bool(funding_rates_ingest(exchange=exchange, rates=[rate]))


def funding_history_sync(
    *, symbol: str, since: datetime, client: MarketDataClient | None = None
) -> int:
    """Store the settled funding rates of ``symbol``'s perpetual since ``since`` (ccxt
    ``fetch_funding_rate_history``, paged); returns the rows inserted or changed."""
    client = _client(client)
    symbol = perpetual_symbol(_symbol(symbol))
    rates = client.fetch_funding_rate_history(symbol=symbol, since=since)
    return funding_rates_ingest(exchange=client.exchange_id, rates=rates)


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
    stored, fetching restarts after the newest stored one (holes further back are repaired by
    the reads that meet them). ``progress`` receives the number of candle slots each page
    covered (their sum is the range's size when the sync completes).
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
        .filter(open_time__gte=start, open_time__lte=end + step)
        .aggregate(first=Min("open_time"), last=Max("open_time"))
    )  # one range scan of candle_series_time_uniq
    release_db_connection()
    cursor = start
    if stored["first"] is not None and stored["first"] - start < step:
        cursor = stored["last"] + step
        result.resumed_from = cursor
        if progress:
            progress(min((cursor - start) // step, (end - start) // step + 1))
    while cursor <= end:
        remaining = (end - cursor) // step + 1
        page = client.fetch_ohlcv(
            symbol=symbol, timeframe=timeframe, since=cursor, limit=min(page_size, remaining)
        )
        page = [c for c in page if cursor <= c.open_time <= end + step]
        if not page:
            break  # the exchange has nothing more in the range
        result.fetched += len({c.open_time for c in page})
        result.written += candles_ingest(
            exchange=client.exchange_id, symbol=symbol, timeframe=timeframe, candles=page,
            now=now, appends_after=stored["last"] if result.resumed_from else None,
        )  # fmt: skip
        release_db_connection()
        next_cursor = max(c.open_time for c in page) + step
        if progress:
            progress(min((next_cursor - cursor) // step, remaining))
        cursor = next_cursor
    return result


# --- Reading a series: stored candles, filled and repaired from the exchange --------------------


@dataclass
class SeriesRead:
    """The newest closed candles of a series as stored (after any fill and repair)."""

    rows: list[tuple]  # (open_time, open, high, low, close, volume), oldest first
    wanted: int
    gaps: list[tuple[datetime, datetime]] = field(default_factory=list)  # first/last missing
    behind: bool = False  # the newest closed candle is not there yet
    queries: int = 0

    @property
    def short(self) -> bool:
        return len(self.rows) < self.wanted


def _stored_rows(
    exchange: str, symbol: str, timeframe: str, count: int, until: datetime | None = None
) -> list[tuple]:
    # uses candle_series_time_uniq (backward range scan, no sort)
    queryset = Candle.objects.series(exchange=exchange, symbol=symbol, timeframe=timeframe)
    if until is not None:
        queryset = queryset.filter(open_time__lte=until)
    rows = list(
        queryset.newest_first().values_list("open_time", "open", "high", "low", "close", "volume")[
            :count
        ]
    )
    rows.reverse()
    return rows


def find_gaps(times: Sequence[datetime], timeframe: str) -> list[tuple[datetime, datetime]]:
    """Missing open times between consecutive candles: ``[(first missing, last missing)]``."""
    step = timeframes.timeframe_delta(timeframe)
    return [(a + step, b - step) for a, b in pairwise(times) if b - a > step]


def _hole_key(exchange: str, symbol: str, timeframe: str, gap: tuple[datetime, datetime]) -> str:
    return f"md:hole:{exchange}:{symbol}:{timeframe}:{int(gap[0].timestamp())}"


def read_series(
    client: MarketDataClient,
    symbol: str,
    timeframe: str,
    count: int,
    *,
    now: datetime | None = None,
    until: datetime | None = None,
) -> SeriesRead:
    """``_read_series`` with every exchange call of it sharing one ``EXCHANGE_DEADLINE_MS``."""
    with exchange_deadline(settings.EXCHANGE_DEADLINE_MS / 1000):
        return _read_series(client, symbol, timeframe, count, now=now, until=until)


def _read_series(
    client: MarketDataClient,
    symbol: str,
    timeframe: str,
    count: int,
    *,
    now: datetime | None = None,
    until: datetime | None = None,
) -> SeriesRead:
    """The newest ``count`` closed candles (closed by ``until`` if given), filled from the
    exchange when the stored ones are behind or too few, holes repaired when it has them.

    One query when the database is complete; a second one after a fill. The connection is
    handed back before each exchange call.
    """
    exchange = client.exchange_id
    now = now or timeframes.utcnow()
    step = timeframes.timeframe_delta(timeframe)
    horizon = now if until is None else min(now, until)
    rows = _stored_rows(exchange, symbol, timeframe, count, _last_open(horizon, timeframe))
    result = SeriesRead(rows, count, queries=1)
    offset = timeframes.offset_of(rows[-1][0], timeframe) if rows else 0
    expected = timeframes.last_closed_open_time(horizon, timeframe, offset)
    fetched: list[CandleData] = []
    if not rows or rows[-1][0] < expected or len(rows) < count:
        release_db_connection()
        if not rows and until is None:
            # Offset unknown yet: the newest candles (the forming one is dropped on ingest).
            fetched = client.fetch_ohlcv(symbol=symbol, timeframe=timeframe, limit=count + 1)
        else:
            since = expected - (count - 1) * step if len(rows) < count else rows[-1][0] + step
            fetched = client.fetch_ohlcv(
                symbol=symbol, timeframe=timeframe, since=since,
                limit=(expected - since) // step + 1,
            )  # fmt: skip
    if not rows and fetched:
        quota.charge_new_series(exchange, symbol, timeframe)  # a new series: the user's quota
    gaps = find_gaps([r[0] for r in rows], timeframe)
    repairs = _unchecked_gaps(exchange, symbol, timeframe, gaps[-MAX_GAP_REPAIRS:])
    for gap in repairs:
        release_db_connection()
        got = client.fetch_ohlcv(
            symbol=symbol, timeframe=timeframe, since=gap[0], limit=(gap[1] - gap[0]) // step + 1
        )
        got = [c for c in got if gap[0] <= c.open_time <= gap[1]]
        if not got:
            try:  # not asked for again for a day (through the cache's store: breaker, logging)
                cache.store.set_many({_hole_key(exchange, symbol, timeframe, gap): b"1"},
                                     HOLE_MEMORY_SECONDS * 1000)  # fmt: skip
            except StoreUnavailable:
                pass
        fetched += got
    newest_stored = rows[-1][0] if rows else datetime.min.replace(tzinfo=UTC)
    if fetched:
        candles_ingest(
            exchange=exchange, symbol=symbol, timeframe=timeframe, candles=fetched, now=now,
            appends_after=newest_stored if until is None else None,
        )  # fmt: skip
        # Read again even when the ingest changed nothing: another runner (thread or process)
        # that read the same short series stored these candles first, and ``rows`` (read
        # before the fetch) lacks them; kept, they would be cached as an empty or short window.
        result.rows = _stored_rows(
            exchange, symbol, timeframe, count, _last_open(horizon, timeframe)
        )
        result.queries += 1
    rows = result.rows
    if rows:
        offset = timeframes.offset_of(rows[-1][0], timeframe)
        # A series whose venue changed alignment: serve the newest alignment only.
        rows = [r for r in rows if timeframes.offset_of(r[0], timeframe) == offset]
        result.rows = rows
        expected = timeframes.last_closed_open_time(horizon, timeframe, offset)
        result.behind = rows[-1][0] < expected
    result.gaps = find_gaps([r[0] for r in rows], timeframe)
    return result


def _last_open(horizon: datetime, timeframe: str) -> datetime:
    """The latest open time a candle closed by ``horizon`` can have, whatever its alignment."""
    return horizon - timeframes.timeframe_delta(timeframe)


def _unchecked_gaps(
    exchange: str, symbol: str, timeframe: str, gaps: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    if not gaps:
        return []
    keys = [_hole_key(exchange, symbol, timeframe, gap) for gap in gaps]
    try:
        known = cache.store.mget(keys)
    except StoreUnavailable:
        known = [None] * len(keys)
    return [gap for gap, seen in zip(gaps, known, strict=True) if seen is None]


def _floats(rows: list[tuple], column: int) -> np.ndarray:
    return np.array([float(r[column]) for r in rows], dtype=np.float64)


def _seconds(rows: list[tuple]) -> np.ndarray:
    return np.array([int(r[0].timestamp()) for r in rows], dtype=np.int64)


def _gap_texts(gaps: Iterable[tuple[datetime, datetime]]) -> list[list[str]]:
    return [[series.iso(int(a.timestamp())), series.iso(int(b.timestamp()))] for a, b in gaps]


# --- Cached reads -------------------------------------------------------------------------------


def _series_key(namespace: str, exchange: str, symbol: str, timeframe: str, what: str) -> CacheKey:
    return CacheKey(
        namespace,
        f"{exchange}:{symbol}:{timeframe}:{what}",
        scope_series(exchange, symbol, timeframe),
    )


def window_key(exchange: str, symbol: str, timeframe: str) -> CacheKey:
    return _series_key(MARKET, exchange, symbol, timeframe, "candles")


def indicator_key(exchange: str, symbol: str, timeframe: str, label: str) -> CacheKey:
    return _series_key(INDICATORS, exchange, symbol, timeframe, label)


def _expiry(timeframe: str, namespace: str, read: SeriesRead) -> float:
    """Series values: next close + lag (capped by TTL); a behind one is retried after the lag."""
    offset = timeframes.offset_of(read.rows[-1][0], timeframe) if read.rows else 0
    behind = read.behind
    expiry = series_expiry(timeframe, namespace, offset=offset)
    if behind:
        expiry = min(expiry, cache_now() + max(settings.MARKET_DATA_CLOSE_LAG, 1.0))
    return expiry


def cache_now() -> float:
    return timeframes.utcnow().timestamp()


def compute_window(client: MarketDataClient, symbol: str, timeframe: str) -> Computed:
    read = read_series(client, symbol, timeframe, WINDOW)
    rows = read.rows
    rendered, ends = series.render_rows(
        [[r[0], _text(r[1]), _text(r[2]), _text(r[3]), _text(r[4]), _text(r[5])] for r in rows]
    )
    window = CandleWindow(
        client.exchange_id, symbol, timeframe, _seconds(rows),
        *(_floats(rows, i) for i in range(1, 6)),
        rows=rendered, row_ends=ends, gaps=_gap_texts(read.gaps), behind=read.behind,
    )  # fmt: skip
    return Computed(window.encode(), _expiry(timeframe, MARKET, read))


def windows_get(
    symbols: Sequence[str], timeframe: str, client: MarketDataClient
) -> list[tuple[tuple[CandleWindow, float], bool]]:
    """The candle windows of ``symbols`` (one MGET), decoded once per process: ``((window,
    expires_at), hit)`` each."""
    items = [
        (window_key(client.exchange_id, s, timeframe),
         lambda s=s: compute_window(client, s, timeframe))
        for s in symbols
    ]  # fmt: skip
    return cache.get_or_compute_many(items, decode_with=_decode_window)


def _decode_window(value: bytes, expires_at: float) -> tuple[CandleWindow, float]:
    return CandleWindow.decode(value), expires_at


def ohlcv_get(
    *,
    symbol: str,
    timeframe: str,
    limit: int = DEFAULT_LIMIT,
    client: MarketDataClient | None = None,
) -> Cached:
    """The newest ``limit`` closed candles as JSON: ``{"candles": [[time, open, ...], ...]}``
    (plus ``"gaps": [[first missing, last missing], ...]`` when the exchange has holes there)."""
    client = _client(client)
    symbol, timeframe, limit = _symbol(symbol), _timeframe(timeframe), _limit(limit)
    key = _series_key(MARKET, client.exchange_id, symbol, timeframe, f"ohlcv:limit={limit}")

    def compute() -> Computed:
        [((window, expires_at), _)] = windows_get([symbol], timeframe, client)
        head = {"exchange": client.exchange_id, "symbol": symbol, "timeframe": timeframe,
                "columns": OHLCV_COLUMNS}  # fmt: skip
        first = int(window.time[max(0, len(window) - limit)]) if len(window) else 0
        gaps = window.gaps_since(first)
        if gaps:
            head["gaps"] = gaps
        body = orjson.dumps(head)[:-1] + b',"candles":[' + window.rows_json(limit) + b"]}"
        return Computed(body, expires_at)

    body, hit = cache.get_or_compute(key, compute)
    return Cached(body, hit)


def indicator_from(
    read: SeriesRead, timeframe: str, spec: indicators.IndicatorSpec, label: str = ""
) -> IndicatorWindow:
    """An indicator's newest ``WINDOW`` values from a series read of at least
    ``WINDOW + spec.warmup`` candles (the newest ones are used), each equal to a long-history
    run. Computed only on the contiguous run after the newest hole: values before a hole the
    exchange could not fill, and values whose warm-up the history cut short, are NaN."""
    needed = WINDOW + spec.warmup
    rows = read.rows[-needed:]
    gaps = find_gaps([r[0] for r in rows], timeframe)
    start = 0
    if gaps:
        newest_gap_end = gaps[-1][1]
        start = next(i for i, r in enumerate(rows) if r[0] > newest_gap_end)
    keep = min(WINDOW, len(rows))
    outputs = indicators.compute(spec, _floats(rows[start:], 4))
    full = {}
    for name, values in outputs.items():
        padded = np.full(len(rows), np.nan)
        padded[start:] = values
        padded[start : min(start + spec.warmup, len(rows))] = np.nan  # not converged yet
        full[name] = padded[len(rows) - keep :]
    times = _seconds(rows)[len(rows) - keep :]
    return IndicatorWindow(
        spec.label, times, full, series.render_times(times),
        gaps=_gap_texts(gaps), available=len(rows), needed=needed,
    )  # fmt: skip


def indicator_windows_get(
    symbols: Sequence[str],
    timeframe: str,
    specs: Sequence[indicators.IndicatorSpec],
    client: MarketDataClient,
) -> list[tuple[IndicatorWindow, bool]]:
    """Indicator windows of every (symbol, spec), one MGET, decoded once per process. The
    misses of a symbol share one series read (the longest warm-up among its specs)."""
    reads: dict[str, SeriesRead] = {}

    def compute(symbol: str, spec: indicators.IndicatorSpec) -> Callable[[], Computed]:
        def run() -> Computed:
            if symbol not in reads:
                longest = WINDOW + max(s.warmup for s in specs)
                reads[symbol] = read_series(client, symbol, timeframe, longest)
            read = reads[symbol]
            window = indicator_from(read, timeframe, spec)
            return Computed(window.encode(), _expiry(timeframe, INDICATORS, read))

        return run

    items = [
        (indicator_key(client.exchange_id, s, timeframe, spec.label), compute(s, spec))
        for s in symbols
        for spec in specs
    ]
    return cache.get_or_compute_many(items, decode_with=_decode_indicator)


def _decode_indicator(value: bytes, expires_at: float) -> IndicatorWindow:
    return IndicatorWindow.decode(value)


def indicators_get(
    *,
    symbol: str,
    timeframe: str,
    specs: Sequence[indicators.IndicatorSpec],
    limit: int = DEFAULT_LIMIT,
    client: MarketDataClient | None = None,
) -> Cached:
    """Indicators over the newest ``limit`` closed candles, warm-up-correct at any limit.

    Body: ``{"indicators": {"rsi:14": {"time": [...], "values": [...]}, "macd:12:26:9":
    {"time": [...], "macd": [...], "signal": [...], "histogram": [...]}}}``. Values are ``null``
    only where the exchange's history is too short or broken by a hole; then ``"history"``
    says so: ``{"available": candles, "needed": candles, "gaps": [[first, last missing]]}``.
    Each indicator is one cached window per series (not per limit), read in one round trip.
    """
    client = _client(client)
    symbol, timeframe, limit = _symbol(symbol), _timeframe(timeframe), _limit(limit)
    results = indicator_windows_get([symbol], timeframe, specs, client)
    parts = []
    history: dict[str, Any] = {}
    for spec, (window, _) in zip(specs, results, strict=True):
        parts.append(orjson.dumps(spec.label) + b":" + window.json(limit))
        if window.complete_for(limit):
            continue
        first = int(window.time[max(0, len(window.time) - limit)]) if len(window.time) else 0
        gaps = [g for g in window.gaps if g[1] >= series.iso(first)]
        nulls = any(np.isnan(v[max(0, len(v) - limit) :]).any() for v in window.outputs.values())
        if gaps or nulls or len(window.time) < limit:
            history[spec.label] = {"available": window.available, "needed": window.needed,
                                   "gaps": gaps}  # fmt: skip
    head: dict[str, Any] = {"exchange": client.exchange_id, "symbol": symbol,
                            "timeframe": timeframe, "limit": limit}  # fmt: skip
    if history:
        head["history"] = history
    body = orjson.dumps(head)[:-1] + b',"indicators":{' + b",".join(parts) + b"}}"
    return Cached(body, all(hit for _, hit in results))


def _ticker_key(exchange: str, symbol: str) -> CacheKey:
    return CacheKey(MARKET, f"{exchange}:{symbol}:ticker", scope_ticker(exchange, symbol))


def _ticker_compute(client: MarketDataClient, symbol: str) -> Callable[[], Computed]:
    def compute() -> Computed:
        release_db_connection()
        ticker = client.fetch_ticker(symbol=symbol)
        body = orjson.dumps(
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
        return Computed(body, cache_now() + settings.MARKET_DATA_CACHE_TTL)

    return compute


def ticker_get(*, symbol: str, client: MarketDataClient | None = None) -> Cached:
    client = _client(client)
    symbol = _symbol(symbol)
    return Cached(
        *cache.get_or_compute(
            _ticker_key(client.exchange_id, symbol), _ticker_compute(client, symbol)
        )
    )


def tickers_get(
    symbols: Sequence[str], *, client: MarketDataClient | None = None, decode_with: Any = None
) -> list[tuple[Any, bool]]:
    """Tickers of many symbols in one MGET (misses fetched one by one, each single-flighted)."""
    client = _client(client)
    items = [(_ticker_key(client.exchange_id, s), _ticker_compute(client, s)) for s in symbols]
    return cache.get_or_compute_many(items, decode_with=decode_with)


def funding_rate_get(*, symbol: str, client: MarketDataClient | None = None) -> Cached:
    """The current funding rate of the symbol's perpetual (stored, then cached)."""
    client = _client(client)
    symbol = perpetual_symbol(_symbol(symbol))
    exchange = client.exchange_id
    key = CacheKey(MARKET, f"{exchange}:{symbol}:funding", scope_funding(exchange, symbol))

    def compute() -> Computed:
        release_db_connection()
        rate = client.fetch_funding_rate(symbol=symbol)
        funding_rate_ingest(exchange=exchange, rate=rate)
        body = orjson.dumps(
            {
                "exchange": exchange,
                "symbol": rate.symbol,
                "rate": _text(rate.rate),
                "funding_time": rate.funding_time,
            },
            option=_JSON,
        )
        return Computed(body, cache_now() + settings.MARKET_DATA_CACHE_TTL)

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
