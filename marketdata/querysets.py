"""Read paths for stored market data; each names the index that serves it."""

from __future__ import annotations

from django.db import models


class CandleQuerySet(models.QuerySet):
    def series(self, *, exchange: str, symbol: str, timeframe: str) -> CandleQuerySet:
        return self.filter(exchange=exchange, symbol=symbol, timeframe=timeframe)

    def newest_first(self) -> CandleQuerySet:
        # With series(): a backward range scan of candle_series_time_uniq, no sort.
        return self.order_by("-open_time")


class FundingRateQuerySet(models.QuerySet):
    def for_symbol(self, *, exchange: str, symbol: str) -> FundingRateQuerySet:
        return self.filter(exchange=exchange, symbol=symbol)

    def newest_first(self) -> FundingRateQuerySet:
        return self.order_by("-funding_time")  # uses funding_symbol_time_uniq
