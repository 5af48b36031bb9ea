"""The per-user limit on new market data series (marketdata.quota), through the API, on the real
PostgreSQL and Redis; and its per-process fallback when Redis is unreachable."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from marketdata import quota
from marketdata.models import Candle
from trading.tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _series() -> set[tuple[str, str]]:
    return set(Candle.objects.values_list("symbol", "timeframe").distinct())


@pytest.fixture(autouse=True)
def _limit_of_two(settings: Any, now: datetime) -> None:
    settings.MARKET_NEW_SERIES_PER_USER = 2
    caches["default"].delete_pattern("md:newseries:*")
    quota._local.clear()


def test_a_user_opens_at_most_the_limit_of_new_series_per_day() -> None:
    alice, bob = _client(make_user()), _client(make_user())
    for symbol in ("BTC/USDT", "ETH/USDT"):
        response = alice.get("/api/market/ohlcv", {"symbol": symbol, "timeframe": "1h", "limit": 5})
        assert response.status_code == 200, response.content
    third = alice.get("/api/market/ohlcv", {"symbol": "SOL/USDT", "timeframe": "1h", "limit": 5})
    assert third.status_code == 429, third.content
    assert third.json()["code"] == "throttled"
    assert "new market data series" in third.json()["detail"]
    assert 0 < int(third["Retry-After"]) <= 86_400
    assert _series() == {("BTC/USDT", "1h"), ("ETH/USDT", "1h")}  # nothing stored for SOL

    # What is stored stays readable (also a new timeframe of it would count: it is a new series).
    again = alice.get("/api/market/ohlcv", {"symbol": "BTC/USDT", "timeframe": "1h", "limit": 9})
    assert again.status_code == 200
    # Another user has their own share, and reading what alice stored costs bob nothing.
    for symbol in ("BTC/USDT", "SOL/USDT", "DOGE/USDT"):
        response = bob.get("/api/market/ohlcv", {"symbol": symbol, "timeframe": "1h", "limit": 5})
        assert response.status_code == 200, (symbol, response.content)
    assert bob.get(
        "/api/market/indicators", {"symbol": "XRP/USDT", "timeframe": "1h", "names": "rsi"}
    ).status_code == 429  # fmt: skip
    assert ("XRP/USDT", "1h") not in _series()


def test_code_without_a_requesting_user_is_not_limited() -> None:
    from marketdata import prices

    candles = prices.closed_candles(
        ["BTC/USDT", "ETH/USDT", "SOL/USDT"], timeframe="4h", as_of=None, limit=3
    )
    assert len(candles) == 3
    assert {s for s, _ in _series()} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}


def test_the_limit_holds_per_process_when_redis_is_unreachable(settings: Any) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.1, "SOCKET_TIMEOUT": 0.1},
        },
    }
    with quota.requested_by(7):
        quota.charge_new_series("synthetic", "BTC/USDT", "1h")
        quota.charge_new_series("synthetic", "ETH/USDT", "1h")
        with pytest.raises(quota.SeriesQuotaExceeded):
            quota.charge_new_series("synthetic", "SOL/USDT", "1h")
    with quota.requested_by(8):  # someone else
        quota.charge_new_series("synthetic", "SOL/USDT", "1h")
