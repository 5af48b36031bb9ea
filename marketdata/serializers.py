"""Query parameters of the market data API: validated here, with messages that name the parameter."""

from __future__ import annotations

from rest_framework import serializers

from marketdata import indicators
from marketdata.services import MAX_LIMIT
from marketdata.symbols import normalize_symbol
from trading.models import Timeframe

TIMEFRAMES = ", ".join(Timeframe.values)


def _symbol(value: str) -> str:
    try:
        return normalize_symbol(value)
    except ValueError as exc:
        raise serializers.ValidationError(f"symbol: {exc}") from None


class SymbolQuery(serializers.Serializer):
    symbol = serializers.CharField(
        help_text="BASE/QUOTE, e.g. BTC/USDT (BTC/USDT:USDT for a perpetual).",
        error_messages={
            "required": "symbol is required, e.g. symbol=BTC/USDT.",
            "blank": "symbol is required, e.g. symbol=BTC/USDT.",
        },
    )

    def validate_symbol(self, value: str) -> str:
        return _symbol(value)


class SeriesQuery(SymbolQuery):
    timeframe = serializers.ChoiceField(
        choices=Timeframe.choices,
        help_text=f"One of {TIMEFRAMES}.",
        error_messages={
            "required": f"timeframe is required: one of {TIMEFRAMES}.",
            "invalid_choice": f'timeframe "{{input}}" is not one of {TIMEFRAMES}.',
        },
    )
    limit = serializers.IntegerField(
        min_value=1,
        max_value=MAX_LIMIT,
        default=200,
        help_text=f"Number of newest closed candles, 1-{MAX_LIMIT} (default 200).",
        error_messages={
            "invalid": "limit must be a whole number.",
            "min_value": f"limit must be between 1 and {MAX_LIMIT}.",
            "max_value": f"limit must be between 1 and {MAX_LIMIT}.",
        },
    )


class IndicatorsQuery(SeriesQuery):
    names = serializers.CharField(
        help_text=(
            "Comma-separated indicators, each name[:period...]: sma (20), ema (20), rsi (14), "
            "macd (12:26:9); e.g. rsi,macd or sma:50,ema:21."
        ),
        error_messages={
            "required": "names is required, e.g. names=rsi,macd.",
            "blank": "names is required, e.g. names=rsi,macd.",
        },
    )

    def validate_names(self, value: str) -> list[indicators.IndicatorSpec]:
        try:
            return indicators.parse_specs(value)
        except ValueError as exc:
            raise serializers.ValidationError(f"names: {exc}") from None


class RefreshRequest(serializers.Serializer):
    symbol = serializers.CharField(required=False, help_text="Only this symbol.")
    timeframe = serializers.ChoiceField(
        choices=Timeframe.choices,
        required=False,
        help_text="Only this timeframe.",
        error_messages={"invalid_choice": f'timeframe "{{input}}" is not one of {TIMEFRAMES}.'},
    )

    def validate_symbol(self, value: str) -> str:
        return _symbol(value)
