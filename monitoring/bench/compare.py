"""Side-by-side ratios of ``manage.py bench``, each measured in the same run on the benchmark
database: indexes present vs dropped, eager loading vs a naive lazy serializer, a page vs the
whole list, market data and indicators from a warm vs a cold cache.

Wherever the two sides can alternate request by request (everything but the indexes) they run
interleaved in blocks, so a neighbour's burst weighs on both alike. Indexes cannot alternate
cheaply (a rebuild takes seconds): they are measured present, dropped, then present again after
the rebuild, and the report shows both "present" runs so the noise between them can be read.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from trading.management.commands.bench_api import percentile

# The named indexes of PERFORMANCE.md's "Indexes" table: the ones the dashboard and the lists
# read through. Only those present are dropped (a later migration may rename or add some).
HOT_INDEXES = (
    "trade_owner_time_idx", "trade_bot_time_idx", "position_owner_opened_idx",
    "position_owner_open_idx", "position_bot_opened_idx", "position_bot_open_idx",
    "equity_bot_time_uniq", "account_owner_time_uniq", "bot_owner_created_idx",
)  # fmt: skip
LISTS = ("/api/trades/", "/api/positions/?status=open", "/api/bots/")


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 3),
        "p95": round(percentile(values, 95), 3),
        "p99": round(percentile(values, 99), 3),
    }


def _get(client: Client, url: str) -> Any:
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {response.status_code} {response.content[:200]!r}")
    return response


def timed(client: Client, url: str, n: int, before: Callable[[], Any] | None = None) -> list[float]:
    """``n`` timings of GET ``url`` in ms; ``before`` (untimed) runs ahead of each."""
    out = []
    for _ in range(n):
        if before is not None:
            before()
        started = time.perf_counter()
        _get(client, url)
        out.append((time.perf_counter() - started) * 1000)
    return out


def interleaved(
    client: Client, sides: dict[str, tuple[str, Callable[[], Any] | None]], n: int,
    block: int = 5,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Each side (url, untimed set-up before each request) in alternating blocks of ``block``
    requests, ``n`` in all per side; p50/p95/p99, queries of one request and body bytes."""
    timings: dict[str, list[float]] = {name: [] for name in sides}
    for url, before in sides.values():  # warm-up: imports, plans, the process's tokens
        if before is not None:
            before()
        _get(client, url)
    names = list(sides)
    for round_ in range((n + block - 1) // block):
        for name in names if round_ % 2 == 0 else reversed(names):
            url, before = sides[name]
            timings[name] += timed(client, url, min(block, n - len(timings[name])), before)
    out = {}
    for name, (url, before) in sides.items():
        if before is not None:
            before()
        with CaptureQueriesContext(connection) as queries:
            response = _get(client, url)
        out[name] = {"url": url, **stats(timings[name]), "queries": len(queries),
                     "bytes": len(response.content)}  # fmt: skip
    return out


def ratio(slow: dict[str, Any], fast: dict[str, Any], key: str = "p50") -> float:
    return round(slow[key] / fast[key], 2) if fast.get(key) else 0.0


# --- Indexes -------------------------------------------------------------------------------------


def _index_definitions() -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.indexname, i.tablename, i.indexdef, c.oid IS NOT NULL,
                   pg_get_constraintdef(c.oid)
            FROM pg_indexes i
            LEFT JOIN pg_constraint c ON c.conname = i.indexname AND c.contype IN ('u', 'p')
            WHERE i.schemaname = current_schema() AND i.indexname = ANY(%s)
            ORDER BY i.indexname
            """,
            [list(HOT_INDEXES)],
        )
        return [
            {"name": n, "table": t, "indexdef": d, "constraint": c, "constraintdef": cd}
            for n, t, d, c, cd in cursor.fetchall()
        ]


def _analyze(tables: set[str]) -> None:
    with connection.cursor() as cursor:
        for table in sorted(tables):
            cursor.execute(f'ANALYZE "{table}"')


def drop_indexes(found: list[dict[str, Any]]) -> None:
    with connection.cursor() as cursor:
        for index in found:
            if index["constraint"]:
                cursor.execute(f'ALTER TABLE "{index["table"]}" DROP CONSTRAINT "{index["name"]}"')
            else:
                cursor.execute(f'DROP INDEX "{index["name"]}"')
    _analyze({index["table"] for index in found})


def restore_indexes(found: list[dict[str, Any]]) -> None:
    with connection.cursor() as cursor:
        for index in found:
            cursor.execute(
                "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = %s",
                [index["name"]],
            )
            if cursor.fetchone():
                continue
            if index["constraint"]:
                cursor.execute(f'ALTER TABLE "{index["table"]}" ADD CONSTRAINT "{index["name"]}" '
                               f'{index["constraintdef"]}')  # fmt: skip
            else:
                cursor.execute(index["indexdef"])
    _analyze({index["table"] for index in found})


def indexes(client: Client, urls: list[str], n: int) -> dict[str, Any]:
    """Each URL with the hot indexes present, dropped (then ANALYZE), and present again."""
    found = _index_definitions()

    def measure() -> dict[str, dict[str, Any]]:
        rows = {}
        for url in urls:
            _get(client, url)
            with CaptureQueriesContext(connection) as queries:
                _get(client, url)
            count = len(queries)  # now: the next request's request_started resets the log
            rows[url] = {**stats(timed(client, url, n)), "queries": count}
        return rows

    with override_settings(DASHBOARD_CACHE_SECONDS=0):
        present = measure()
        drop_indexes(found)
        try:
            dropped = measure()
        finally:
            started = time.perf_counter()
            restore_indexes(found)
            rebuild_s = time.perf_counter() - started
        again = measure()
    rows = {}
    for url in urls:
        best = min(present[url]["p50"], again[url]["p50"])
        rows[url] = {
            "present": present[url], "dropped": dropped[url], "present_again": again[url],
            "ratio_p50": round(dropped[url]["p50"] / best, 2) if best else 0.0,
            "ratio_p95": round(
                dropped[url]["p95"] / min(present[url]["p95"], again[url]["p95"]), 2
            ),
        }  # fmt: skip
    return {"dropped": [index["name"] for index in found], "rebuild_seconds": round(rebuild_s, 1),
            "rows": rows}  # fmt: skip


# --- Eager vs lazy, page vs whole list -----------------------------------------------------------


def eager_lazy(client: Client, n: int) -> dict[str, Any]:
    """The open positions (100 per page): the product's endpoint, the naive ModelSerializer with
    the bot loaded eagerly, and the same serializer lazily (an N+1 on the bot's name)."""
    with override_settings(ROOT_URLCONF="tests.performance.urls", DASHBOARD_CACHE_SECONDS=0):
        sides = interleaved(client, {
            "product": ("/api/dashboard/positions", None),
            "naive_eager": ("/baseline/dashboard/positions-eager", None),
            "naive_lazy": ("/baseline/dashboard/positions", None),
        }, n)  # fmt: skip
    return {**sides, "lazy_vs_eager": ratio(sides["naive_lazy"], sides["naive_eager"]),
            "eager_vs_product": ratio(sides["naive_eager"], sides["product"])}  # fmt: skip


def page_vs_list(client: Client, n: int) -> dict[str, Any]:
    """One page of trades (100, the product's /api/trades/) against the whole history in the
    same row shape and renderer."""
    with override_settings(ROOT_URLCONF="tests.performance.urls", DASHBOARD_CACHE_SECONDS=0):
        sides = interleaved(client, {
            "page": ("/api/trades/?limit=100", None),
            "whole_list": ("/baseline/trades/all", None),
        }, n, block=2)  # fmt: skip
    return {**sides, "ratio": ratio(sides["whole_list"], sides["page"])}


# --- Market data and indicators -----------------------------------------------------------------

MARKET_SYMBOL, MARKET_TIMEFRAME = "BTC/USDT", "1h"
MARKET_URLS = {
    "ohlcv": f"/api/market/ohlcv?symbol={MARKET_SYMBOL}&timeframe={MARKET_TIMEFRAME}&limit=500",
    "indicators": f"/api/market/indicators?symbol={MARKET_SYMBOL}&timeframe={MARKET_TIMEFRAME}"
    "&names=sma:20,ema:20,rsi:14,macd:12:26:9&limit=500",
}


def store_market_history() -> int:
    """1,500 closed synthetic candles of one series (the 1,000-candle window plus the longest
    warm-up), so a cold read computes from PostgreSQL, as in production after a sync."""
    from marketdata import services
    from marketdata.clients.synthetic import SyntheticClient

    candles = SyntheticClient().fetch_ohlcv(symbol=MARKET_SYMBOL, timeframe=MARKET_TIMEFRAME,
                                            limit=1500)  # fmt: skip
    services.candles_ingest(exchange="synthetic", symbol=MARKET_SYMBOL,
                            timeframe=MARKET_TIMEFRAME, candles=candles)  # fmt: skip
    return len(candles)


def market_cache(client: Client, n: int) -> dict[str, Any]:
    """Each market URL warm (served from the cache) and cold (a new cache epoch before each
    request: every value unreachable, computed again), interleaved."""
    from marketdata.services import cache

    candles = store_market_history()
    out: dict[str, Any] = {"candles_stored": candles}
    for name, url in MARKET_URLS.items():
        sides = interleaved(client, {"warm": (url, None), "cold": (url, cache.invalidate_all)}, n)
        out[name] = {**sides, "ratio": ratio(sides["cold"], sides["warm"])}
    return out
