"""Ingestion, cached reads, invalidation and sync, on the real PostgreSQL and Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from django.db import connection

from marketdata import services, timeframes
from marketdata.cache import computed
from marketdata.clients.ccxt_client import CcxtClient
from marketdata.indicators import parse_specs
from marketdata.models import Candle, FundingRate
from marketdata.services import InvalidRequest
from marketdata.tests.factories import candle, store_candles
from marketdata.tests.fakes import FakeExchange
from trading import services as trading
from trading.tests.factories import make_bot

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
HOUR = timedelta(hours=1)
SPECS = parse_specs("rsi,macd")


@pytest.fixture
def computations() -> Iterator[list[str]]:
    """Names of the values computed (cache misses this process filled) during the test."""
    names: list[str] = []

    def receiver(sender: Any, name: str, **kwargs: Any) -> None:
        names.append(name)

    computed.connect(receiver, weak=False)
    yield names
    computed.disconnect(receiver)


def candles_of(body: bytes) -> list[list[str]]:
    return orjson.loads(body)["candles"]


# --- ingestion ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_ingest_upserts_in_bulk_and_reports_changes(
    now: datetime, django_assert_num_queries: Any
) -> None:
    last = timeframes.last_closed_open_time(now, "1m")
    batch = [candle(last - i * timedelta(minutes=1), price=str(100 + i)) for i in range(2500)]
    with django_assert_num_queries(3):  # one INSERT ... ON CONFLICT per 1,000 candles
        assert (
            services.candles_ingest(exchange="x", symbol="BTC/USDT", timeframe="1m", candles=batch)
            == 2500
        )
    assert Candle.objects.count() == 2500
    # The same candles again change nothing; a corrected one is updated in place.
    assert (
        services.candles_ingest(exchange="x", symbol="BTC/USDT", timeframe="1m", candles=batch) == 0
    )
    fixed = candle(last, price="99.5")
    assert (
        services.candles_ingest(exchange="x", symbol="btc/usdt", timeframe="1m", candles=[fixed])
        == 1
    )
    stored = Candle.objects.get(exchange="x", symbol="BTC/USDT", timeframe="1m", open_time=last)
    assert (stored.open, stored.high, stored.volume) == (
        Decimal("99.5"),
        Decimal("100.5"),
        Decimal(1),
    )
    assert Candle.objects.count() == 2500


@pytest.mark.django_db
def test_ingest_keeps_only_closed_aligned_candles(now: datetime) -> None:
    forming = timeframes.align(now, "1h")
    assert services.candles_ingest(
        exchange="x", symbol="BTC/USDT", timeframe="1h", candles=[candle(forming), candle(forming - HOUR)]
    ) == 1  # fmt: skip
    with pytest.raises(ValueError, match="not aligned"):
        services.candles_ingest(
            exchange="x", symbol="BTC/USDT", timeframe="1h", candles=[candle(forming - timedelta(minutes=90))]
        )  # fmt: skip
    with pytest.raises(InvalidRequest, match="timeframe"):
        services.candles_ingest(exchange="x", symbol="BTC/USDT", timeframe="2h", candles=[])


# --- cached reads -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_ohlcv_is_read_through_and_limits_do_not_collide(
    now: datetime, computations: list[str], django_assert_num_queries: Any
) -> None:
    stored = store_candles(limit=600)
    with django_assert_num_queries(1):  # the newest 500 rows; the database is up to date
        first = services.ohlcv_get(symbol="BTC/USDT", timeframe="1h", limit=500)
    with django_assert_num_queries(0):
        again = services.ohlcv_get(symbol="btc/usdt", timeframe="1h", limit=500)
    small = services.ohlcv_get(symbol="BTC/USDT", timeframe="1h", limit=200)
    assert (first.hit, again.hit, small.hit) == (False, True, False)
    assert again.body == first.body
    rows, small_rows = candles_of(first.body), candles_of(small.body)
    assert (len(rows), len(small_rows)) == (500, 200)
    assert small_rows == rows[-200:]
    newest = stored[-1]
    assert rows[-1] == [newest.open_time.isoformat().replace("+00:00", "Z"), str(newest.open),
                        str(newest.high), str(newest.low), str(newest.close), str(newest.volume)]  # fmt: skip
    assert computations == [
        "synthetic:BTC/USDT:1h:ohlcv:limit=500",
        "synthetic:BTC/USDT:1h:ohlcv:limit=200",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_miss_fills_missing_candles_from_the_client_and_computes_once(
    now: datetime, computations: list[str]
) -> None:
    """Empty database: the miss fetches from the (synthetic) client, stores, and serves; the
    version move caused by its own fill does not make the next read compute again."""
    result = services.ohlcv_get(symbol="ETH/USDT", timeframe="4h", limit=50)
    assert not result.hit
    rows = candles_of(result.body)
    assert len(rows) == 50
    assert rows[-1][0] == timeframes.last_closed_open_time(now, "4h").isoformat().replace(
        "+00:00", "Z"
    )
    assert Candle.objects.filter(symbol="ETH/USDT", timeframe="4h").count() == 50
    assert services.ohlcv_get(symbol="ETH/USDT", timeframe="4h", limit=50).hit
    assert computations == ["synthetic:ETH/USDT:4h:ohlcv:limit=50"]


@pytest.mark.django_db(transaction=True)
def test_a_database_behind_the_clock_fetches_only_the_missing_candles(
    now: datetime, fake_exchange: FakeExchange, ccxt_client: CcxtClient
) -> None:
    fetched = ccxt_client.fetch_ohlcv(symbol="BTC/USDT", timeframe="1h", limit=60)[:-4]  # 3 behind
    services.candles_ingest(exchange="fakex", symbol="BTC/USDT", timeframe="1h", candles=fetched)
    fake_exchange.calls.clear()
    body = services.ohlcv_get(symbol="BTC/USDT", timeframe="1h", limit=50, client=ccxt_client).body
    fetch = [call for call in fake_exchange.calls if call[0] == "fetch_ohlcv"]
    assert len(fetch) == 1
    assert fetch[0][3] == int((fetched[-1].open_time + HOUR).timestamp() * 1000)  # since
    assert fetch[0][4] == 3  # the three candles closed since
    rows = candles_of(body)
    assert len(rows) == 50
    assert rows[-1][0] == timeframes.last_closed_open_time(now, "1h").isoformat().replace(
        "+00:00", "Z"
    )


@pytest.mark.django_db
def test_bad_parameters_are_refused_with_the_parameter_named() -> None:
    for kwargs, field in [
        ({"symbol": "BTCUSDT", "timeframe": "1h"}, "symbol"),
        ({"symbol": "BTC/USDT", "timeframe": "2h"}, "timeframe"),
        ({"symbol": "BTC/USDT", "timeframe": "1h", "limit": 0}, "limit"),
        ({"symbol": "BTC/USDT", "timeframe": "1h", "limit": 1001}, "limit"),
    ]:
        with pytest.raises(InvalidRequest) as info:
            services.ohlcv_get(**kwargs)
        assert info.value.field == field
        assert field in info.value.message


@pytest.mark.django_db
def test_indicators_are_cached_per_indicator_and_limit(
    now: datetime, computations: list[str]
) -> None:
    store_candles(limit=300)
    first = services.indicators_get(symbol="BTC/USDT", timeframe="1h", specs=SPECS, limit=200)
    assert not first.hit
    both = services.indicators_get(
        symbol="BTC/USDT", timeframe="1h", specs=parse_specs("macd,rsi"), limit=200
    )
    assert both.hit
    assert list(orjson.loads(both.body)["indicators"]) == ["macd:12:26:9", "rsi:14"]
    services.indicators_get(
        symbol="BTC/USDT", timeframe="1h", specs=parse_specs("rsi:21,rsi"), limit=200
    )
    services.indicators_get(symbol="BTC/USDT", timeframe="1h", specs=SPECS, limit=100)
    assert computations == [
        "synthetic:BTC/USDT:1h:ohlcv:limit=200",  # read once for all of the request's misses
        "synthetic:BTC/USDT:1h:rsi:14:limit=200",
        "synthetic:BTC/USDT:1h:macd:12:26:9:limit=200",
        "synthetic:BTC/USDT:1h:rsi:21:limit=200",  # only the new period
        "synthetic:BTC/USDT:1h:ohlcv:limit=100",  # another limit is another key
        "synthetic:BTC/USDT:1h:rsi:14:limit=100",
        "synthetic:BTC/USDT:1h:macd:12:26:9:limit=100",
    ]
    body = orjson.loads(first.body)
    assert (body["symbol"], body["timeframe"], body["limit"]) == ("BTC/USDT", "1h", 200)
    assert body["indicators"]["rsi:14"]["values"][:14] == [None] * 14


# --- invalidation -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_newly_closed_candle_invalidates_its_series_only(
    now: datetime, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    store_candles(limit=300)
    store_candles(symbol="ETH/USDT", limit=300)

    def read(symbol: str = "BTC/USDT") -> services.Cached:
        return services.ohlcv_get(symbol=symbol, timeframe="1h", limit=200)

    def indicators() -> services.Cached:
        return services.indicators_get(symbol="BTC/USDT", timeframe="1h", specs=SPECS, limit=200)

    before, _, _ = read(), indicators(), read("ETH/USDT")
    assert read().hit and indicators().hit

    later = now + HOUR  # an hour later, one more candle has closed
    monkeypatch.setattr(timeframes, "utcnow", lambda: later)
    new = candle(timeframes.last_closed_open_time(later, "1h"), price="123.45")
    with django_capture_on_commit_callbacks(execute=True):
        services.candles_ingest(
            exchange="synthetic", symbol="BTC/USDT", timeframe="1h", candles=[new]
        )

    after = read()
    assert not after.hit and not indicators().hit
    assert candles_of(after.body)[-1][4] == "123.45"
    assert candles_of(after.body)[:-1] == candles_of(before.body)[1:]
    assert read("ETH/USDT").hit  # another series keeps its cache


@pytest.mark.django_db
def test_a_trade_invalidates_its_symbols_ticker(
    now: datetime, django_capture_on_commit_callbacks: Any
) -> None:
    bot = make_bot()
    assert not services.ticker_get(symbol="BTC/USDT").hit
    assert services.ticker_get(symbol="BTC/USDT").hit
    assert not services.ticker_get(symbol="ETH/USDT").hit
    with django_capture_on_commit_callbacks(execute=True):
        position = trading.position_open(
            bot=bot, symbol="BTC/USDT", side="long", quantity="0.01", price="50000",
            client_order_id="o1", executed_at=now,
        )  # fmt: skip
    assert not services.ticker_get(symbol="BTC/USDT").hit
    assert services.ticker_get(symbol="ETH/USDT").hit  # other symbols keep theirs
    assert services.ticker_get(symbol="BTC/USDT").hit
    with django_capture_on_commit_callbacks(execute=True):
        trading.position_close(
            position=position, price="50100", client_order_id="c1", executed_at=now
        )
    assert not services.ticker_get(symbol="BTC/USDT").hit


@pytest.mark.django_db
def test_manual_refresh_scopes(now: datetime) -> None:
    store_candles(symbol="BTC/USDT", timeframe="1h", limit=50)
    store_candles(symbol="BTC/USDT", timeframe="4h", limit=50)
    store_candles(symbol="ETH/USDT", timeframe="1h", limit=50)

    def warm() -> None:
        for symbol, timeframe in [("BTC/USDT", "1h"), ("BTC/USDT", "4h"), ("ETH/USDT", "1h")]:
            services.ohlcv_get(symbol=symbol, timeframe=timeframe, limit=50)
        services.ticker_get(symbol="BTC/USDT")
        services.funding_rate_get(symbol="BTC/USDT")

    def hits() -> dict[str, bool]:
        return {
            "btc 1h": services.ohlcv_get(symbol="BTC/USDT", timeframe="1h", limit=50).hit,
            "btc 4h": services.ohlcv_get(symbol="BTC/USDT", timeframe="4h", limit=50).hit,
            "eth 1h": services.ohlcv_get(symbol="ETH/USDT", timeframe="1h", limit=50).hit,
            "ticker": services.ticker_get(symbol="BTC/USDT").hit,
            "funding": services.funding_rate_get(symbol="BTC/USDT").hit,
        }

    warm()
    services.market_data_refresh(symbol="BTC/USDT", timeframe="1h")
    assert hits() == {
        "btc 1h": False,
        "btc 4h": True,
        "eth 1h": True,
        "ticker": True,
        "funding": True,
    }
    services.market_data_refresh(symbol="btc/usdt")
    assert hits() == {
        "btc 1h": False,
        "btc 4h": False,
        "eth 1h": True,
        "ticker": False,
        "funding": False,
    }
    result = services.market_data_refresh(timeframe="1h")  # every symbol with stored 1h candles
    assert result.scopes == ["synthetic:BTC/USDT:1h", "synthetic:ETH/USDT:1h"]
    assert hits() == {
        "btc 1h": False,
        "btc 4h": True,
        "eth 1h": False,
        "ticker": True,
        "funding": True,
    }
    assert services.market_data_refresh().everything
    assert not any(hits().values())


@pytest.mark.django_db
def test_funding_rate_is_stored_then_cached(now: datetime, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1):  # the upsert
        first = services.funding_rate_get(symbol="BTC/USDT")
    with django_assert_num_queries(0):
        assert services.funding_rate_get(symbol="BTC/USDT:USDT").hit  # same perpetual
    body = orjson.loads(first.body)
    assert body["symbol"] == "BTC/USDT:USDT"
    row = FundingRate.objects.get()
    assert (row.exchange, row.symbol, str(row.rate.normalize())) == (
        "synthetic",
        "BTC/USDT:USDT",
        body["rate"],
    )


# --- sync ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sync_pages_through_the_client_and_resumes(
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
    fake_exchange: FakeExchange,
    ccxt_client: CcxtClient,
) -> None:
    since = now - 10 * 24 * HOUR
    progress: list[int] = []
    result = services.candles_sync(
        symbol="BTC/USDT", timeframe="1h", since=since, client=ccxt_client, progress=progress.append
    )
    slots = (result.end - result.start) // HOUR + 1
    # 12:34 ten days ago rounds up to 13:00; the last closed candle opened at 11:00 today.
    assert result.fetched == result.written == slots == Candle.objects.count() == 239
    assert sum(progress) == slots
    assert result.resumed_from is None
    assert len([c for c in fake_exchange.calls if c[0] == "fetch_ohlcv"]) == 3  # 100 + 100 + 39

    # Two hours later: only the two new candles are fetched.
    later = now + 2 * HOUR
    monkeypatch.setattr(timeframes, "utcnow", lambda: later)
    fake_exchange.now_ms += 2 * 3_600_000
    fake_exchange.calls.clear()
    again = services.candles_sync(
        symbol="BTC/USDT", timeframe="1h", since=since, client=ccxt_client
    )
    assert again.resumed_from == result.end + HOUR
    assert (again.fetched, again.written) == (2, 2)
    assert fake_exchange.calls == [
        ("fetch_ohlcv", "BTC/USDT", "1h", int(again.resumed_from.timestamp() * 1000), 2)
    ]


@pytest.mark.django_db
def test_newest_candles_are_a_backward_scan_of_the_unique_index(now: datetime) -> None:
    for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT"):
        for timeframe in ("1m", "5m"):
            store_candles(symbol=symbol, timeframe=timeframe, limit=1000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Candle._meta.db_table}")
    queryset = (
        Candle.objects.series(exchange="synthetic", symbol="ETH/USDT", timeframe="1m")
        .newest_first()
        .values_list("open_time", "close")[:200]
    )
    plan = json.dumps(json.loads(queryset.explain(format="json")))
    assert '"Index Name": "candle_series_time_uniq"' in plan
    assert '"Scan Direction": "Backward"' in plan
    assert "Seq Scan" not in plan and '"Sort"' not in plan
