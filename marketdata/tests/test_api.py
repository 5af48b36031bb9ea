"""The market data API: auth, validation, cache header, query counts, error mapping, schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ccxt
import orjson
import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from marketdata import services
from marketdata.clients.base import ExchangeUnavailable
from marketdata.clients.ccxt_client import CcxtClient
from marketdata.series import WINDOW
from marketdata.tests.conftest import no_budget
from marketdata.tests.factories import store_candles
from marketdata.tests.fakes import FakeExchange
from trading.tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]
FULL = WINDOW + 500


@pytest.fixture
def api(now: datetime) -> APIClient:
    client = APIClient()
    client.force_authenticate(make_user())
    return client


@pytest.fixture
def staff_api(now: datetime) -> APIClient:
    client = APIClient()
    client.force_authenticate(make_user(is_staff=True))
    return client


def get(api: APIClient, path: str, **params: Any) -> Any:
    return api.get(f"/api/market/{path}", params)


def test_market_data_needs_a_login(now: datetime) -> None:
    for path in ("ohlcv", "ticker", "funding-rate", "indicators"):
        assert APIClient().get(f"/api/market/{path}", {"symbol": "BTC/USDT"}).status_code == 401


@pytest.mark.parametrize("limit", [5, 500])
def test_ohlcv_says_hit_or_miss_in_a_header_only(
    api: APIClient, limit: int, django_assert_num_queries: Any
) -> None:
    store_candles(limit=FULL)
    # Miss: 1 query, the newest 1,000 candles of the series (the window, candle_series_time_uniq),
    # whatever the limit; hit: none.
    with django_assert_num_queries(1):
        miss = get(api, "ohlcv", symbol="BTC/USDT", timeframe="1h", limit=limit)
    with django_assert_num_queries(0):
        hit = get(api, "ohlcv", symbol="btc/usdt", timeframe="1h", limit=limit)
    assert (miss.status_code, hit.status_code) == (200, 200)
    assert (miss["X-Cache"], hit["X-Cache"]) == ("MISS", "HIT")
    assert miss["Content-Type"] == "application/json"
    assert miss.content == hit.content
    body = orjson.loads(hit.content)
    assert set(body) == {"exchange", "symbol", "timeframe", "columns", "candles"}
    assert len(body["candles"]) == limit


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"timeframe": "1h"}, "symbol", "symbol is required"),
        ({"symbol": "BTCUSDT", "timeframe": "1h"}, "symbol", "symbol: 'BTCUSDT' is not a symbol"),
        ({"symbol": "BTC/USDT"}, "timeframe", "timeframe is required"),
        (
            {"symbol": "BTC/USDT", "timeframe": "2h"},
            "timeframe",
            "timeframe must be one of 1m, 5m,",
        ),
        (
            {"symbol": "BTC/USDT", "timeframe": "1h", "limit": "0"},
            "limit",
            "limit must be a whole number between 1 and 1000",
        ),
        (
            {"symbol": "BTC/USDT", "timeframe": "1h", "limit": "1001"},
            "limit",
            "limit must be a whole number between 1 and 1000",
        ),
        (
            {"symbol": "BTC/USDT", "timeframe": "1h", "limit": "ten"},
            "limit",
            "limit must be a whole number",
        ),
    ],
)
def test_bad_ohlcv_parameters_are_a_400_naming_the_parameter(
    api: APIClient, params: dict[str, str], field: str, message: str
) -> None:
    response = get(api, "ohlcv", **params)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field
    assert body["code"] == "invalid"
    assert body["detail"].startswith(message)


@pytest.mark.parametrize("limit", [30, 500])
def test_indicators(api: APIClient, limit: int, django_assert_num_queries: Any) -> None:
    store_candles(limit=FULL)
    params = {"symbol": "BTC/USDT", "timeframe": "1h", "names": "rsi,macd,sma:50", "limit": limit}
    # 1 query: the candles (window + the longest warm-up), read once for all three indicators.
    with django_assert_num_queries(1):
        miss = get(api, "indicators", **params)
    with django_assert_num_queries(0):
        hit = get(api, "indicators", **params)
    assert (miss.status_code, miss["X-Cache"], hit["X-Cache"]) == (200, "MISS", "HIT")
    body = orjson.loads(hit.content)
    assert list(body["indicators"]) == ["rsi:14", "macd:12:26:9", "sma:50"]
    assert len(body["indicators"]["rsi:14"]["values"]) == limit
    # A new indicator next to cached ones: the response is a miss (not every part was cached).
    params["names"] = "rsi,ema"
    assert get(api, "indicators", **params)["X-Cache"] == "MISS"
    response = get(api, "indicators", symbol="BTC/USDT", timeframe="1h", names="rsi,vwap")
    assert response.status_code == 400
    assert response.json()["field"] == "names"
    assert "'vwap' is not an indicator" in response.json()["detail"]


def test_ticker_and_funding_rate(api: APIClient, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        ticker = get(api, "ticker", symbol="ETH/USDT")
    assert (ticker.status_code, ticker["X-Cache"]) == (200, "MISS")
    assert set(ticker.json()) == {"exchange", "symbol", "price", "bid", "ask", "volume_24h", "at"}
    assert get(api, "ticker", symbol="ETH/USDT")["X-Cache"] == "HIT"
    with django_assert_num_queries(1):  # the funding rate's upsert
        funding = get(api, "funding-rate", symbol="ETH/USDT")
    assert funding.json()["symbol"] == "ETH/USDT:USDT"
    assert get(api, "funding-rate", symbol="ETH/USDT")["X-Cache"] == "HIT"
    bad = get(api, "ticker", symbol="ETH-USDT")
    assert (bad.status_code, bad.json()["field"]) == (400, "symbol")


@pytest.fixture
def exchange(monkeypatch: pytest.MonkeyPatch, now: datetime) -> FakeExchange:
    """The API served by the ccxt client over a fake exchange (no back-off sleeps)."""
    fake = FakeExchange(now=now)
    client = CcxtClient(
        exchange_id="fakex", exchange=fake, sleep=lambda seconds: None, budget=no_budget()
    )
    monkeypatch.setattr(services, "get_client", lambda: client)
    return fake


def test_exchange_errors_map_to_4xx_and_5xx(api: APIClient, exchange: FakeExchange) -> None:
    assert get(api, "ticker", symbol="BTC/USDT").status_code == 200
    unknown = get(api, "ticker", symbol="DOGE/USDT")
    assert (unknown.status_code, unknown.json()["field"]) == (400, "symbol")
    assert "fakex has no market DOGE/USDT" in unknown.json()["detail"]

    exchange.failures += [ccxt.RequestTimeout("timed out")] * 4
    down = get(api, "ohlcv", symbol="BTC/USDT", timeframe="1h", limit=5)
    assert (down.status_code, down["Retry-After"]) == (503, "5")
    assert down.json()["detail"].startswith("fakex fetch_ohlcv failed after 4 attempts")
    exchange.failures.clear()

    exchange.failures.append(ccxt.ExchangeError("internal error"))
    broken = get(api, "funding-rate", symbol="BTC/USDT")
    assert broken.status_code == 502


def test_refresh_is_for_staff_only(api: APIClient, staff_api: APIClient) -> None:
    store_candles(limit=10)
    get(staff_api, "ohlcv", symbol="BTC/USDT", timeframe="1h", limit=10)
    assert get(staff_api, "ohlcv", symbol="BTC/USDT", timeframe="1h", limit=10)["X-Cache"] == "HIT"
    assert api.post("/api/market/refresh", {}, format="json").status_code == 403
    assert APIClient().post("/api/market/refresh", {}, format="json").status_code == 401

    response = staff_api.post(
        "/api/market/refresh", {"symbol": "btc/usdt", "timeframe": "1h"}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {
        "refreshed": "1 cache scope(s): synthetic:BTC/USDT:1h",
        "everything": False,
        "scopes": 1,
    }
    assert get(staff_api, "ohlcv", symbol="BTC/USDT", timeframe="1h", limit=10)["X-Cache"] == "MISS"
    bad = staff_api.post("/api/market/refresh", {"timeframe": "2h"}, format="json")
    assert (bad.status_code, bad.json()["field"]) == (400, "timeframe")
    everything = staff_api.post("/api/market/refresh", {}, format="json")
    assert everything.json()["everything"] is True


def test_the_schema_declares_the_parameters() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    ohlcv = schema["paths"]["/api/market/ohlcv"]["get"]
    params = {p["name"]: p for p in ohlcv["parameters"]}
    assert {"symbol", "timeframe", "limit"} <= set(params)
    assert params["symbol"]["required"] is True
    assert params["limit"]["schema"]["maximum"] == 1000
    assert "X-Cache" in ohlcv["responses"]["200"]["headers"]
    indicators = schema["paths"]["/api/market/indicators"]["get"]
    assert "names" in {p["name"] for p in indicators["parameters"]}
    assert "/api/market/refresh" in schema["paths"]


@pytest.mark.parametrize(
    "symbol", ["BTC/USDT:USDT", "BTC/USD:BTC", "1000SHIB/USDT", "USDC.E/USDT", "btc-2/usdt"]
)
def test_every_ccxt_unified_symbol_is_accepted(api: APIClient, symbol: str, settings: Any) -> None:
    settings.MARKET_SYMBOLS = ("BTC/USDT", "BTC/USD", "1000SHIB/USDT", "USDC.E/USDT", "BTC-2/USDT")
    response = get(api, "ticker", symbol=symbol)
    assert response.status_code == 200, response.content
    assert response.json()["symbol"] == symbol.upper()


@pytest.mark.parametrize(
    "symbol", ["FOO/USDT", "BTC/USDT:USDT-260327", "BTC/USD:BTC-260327-60000-C", "BTC/USDT:ETH"]
)
def test_a_symbol_the_venue_does_not_list_is_a_400_and_stores_nothing(
    api: APIClient, symbol: str
) -> None:
    from marketdata.models import Candle

    for path, params in (("ohlcv", {"timeframe": "1h"}), ("ticker", {})):
        response = get(api, path, symbol=symbol, **params)
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["field"] == "symbol" and "has no market" in body["detail"]
    assert not Candle.objects.exists()


def test_an_unhandled_error_under_api_is_json(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(services, "ticker_get", broken)
    api.raise_request_exception = False
    response = get(api, "ticker", symbol="BTC/USDT")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "server_error"


def test_a_ban_says_when_to_retry(api: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def banned(**kwargs: object) -> None:
        raise ExchangeUnavailable("fakex: this IP is banned (HTTP 418)", retry_after=120)

    monkeypatch.setattr(services, "ticker_get", banned)
    response = get(api, "ticker", symbol="BTC/USDT")
    assert (response.status_code, response["Retry-After"]) == (503, "120")
