"""Input validation for writes, and the response shapes for the OpenAPI schema.

List endpoints render ``.values()`` rows directly (see ``trading/querysets.py``); the ``*Out``
serializers here describe those rows for drf-spectacular, and ``test_api.py`` checks every
response's keys equal the declared fields, so the schema cannot drift from the payloads.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from marketdata.timeframes import Timeframe
from trading.engine.strategies import STRATEGIES
from trading.errors import InvalidInput
from trading.models import Bot, Position, Trade
from trading.querysets import BOT_FIELDS, POSITION_FIELDS, TRADE_FIELDS
from trading.risk import validate_risk_params
from zerobot.lib.money import (
    MONEY_DECIMAL_PLACES,
    MONEY_MAX_DIGITS,
    PRICE_DECIMAL_PLACES,
    PRICE_MAX_DIGITS,
)
from zerobot.lib.serializers import StrictSerializer


class FiniteDecimalField(serializers.DecimalField):
    """DecimalField that also refuses NaN and +/-Infinity with a clear message."""

    default_error_messages = {"not_finite": "Must be a finite number (not NaN or Infinity)."}

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, str) and data.strip().lower().lstrip("+-") in {
            "nan",
            "inf",
            "infinity",
            "snan",
        }:
            self.fail("not_finite")
        value = super().to_internal_value(data)
        if not value.is_finite():
            self.fail("not_finite")
        return value


def money_field(**kwargs: Any) -> FiniteDecimalField:
    return FiniteDecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, **kwargs
    )


def price_field(**kwargs: Any) -> FiniteDecimalField:
    return FiniteDecimalField(
        max_digits=PRICE_MAX_DIGITS, decimal_places=PRICE_DECIMAL_PLACES, **kwargs
    )


# --- Bots ---------------------------------------------------------------------------------------


class RiskParamsIn(serializers.JSONField):
    """``risk_params``, validated by ``trading.risk.validate_risk_params`` (the one home of the
    rules; the services call it again, which is idempotent)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        try:
            return validate_risk_params(data)
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.message) from None


# Strategy names are the engine's registry (trading.engine.strategies); their parameters are
# checked by the services against it (strategy_settings), so the API and the admin agree.
def strategy_field(**kwargs: Any) -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=sorted(STRATEGIES),
        error_messages={"invalid_choice": f"strategy must be one of {', '.join(sorted(STRATEGIES))}."},
        help_text="Strategy name (README, 'How a bot trades').", **kwargs,
    )  # fmt: skip


def strategy_params_field(**kwargs: Any) -> serializers.DictField:
    return serializers.DictField(
        help_text="The strategy's parameters (README, 'How a bot trades'); defaults filled in.",
        **kwargs,
    )


# Fields of a bot that exist but no client writes (README, "Data model").
BOT_READ_ONLY = {
    "id": "assigned by the server.",
    "owner": "a bot belongs to the account that created it.",
    "status": "change it with POST /api/bots/{id}/start/, /pause/ or /stop/.",
    "capital": "free cash follows from initial_capital and the fills.",
    "peak_equity": "kept from the equity snapshots.",
    "max_drawdown_pct": "kept from the equity snapshots.",
    "status_reason": "set when a risk rule changes the status (e.g. a drawdown pause).",
    "next_run_at": "set by the engine's schedule.",
    "last_cycle_at": "set by the engine after each cycle.",
    "last_error": "set by the engine after each cycle.",
    "cycle_count": "counted by the engine.",
    "created_at": "set by the server.",
    "updated_at": "set by the server.",
}


class BotIn(StrictSerializer):
    read_only_reasons = BOT_READ_ONLY
    name = serializers.CharField(max_length=100)
    strategy = strategy_field()
    strategy_params = strategy_params_field(required=False)
    initial_capital = money_field(min_value=Decimal("0.00000001"))
    symbols = serializers.ListField(
        child=serializers.CharField(max_length=32), min_length=1, max_length=50
    )
    timeframe = serializers.ChoiceField(choices=Timeframe.choices, default=Timeframe.H1)
    risk_params = RiskParamsIn(required=False)
    paper_trading = serializers.BooleanField(default=True)

    def validate_paper_trading(self, value: bool) -> bool:
        if not value:
            raise serializers.ValidationError("Only paper trading is supported.")
        return value


class BotUpdateIn(StrictSerializer):
    """Every field optional (PATCH); money fields are not editable after creation."""

    read_only_reasons = {
        **BOT_READ_ONLY,
        "initial_capital": "fixed at creation (create a new bot for other capital).",
        "paper_trading": "fixed at creation.",
    }
    name = serializers.CharField(max_length=100, required=False)
    strategy = strategy_field(required=False)
    strategy_params = strategy_params_field(required=False)
    symbols = serializers.ListField(
        child=serializers.CharField(max_length=32), min_length=1, max_length=50, required=False
    )
    timeframe = serializers.ChoiceField(choices=Timeframe.choices, required=False)
    risk_params = RiskParamsIn(required=False)


class BotOut(serializers.ModelSerializer):
    class Meta:
        model = Bot
        fields = BOT_FIELDS


class BotStatusOut(serializers.Serializer):
    bot = BotOut()
    open_positions = serializers.IntegerField(
        help_text="Positions still open: stopping or pausing a bot never closes them."
    )


# --- Positions and trades -----------------------------------------------------------------------


class PositionOut(serializers.ModelSerializer):
    unrealized_pnl = money_field(read_only=True)

    class Meta:
        model = Position
        fields = POSITION_FIELDS


class DashboardPositionOut(PositionOut):
    bot_name = serializers.CharField()

    class Meta(PositionOut.Meta):
        fields = (*POSITION_FIELDS, "bot_name")


class PositionCloseIn(StrictSerializer):
    price = price_field(
        required=False, min_value=Decimal("0.000000000001"),
        help_text="Fill price; default: the position's current price.",
    )  # fmt: skip
    quantity = FiniteDecimalField(
        max_digits=PRICE_MAX_DIGITS, decimal_places=PRICE_DECIMAL_PLACES, required=False,
        min_value=Decimal("0.000000000001"), help_text="Part to close; default: all that is open.",
    )  # fmt: skip
    client_order_id = serializers.CharField(
        max_length=64, required=False,
        help_text="Idempotency key: sending the same id again returns the same result.",
    )  # fmt: skip


class TradeOut(serializers.ModelSerializer):
    class Meta:
        model = Trade
        fields = TRADE_FIELDS


# --- Pagination envelopes and dashboard shapes (schema only) -------------------------------------


def page_of(item: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    return type(
        name,
        (serializers.Serializer,),
        {
            "total": serializers.IntegerField(help_text="Rows matching the filters."),
            "total_is_lower_bound": serializers.BooleanField(
                required=False, help_text="Present (true) when total was capped at 10,000."
            ),
            "page": serializers.IntegerField(allow_null=True, help_text="Null in cursor mode."),
            "pages": serializers.IntegerField(),
            "limit": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        },
    )


BotPage = page_of(BotOut, "BotPage")
PositionPage = page_of(PositionOut, "PositionPage")
DashboardPositionPage = page_of(DashboardPositionOut, "DashboardPositionPage")
TradePage = page_of(TradeOut, "TradePage")


class BotCountsOut(serializers.Serializer):
    total = serializers.IntegerField()
    active = serializers.IntegerField()
    paused = serializers.IntegerField()
    stopped = serializers.IntegerField()
    inactive = serializers.IntegerField()


class StatsOut(serializers.Serializer):
    bots = BotCountsOut()
    initial_capital = money_field()
    equity = money_field(help_text="cash + margin + unrealized PnL")
    cash = money_field()
    margin = money_field(help_text="Cash locked in open positions.")
    realized_pnl = money_field(help_text="All-time gross realized PnL.")
    fees = money_field()
    net_realized_pnl = money_field()
    unrealized_pnl = money_field()
    return_pct = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    open_positions = serializers.IntegerField()
    trade_count = serializers.IntegerField()
    closed_positions = serializers.IntegerField()
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    win_rate = serializers.DecimalField(max_digits=6, decimal_places=4, allow_null=True)


class EquityPointOut(serializers.Serializer):
    t = serializers.DateTimeField(help_text="Start of the bucket (UTC).")
    equity = money_field()
    cash = money_field()
    unrealized_pnl = money_field()
    bots = serializers.IntegerField(help_text="Bots with a snapshot in this bucket.")


class EquityCurveOut(serializers.Serializer):
    bot = serializers.IntegerField(allow_null=True)
    period = serializers.CharField()
    start = serializers.DateTimeField(allow_null=True)
    end = serializers.DateTimeField()
    points = serializers.IntegerField(help_text="Requested maximum number of points.")
    results = EquityPointOut(many=True)


class PerformanceSummaryOut(serializers.Serializer):
    trades = serializers.IntegerField()
    closed_positions = serializers.IntegerField()
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    win_rate = serializers.DecimalField(max_digits=6, decimal_places=4, allow_null=True)
    realized_pnl = money_field()
    fees = money_field()
    net_pnl = money_field()
    profit_factor = serializers.DecimalField(max_digits=30, decimal_places=4, allow_null=True)
    average_win = money_field(allow_null=True)
    average_loss = money_field(allow_null=True)


class PerformanceBotOut(PerformanceSummaryOut):
    bot = serializers.IntegerField()
    bot_name = serializers.CharField()
    max_drawdown_pct = serializers.DecimalField(
        max_digits=10, decimal_places=4,
        help_text="All-time: the largest fall from a peak of this bot's equity snapshots, in %.",
    )  # fmt: skip


class PerformanceTotalOut(PerformanceSummaryOut):
    max_drawdown_pct = serializers.DecimalField(
        max_digits=10, decimal_places=4, allow_null=True,
        help_text="Over the period, on the summed equity curve (or the ?bot= bot's), in %.",
    )  # fmt: skip


class PerformanceSymbolOut(PerformanceSummaryOut):
    symbol = serializers.CharField()


class DailyPnlOut(serializers.Serializer):
    day = serializers.DateField(
        help_text="The UTC day, or the first day of the week, month or year."
    )
    trades = serializers.IntegerField()
    realized_pnl = money_field()
    fees = money_field()
    net_pnl = money_field()


class PerformanceOut(serializers.Serializer):
    period = serializers.CharField()
    total = PerformanceTotalOut()
    bots = PerformanceBotOut(many=True)
    symbols = PerformanceSymbolOut(many=True)
    daily_pnl = DailyPnlOut(many=True)
    daily_pnl_unit = serializers.ChoiceField(
        choices=["day", "week", "month", "year"],
        help_text="What one daily_pnl row covers: a day for periods up to 92 days (of history, "
        "for period=all), an ISO week (from Monday) up to 731 days, a calendar month up to "
        "3,653 days, a calendar year beyond.",
    )
