"""Admin: the candle list renders without N+1, and its action refreshes the series' cache."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.test import Client

from marketdata import services
from marketdata.models import Candle, FundingRate
from marketdata.tests.factories import store_candles
from trading.tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def admin_client(now: datetime) -> Client:
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def test_candle_action_refreshes_the_selected_series(admin_client: Client) -> None:
    store_candles(symbol="BTC/USDT", limit=20)
    store_candles(symbol="ETH/USDT", limit=20)
    for symbol in ("BTC/USDT", "ETH/USDT"):
        services.ohlcv_get(symbol=symbol, timeframe="1h", limit=20)
    selected = Candle.objects.filter(symbol="BTC/USDT").values_list("pk", flat=True)[:3]
    response = admin_client.post(
        "/admin/marketdata/candle/",
        {"action": "refresh_cache", "_selected_action": list(selected)},
        follow=True,
    )
    assert response.status_code == 200
    assert "Refreshed the cache of 1 series." in response.content.decode()
    assert not services.ohlcv_get(symbol="BTC/USDT", timeframe="1h", limit=20).hit
    assert services.ohlcv_get(symbol="ETH/USDT", timeframe="1h", limit=20).hit


def test_funding_action_refreshes_the_symbol(admin_client: Client) -> None:
    services.funding_rate_get(symbol="BTC/USDT")
    assert services.funding_rate_get(symbol="BTC/USDT").hit
    response = admin_client.post(
        "/admin/marketdata/fundingrate/",
        {"action": "refresh_cache", "_selected_action": [FundingRate.objects.get().pk]},
        follow=True,
    )
    assert "Refreshed the cache of 1 symbol(s)." in response.content.decode()
    assert not services.funding_rate_get(symbol="BTC/USDT").hit


@pytest.mark.parametrize("rows", [20, 200])
def test_candle_changelist_query_count_is_flat(
    admin_client: Client, rows: int, django_assert_num_queries: Any
) -> None:
    store_candles(limit=rows)
    # session, user, the paginator's count, the page of candles: never per row.
    with django_assert_num_queries(4):
        assert admin_client.get("/admin/marketdata/candle/").status_code == 200
