"""Typed reads (``marketdata.prices``): Decimals and numpy arrays, one Redis round trip, as_of."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pytest
import redis

from marketdata import prices, services, timeframes
from marketdata.clients.ccxt_client import CcxtClient
from marketdata.clients.synthetic import BASE_PRICES
from marketdata.indicators import parse_specs
from marketdata.series import WINDOW
from marketdata.tests.factories import store_candles
from marketdata.tests.fakes import FakeExchange

pytestmark = [pytest.mark.django_db, pytest.mark.redis, pytest.mark.postgres]
SYMBOLS = [f"{base}/USDT" for base in sorted(BASE_PRICES)][:20]  # 20 listed symbols


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = redis.Redis.execute_command

    def counting(self: redis.Redis, *args: object, **kwargs: object) -> object:
        seen.append(str(args[0]))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "execute_command", counting)
    return seen


def test_last_prices_are_the_tickers_prices_as_decimals(
    ccxt_client: CcxtClient, fake_exchange: FakeExchange
) -> None:
    got = prices.last_prices(["BTC/USDT", "ETH/USDT", "BTC/USDT"], client=ccxt_client)

    assert list(got) == ["BTC/USDT", "ETH/USDT"]
    for symbol, price in got.items():
        assert isinstance(price, Decimal)
        served = orjson.loads(services.ticker_get(symbol=symbol, client=ccxt_client).body)
        assert price == Decimal(served["price"])
    # Read once per symbol, then from the cache.
    assert len([c for c in fake_exchange.calls if c[0] == "fetch_ticker"]) == 2


def test_last_prices_of_20_symbols_are_one_redis_round_trip(
    now: datetime, commands: list[str]
) -> None:
    first = prices.last_prices(SYMBOLS)  # misses: fetched, each computed once
    commands.clear()
    again = prices.last_prices(SYMBOLS, as_of=now)
    assert again == first and len(again) == 20
    assert commands == ["MGET"]  # epoch, 20 versions and 20 tickers in one command


def test_closed_candles_as_of_an_instant(now: datetime, django_assert_num_queries: Any) -> None:
    stored = store_candles(limit=WINDOW + 10)
    with django_assert_num_queries(1):  # the window, once
        got = prices.closed_candles(["BTC/USDT"], timeframe="1h", as_of=now, limit=50)["BTC/USDT"]
    assert len(got) == 50 and got.close.dtype == np.float64
    assert got.newest == stored[-1].open_time  # the newest closed, never the forming one
    np.testing.assert_array_equal(got.close, [float(c.close) for c in stored[-50:]])
    # An instant just before the newest candle closed: it is not there yet.
    before = stored[-1].open_time + timedelta(hours=1) - timedelta(seconds=1)
    with django_assert_num_queries(0):
        earlier = prices.closed_candles(["BTC/USDT"], timeframe="1h", as_of=before, limit=50)
    assert earlier["BTC/USDT"].newest == stored[-2].open_time
    assert not earlier["BTC/USDT"].close.flags.writeable  # shared by every bot: read-only
    with pytest.raises(ValueError, match="future"):
        prices.closed_candles(["BTC/USDT"], timeframe="1h", as_of=now + timedelta(hours=1))


def test_closed_candles_long_before_the_window_read_the_database(now: datetime) -> None:
    stored = store_candles(limit=WINDOW + 200)
    as_of = stored[100].open_time + timedelta(hours=1)  # the 101st candle just closed
    got = prices.closed_candles(["BTC/USDT"], timeframe="1h", as_of=as_of, limit=20)["BTC/USDT"]
    assert got.newest == stored[100].open_time
    np.testing.assert_array_equal(got.close, [float(c.close) for c in stored[81:101]])


def test_indicator_values_agree_with_the_endpoint(now: datetime, commands: list[str]) -> None:
    store_candles(limit=WINDOW + 500)
    store_candles(symbol="ETH/USDT", limit=WINDOW + 500)
    specs = parse_specs("rsi,macd")
    got = prices.indicator_values(["BTC/USDT", "ETH/USDT"], timeframe="1h", specs=specs, as_of=now)
    for symbol in ("BTC/USDT", "ETH/USDT"):
        body = orjson.loads(
            services.indicators_get(symbol=symbol, timeframe="1h", specs=specs, limit=3).body
        )["indicators"]
        assert got[symbol]["rsi:14"].last() == body["rsi:14"]["values"][-1]
        assert got[symbol]["macd:12:26:9"].last("signal") == body["macd:12:26:9"]["signal"][-1]
        assert len(got[symbol]["rsi:14"].time) == 1
    commands.clear()
    again = prices.indicator_values(["BTC/USDT", "ETH/USDT"], timeframe="1h", specs=specs,
                                    as_of=now, limit=3)  # fmt: skip
    assert commands == ["MGET"]  # 4 windows, memoised: only their versions travel
    assert again["BTC/USDT"]["rsi:14"].last() == got["BTC/USDT"]["rsi:14"].last()
    # As of an hour earlier: the value at the previous close.
    earlier = prices.indicator_values(["BTC/USDT"], timeframe="1h", specs=specs[:1],
                                      as_of=now - timedelta(hours=1), limit=1)  # fmt: skip
    assert earlier["BTC/USDT"]["rsi:14"].last() == again["BTC/USDT"]["rsi:14"].outputs["values"][1]


def test_last_prices_long_ago_are_the_stored_minute_close(now: datetime) -> None:
    stored = store_candles(timeframe="1m", limit=100)
    as_of = stored[50].open_time + timedelta(minutes=1, seconds=10)
    assert timeframes.utcnow() - as_of > timedelta(minutes=5)
    assert prices.last_prices(["BTC/USDT"], as_of=as_of) == {"BTC/USDT": stored[50].close}


def test_unlisted_names_the_symbols_the_venue_has_no_market_for(ccxt_client: Any) -> None:
    assert prices.unlisted(["btc/usdt", "FOO/USDT", "ETH/USDT:USDT-260327"]) == [
        "FOO/USDT",
        "ETH/USDT:USDT-260327",
    ]  # the synthetic venue: spot pairs and perpetuals only
    assert prices.unlisted(["BTC/USDT", "NOPE/USDT"], client=ccxt_client) == ["NOPE/USDT"]
    calls = [call[0] for call in ccxt_client.exchange.calls]
    assert calls.count("load_markets") == 1 and "fetch_ticker" not in calls  # markets, no tickers
