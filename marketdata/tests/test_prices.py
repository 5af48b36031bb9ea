"""Typed price reads (``marketdata.prices``): Decimals equal to the ticker the API serves."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from marketdata import prices, services
from marketdata.clients.ccxt_client import CcxtClient
from marketdata.tests.fakes import FakeExchange

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


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
