"""Ingestion, cached reads, invalidation and sync, on the real PostgreSQL and Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from django.conf import settings
from django.db import connection

from marketdata import services, timeframes
from marketdata.cache import computed
from marketdata.clients.ccxt_client import CcxtClient
from marketdata.clients.synthetic import SyntheticClient
from marketdata.indicators import parse_specs
from marketdata.models import Candle, FundingRate
from marketdata.series import WINDOW
from marketdata.services import InvalidRequest
from marketdata.tests.conftest import Clock
from marketdata.tests.factories import candle, store_candles
from marketdata.tests.fakes import FakeExchange
from trading import services as trading
from trading.tests.factories import make_bot

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
HOUR = timedelta(hours=1)
SPECS = parse_specs("rsi,macd")
FULL = WINDOW + 500  # enough stored candles for the window and the default indicators' warm-up


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
def test_ingest_keeps_closed_candles_once_each_in_the_venues_alignment(now: datetime) -> None:
    forming = timeframes.align(now, "1h")
    assert services.candles_ingest(
        exchange="x", symbol="BTC/USDT", timeframe="1h", candles=[candle(forming), candle(forming - HOUR)]
    ) == 1  # fmt: skip
    # A page that repeats a candle (it used to be a 500: ON CONFLICT cannot affect a row twice).
    page = [
        candle(forming - 3 * HOUR, "1"),
        candle(forming - 2 * HOUR),
        candle(forming - 3 * HOUR, "2"),
    ]
    assert (
        services.candles_ingest(exchange="x", symbol="BTC/USDT", timeframe="1h", candles=page) == 2
    )
    stored = Candle.objects.get(symbol="BTC/USDT", open_time=forming - 3 * HOUR)
    assert stored.close == Decimal(2)  # the last one the venue sent
    # Daily candles opening at 16:00 UTC (a UTC+8 venue) are stored as the venue aligns them.
    day = timedelta(days=1)
    sixteen = timeframes.align(now, "1d") - day + timedelta(hours=16)  # closed 2026-03-02 16:00?
    daily = [candle(sixteen - i * day) for i in (1, 2, 3)]
    assert (
        services.candles_ingest(exchange="x", symbol="ETH/USDT", timeframe="1d", candles=daily) == 3
    )
    # One candle in another alignment inside a page: dropped, the rest kept.
    mixed = [
        candle(sixteen - 5 * day),
        candle(sixteen - 4 * day - timedelta(hours=16)),
        candle(sixteen - 4 * day),
    ]
    assert (
        services.candles_ingest(exchange="x", symbol="ETH/USDT", timeframe="1d", candles=mixed) == 2
    )
    with pytest.raises(InvalidRequest, match="timeframe"):
        services.candles_ingest(exchange="x", symbol="BTC/USDT", timeframe="2h", candles=[])


# --- cached reads -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_ohlcv_is_read_through_and_limits_do_not_collide(
    now: datetime, computations: list[str], django_assert_num_queries: Any
) -> None:
    stored = store_candles(limit=FULL)
    with django_assert_num_queries(1):  # the newest 1,000 rows (the window); the db is complete
        first = services.ohlcv_get(symbol="BTC/USDT", timeframe="1h", limit=500)
    with django_assert_num_queries(0):
        again = services.ohlcv_get(symbol="btc/usdt", timeframe="1h", limit=500)
        small = services.ohlcv_get(symbol="BTC/USDT", timeframe="1h", limit=200)  # from the window
    assert (first.hit, again.hit, small.hit) == (False, True, False)
    assert again.body == first.body
    rows, small_rows = candles_of(first.body), candles_of(small.body)
    assert (len(rows), len(small_rows)) == (500, 200)
    assert small_rows == rows[-200:]
    newest = stored[-1]
    assert rows[-1] == [newest.open_time.isoformat().replace("+00:00", "Z"), str(newest.open),
                        str(newest.high), str(newest.low), str(newest.close), str(newest.volume)]  # fmt: skip
    assert computations == [
        "synthetic:BTC/USDT:1h:candles",  # the window, once for every limit
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
    assert Candle.objects.filter(symbol="ETH/USDT", timeframe="4h").count() >= WINDOW
    assert services.ohlcv_get(symbol="ETH/USDT", timeframe="4h", limit=50).hit
    assert computations == ["synthetic:ETH/USDT:4h:candles", "synthetic:ETH/USDT:4h:ohlcv:limit=50"]


class _RacedClient(SyntheticClient):
    """A venue whose candles another runner stores while this one is fetching them (both read
    the same empty series a moment earlier, as threads of one engine round do on a cold cache)."""

    def fetch_ohlcv(self, **kwargs: Any) -> list[Any]:
        candles = super().fetch_ohlcv(**kwargs)
        services.candles_ingest(exchange=self.exchange_id, symbol=kwargs["symbol"],
                                timeframe=kwargs["timeframe"], candles=candles)  # fmt: skip
        return candles


@pytest.mark.django_db(transaction=True)
def test_a_fill_someone_else_stored_first_is_read_back_not_served_empty(now: datetime) -> None:
    """The ingest after the fetch changes nothing (the rows are there already): the read still
    returns them, so no empty window is computed and cached for the series (an engine cycle
    would fail on it with an IndexError until the next candle close)."""
    read = services.read_series(_RacedClient(), "BNB/USDT", "1h", 1030)
    assert len(read.rows) == 1030
    assert read.rows[-1][0] == timeframes.last_closed_open_time(now, "1h")
    assert not read.behind


@pytest.mark.django_db(transaction=True)
def test_a_database_behind_the_clock_fetches_only_the_missing_candles(
    now: datetime, fake_exchange: FakeExchange, ccxt_client: CcxtClient
) -> None:
    fetched = ccxt_client.fetch_ohlcv(symbol="BTC/USDT", timeframe="1h", limit=FULL)[:-4]
    services.candles_ingest(exchange="fakex", symbol="BTC/USDT", timeframe="1h", candles=fetched)
    fake_exchange.calls.clear()  # 3 closed candles behind (and the forming one)
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


@pytest.mark.django_db(transaction=True)
def test_holes_are_repaired_from_the_exchange_or_reported(
    now: datetime, fake_exchange: FakeExchange, ccxt_client: CcxtClient
) -> None:
    services.candles_sync(symbol="BTC/USDT", timeframe="1h", since=now - 1200 * HOUR,
                          client=ccxt_client)  # fmt: skip
    newest = timeframes.last_closed_open_time(now, "1h")
    repairable = [newest - i * HOUR for i in (10, 11, 12)]
    Candle.objects.filter(open_time__in=repairable).delete()  # lost here, the venue has them
    permanent = [newest - i * HOUR for i in (40, 41)]
    Candle.objects.filter(open_time__in=permanent).delete()
    fake_exchange.missing = {int(t.timestamp() * 1000) for t in permanent}  # the venue has not
    body = orjson.loads(
        services.ohlcv_get(symbol="BTC/USDT", timeframe="1h", limit=100, client=ccxt_client).body
    )
    times = [row[0] for row in body["candles"]]
    assert all(t.isoformat().replace("+00:00", "Z") in times for t in repairable)  # repaired
    iso = [t.isoformat().replace("+00:00", "Z") for t in permanent]
    assert body["gaps"] == [[iso[1], iso[0]]]  # reported: first and last missing
    assert len(times) == 100  # still the newest 100 candles there are
    # Indicators are never computed across the hole: only on the run after it.
    ind = orjson.loads(services.indicators_get(symbol="BTC/USDT", timeframe="1h",
                                               specs=parse_specs("sma:5"), limit=100,
                                               client=ccxt_client).body)  # fmt: skip
    served = dict(
        zip(ind["indicators"]["sma:5"]["time"], ind["indicators"]["sma:5"]["values"], strict=True)
    )
    after = permanent[0] + HOUR
    assert served[after.isoformat().replace("+00:00", "Z")] is None  # its window spans the hole
    assert served[(after + 4 * HOUR).isoformat().replace("+00:00", "Z")] is not None
    assert ind["history"]["sma:5"]["gaps"] == [[iso[1], iso[0]]]
    # The hole the venue could not fill is not asked for again on the next computation.
    fake_exchange.calls.clear()
    services.market_data_refresh(symbol="BTC/USDT", timeframe="1h", exchange="fakex")
    services.ohlcv_get(symbol="BTC/USDT", timeframe="1h", limit=100, client=ccxt_client)
    assert [c for c in fake_exchange.calls if c[0] == "fetch_ohlcv"] == []


@pytest.mark.django_db(transaction=True)
def test_a_venue_with_daily_candles_at_16_utc_is_served_not_refused(
    now: datetime, fake_exchange: FakeExchange, ccxt_client: CcxtClient
) -> None:
    fake_exchange.offsets = {"1d": 16 * 3_600_000}
    body = orjson.loads(
        services.ohlcv_get(symbol="BTC/USDT", timeframe="1d", limit=5, client=ccxt_client).body
    )
    times = [row[0] for row in body["candles"]]
    # 12:34 on 2026-03-02: the newest closed daily candle opened 2026-02-28 16:00 (closed 03-01).
    assert times[-1] == "2026-02-28T16:00:00Z"
    assert all(t.endswith("T16:00:00Z") for t in times) and "gaps" not in body
    assert services.ohlcv_get(symbol="BTC/USDT", timeframe="1d", limit=5, client=ccxt_client).hit


@pytest.mark.django_db
def test_no_value_is_served_past_the_candle_clock(clock: Clock) -> None:
    """A fake clock walks across 1-minute candle closes: every OHLCV and indicator read serves
    the newest candle closed at least MARKET_DATA_CLOSE_LAG ago (never an older one), and never
    one that is still forming."""
    store_candles(timeframe="1m", limit=FULL)
    lag = timedelta(seconds=settings.MARKET_DATA_CLOSE_LAG)
    specs = parse_specs("ema:9")
    for _ in range(40):
        clock.advance(seconds=17)  # crosses a close every three or four steps
        at = clock.at
        ohlcv = candles_of(services.ohlcv_get(symbol="BTC/USDT", timeframe="1m", limit=10).body)
        ind = orjson.loads(
            services.indicators_get(symbol="BTC/USDT", timeframe="1m", specs=specs, limit=10).body
        )["indicators"]["ema:9"]
        for newest in (ohlcv[-1][0], ind["time"][-1]):
            newest_at = datetime.fromisoformat(newest.replace("Z", "+00:00"))
            assert newest_at >= timeframes.last_closed_open_time(at - lag, "1m")  # fresh enough
            assert newest_at <= timeframes.last_closed_open_time(at, "1m")  # closed


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
def test_indicators_are_cached_per_indicator_not_per_limit(
    now: datetime, computations: list[str], django_assert_num_queries: Any
) -> None:
    store_candles(limit=FULL)
    with django_assert_num_queries(1):  # the candles, read once for both indicators' warm-up
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
    for limit in (1, 34, 100, 1000):  # another limit is a slice of the same window
        assert services.indicators_get(
            symbol="BTC/USDT", timeframe="1h", specs=SPECS, limit=limit
        ).hit
    assert computations == [
        "synthetic:BTC/USDT:1h:rsi:14",
        "synthetic:BTC/USDT:1h:macd:12:26:9",
        "synthetic:BTC/USDT:1h:rsi:21",  # only the new period
    ]
    body = orjson.loads(first.body)
    assert (body["symbol"], body["timeframe"], body["limit"]) == ("BTC/USDT", "1h", 200)
    assert None not in body["indicators"]["rsi:14"]["values"]  # warm-up read before the window
    assert "history" not in body


@pytest.mark.django_db(transaction=True)
def test_a_history_too_short_for_the_warmup_is_said_in_the_response(
    now: datetime, fake_exchange: FakeExchange, ccxt_client: CcxtClient
) -> None:
    fake_exchange.history_start_ms = int((now - 600 * HOUR).timestamp() * 1000)  # a new listing
    body = orjson.loads(services.indicators_get(symbol="BTC/USDT", timeframe="1h",
                                                specs=parse_specs("rsi"), limit=100,
                                                client=ccxt_client).body)  # fmt: skip
    values = body["indicators"]["rsi:14"]["values"]
    assert len(values) == 100 and None not in values  # the last 100 are warm enough
    assert "history" not in body
    longer = orjson.loads(services.indicators_get(symbol="BTC/USDT", timeframe="1h",
                                                  specs=parse_specs("rsi"), limit=300,
                                                  client=ccxt_client).body)  # fmt: skip
    assert longer["indicators"]["rsi:14"]["values"][0] is None  # not converged: null, said so
    history = longer["history"]["rsi:14"]
    assert history["available"] < history["needed"] and history["gaps"] == []


# --- invalidation -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_newly_closed_candle_invalidates_its_series_only(
    now: datetime, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    store_candles(limit=FULL)
    store_candles(symbol="ETH/USDT", limit=FULL)

    def read(symbol: str = "BTC/USDT") -> services.Cached:
        return services.ohlcv_get(symbol=symbol, timeframe="1h", limit=200)

    def indicators() -> services.Cached:
        return services.indicators_get(symbol="BTC/USDT", timeframe="1h", specs=SPECS, limit=200)

    before, _, _ = read(), indicators(), read("ETH/USDT")
    assert read().hit and indicators().hit

    # The venue corrects the newest candle: it is stored again and the series invalidated.
    new = candle(timeframes.last_closed_open_time(now, "1h"), price="123.45")
    with django_capture_on_commit_callbacks(execute=True):
        services.candles_ingest(
            exchange="synthetic", symbol="BTC/USDT", timeframe="1h", candles=[new]
        )

    after = read()
    assert not after.hit and not indicators().hit
    assert candles_of(after.body)[-1][4] == "123.45"
    assert candles_of(after.body)[:-1] == candles_of(before.body)[:-1]
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


@pytest.mark.django_db(transaction=True)
def test_appending_newly_closed_candles_keeps_the_series_version(clock: Clock) -> None:
    """At a close, the first read fills the new candle. That must not move the series' version:
    its sibling values (computed from the same new data by other readers at the same moment)
    would be unreachable and computed again. A corrected candle still moves it."""
    from marketdata import cache as market_cache

    store_candles(timeframe="1m", limit=FULL)
    services.ohlcv_get(symbol="BTC/USDT", timeframe="1m", limit=10)
    version_key = market_cache._version_key("synthetic:BTC/USDT:1m")
    version = market_cache._known[version_key]
    clock.advance(minutes=3)  # three more closed candles, filled by the next read
    body = services.ohlcv_get(symbol="BTC/USDT", timeframe="1m", limit=10).body
    assert candles_of(body)[-1][0] == timeframes.last_closed_open_time(
        clock.at, "1m"
    ).isoformat().replace("+00:00", "Z")
    assert market_cache._known[version_key] == version
    newest = timeframes.last_closed_open_time(clock.at, "1m")
    services.candles_ingest(exchange="synthetic", symbol="BTC/USDT", timeframe="1m",
                            candles=[candle(newest, price="1.5")])  # fmt: skip
    assert market_cache._known[version_key] != version
