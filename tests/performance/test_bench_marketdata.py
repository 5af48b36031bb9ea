"""Market data cache benchmarks: cached vs uncached OHLCV and indicator sets, and the typed price
read for 20 symbols (one MGET).

Not in a plain ``make test`` (marker ``exhaustive``; ``make exhaustive`` runs each once as a
plain test). To measure:

    make benchmarks PYTEST_ARGS="-k marketdata"

and compare the medians of each group (PERFORMANCE.md, "Market data cache"). Nothing here asserts
time; the assertions only check that each benchmark measured what its name says (hit or miss).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from marketdata import services
from marketdata.indicators import parse_specs
from marketdata.tests.factories import store_candles
from trading.tests.factories import make_user

# Benchmarks print numbers and cannot fail on speed: out of the default run (make benchmarks).
pytestmark = [
    pytest.mark.exhaustive,
    pytest.mark.django_db,
    pytest.mark.postgres,
    pytest.mark.redis,
]

SYMBOL, TIMEFRAME, LIMIT = "BTC/USDT", "1h", 500
SPECS = parse_specs("sma:20,ema:20,rsi:14,macd:12:26:9")
ROUNDS = 200


@pytest.fixture
def candles() -> None:
    # The window (1,000) and the indicator set's longest warm-up (MACD, 437): a miss reads
    # PostgreSQL only.
    store_candles(symbol=SYMBOL, timeframe=TIMEFRAME, limit=1500)


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.force_authenticate(make_user())
    return client


def run(benchmark: Any, call: Callable[[], Any], setup: Callable[[], Any] | None = None) -> Any:
    """ROUNDS timed calls; ``setup`` (not timed) runs before each one."""
    call()  # warm connections, imports and the process's version tokens
    if setup is None:
        return benchmark.pedantic(call, rounds=ROUNDS, warmup_rounds=5)
    return benchmark.pedantic(call, setup=setup, rounds=ROUNDS, warmup_rounds=5)


def ohlcv() -> services.Cached:
    return services.ohlcv_get(symbol=SYMBOL, timeframe=TIMEFRAME, limit=LIMIT)


def indicator_set() -> services.Cached:
    return services.indicators_get(symbol=SYMBOL, timeframe=TIMEFRAME, specs=SPECS, limit=LIMIT)


@pytest.mark.benchmark(group="marketdata-ohlcv-500")
def test_marketdata_ohlcv_uncached(benchmark: Any, candles: None) -> None:
    result = run(benchmark, ohlcv, setup=services.cache.invalidate_all)
    assert not result.hit


@pytest.mark.benchmark(group="marketdata-ohlcv-500")
def test_marketdata_ohlcv_cached(benchmark: Any, candles: None) -> None:
    assert run(benchmark, ohlcv).hit


@pytest.mark.benchmark(group="marketdata-api-ohlcv-500")
def test_marketdata_api_ohlcv_uncached(benchmark: Any, candles: None, api: APIClient) -> None:
    def request() -> Any:
        return api.get(
            "/api/market/ohlcv", {"symbol": SYMBOL, "timeframe": TIMEFRAME, "limit": LIMIT}
        )

    assert run(benchmark, request, setup=services.cache.invalidate_all)["X-Cache"] == "MISS"


@pytest.mark.benchmark(group="marketdata-api-ohlcv-500")
def test_marketdata_api_ohlcv_cached(benchmark: Any, candles: None, api: APIClient) -> None:
    def request() -> Any:
        return api.get(
            "/api/market/ohlcv", {"symbol": SYMBOL, "timeframe": TIMEFRAME, "limit": LIMIT}
        )

    assert run(benchmark, request)["X-Cache"] == "HIT"


@pytest.mark.benchmark(group="marketdata-indicators-500")
def test_marketdata_indicators_computed_cold(benchmark: Any, candles: None) -> None:
    result = run(benchmark, indicator_set, setup=services.cache.invalidate_all)
    assert not result.hit


@pytest.mark.benchmark(group="marketdata-indicators-500")
def test_marketdata_indicators_cached(benchmark: Any, candles: None) -> None:
    assert run(benchmark, indicator_set).hit


PRICE_SYMBOLS = [f"{base}/USDT" for base in ("BTC", "ETH", "SOL", "BNB", "XRP", "DOGE", "ADA",
                 "AVAX", "LINK", "DOT", "LTC", "TRX", "SHIB", "TON", "NEAR", "ATOM", "UNI", "ARB",
                 "OP", "MATIC")]  # fmt: skip


@pytest.mark.benchmark(group="marketdata-prices-20")
def test_marketdata_last_prices_20_symbols_cached(benchmark: Any) -> None:
    """``prices.last_prices`` for 20 symbols, warm: one MGET (epoch, 20 versions, 20 tickers)."""
    from marketdata import prices

    result = run(benchmark, lambda: prices.last_prices(PRICE_SYMBOLS))
    assert len(result) == 20
