"""Market data API: thin views that read the query, call one service and return its bytes.

Bodies are the cached, pre-rendered JSON (no serializer or renderer on the hot path). Whether a
response came from the cache is said only in the ``X-Cache`` header (HIT: every part was cached).
The services validate symbol, timeframe, limit and indicator names (``InvalidRequest`` naming the
parameter), so the views only check presence and turn ``limit`` into a number: a DRF serializer
here would repeat that validation and cost a third of a cached request (its fields are deep-
copied per instance).
"""

from __future__ import annotations

import math
from typing import Any

from django.http import HttpResponse, QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata import quota, services
from marketdata.clients.base import ExchangeUnavailable, MarketDataError, NotSupported
from marketdata.services import DEFAULT_LIMIT, MAX_LIMIT, InvalidRequest
from marketdata.timeframes import Timeframe
from zerobot.lib.api import ORJSONRenderer

SYMBOL = OpenApiParameter(
    "symbol",
    str,
    required=True,
    description="A ccxt unified symbol: BTC/USDT (spot), BTC/USDT:USDT (perpetual), "
    "BTC/USDT:USDT-260327 (future), BTC/USD:BTC-260327-60000-C (option).",
)
TIMEFRAME = OpenApiParameter("timeframe", str, required=True, enum=Timeframe.values)
LIMIT = OpenApiParameter(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    description=f"Newest closed candles, 1-{MAX_LIMIT}.",
)
NAMES = OpenApiParameter(
    "names",
    str,
    required=True,
    description="Comma-separated name[:period...]: sma (20), ema (20), rsi (14), macd (12:26:9); "
    "e.g. rsi,macd or sma:50,ema:21.",
)
X_CACHE = OpenApiParameter(
    "X-Cache",
    str,
    OpenApiParameter.HEADER,
    response=True,
    enum=["HIT", "MISS"],
    description="HIT when the whole body came from the cache.",
)
JSON_BODY = OpenApiResponse(OpenApiTypes.OBJECT, "Rendered JSON (see the service docstrings).")


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "exchange_unavailable"


class BadGateway(exceptions.APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_code = "exchange_error"


def _invalid(message: str, field: str | None, code: str = "invalid") -> exceptions.ValidationError:
    body = {"detail": message, "code": code}
    if field:
        body["field"] = field
    return exceptions.ValidationError(body)


def required(params: QueryDict, name: str, example: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise InvalidRequest(f"{name} is required, e.g. {name}={example}.", field=name)
    return value


def limit_param(params: QueryDict) -> int:
    raw = params.get("limit", "").strip()
    if not raw:
        return DEFAULT_LIMIT
    try:
        return int(raw)
    except ValueError:
        raise InvalidRequest(
            f"limit must be a whole number between 1 and {MAX_LIMIT} (got {raw!r}).", field="limit"
        ) from None


def cached_response(cached: services.Cached) -> HttpResponse:
    return HttpResponse(
        cached.body,
        content_type="application/json",
        headers={"X-Cache": "HIT" if cached.hit else "MISS"},
    )


class MarketDataView(APIView):
    """Maps market data errors: bad parameters 400, exchange down 503, exchange errors 502."""

    renderer_classes = [ORJSONRenderer]  # errors only: successful bodies are already rendered

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        with quota.requested_by(None):  # whatever happens inside, nothing outlives the request
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # New series this request makes the server store count against its user (marketdata.quota).
        quota.bind(request.user.pk if request.user.is_authenticated else None)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, quota.SeriesQuotaExceeded):
            exc = exceptions.Throttled(wait=exc.retry_after, detail=exc.message)
        elif isinstance(exc, ExchangeUnavailable):
            retry_after = exc.retry_after if exc.retry_after is not None else 5
            exc = ServiceUnavailable(exc.message)
            self.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        elif isinstance(exc, NotSupported):
            exc = _invalid(exc.message, None, code="not_supported")
        elif isinstance(exc, MarketDataError) and exc.field:
            exc = _invalid(exc.message, exc.field)
        elif isinstance(exc, MarketDataError):
            exc = BadGateway(exc.message)
        return super().handle_exception(exc)


class OhlcvView(MarketDataView):
    @extend_schema(
        parameters=[SYMBOL, TIMEFRAME, LIMIT, X_CACHE],
        responses={200: JSON_BODY},
        summary="Newest closed OHLCV candles, oldest first",
    )
    def get(self, request: Request) -> HttpResponse:
        params = request.query_params
        return cached_response(
            services.ohlcv_get(
                symbol=required(params, "symbol", "BTC/USDT"),
                timeframe=required(params, "timeframe", "1h"),
                limit=limit_param(params),
            )
        )


class TickerView(MarketDataView):
    @extend_schema(
        parameters=[SYMBOL, X_CACHE],
        responses={200: JSON_BODY},
        summary="Last price, bid, ask and 24 h volume",
    )
    def get(self, request: Request) -> HttpResponse:
        symbol = required(request.query_params, "symbol", "BTC/USDT")
        return cached_response(services.ticker_get(symbol=symbol))


class FundingRateView(MarketDataView):
    @extend_schema(
        parameters=[SYMBOL, X_CACHE],
        responses={200: JSON_BODY},
        summary="Current funding rate of the symbol's perpetual",
    )
    def get(self, request: Request) -> HttpResponse:
        symbol = required(request.query_params, "symbol", "BTC/USDT")
        return cached_response(services.funding_rate_get(symbol=symbol))


class IndicatorsView(MarketDataView):
    @extend_schema(
        parameters=[SYMBOL, TIMEFRAME, NAMES, LIMIT, X_CACHE],
        responses={200: JSON_BODY},
        summary="SMA, EMA, RSI, MACD over the newest closed candles, warm-up-correct at any limit",
    )
    def get(self, request: Request) -> HttpResponse:
        params = request.query_params
        return cached_response(
            services.indicators_get(
                symbol=required(params, "symbol", "BTC/USDT"),
                timeframe=required(params, "timeframe", "1h"),
                specs=services.indicator_specs(required(params, "names", "rsi,macd")),
                limit=limit_param(params),
            )
        )


class RefreshView(MarketDataView):
    """Staff only: invalidate cached market data (everything, a symbol, a timeframe or both)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        request=inline_serializer(
            "MarketDataRefresh",
            {
                "symbol": serializers.CharField(required=False, help_text="Only this symbol."),
                "timeframe": serializers.ChoiceField(Timeframe.choices, required=False),
            },
        ),
        responses={200: JSON_BODY},
        summary="Invalidate cached market data and indicators (staff)",
    )
    def post(self, request: Request) -> Response:
        data: Any = request.data if isinstance(request.data, dict) else {}
        result = services.market_data_refresh(
            symbol=data.get("symbol") or None, timeframe=data.get("timeframe") or None
        )
        return Response(
            {
                "refreshed": result.describe(),
                "everything": result.everything,
                "scopes": len(result.scopes),
            }
        )
