"""Read paths. Every per-user read starts with ``for_owner`` and is answered by one index range scan;
the index each method relies on is named next to it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Case, DecimalField, ExpressionWrapper, F, Func, Value, When

from zerobot.lib.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


class BotQuerySet(models.QuerySet):
    def for_owner(self, user: AbstractBaseUser) -> BotQuerySet:
        return self.filter(owner=user)

    def newest_first(self) -> BotQuerySet:
        return self.order_by("-created_at", "-id")  # uses bot_owner_created_idx

    def api_rows(self) -> models.QuerySet:
        return self.values(*BOT_FIELDS)


def unrealized_pnl_expression() -> Func:
    """(current - entry) x open quantity x direction, rounded to money places; 0 once closed."""
    money = DecimalField(max_digits=MONEY_MAX_DIGITS + 20, decimal_places=MONEY_DECIMAL_PLACES)
    direction = Case(When(side="long", then=Value(1)), default=Value(-1))
    raw = ExpressionWrapper(
        (F("current_price") - F("entry_price"))
        * (F("quantity") - F("closed_quantity"))
        * direction,
        output_field=money,
    )
    # ROUND over the whole CASE, so a closed position reads "0.00000000" like every money field.
    return Func(
        Case(When(status="open", then=raw), default=Value(0), output_field=money),
        Value(MONEY_DECIMAL_PLACES),
        function="ROUND",
        output_field=money,
    )


class PositionQuerySet(models.QuerySet):
    def for_owner(self, user: AbstractBaseUser) -> PositionQuerySet:
        return self.filter(owner=user)

    def for_bot(self, bot_id: int) -> PositionQuerySet:
        return self.filter(bot_id=bot_id)

    def open(self) -> PositionQuerySet:
        # With for_owner: position_owner_open_idx; with for_bot: position_bot_open_idx (partial).
        return self.filter(status="open")

    def newest_first(self) -> PositionQuerySet:
        return self.order_by("-opened_at", "-id")

    def with_bot(self) -> PositionQuerySet:
        return self.select_related("bot")

    def api_rows(self, *, bot_name: bool = False) -> models.QuerySet:
        """Rows of the API's position shape, unrealized PnL computed by the database."""
        fields = [f for f in POSITION_FIELDS if f != "unrealized_pnl"]
        extra = {"bot_name": F("bot__name")} if bot_name else {}
        return self.annotate(unrealized_pnl=unrealized_pnl_expression()).values(
            *fields, "unrealized_pnl", **extra
        )


class TradeQuerySet(models.QuerySet):
    def for_owner(self, user: AbstractBaseUser) -> TradeQuerySet:
        return self.filter(owner=user)

    def for_bot(self, bot_id: int) -> TradeQuerySet:
        return self.filter(bot_id=bot_id)

    def for_symbol(self, symbol: str) -> TradeQuerySet:
        return self.filter(symbol=symbol)

    def newest_first(self) -> TradeQuerySet:
        # uses trade_owner_time_idx / trade_bot_time_idx / trade_symbol_time_idx
        return self.order_by("-executed_at", "-id")

    def api_rows(self) -> models.QuerySet:
        return self.values(*TRADE_FIELDS)


class EquitySnapshotQuerySet(models.QuerySet):
    def for_owner(self, user: AbstractBaseUser) -> EquitySnapshotQuerySet:
        return self.filter(owner=user)

    def for_bot(self, bot_id: int) -> EquitySnapshotQuerySet:
        return self.filter(bot_id=bot_id)

    def since(self, start: datetime | None) -> EquitySnapshotQuerySet:
        return self if start is None else self.filter(taken_at__gte=start)

    def newest_first(self) -> EquitySnapshotQuerySet:
        return self.order_by("-taken_at")  # with for_bot: equity_bot_time_uniq


class AccountEquityQuerySet(models.QuerySet):
    def for_owner(self, user: AbstractBaseUser) -> AccountEquityQuerySet:
        return self.filter(owner=user)

    def since(self, start: datetime | None) -> AccountEquityQuerySet:
        return self if start is None else self.filter(taken_at__gte=start)

    def newest_first(self) -> AccountEquityQuerySet:
        return self.order_by("-taken_at")  # uses account_owner_time_uniq


# --- API row shapes -----------------------------------------------------------------------------
# Lists are served from .values() rows (dicts), not model instances + ModelSerializer: ~10x less
# Python per row (FACTS.md). The field lists are the API's response shapes; trading/serializers.py
# declares the same shapes for the OpenAPI schema and a test keeps both in step.

TRADE_FIELDS = (
    "id", "bot", "position", "symbol", "side", "quantity", "price", "fee", "realized_pnl",
    "executed_at", "client_order_id",
)  # fmt: skip
POSITION_FIELDS = (
    "id", "bot", "symbol", "side", "quantity", "closed_quantity", "leverage", "entry_price",
    "current_price", "stop_loss", "take_profit", "status", "opened_at", "closed_at", "margin",
    "realized_pnl", "fees", "unrealized_pnl",
)  # fmt: skip
BOT_FIELDS = (
    "id", "name", "strategy", "status", "paper_trading", "initial_capital", "capital", "symbols",
    "timeframe", "risk_params", "peak_equity", "max_drawdown_pct", "created_at", "updated_at",
)  # fmt: skip
