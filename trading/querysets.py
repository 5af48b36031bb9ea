"""Read paths. Every per-user read starts with ``for_owner`` and is answered by one index range scan;
the index each method relies on is named next to it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.db import connection, models
from django.db.models import Count, DecimalField, F, Sum
from django.db.models.expressions import RawSQL

from zerobot.lib.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS, money
from zerobot.lib.pagination import COUNT_CAP

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


class BotNotFound(Exception):
    """A ``bot`` filter names no bot of this user (the API answers 404)."""


# --- List totals: one statement per page, running totals where they answer ------------------------


def _table(model: str) -> str:
    return apps.get_model("trading", model)._meta.db_table


def count_capped_sql(queryset: models.QuerySet, cap: int = COUNT_CAP) -> tuple[str, list[Any]]:
    """COUNT of at most ``cap + 1`` rows of ``queryset`` (its index range, no sort)."""
    sql, params = queryset.order_by().values("id")[: cap + 1].query.sql_with_params()
    return f"SELECT COUNT(*) FROM ({sql}) capped", list(params)


def stats_sum_sql(
    column: str, owner_id: int, bot_id: int | None, symbol: str | None
) -> tuple[str, list[Any]]:
    """A running total summed over the user's BotSymbolStats rows (uses botstats_owner_idx)."""
    sql = f"SELECT COALESCE(SUM({column}), 0) FROM {_table('BotSymbolStats')} WHERE owner_id = %s"
    params: list[Any] = [owner_id]
    if bot_id is not None:
        sql += " AND bot_id = %s"
        params.append(bot_id)
    if symbol is not None:
        sql += " AND symbol = %s"
        params.append(symbol)
    return sql, params


def scalar_counts(
    owner_id: int, bot_id: int | None, parts: list[tuple[str, list[Any]]]
) -> list[int]:
    """Several scalar counts (and the bot ownership check) as ONE statement; raises BotNotFound
    when ``bot_id`` is given and is not one of the owner's bots."""
    selects: list[str] = []
    params: list[Any] = []
    if bot_id is not None:
        selects.append(f"(SELECT COUNT(*) FROM {_table('Bot')} WHERE id = %s AND owner_id = %s)")
        params += [bot_id, owner_id]
    for sql, part_params in parts:
        selects.append(f"({sql})")
        params += part_params
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(selects), params)
        row = list(cursor.fetchone())
    if bot_id is not None and not row.pop(0):
        raise BotNotFound
    return [int(value or 0) for value in row]


def _capped(total: int) -> tuple[int, bool]:
    # counted up to COUNT_CAP + 1: report the cap, flagged as a lower bound
    return min(total, COUNT_CAP), total <= COUNT_CAP


class BotQuerySet(models.QuerySet):
    def list_total(self) -> tuple[int, bool]:
        """(total, exact) of these bots (capped count)."""
        (total,) = scalar_counts(0, None, [count_capped_sql(self)])
        return _capped(total)

    def for_owner(self, user: AbstractBaseUser) -> BotQuerySet:
        return self.filter(owner=user)

    def newest_first(self) -> BotQuerySet:
        return self.order_by("-created_at", "-id")  # uses bot_owner_created_idx

    def api_rows(self) -> models.QuerySet:
        return self.values(*BOT_FIELDS)


# --- Unrealized PnL: the one expression, the one rounding rule -----------------------------------
# Unrealized PnL of a set of open positions = the exact sum of
#     (current_price - entry_price) x open quantity x (+1 long, -1 short)
# rounded ONCE to money (8 places, half-even: ``zerobot.lib.money.money``). One position is a set
# of one. Snapshots (``equity_snapshot_record``), the API rows (``api_rows``), the dashboard
# (``trading.dashboard.stats``) and ``Position.unrealized_pnl`` all use these definitions.


def unrealized_exact_sql(alias: str) -> str:
    """The exact (unrounded) unrealized PnL of the position row ``alias`` (open or not)."""
    return (
        f"(({alias}.current_price - {alias}.entry_price)"
        f" * ({alias}.quantity - {alias}.closed_quantity)"
        f" * CASE WHEN {alias}.side = 'long' THEN 1 ELSE -1 END)"
    )


def money_round_sql(expression: str) -> str:
    """``expression`` rounded to 8 places half-even, as ``money()`` does (PostgreSQL's ROUND
    rounds half away from zero, so ties go to the even neighbour by hand)."""
    if connection.vendor != "postgresql":
        return f"ROUND({expression}, {MONEY_DECIMAL_PLACES})"  # SQLite (make run): floats anyway
    x = expression
    half = "0.000000005"
    return (
        f"(CASE WHEN ABS({x} - TRUNC({x}, 8)) = {half}"
        f" AND MOD(TRUNC({x} * 100000000), 2) = 0"
        f" THEN TRUNC({x}, 8) ELSE ROUND({x}, 8) END)"
    )


def unrealized_pnl_expression() -> RawSQL:
    """Per position row: its unrealized PnL rounded by the rule, 0 once closed."""
    table = "trading_position"
    exact = f"CASE WHEN {table}.status = 'open' THEN {unrealized_exact_sql(table)} ELSE 0 END"
    return RawSQL(money_round_sql(exact), [], output_field=_money_output())  # noqa: S611 - constant SQL


def _money_output() -> DecimalField:
    return DecimalField(max_digits=MONEY_MAX_DIGITS + 20, decimal_places=MONEY_DECIMAL_PLACES)


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

    def list_total(
        self,
        *,
        owner_id: int,
        bot_id: int | None,
        symbol: str | None,
        side: str | None,
        status: str | None,
    ) -> tuple[int, bool]:
        """(total, exact) of this filtered list in one statement. Without a side filter: closed
        positions from the running totals (exact) + open ones counted on the partial open index
        (a few rows); with one (the totals do not split by side): a capped count."""
        if side is not None:
            (total,) = scalar_counts(owner_id, bot_id, [count_capped_sql(self)])
            return _capped(total)
        parts = []
        if status in (None, "closed"):
            parts.append(stats_sum_sql("closed_positions", owner_id, bot_id, symbol))
        if status in (None, "open"):
            # uses position_owner_open_idx / position_bot_open_idx (partial): a few rows
            parts.append(count_capped_sql(self.filter(status="open"), cap=10**9))
        return sum(scalar_counts(owner_id, bot_id, parts)), True

    def totals(self) -> dict[str, Any]:
        """``{"count", "margin", "unrealized_pnl"}`` of these (open) positions in one aggregate;
        unrealized PnL by the rounding rule (exact sum, rounded once)."""
        row = self.aggregate(
            count=Count("id"),
            margin=Sum("margin"),
            unrealized=Sum(RawSQL(unrealized_exact_sql("trading_position"), [])),  # noqa: S611
        )
        return {
            "count": row["count"],
            "margin": row["margin"] or Decimal(0),
            "unrealized_pnl": money(row["unrealized"] or 0),
        }

    def totals_per_bot(self) -> dict[int, dict[str, Any]]:
        """``totals()`` per bot, in one aggregate grouped by bot: ``{bot_id: {"count", "margin",
        "unrealized_pnl"}}`` (bots without a row here have none of these positions)."""
        rows = self.values("bot_id").annotate(
            count=Count("id"),
            margin=Sum("margin"),
            unrealized=Sum(RawSQL(unrealized_exact_sql("trading_position"), [])),  # noqa: S611
        )
        return {
            row["bot_id"]: {
                "count": row["count"],
                "margin": row["margin"] or Decimal(0),
                "unrealized_pnl": money(row["unrealized"] or 0),
            }
            for row in rows.order_by()
        }

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

    def list_total(
        self, *, owner_id: int, bot_id: int | None, symbol: str | None, filtered: bool
    ) -> tuple[int, bool]:
        """(total, exact) in one statement: from the running totals when only bot/symbol filter
        (exact, one index probe per stats row); otherwise counted on the index range, capped."""
        if not filtered:
            (total,) = scalar_counts(
                owner_id, bot_id, [stats_sum_sql("trade_count", owner_id, bot_id, symbol)]
            )
            return total, True
        (total,) = scalar_counts(owner_id, bot_id, [count_capped_sql(self)])
        return _capped(total)

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
# Lists are served from .values() rows (dicts), not model instances + ModelSerializer: no model
# instance and no serializer field walk per row. The field lists are the API's response shapes; trading/serializers.py
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
    "id", "name", "strategy", "strategy_params", "status", "status_reason", "paper_trading",
    "initial_capital", "capital", "symbols", "timeframe", "risk_params", "peak_equity",
    "max_drawdown_pct", "next_run_at", "last_cycle_at", "last_error", "cycle_count", "created_at",
    "updated_at",
)  # fmt: skip
