"""Stored market data: candles and funding rates, one row per exchange, symbol and instant.

Prices are exact decimals with the project-wide precision (``zerobot.lib.money``), times aware UTC.
Rows are written only by ``marketdata.services`` (bulk upserts) and read through the querysets.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from marketdata.querysets import CandleQuerySet, FundingRateQuerySet
from marketdata.timeframes import Timeframe
from zerobot.lib.fields import PriceField, QuantityField
from zerobot.lib.money import PRICE_DECIMAL_PLACES, PRICE_MAX_DIGITS


class Candle(models.Model):
    """One closed OHLCV candle; ``open_time`` is aligned to the timeframe."""

    exchange = models.CharField(max_length=32, help_text="ccxt exchange id, or 'synthetic'.")
    symbol = models.CharField(max_length=32)
    timeframe = models.CharField(max_length=3, choices=Timeframe.choices)
    open_time = models.DateTimeField()
    open = PriceField()
    high = PriceField()
    low = PriceField()
    close = PriceField()
    volume = QuantityField(help_text="Traded in the base currency.")

    objects = CandleQuerySet.as_manager()

    class Meta:
        constraints = [
            # One candle per series and instant (the upsert's conflict target). Its index also
            # serves every range read: "the newest N candles of a series" is a backward range
            # scan on it (services.ohlcv_get, sync resume points), so no other index is needed.
            models.UniqueConstraint(
                fields=["exchange", "symbol", "timeframe", "open_time"],
                name="candle_series_time_uniq",
            ),
            models.CheckConstraint(
                condition=Q(timeframe__in=Timeframe.values), name="candle_timeframe_valid"
            ),
            models.CheckConstraint(
                condition=Q(low__lte=models.F("high")), name="candle_low_lte_high"
            ),
            models.CheckConstraint(condition=Q(volume__gte=0), name="candle_volume_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.exchange} {self.symbol} {self.timeframe} {self.open_time:%Y-%m-%d %H:%M}"


class FundingRate(models.Model):
    """A perpetual's funding rate for one settlement (updated until it settles)."""

    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32, help_text="The perpetual, e.g. BTC/USDT:USDT.")
    funding_time = models.DateTimeField()
    rate = models.DecimalField(max_digits=PRICE_MAX_DIGITS, decimal_places=PRICE_DECIMAL_PLACES)
    updated_at = models.DateTimeField(auto_now=True)

    objects = FundingRateQuerySet.as_manager()

    class Meta:
        constraints = [
            # Upsert target; its index serves "latest funding rates of a symbol" backwards.
            models.UniqueConstraint(
                fields=["exchange", "symbol", "funding_time"], name="funding_symbol_time_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.exchange} {self.symbol} {self.funding_time:%Y-%m-%d %H:%M}: {self.rate}"
