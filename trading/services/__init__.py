"""Every write to trading data goes through these functions (``from trading import services``).

Split by domain: ``bots``, ``positions`` (fills, marks, exits, liquidation), ``totals`` (running
totals), ``equity`` (snapshots, summed curve), ``rollups`` (the curves per hour, day, week).
Every function takes keyword-only arguments and
raises ``trading.errors.TradingError`` subclasses (the API maps each to a 4xx/503 with its message):
``InvalidInput`` 400, ``InsufficientCapital`` 400, ``InvalidState`` 409, ``RiskRefused`` 409,
``PriceUnavailable`` 503. Rows are locked in the one order of ``trading.locks`` (owner -> bot ->
positions by pk). The functions that write money run their own ``transaction.atomic(durable=True)``:
never call them inside an atomic block.

Public API (what the views, the admin, the commands and the bot engine call):

    bot_create(*, owner, name, strategy, initial_capital, symbols, timeframe="1h",
               risk_params=None, paper_trading=True) -> Bot
    bot_changes_validate(**changes) -> dict
    bot_update(*, bot, **changes) -> Bot
    bot_set_status(*, bot, status, reason="") -> Bot
    bot_delete(*, bot) -> None

    position_open(*, bot, symbol, side, quantity, price, client_order_id, leverage=1, fee=0,
                  stop_loss=None, take_profit=None, executed_at=None) -> Position
    position_close(*, position, client_order_id, price=None, quantity=None, fee=None,
                   fee_rate=None, executed_at=None, reason="manual") -> Position
    position_close_at_market(*, position, price=None, quantity=None, client_order_id=None,
                             reason="manual") -> Position
    position_mark_fresh(*, position) -> Decimal
    positions_mark(*, prices: Mapping[str, Decimal], bot_id: int | None = None) -> int
    positions_apply_exits(*, bot, prices: Mapping[str, Decimal], as_of=None) -> list[Position]

    equity_snapshot_record(*, bot, taken_at=None) -> EquitySnapshot
    equity_snapshots_record(*, bot_ids, taken_at) -> list[EquitySnapshot]   (a batch, any owners)
    account_equity_rebuild(*, owner_id) -> None
    equity_rollups_apply(snapshots) -> None          (the snapshot writers' hook, in their transaction)
    equity_rollups_rebuild(*, owner_ids, bots=True) -> None
    stats_rebuild(*, bot_ids=None) -> None
    pnl_rollups_rebuild(*, bot_ids) -> None

Pure rule functions for the engine live in ``trading.risk`` (``exit_reason``,
``liquidation_price``, ``is_liquidated``, ``open_refusal``, ``RiskLimits.of``,
``default_exit_levels``, ``drawdown_pct``, ``PAPER_FEE_RATE``); close reasons are
``trading.models.TradeReason`` / ``CLOSE_REASONS``.

Ledger invariant, per bot, after every service call:

    capital = initial_capital + sum(trade.realized_pnl) - sum(trade.fee) - sum(open position.margin)
    capital >= 0
"""

from __future__ import annotations

from trading.risk import PAPER_FEE_RATE
from trading.services.bots import (
    BOT_TRANSITIONS,
    MAX_SYMBOLS_PER_BOT,
    bot_changes_validate,
    bot_create,
    bot_delete,
    bot_set_status,
    bot_update,
)
from trading.services.equity import (
    account_equity_rebuild,
    equity_snapshot_record,
    equity_snapshots_record,
)
from trading.services.positions import (
    PRICE_BAND,
    position_close,
    position_close_at_market,
    position_mark_fresh,
    position_open,
    positions_apply_exits,
    positions_mark,
)
from trading.services.rollups import equity_rollups_apply, equity_rollups_rebuild
from trading.services.totals import pnl_rollups_rebuild, stats_add, stats_rebuild

__all__ = [
    "BOT_TRANSITIONS",
    "MAX_SYMBOLS_PER_BOT",
    "PAPER_FEE_RATE",
    "PRICE_BAND",
    "account_equity_rebuild",
    "bot_changes_validate",
    "bot_create",
    "bot_delete",
    "bot_set_status",
    "bot_update",
    "equity_rollups_apply",
    "equity_rollups_rebuild",
    "equity_snapshot_record",
    "equity_snapshots_record",
    "pnl_rollups_rebuild",
    "position_close",
    "position_close_at_market",
    "position_mark_fresh",
    "position_open",
    "positions_apply_exits",
    "positions_mark",
    "stats_add",
    "stats_rebuild",
]
