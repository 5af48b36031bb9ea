"""Typed market-data reads for the trading core and the bot engine: Decimals and numpy arrays,
not JSON bodies. Every read takes the instant it reads at (``as_of``), so one bot cycle (and later
a backtest) sees one consistent market.

- ``last_prices(symbols, *, as_of=None)`` -> ``{symbol: Decimal}``: the last traded price of each
  symbol, all in **one Redis round trip** (one MGET of the tickers and their versions; misses
  are fetched one by one, each computed once across processes). ``as_of`` within the ticker TTL
  of now (or None) reads the live ticker; an earlier ``as_of`` (a backtest) reads the close of the
  1-minute candle that closed last at or before it.
- ``closed_candles(symbols, *, timeframe, as_of, limit)`` -> ``{symbol: Candles}``: the newest
  ``limit`` (at most 1,000) candles **closed at or before** ``as_of``, as read-only float64 arrays
  (``time`` int64 open times, Unix seconds). Never the forming candle.
- ``indicator_values(symbols, *, timeframe, specs, as_of, limit=1)`` -> ``{symbol: {label:
  IndicatorSeries}}``: indicator values as of the newest candle close at or before ``as_of``,
  warm-up-correct (equal to a run over a long history, see ``marketdata.indicators``).

Designed to be called once per bot cycle for a bot's symbols and timeframe by many bots at once
(1,000 bots x 20 symbols sharing one cache): each call is one MGET for all its symbols; the
windows behind it (1,000 candles, 1,000 indicator values per series) are computed once per series
and candle close for every bot and process, decoded once per process and shared read-only by all
its bots; when the versions are unchanged the MGET does not even carry the windows again. Slicing
to ``as_of`` and ``limit`` is a view, not a copy. No database connection is held while waiting on
the cache or the exchange (a computation hands it back first).

Freshness: a window expires at the next candle close plus ``MARKET_DATA_CLOSE_LAG`` (3 s); a read
in those seconds after a close may not include the candle that just closed yet (exchanges publish
it a moment late), so schedule cycles at the close plus the lag. ``Candles.newest`` and
``IndicatorSeries.time`` say which candle a value belongs to.

An ``as_of`` older than what the cached window covers reads PostgreSQL directly (uncached):
correct, but a backtest should read its history in bulk rather than cycle by cycle. An ``as_of``
in the future is a ValueError. Errors are ``MarketDataError`` (``UnknownSymbol``,
``ExchangeUnavailable``, ``InvalidRequest``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import orjson
from django.conf import settings

from marketdata import services, timeframes
from marketdata.clients import MarketDataClient
from marketdata.indicators import IndicatorSpec
from marketdata.series import WINDOW, CandleWindow

FUTURE_TOLERANCE_SECONDS = 1.0  # clock skew between a caller's as_of and ours


@dataclass(frozen=True)
class Candles:
    """Closed candles of one series, oldest first (read-only numpy views)."""

    symbol: str
    timeframe: str
    time: np.ndarray  # int64 open times, Unix seconds
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    gaps: tuple[tuple[str, str], ...] = ()  # holes the exchange could not fill (first, last)

    def __len__(self) -> int:
        return len(self.time)

    @property
    def newest(self) -> datetime | None:
        """Open time of the newest candle, or None when there is none."""
        return datetime.fromtimestamp(int(self.time[-1]), tz=UTC) if len(self.time) else None


@dataclass(frozen=True)
class IndicatorSeries:
    """One indicator's values at the newest candle closes up to ``as_of`` (NaN: no value)."""

    label: str
    time: np.ndarray  # int64 open times of the candles the values belong to
    outputs: Mapping[str, np.ndarray]  # "values", or "macd"/"signal"/"histogram"

    def last(self, output: str = "values") -> float | None:
        """The newest value of ``output`` (None if there is none or it is NaN)."""
        values = self.outputs[output]
        if not len(values) or np.isnan(values[-1]):
            return None
        return float(values[-1])


def unlisted(symbols: Sequence[str], *, client: MarketDataClient | None = None) -> list[str]:
    """The symbols the venue has no market for (normalized), in the order given: what a bot's
    settings are checked with. Raises ExchangeUnavailable when the venue cannot say."""
    client = services._client(client)
    return [symbol for symbol in _symbols(symbols) if not client.lists(symbol)]


def _as_of(as_of: datetime | None) -> datetime:
    now = timeframes.utcnow()
    if as_of is None:
        return now
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC).")
    if (as_of - now).total_seconds() > FUTURE_TOLERANCE_SECONDS:
        raise ValueError(f"as_of {as_of.isoformat()} is in the future.")
    return min(as_of, now)


def _end(times: np.ndarray, timeframe: str, as_of: datetime) -> int:
    """How many of ``times`` (open times) are of candles closed at ``as_of``."""
    last_open = int(as_of.timestamp()) - timeframes.timeframe_seconds(timeframe)
    return int(np.searchsorted(times, last_open, side="right"))


def _symbols(symbols: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(services._symbol(s) for s in symbols))


def _covers(times: np.ndarray, end: int, limit: int, window_full: bool) -> bool:
    """The cached window answers the read: it has ``limit`` candles before ``end``, or it holds
    the series' whole history (shorter than the window)."""
    return end >= limit or not window_full


def closed_candles(
    symbols: Sequence[str],
    *,
    timeframe: str,
    as_of: datetime | None,
    limit: int = services.DEFAULT_LIMIT,
    client: MarketDataClient | None = None,
) -> dict[str, Candles]:
    """{symbol: the newest ``limit`` candles closed at or before ``as_of``}; one MGET."""
    client = services._client(client)
    timeframe, limit = services._timeframe(timeframe), services._limit(limit)
    at = _as_of(as_of)
    names = _symbols(symbols)
    result = {}
    for symbol, ((window, _), _) in zip(
        names, services.windows_get(names, timeframe, client), strict=True
    ):
        end = _end(window.time, timeframe, at)
        if not _covers(window.time, end, limit, len(window) >= WINDOW):
            window = _historical_window(client, symbol, timeframe, at)
            end = len(window)
        result[symbol] = _slice(window, end, limit)
    return result


def _slice(window: CandleWindow, end: int, limit: int) -> Candles:
    start = max(0, end - limit)
    first = services.series.iso(int(window.time[start])) if end > start else ""
    gaps = tuple((a, b) for a, b in window.gaps if b >= first and a <= _iso_end(window, end))
    return Candles(
        window.symbol, window.timeframe, window.time[start:end],
        *(column[start:end] for column in window.prices()), gaps=gaps,
    )  # fmt: skip


def _iso_end(window: CandleWindow, end: int) -> str:
    return services.series.iso(int(window.time[end - 1])) if end else ""


def _historical_window(
    client: MarketDataClient, symbol: str, timeframe: str, as_of: datetime
) -> CandleWindow:
    read = services.read_series(client, symbol, timeframe, WINDOW, until=as_of)
    rows = read.rows
    return CandleWindow(
        client.exchange_id, symbol, timeframe, services._seconds(rows),
        *(services._floats(rows, i) for i in range(1, 6)),
        rows=b"", row_ends=np.zeros(len(rows), dtype=np.int32),
        gaps=services._gap_texts(read.gaps), behind=read.behind,
    )  # fmt: skip


def indicator_values(
    symbols: Sequence[str],
    *,
    timeframe: str,
    specs: Sequence[IndicatorSpec | str],
    as_of: datetime | None,
    limit: int = 1,
    client: MarketDataClient | None = None,
) -> dict[str, dict[str, IndicatorSeries]]:
    """{symbol: {label: the ``limit`` newest values as of ``as_of``}}; one MGET for all."""
    client = services._client(client)
    timeframe, limit = services._timeframe(timeframe), services._limit(limit)
    parsed = [s if isinstance(s, IndicatorSpec) else services.indicator_specs(s)[0] for s in specs]
    parsed = list(dict.fromkeys(parsed))
    at = _as_of(as_of)
    names = _symbols(symbols)
    windows = services.indicator_windows_get(names, timeframe, parsed, client)
    result: dict[str, dict[str, IndicatorSeries]] = {}
    for i, symbol in enumerate(names):
        per_symbol = {}
        for j, spec in enumerate(parsed):
            window, _ = windows[i * len(parsed) + j]
            end = _end(window.time, timeframe, at)
            if not _covers(window.time, end, limit, len(window.time) >= WINDOW):
                read = services.read_series(
                    client, symbol, timeframe, WINDOW + spec.warmup, until=at
                )
                window = services.indicator_from(read, timeframe, spec)
                end = len(window.time)
            start = max(0, end - limit)
            per_symbol[spec.label] = IndicatorSeries(
                spec.label,
                window.time[start:end],
                {name: values[start:end] for name, values in window.outputs.items()},
            )
        result[symbol] = per_symbol
    return result


def _price(value: bytes, expires_at: float) -> Decimal:
    return Decimal(orjson.loads(value)["price"])


def last_prices(
    symbols: Sequence[str],
    *,
    as_of: datetime | None = None,
    client: MarketDataClient | None = None,
) -> dict[str, Decimal]:
    """{symbol: last traded price} for every symbol in ``symbols`` (duplicates read once).

    ``as_of`` is the instant the caller reads at (a bot cycle passes its round's time so every
    read of the round agrees); ``None`` means now. Within ``MARKET_DATA_CACHE_TTL`` of now the
    live (cached) ticker is the price; earlier, the close of the last 1-minute candle closed by
    then. Raises ``MarketDataError`` (``UnknownSymbol``, ``ExchangeUnavailable``) when a price
    cannot be had.
    """
    at = _as_of(as_of)
    names = list(dict.fromkeys(symbols))
    age = (timeframes.utcnow() - at).total_seconds()
    if age <= settings.MARKET_DATA_CACHE_TTL:
        results = services.tickers_get(
            [services._symbol(s) for s in names], client=client, decode_with=_price
        )
        return {s: price for s, (price, _) in zip(names, results, strict=True)}
    client = services._client(client)
    prices = {}
    for s in names:
        rows = services.read_series(client, services._symbol(s), "1m", 1, until=at).rows
        if not rows:
            raise services.InvalidRequest(f"no price for {s} at {at.isoformat()}", field="as_of")
        prices[s] = rows[-1][4].normalize()  # the stored exact close
    return prices
