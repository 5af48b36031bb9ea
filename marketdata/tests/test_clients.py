"""Clients: the real ccxt client against a fake ccxt exchange (no network), and the synthetic one."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import ccxt
import pytest
from django.core.cache import cache as django_cache
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from marketdata import cache as market_cache
from marketdata.clients import get_client
from marketdata.clients.base import (
    ExchangeUnavailable,
    MarketDataError,
    NotSupported,
    UnknownSymbol,
    UnknownTimeframe,
)
from marketdata.clients.ccxt_client import CcxtClient
from marketdata.clients.synthetic import SyntheticClient
from marketdata.tests.conftest import no_budget
from marketdata.tests.fakes import FakeBinanceHTTP, FakeExchange, fake_binance
from marketdata.timeframes import align, is_aligned

HOUR = timedelta(hours=1)


def _assert_contiguous(candles: list, step: timedelta) -> None:
    times = [c.open_time for c in candles]
    assert all(b - a == step for a, b in pairwise(times)), times


# --- ccxt client ----------------------------------------------------------------------------------


def test_newest_candles_in_one_request_with_exact_decimals(
    ccxt_client: CcxtClient, fake_exchange: FakeExchange, now: datetime
) -> None:
    candles = ccxt_client.fetch_ohlcv(symbol="btc/usdt", timeframe="1h", limit=24)
    assert [c[0] for c in fake_exchange.calls] == ["load_markets", "fetch_ohlcv"]
    assert fake_exchange.calls[1] == ("fetch_ohlcv", "BTC/USDT", "1h", None, 24)
    assert len(candles) == 24
    _assert_contiguous(candles, HOUR)
    assert candles[-1].open_time == align(now, "1h")  # the exchange's forming candle is passed on
    first = candles[0]
    assert first.open_time.tzinfo is UTC
    # Floats from ccxt become the decimal they print as, never binary noise.
    ts = int(first.open_time.timestamp() * 1000)
    assert first.open == Decimal(repr(FakeExchange.price(ts)))
    assert first.volume == Decimal("12.5")
    assert isinstance(first.close, Decimal)


def test_long_history_pages_forward_through_since(
    ccxt_client: CcxtClient, fake_exchange: FakeExchange, now: datetime
) -> None:
    since = align(now, "1h") - 300 * HOUR + timedelta(minutes=10)  # not aligned: next open counts
    candles = ccxt_client.fetch_ohlcv(symbol="BTC/USDT", timeframe="1h", since=since, limit=250)
    assert len(candles) == 250
    _assert_contiguous(candles, HOUR)
    assert candles[0].open_time == align(since, "1h") + HOUR
    pages = [call for call in fake_exchange.calls if call[0] == "fetch_ohlcv"]
    # page limit 100 (the exchange's ccxt `features`): 100 + 100 + 50, each since the last + 1h
    assert [call[4] for call in pages] == [100, 100, 50]
    starts = [call[3] for call in pages]
    assert starts[0] == int(since.timestamp() * 1000)  # as given: the venue aligns
    assert starts[2] - starts[1] == 100 * 3_600_000


def test_more_than_a_page_of_newest_candles(
    ccxt_client: CcxtClient, fake_exchange: FakeExchange, now: datetime
) -> None:
    candles = ccxt_client.fetch_ohlcv(symbol="BTC/USDT", timeframe="1h", limit=250)
    assert len(candles) == 250
    _assert_contiguous(candles, HOUR)
    assert candles[-1].open_time == align(now, "1h")
    assert len([c for c in fake_exchange.calls if c[0] == "fetch_ohlcv"]) >= 3


def test_symbols_map_to_spot_or_perpetual_markets(
    ccxt_client: CcxtClient, fake_exchange: FakeExchange
) -> None:
    ccxt_client.fetch_ohlcv(symbol="ETH/USDT", timeframe="1h", limit=2)  # perpetual-only venue
    assert fake_exchange.calls[-1][1] == "ETH/USDT:USDT"
    ticker = ccxt_client.fetch_ticker(symbol=" btc/usdt ")
    assert ticker.symbol == "BTC/USDT"
    assert ticker.bid < ticker.price < ticker.ask
    assert ticker.volume_24h == Decimal("1234.5")
    funding = ccxt_client.fetch_funding_rate(symbol="BTC/USDT")
    assert fake_exchange.calls[-1] == ("fetch_funding_rate", "BTC/USDT:USDT")
    assert funding.symbol == "BTC/USDT:USDT"
    assert funding.rate == Decimal("0.000125")
    assert funding.funding_time.timestamp() % (8 * 3600) == 0
    # Markets are loaded once per client.
    assert [c[0] for c in fake_exchange.calls].count("load_markets") == 1


@pytest.mark.parametrize(
    ("symbol", "message"),
    [
        ("DOGE/USDT", "fakex has no market DOGE/USDT or DOGE/USDT:USDT"),
        ("BTCUSDT", "is not a symbol"),
    ],
)
def test_unknown_symbol_is_a_clear_error(
    ccxt_client: CcxtClient, symbol: str, message: str
) -> None:
    with pytest.raises(UnknownSymbol, match=message) as info:
        ccxt_client.fetch_ohlcv(symbol=symbol, timeframe="1h", limit=5)
    assert info.value.field == "symbol"


def test_bad_symbol_from_the_exchange_is_an_unknown_symbol(
    ccxt_client: CcxtClient, fake_exchange: FakeExchange
) -> None:
    fake_exchange.failures.append(ccxt.BadSymbol("delisted"))
    with pytest.raises(UnknownSymbol, match="delisted"):
        ccxt_client.fetch_ticker(symbol="BTC/USDT")


def test_unknown_timeframe_is_a_clear_error(now: datetime) -> None:
    client = CcxtClient(
        exchange_id="fakex", exchange=FakeExchange(now=now, timeframes=("1m", "1h")),
        budget=no_budget(),
    )  # fmt: skip
    with pytest.raises(UnknownTimeframe, match="fakex has no 4h candles") as info:
        client.fetch_ohlcv(symbol="BTC/USDT", timeframe="4h", limit=5)
    assert info.value.field == "timeframe"
    with pytest.raises(UnknownTimeframe, match="not a timeframe"):
        client.fetch_ohlcv(symbol="BTC/USDT", timeframe="2h", limit=5)


def test_rate_limits_and_timeouts_are_retried_with_backoff(
    ccxt_client: CcxtClient, fake_exchange: FakeExchange, sleeps: list[float]
) -> None:
    fake_exchange.failures += [ccxt.RateLimitExceeded("429"), ccxt.RequestTimeout("slow")]
    ticker = ccxt_client.fetch_ticker(symbol="BTC/USDT")  # load_markets fails twice, then works
    assert ticker.symbol == "BTC/USDT"
    assert sleeps == [0.1, 0.2]  # rateLimit 50 ms, at least 100 ms, doubling


def test_an_exchange_that_stays_down_is_unavailable(
    ccxt_client: CcxtClient, fake_exchange: FakeExchange, sleeps: list[float]
) -> None:
    fake_exchange.failures += [ccxt.ExchangeNotAvailable("maintenance")] * 4
    with pytest.raises(ExchangeUnavailable, match=r"failed after 4 attempts.*maintenance"):
        ccxt_client.fetch_ohlcv(symbol="BTC/USDT", timeframe="1h", limit=5)
    assert len(sleeps) == 3


def test_other_exchange_errors_are_not_retried(
    ccxt_client: CcxtClient, fake_exchange: FakeExchange, sleeps: list[float]
) -> None:
    ccxt_client.fetch_ticker(symbol="BTC/USDT")  # markets loaded
    fake_exchange.failures.append(ccxt.ExchangeError("weird"))
    with pytest.raises(MarketDataError, match="weird") as info:
        ccxt_client.fetch_ticker(symbol="BTC/USDT")
    assert not isinstance(info.value, ExchangeUnavailable | UnknownSymbol)
    assert sleeps == []


def test_funding_rates_need_an_exchange_that_has_them(now: datetime) -> None:
    client = CcxtClient(
        exchange_id="fakex", exchange=FakeExchange(now=now, funding=False), budget=no_budget()
    )
    with pytest.raises(NotSupported, match="no funding rates"):
        client.fetch_funding_rate(symbol="BTC/USDT")
    client = CcxtClient(exchange_id="fakex", exchange=FakeExchange(now=now), budget=no_budget())
    with pytest.raises(UnknownSymbol, match="no perpetual market SOL/USDT:USDT"):
        client.fetch_funding_rate(symbol="SOL/USDT")


def test_a_real_ccxt_exchange_gets_the_timeout_and_rate_limiting() -> None:
    client = CcxtClient(exchange_id="okx", timeout_ms=1234)  # construction does no I/O
    assert isinstance(client.exchange, ccxt.okx)
    assert client.exchange.timeout == 1234
    # ccxt's per-object throttle is off: the host-wide budget spaces requests instead.
    assert client.exchange.enableRateLimit is False
    assert client.budget.interval_ms == client.exchange.rateLimit
    with pytest.raises(ValueError, match="not an exchange ccxt knows"):
        CcxtClient(exchange_id="nosuchexchange")


def test_get_client_follows_the_settings() -> None:
    assert isinstance(get_client(), SyntheticClient)  # the default: offline
    with override_settings(
        MARKET_DATA_PROVIDER="ccxt", EXCHANGE_ID="binance", EXCHANGE_TIMEOUT_MS=777
    ):
        client = get_client()
        assert isinstance(client, CcxtClient)
        assert client.exchange_id == "binance"
        assert client.exchange.timeout == 777
        assert get_client() is client  # one per process and configuration
    with (
        override_settings(MARKET_DATA_PROVIDER="ccxt", EXCHANGE_ID="nosuchexchange"),
        pytest.raises(ImproperlyConfigured, match="EXCHANGE_ID"),
    ):
        get_client()


# --- synthetic client ---------------------------------------------------------------------------


def test_synthetic_candles_are_deterministic_aligned_and_closed(now: datetime) -> None:
    client = SyntheticClient(seed=7)
    candles = client.fetch_ohlcv(symbol="BTC/USDT", timeframe="1h", limit=48)
    assert candles == SyntheticClient(seed=7).fetch_ohlcv(
        symbol="BTC/USDT", timeframe="1h", limit=48
    )
    assert candles != SyntheticClient(seed=8).fetch_ohlcv(
        symbol="BTC/USDT", timeframe="1h", limit=48
    )
    assert len(candles) == 48
    _assert_contiguous(candles, HOUR)
    assert all(is_aligned(c.open_time, "1h") for c in candles)
    assert candles[-1].open_time + HOUR <= now  # only closed candles
    assert candles[-1].open_time == align(now, "1h") - HOUR


def test_synthetic_candles_do_not_depend_on_the_request(now: datetime) -> None:
    client = SyntheticClient()
    whole = client.fetch_ohlcv(symbol="ETH/USDT", timeframe="15m", limit=100)
    since = whole[40].open_time - timedelta(minutes=7)  # rounds up to whole[40]
    part = client.fetch_ohlcv(symbol="ETH/USDT", timeframe="15m", since=since, limit=20)
    assert part == whole[40:60]
    # The same instant in another timeframe opens at the same price; each candle opens at the
    # previous close.
    hourly = client.fetch_ohlcv(symbol="ETH/USDT", timeframe="1h", limit=8)
    minutes = {
        c.open_time: c for c in client.fetch_ohlcv(symbol="ETH/USDT", timeframe="1m", limit=600)
    }
    assert all(minutes[h.open_time].open == h.open for h in hourly)
    assert all(a.close == b.open for a, b in pairwise(whole))


@pytest.mark.parametrize("symbol", ["BTC/USDT", "SHIB/USDT", "XYZ/USDC", "BTC/USDT:USDT"])
def test_synthetic_candles_are_well_formed(now: datetime, symbol: str) -> None:
    # XYZ: a base without a preset level (MARKET_SYMBOLS may list any pair).
    for timeframe in ("1m", "4h", "1d"):
        client = SyntheticClient(pairs=frozenset({"BTC/USDT", "SHIB/USDT", "XYZ/USDC"}))
        for c in client.fetch_ohlcv(symbol=symbol, timeframe=timeframe, limit=300):
            assert 0 < c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high
            assert c.volume > 0
            assert isinstance(c.open, Decimal)


def test_synthetic_ticker_and_funding_rate(now: datetime) -> None:
    client = SyntheticClient()
    ticker = client.fetch_ticker(symbol="sol/usdt")
    assert ticker.symbol == "SOL/USDT"
    assert ticker.bid < ticker.price < ticker.ask
    assert ticker.at == now
    assert ticker == client.fetch_ticker(symbol="SOL/USDT")
    funding = client.fetch_funding_rate(symbol="SOL/USDT")
    assert funding.symbol == "SOL/USDT:USDT"
    assert funding.funding_time == datetime(2026, 3, 2, 16, tzinfo=UTC)  # next 8-hourly settlement
    assert Decimal("-0.01") < funding.rate < Decimal("0.01")


def test_synthetic_client_refuses_bad_input(now: datetime) -> None:
    client = SyntheticClient()
    with pytest.raises(UnknownTimeframe):
        client.fetch_ohlcv(symbol="BTC/USDT", timeframe="2h", limit=5)
    with pytest.raises(UnknownSymbol):
        client.fetch_ticker(symbol="BTC-USDT")
    assert client.fetch_ohlcv(symbol="BTC/USDT", timeframe="1h", since=now, limit=5) == []


def test_funding_rates_are_keyed_by_settlement_even_when_the_venue_sends_zero(
    ccxt_client: CcxtClient, fake_exchange: FakeExchange, now: datetime
) -> None:
    fake_exchange.funding_fields = {"fundingTimestamp": 0, "interval": "8h"}
    first = ccxt_client.fetch_funding_rate(symbol="BTC/USDT")
    fake_exchange.now_ms += 60_000  # a minute later, the same settlement
    again = ccxt_client.fetch_funding_rate(symbol="BTC/USDT")
    assert first.funding_time == again.funding_time == datetime(2026, 3, 2, 16, tzinfo=UTC)
    fake_exchange.funding_fields = {"fundingTimestamp": None, "interval": "1h"}
    assert ccxt_client.fetch_funding_rate(symbol="BTC/USDT").funding_time == datetime(
        2026, 3, 2, 13, tzinfo=UTC
    )


def test_funding_rate_history_pages_through_ccxt(
    ccxt_client: CcxtClient, fake_exchange: FakeExchange, now: datetime
) -> None:
    since = now - timedelta(days=40)  # 120 settlements, pages of 100
    rates = ccxt_client.fetch_funding_rate_history(symbol="BTC/USDT", since=since)
    assert len(rates) == 120
    assert all(r.symbol == "BTC/USDT:USDT" for r in rates)
    assert all(b.funding_time - a.funding_time == timedelta(hours=8) for a, b in pairwise(rates))
    calls = [c for c in fake_exchange.calls if c[0] == "fetch_funding_rate_history"]
    assert len(calls) == 3  # 100, 20, then an empty page
    assert calls[1][2] == int(rates[99].funding_time.timestamp() * 1000) + 1


def test_a_failing_call_holds_no_lock_while_it_backs_off(now: datetime) -> None:
    """Thread A's call fails and sleeps in its back-off; thread B's ticker goes through
    meanwhile (it used to wait for A's whole retry loop behind one process-wide lock)."""
    exchange = FakeExchange(now=now)
    in_backoff, release = threading.Event(), threading.Event()

    def sleep(seconds: float) -> None:
        in_backoff.set()
        assert release.wait(30)

    client = CcxtClient(exchange_id="fakex", exchange=exchange, sleep=sleep, budget=no_budget())
    client.fetch_ticker(symbol="BTC/USDT")  # markets loaded
    exchange.failures.append(ccxt.RequestTimeout("slow"))
    failing = threading.Thread(target=client.fetch_ohlcv, kwargs={"symbol": "BTC/USDT",
                                                                  "timeframe": "1h", "limit": 5})  # fmt: skip
    failing.start()
    assert in_backoff.wait(30)
    assert client.fetch_ticker(symbol="BTC/USDT").symbol == "BTC/USDT"  # not blocked
    release.set()
    failing.join(30)


def test_one_call_never_outlives_its_deadline(now: datetime) -> None:
    exchange = FakeExchange(now=now)
    slept: list[float] = []
    client = CcxtClient(exchange_id="fakex", exchange=exchange, sleep=slept.append, retries=50,
                        deadline_ms=10_000, budget=no_budget())  # fmt: skip
    exchange.failures += [ccxt.NetworkError("reset")] * 60
    with pytest.raises(ExchangeUnavailable):
        client.fetch_ticker(symbol="BTC/USDT")
    # Back-off doubles from 0.1 s (recorded, not slept); no retry is started that would end past
    # the 10 s deadline: 12.8 s more would.
    assert slept == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4]


def test_a_real_binance_client_honours_retry_after(now: datetime, sleeps: list[float]) -> None:
    """ccxt.binance itself (only HTTP faked): its 429 comes with Retry-After: 2."""
    http = FakeBinanceHTTP(now=now)
    client = CcxtClient(exchange_id="binance", exchange=fake_binance(http), sleep=sleeps.append,
                        budget=no_budget())  # fmt: skip
    http.queued.append((429, {"code": -1003, "msg": "Too many requests"}, {"Retry-After": "2"}))
    candles = client.fetch_ohlcv(symbol="BTC/USDT", timeframe="1h", limit=5)
    assert len(candles) == 5
    assert len(sleeps) == 1 and 1.9 < sleeps[0] <= 2.0  # the venue's wait, not our back-off
    assert all(t is not None and t <= 3.0 for t in http.timeouts)  # per-request timeout kept


def test_a_418_ban_is_never_retried_and_pauses_the_host(now: datetime, sleeps: list[float]) -> None:
    http = FakeBinanceHTTP(now=now)
    client = CcxtClient(exchange_id="binance", exchange=fake_binance(http), sleep=sleeps.append,
                        budget=no_budget())  # fmt: skip
    client.fetch_ticker(symbol="BTC/USDT")
    http.queued.append((418, {"code": -1003, "msg": "banned until 1700000000000"},
                        {"Retry-After": "120"}))  # fmt: skip
    requests_before = len(http.urls)
    with pytest.raises(ExchangeUnavailable, match="banned") as info:
        client.fetch_ticker(symbol="BTC/USDT")
    assert info.value.retry_after == 120
    assert len(http.urls) == requests_before + 1  # one request, no retry
    with pytest.raises(ExchangeUnavailable, match="no request slot"):
        client.fetch_ohlcv(symbol="BTC/USDT", timeframe="1h", limit=5)
    assert len(http.urls) == requests_before + 1  # the ban holds without asking the venue
    assert sleeps == []


def test_binance_duplicates_within_a_page_are_passed_on_for_ingest_to_dedupe(
    now: datetime,
) -> None:
    http = FakeBinanceHTTP(now=now, duplicate_in_page=True)
    client = CcxtClient(exchange_id="binance", exchange=fake_binance(http), budget=no_budget())
    candles = client.fetch_ohlcv(symbol="BTC/USDT", timeframe="1h", limit=6)
    times = [c.open_time for c in candles]
    assert len(times) != len(set(times))  # the quirk reaches us; services.clean_candles fixes it


def _reserve_slots(barrier: object, queue: object, count: int) -> None:
    from marketdata.clients.budget import RequestBudget

    budget = RequestBudget("budget-test", 25)
    barrier.wait()  # type: ignore[attr-defined]
    for _ in range(count):
        queue.put(budget.reserve_shared(max_wait=60)[0])  # type: ignore[attr-defined,index]


@pytest.mark.redis
def test_one_request_budget_is_shared_by_the_processes_of_a_host() -> None:
    """4 real processes reserve 10 slots each at the same moment: every slot is distinct and
    at least the interval after the previous one (atomic in Redis: no timing involved)."""
    from django_redis import get_redis_connection

    from marketdata.clients.budget import RequestBudget

    budget = RequestBudget("budget-test", 25)
    get_redis_connection("default").delete(market_cache.store_for(django_cache).key(budget.name))
    fork = multiprocessing.get_context("fork")
    barrier, queue = fork.Barrier(4), fork.Queue()
    processes = [fork.Process(target=_reserve_slots, args=(barrier, queue, 10)) for _ in range(4)]
    for process in processes:
        process.start()
    slots = sorted(queue.get(timeout=60) for _ in range(40))
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0] * 4
    assert all(b - a >= 25 for a, b in pairwise(slots))
    budget.pause(30)  # a Retry-After seen by one process: the next slot is 30 s away for all
    assert budget.reserve(max_wait=5) is None


def test_the_synthetic_venue_lists_every_demo_symbol_and_nothing_made_up() -> None:
    from trading.seed import SYMBOLS

    venue = SyntheticClient()
    assert all(venue.lists(symbol) for symbol, _ in SYMBOLS)
    assert venue.lists("BTC/USDT:USDT") and venue.lists("BTC/USD:BTC")
    assert not venue.lists("FOO/USDT") and not venue.lists("BTC/USDT:USDT-260327")
    assert not venue.lists("BTC/USDT:ETH")  # settled in neither of its currencies
