"""Admin for stored market data (millions of candles): no full COUNT(*), exact-match search, and an
action that refreshes the cached market data of the selected rows' series."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from marketdata import services
from marketdata.models import Candle, FundingRate


@admin.register(Candle)
class CandleAdmin(admin.ModelAdmin):
    list_display = ("exchange", "symbol", "timeframe", "open_time", "open", "high", "low", "close",
                    "volume")  # fmt: skip
    # Not "exchange": its filter lists choices with SELECT DISTINCT over every candle.
    list_filter = ("timeframe",)
    search_fields = ("=symbol",)
    show_full_result_count = False
    ordering = ("-id",)
    actions = ["refresh_cache"]

    @admin.action(description="Refresh cached market data and indicators of these series")
    def refresh_cache(self, request: HttpRequest, queryset: QuerySet[Candle]) -> None:
        series = sorted(set(queryset.values_list("exchange", "symbol", "timeframe")))
        for exchange, symbol, timeframe in series:
            services.market_data_refresh(exchange=exchange, symbol=symbol, timeframe=timeframe)
        self.message_user(
            request, f"Refreshed the cache of {len(series)} series.", level=messages.SUCCESS
        )


@admin.register(FundingRate)
class FundingRateAdmin(admin.ModelAdmin):
    list_display = ("exchange", "symbol", "funding_time", "rate", "updated_at")
    list_filter = ("exchange",)
    search_fields = ("=symbol",)
    show_full_result_count = False
    ordering = ("-id",)
    actions = ["refresh_cache"]

    @admin.action(description="Refresh cached funding rates and tickers of these symbols")
    def refresh_cache(self, request: HttpRequest, queryset: QuerySet[FundingRate]) -> None:
        pairs = sorted(set(queryset.values_list("exchange", "symbol")))
        for exchange, symbol in pairs:
            services.market_data_refresh(exchange=exchange, symbol=symbol)
        self.message_user(
            request, f"Refreshed the cache of {len(pairs)} symbol(s).", level=messages.SUCCESS
        )
