"""Market data API: thin views that validate parameters, call one service and return its bytes.

Bodies are the cached, pre-rendered JSON (no serializer or renderer on the hot path). Whether a
response came from the cache is said only in the ``X-Cache`` header (HIT: every part was cached).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from marketdata import services
from marketdata.clients.base import ExchangeUnavailable, MarketDataError, NotSupported
from marketdata.serializers import IndicatorsQuery, RefreshRequest, SeriesQuery, SymbolQuery

X_CACHE = OpenApiParameter(
    "X-Cache",
    str,
    OpenApiParameter.HEADER,
    response=True,
    enum=["HIT", "MISS"],
    description="HIT when the whole body came from the cache.",
)


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


def validated(serializer_class: type[Serializer], data: Any) -> dict[str, Any]:
    """The serializer's data, or a 400 ``{"detail", "field", "code"}`` for the first bad parameter."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        field, messages = next(iter(serializer.errors.items()))
        raise _invalid(str(messages[0]), None if field == "non_field_errors" else field)
    return serializer.validated_data


def cached_response(cached: services.Cached) -> HttpResponse:
    return HttpResponse(
        cached.body,
        content_type="application/json",
        headers={"X-Cache": "HIT" if cached.hit else "MISS"},
    )


class MarketDataView(APIView):
    """Maps market data errors: bad parameters 400, exchange down 503, exchange errors 502."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ExchangeUnavailable):
            exc = ServiceUnavailable(exc.message)
            self.headers["Retry-After"] = "5"
        elif isinstance(exc, NotSupported):
            exc = _invalid(exc.message, None, code="not_supported")
        elif isinstance(exc, MarketDataError) and exc.field:
            exc = _invalid(exc.message, exc.field)
        elif isinstance(exc, MarketDataError):
            exc = BadGateway(exc.message)
        return super().handle_exception(exc)


class OhlcvView(MarketDataView):
    @extend_schema(
        parameters=[SeriesQuery, X_CACHE],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, "Candles, oldest first.")},
        summary="Newest closed OHLCV candles",
    )
    def get(self, request: Request) -> HttpResponse:
        query = validated(SeriesQuery, request.query_params)
        return cached_response(services.ohlcv_get(**query))


class TickerView(MarketDataView):
    @extend_schema(
        parameters=[SymbolQuery, X_CACHE],
        responses={200: OpenApiTypes.OBJECT},
        summary="Last price, bid, ask and 24 h volume",
    )
    def get(self, request: Request) -> HttpResponse:
        query = validated(SymbolQuery, request.query_params)
        return cached_response(services.ticker_get(**query))


class FundingRateView(MarketDataView):
    @extend_schema(
        parameters=[SymbolQuery, X_CACHE],
        responses={200: OpenApiTypes.OBJECT},
        summary="Current funding rate of the symbol's perpetual",
    )
    def get(self, request: Request) -> HttpResponse:
        query = validated(SymbolQuery, request.query_params)
        return cached_response(services.funding_rate_get(**query))


class IndicatorsView(MarketDataView):
    @extend_schema(
        parameters=[IndicatorsQuery, X_CACHE],
        responses={200: OpenApiTypes.OBJECT},
        summary="SMA, EMA, RSI, MACD over the newest closed candles (warm-up values are null)",
    )
    def get(self, request: Request) -> HttpResponse:
        query = validated(IndicatorsQuery, request.query_params)
        return cached_response(
            services.indicators_get(
                symbol=query["symbol"],
                timeframe=query["timeframe"],
                limit=query["limit"],
                specs=query["names"],
            )
        )


class RefreshView(MarketDataView):
    """Staff only: invalidate cached market data (everything, a symbol, a timeframe or both)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        request=RefreshRequest,
        responses={200: OpenApiTypes.OBJECT},
        summary="Invalidate cached market data and indicators (staff)",
    )
    def post(self, request: Request) -> Response:
        query = validated(RefreshRequest, request.data)
        result = services.market_data_refresh(**query)
        return Response(
            {
                "refreshed": result.describe(),
                "everything": result.everything,
                "scopes": len(result.scopes),
            }
        )
