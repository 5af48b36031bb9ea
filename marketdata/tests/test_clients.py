"""Clients: the real ccxt client against a fake ccxt exchange (no network), and the synthetic one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import ccxt
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

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
from marketdata.tests.fakes import FakeExchange
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
    assert starts[1] - starts[0] == starts[2] - starts[1] == 100 * 3_600_000


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
        exchange_id="fakex", exchange=FakeExchange(now=now, timeframes=("1m", "1h"))
    )
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
    client = CcxtClient(exchange_id="fakex", exchange=FakeExchange(now=now, funding=False))
    with pytest.raises(NotSupported, match="no funding rates"):
        client.fetch_funding_rate(symbol="BTC/USDT")
    client = CcxtClient(exchange_id="fakex", exchange=FakeExchange(now=now))
    with pytest.raises(UnknownSymbol, match="no perpetual market SOL/USDT:USDT"):
        client.fetch_funding_rate(symbol="SOL/USDT")


def test_a_real_ccxt_exchange_gets_the_timeout_and_rate_limiting() -> None:
    client = CcxtClient(exchange_id="okx", timeout_ms=1234)  # construction does no I/O
    assert isinstance(client.exchange, ccxt.okx)
    assert client.exchange.timeout == 1234
    assert client.exchange.enableRateLimit is True
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
    for timeframe in ("1m", "4h", "1d"):
        for c in SyntheticClient().fetch_ohlcv(symbol=symbol, timeframe=timeframe, limit=300):
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
