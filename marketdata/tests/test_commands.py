"""Commands: sync_market_data, refresh_market_data, cache_stats, bench_market_cache."""

from __future__ import annotations

from datetime import datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from marketdata import cache as market_cache
from marketdata import services
from marketdata.models import Candle, FundingRate
from marketdata.tests.factories import store_candles

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_sync_fills_every_series_and_resumes(now: datetime) -> None:
    out = run("sync_market_data", "--symbols", "BTC/USDT,ETH/USDT", "--timeframes", "1h", "4h",
              "--since", "2026-02-28T00:00:00", "--page-size", "20")  # fmt: skip
    # 1h: 2026-02-28 00:00 .. 2026-03-02 11:00 = 60 candles; 4h: 00:00 .. 08:00 = 15.
    assert Candle.objects.filter(timeframe="1h").count() == 2 * 60
    assert Candle.objects.filter(timeframe="4h").count() == 2 * 15
    assert "BTC/USDT 1h: 60 fetched, 60 written (2026-02-28 00:00 .. 2026-03-02 11:00 UTC)" in out
    again = run("sync_market_data", "--symbols", "BTC/USDT", "--timeframes", "1h", "--since",
                "2026-02-28T00:00:00")  # fmt: skip
    assert "BTC/USDT 1h: 0 fetched, 0 written" in again
    assert "resumed after 2026-03-02 12:00" in again


@pytest.mark.django_db
def test_sync_relative_since_and_bad_arguments(now: datetime) -> None:
    out = run("sync_market_data", "--symbols", "SOL/USDT", "--timeframes", "1d", "--since", "7d")
    # 7 days before 12:34 rounds up to 2026-02-24 00:00; the last closed day opened 2026-03-01.
    assert "SOL/USDT 1d: 6 fetched, 6 written (2026-02-24 00:00 .. 2026-03-01 00:00 UTC)" in out
    funding = run("sync_market_data", "--symbols", "SOL/USDT", "--timeframes", "1d", "--since",
                  "7d", "--funding")  # fmt: skip
    assert "SOL/USDT funding rates: 21 written" in funding  # 3 settlements a day, 7 days
    assert FundingRate.objects.filter(symbol="SOL/USDT:USDT").count() == 21
    with pytest.raises(CommandError, match="--since 'yesterday'"):
        run("sync_market_data", "--symbols", "BTC/USDT", "--since", "yesterday")
    with pytest.raises(CommandError, match="--timeframes: 2h not known"):
        run("sync_market_data", "--symbols", "BTC/USDT", "--timeframes", "2h")
    with pytest.raises(CommandError, match="is not a symbol"):
        run("sync_market_data", "--symbols", "BTCUSDT", "--since", "1d")


@pytest.mark.django_db
def test_refresh_market_data(now: datetime) -> None:
    store_candles(limit=10)
    services.ohlcv_get(symbol="BTC/USDT", timeframe="1h", limit=10)
    assert "Refreshed 1 cache scope(s): synthetic:BTC/USDT:1h." in run(
        "refresh_market_data", "--symbol", "BTC/USDT", "--timeframe", "1h"
    )
    assert not services.ohlcv_get(symbol="BTC/USDT", timeframe="1h", limit=10).hit
    assert "8 cache scope(s)" in run("refresh_market_data", "--symbol", "BTC/USDT")
    assert "all cached market data and indicators" in run("refresh_market_data")
    with pytest.raises(CommandError, match="is not a symbol"):
        run("refresh_market_data", "--symbol", "nonsense")


@pytest.mark.django_db
def test_cache_stats_shows_hit_rates_keys_and_memory(now: datetime) -> None:
    store_candles(limit=50)
    market_cache.reset_stats()
    # OHLCV: 1 miss + 2 hits, plus the candle window its miss read (1 miss); the indicator
    # window: 1 miss + 2 hits (it reads its candles from PostgreSQL).
    for _ in range(3):
        services.ohlcv_get(symbol="BTC/USDT", timeframe="1h", limit=50)
        services.indicators_get(
            symbol="BTC/USDT",
            timeframe="1h",
            limit=50,
            specs=services.indicators.parse_specs("rsi"),
        )
    out = run("cache_stats", "--reset")
    lines = {line.split()[0]: line.split() for line in out.splitlines()}
    # namespace, hits, misses, hit rate, computed, keys, memory (value unit)
    assert lines["market"][1:6] == ["2", "2", "50.0%", "2", "2"]
    assert lines["indicators"][1:6] == ["2", "1", "66.7%", "1", "1"]
    assert lines["market"][7] in ("B", "kB")
    assert "Redis used memory" in out
    assert "Counters reset." in out
    assert market_cache.read_stats()["market"] == {"hit": 0, "miss": 0, "compute": 0}


@pytest.mark.django_db(transaction=True)
def test_bench_market_cache_reports_hit_rate_and_computations() -> None:
    """A small run of the load test (its threads need committed data: transaction=True)."""
    out = run("bench_market_cache", "--bots", "8", "--symbols", "2", "--timeframes", "1h",
              "--passes", "2", "--limit", "50", "--indicators", "rsi,macd")  # fmt: skip
    assert "8 bots in 1 process(es) x 2 symbols x 1 timeframes (1h), limit 50" in out
    # 8 bots x 2 passes x 2 series: 32 OHLCV reads + the 2 window reads of the OHLCV
    # computations; 64 indicator reads (2 each). Exact: --passes does not depend on timing.
    assert "market      reads         34" in out
    assert "indicators  reads         64" in out
    assert "hit rate" in out
    # 2 series x (window + OHLCV + 2 indicators) = 8 keys, each computed once despite 8 bots.
    assert "computations 8 for 8 keys: per key per value lifetime mean 1.00, max 1" in out


@pytest.mark.django_db(transaction=True)
def test_bench_across_processes_still_computes_each_key_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Real worker processes: only the Redis lock keeps them from computing a key twice."""
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    monkeypatch.setenv("DATABASE_URL", f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}")
    out = run("bench_market_cache", "--bots", "6", "--processes", "3", "--symbols", "2",
              "--timeframes", "1h", "--passes", "2", "--limit", "50", "--indicators", "rsi,macd")  # fmt: skip
    assert "6 bots in 3 process(es)" in out
    assert "computations 8 for 8 keys: per key per value lifetime mean 1.00, max 1" in out


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["down", "blackhole"])
def test_bench_without_redis_computes_each_key_once_per_process(mode: str) -> None:
    out = run("bench_market_cache", "--bots", "6", "--symbols", "2", "--timeframes", "1h",
              "--passes", "2", "--limit", "50", "--indicators", "rsi", "--redis", mode)  # fmt: skip
    assert f"Redis {mode}." in out
    # In-process single flight and process memory: 2 series x (window + OHLCV + rsi) = 6 keys.
    assert "computations 6 for 6 keys: per key per value lifetime mean 1.00, max 1" in out
