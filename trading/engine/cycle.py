"""One bot cycle at one instant ``as_of`` (README, "How a bot trades").

``cycles_run(bot_ids, as_of)`` runs the cycles of a group of bots (of any owners: the bots the
schedule made due in one tick) at one ``as_of`` (a runner's unit of work; a single bot is a
group of one):

1. **Load** (3 queries for the whole group, whatever the positions): the bots, their open
   positions (``position_bot_open_idx``), and the fills they already have at ``as_of`` (a retried
   cycle skips every symbol that already traded at this instant).
2. The database connection goes back to the pool; **market reads** through the typed reads
   (``marketdata.prices``): one ``last_prices`` MGET for all the group's symbols, one
   ``indicator_values`` MGET per timeframe for every indicator its strategies declare.
3. **Decide** in pure Python: mark every open position at its last price; exits first (liquidation,
   stop-loss, take-profit, then the strategy's exit signal, each with its reason), then entries
   (the strategy's open signal, sized from ``max_position_pct`` of equity after fees and
   slippage). No entry in a symbol that exited on a risk rule this cycle.
4. **Write** through the services: ``positions_mark`` (a fixed number of statements), one
   ``position_close``/``position_open`` per order (each its own short transaction, idempotent on
   its deterministic ``client_order_id``), then one equity snapshot batch for the group
   (``services.equity_snapshots_record``: one account row per owner).

Network I/O (cache, exchange) is never inside a transaction, and the connection is not held while
waiting on them. Errors of one bot are caught and recorded on its result (``error``); the others
of the group go on.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import Any

from django.conf import settings
from django.db import connection

from marketdata import prices as market
from marketdata.cache import release_db_connection
from marketdata.clients.base import MarketDataClient, MarketDataError
from trading import events, services
from trading import risk as risk_rules
from trading.engine.strategies import Action, Strategy, SymbolView, get_strategy
from trading.engine.strategies.base import ParamError
from trading.errors import TradingError
from trading.models import Bot, Position, Trade
from zerobot.lib.money import MONEY_CONTEXT, money

logger = logging.getLogger("zerobot.engine")

ZERO = Decimal(0)
HUNDRED = Decimal(100)
QUANTITY_STEP = Decimal("0.00000001")  # orders are sized down to 8 decimals

BOT_COLUMNS = (
    "id", "owner_id", "name", "strategy", "strategy_params", "status", "capital", "symbols",
    "timeframe", "risk_params", "last_cycle_at",
)  # fmt: skip


@dataclass
class CycleResult:
    bot_id: int
    as_of: datetime
    ran: bool = False  # False: not active (or not found); nothing was done
    opened: int = 0
    closed: dict[str, int] = field(default_factory=dict)  # reason -> positions closed
    rejected: list[str] = field(default_factory=list)  # orders the services refused, and why
    error: str = ""
    queries: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # load/market/decide/write/snapshot


@dataclass
class _Order:
    symbol: str
    action: str  # client order id part: open_long, open_short, or close.<position id>
    reason: str
    position: Position | None = None
    side: str = ""
    quantity: Decimal = ZERO
    price: Decimal = ZERO
    leverage: Decimal = Decimal(1)
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None


@dataclass
class _BotState:
    bot: Bot
    positions: list[Position]
    traded: set[str]  # symbols with a fill at as_of already (a retried cycle)
    strategy: Strategy | None = None
    params: dict[str, Any] = field(default_factory=dict)
    error: str = ""


# --- helpers --------------------------------------------------------------------------------------


def client_order_id(bot_id: int, as_of: datetime, symbol: str, action: str) -> str:
    """Deterministic id of one order: the same bot, instant, symbol and action give the same id
    (at most 64 characters: a long symbol is replaced by a digest of it)."""
    stamp = int(as_of.timestamp() * 1000)  # ms: cycles may be less than a second apart
    value = f"e{bot_id}.{stamp}.{action}.{symbol}"
    if len(value) > 64:
        digest = hashlib.blake2b(symbol.encode(), digest_size=8).hexdigest()
        value = f"e{bot_id}.{stamp}.{action}.{digest}"
    return value


class _QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


@contextmanager
def count_queries() -> Iterator[_QueryCounter]:
    """Counts the statements this thread's connection runs inside the block."""
    counter = _QueryCounter()
    with connection.execute_wrapper(counter):
        yield counter


def fee_rate() -> Decimal:
    return Decimal(settings.ENGINE_FEE_RATE)


def slippage() -> Decimal:
    return Decimal(settings.ENGINE_SLIPPAGE_PCT) / HUNDRED


def _fill_price(mark: Decimal, *, buying: bool) -> Decimal:
    """Paper fill: the mark moved against the order by the slippage setting."""
    with localcontext(MONEY_CONTEXT):
        factor = 1 + slippage() if buying else 1 - slippage()
        return (mark * factor).quantize(Decimal("1e-12"))


def order_size(
    *, equity: Decimal, cash: Decimal, pct: Decimal, price: Decimal, leverage: Decimal
) -> Decimal:
    """The quantity whose margin plus opening fee uses ``pct`` % of ``equity`` (at most the free
    cash): ``qty = budget / (price x (1 / leverage + fee_rate))``, rounded down to 8 decimals."""
    with localcontext(MONEY_CONTEXT):
        budget = min(equity * pct / HUNDRED, cash)
        if budget <= 0 or price <= 0:
            return ZERO
        quantity = (budget / (price * (1 / leverage + fee_rate()))).quantize(
            QUANTITY_STEP, rounding=ROUND_DOWN
        )
        # The services round margin and fee to money places: step down until they fit the cash.
        while quantity > 0 and money(quantity * price / leverage) + money(
            quantity * price * fee_rate()
        ) > min(budget, cash):
            quantity -= QUANTITY_STEP
        return max(quantity, ZERO)


def _direction(side: str) -> int:
    return 1 if side == Position.Side.LONG else -1


# --- 1. load ---------------------------------------------------------------------------------------


def _load(bot_ids: list[int], as_of: datetime) -> dict[int, _BotState]:
    bots = Bot.objects.filter(pk__in=bot_ids).only(*BOT_COLUMNS).order_by("pk")
    states = {bot.pk: _BotState(bot, [], set()) for bot in bots}
    if not states:
        return states
    ids = list(states)
    # uses position_bot_open_idx
    for position in Position.objects.filter(bot_id__in=ids, status="open").order_by("bot_id", "id"):
        states[position.bot_id].positions.append(position)
    # uses trade_bot_time_idx: engine fills are recorded at their cycle's as_of
    for bot_id, symbol in Trade.objects.filter(bot_id__in=ids, executed_at=as_of).values_list(
        "bot_id", "symbol"
    ):
        states[bot_id].traded.add(symbol)
    for state in states.values():
        try:
            state.strategy = get_strategy(state.bot.strategy)
            state.params = state.strategy.validate(state.bot.strategy_params or {})
        except ParamError as exc:
            state.error = f"strategy: {exc}"  # exits still apply; no new orders
    return states


# --- 2. market -------------------------------------------------------------------------------------


@dataclass
class _Market:
    prices: dict[str, Decimal]
    indicators: dict[str, dict[str, dict[str, Any]]]  # timeframe -> symbol -> label -> series


def _read_market(
    states: Iterable[_BotState], as_of: datetime, client: MarketDataClient | None
) -> _Market:
    symbols: dict[str, None] = {}
    wanted: dict[str, tuple[dict[str, None], dict[str, None], int]] = {}
    for state in states:
        for symbol in state.bot.symbols:
            symbols[symbol] = None
        for position in state.positions:
            symbols[position.symbol] = None
        if state.strategy is None or state.error:
            continue
        labels = state.strategy.indicators(state.params)
        if not labels:
            continue
        tf_symbols, tf_labels, history = wanted.get(state.bot.timeframe, ({}, {}, 1))
        tf_symbols.update(dict.fromkeys(state.bot.symbols))
        tf_labels.update(dict.fromkeys(labels))
        wanted[state.bot.timeframe] = (tf_symbols, tf_labels, max(history, state.strategy.history))
    prices = market.last_prices(list(symbols), as_of=as_of, client=client) if symbols else {}
    indicators: dict[str, dict[str, dict[str, Any]]] = {}
    for timeframe, (tf_symbols, labels, history) in wanted.items():
        indicators[timeframe] = market.indicator_values(
            list(tf_symbols), timeframe=timeframe, specs=list(labels), as_of=as_of,
            limit=history, client=client,
        )  # fmt: skip
    return _Market(prices, indicators)


# --- 3. decide -------------------------------------------------------------------------------------


def _exit_reason(position: Position, mark: Decimal) -> str | None:
    """Liquidation, stop-loss or take-profit (``trading.risk.exit_reason``, in that order)."""
    return risk_rules.exit_reason(
        side=position.side, price=mark, stop_loss=position.stop_loss,
        take_profit=position.take_profit, liquidation=position.liquidation_price,
    )  # fmt: skip


def _view(state: _BotState, market: _Market, symbol: str, side: str | None) -> SymbolView:
    series = market.indicators.get(state.bot.timeframe, {}).get(symbol, {})
    return SymbolView(
        symbol=symbol,
        price=float(market.prices[symbol]),
        indicators={label: s.outputs for label, s in series.items()},
        position=side,
    )


def _decide(state: _BotState, market: _Market) -> list[_Order]:
    bot = state.bot
    orders: list[_Order] = []
    risk = bot.risk_params or {}
    by_symbol: dict[str, list[Position]] = defaultdict(list)
    for position in state.positions:
        by_symbol[position.symbol].append(position)
    # Equity at the marks: free cash + margin held + unrealized PnL.
    equity = bot.capital
    for position in state.positions:
        mark = market.prices[position.symbol]
        equity += position.margin + money(
            (mark - position.entry_price) * position.open_quantity * _direction(position.side)
        )
    cash = bot.capital
    can_trade = state.strategy is not None and not state.error and bot.status == Bot.Status.ACTIVE
    for symbol in bot.symbols:
        if symbol in state.traded or symbol not in market.prices:
            continue
        mark = market.prices[symbol]
        held = by_symbol.get(symbol, [])
        risk_exit = False
        remaining: list[Position] = []
        for position in held:
            reason = _exit_reason(position, mark)
            if reason is None:
                remaining.append(position)
                continue
            risk_exit = True
            price = position.liquidation_price if reason == "liquidation" else mark
            orders.append(_close(position, reason, price))
        if not can_trade:
            continue
        assert state.strategy is not None
        try:
            if remaining:
                action = state.strategy.decide(
                    _view(state, market, symbol, remaining[0].side), state.params
                )
                if action is Action.EXIT:
                    orders.extend(_close(p, "signal", mark) for p in remaining)
                    remaining = []
            if remaining or risk_exit:
                continue
            action = state.strategy.decide(_view(state, market, symbol, None), state.params)
        except (KeyError, IndexError, ValueError) as exc:  # a series the market could not give
            state.error = f"strategy {bot.strategy} on {symbol}: {exc!r}"
            continue
        if action not in (Action.OPEN_LONG, Action.OPEN_SHORT):
            continue
        side = Position.Side.LONG if action is Action.OPEN_LONG else Position.Side.SHORT
        order = _open(state, symbol, side, mark, equity=equity, cash=cash, risk=risk)
        if order is not None:
            cash -= money(order.quantity * order.price / order.leverage) + money(
                order.quantity * order.price * fee_rate()
            )
            orders.append(order)
    return orders


def _close(position: Position, reason: str, mark: Decimal) -> _Order:
    # Liquidations fill at the liquidation price; other exits at the mark with slippage.
    long = position.side == Position.Side.LONG
    price = mark if reason == "liquidation" else _fill_price(mark, buying=not long)
    return _Order(position.symbol, f"close.{position.pk}", reason, position=position, price=price)


def _open(
    state: _BotState,
    symbol: str,
    side: str,
    mark: Decimal,
    *,
    equity: Decimal,
    cash: Decimal,
    risk: dict[str, Any],
) -> _Order | None:
    long = side == Position.Side.LONG
    price = _fill_price(mark, buying=long)
    leverage = Decimal(state.params.get("leverage", 1))
    pct = Decimal(str(risk.get("max_position_pct", "10")))
    quantity = order_size(equity=equity, cash=cash, pct=pct, price=price, leverage=leverage)
    if quantity <= 0:
        return None
    stop_loss = take_profit = None
    with localcontext(MONEY_CONTEXT):
        if risk.get("stop_loss_pct"):
            move = Decimal(str(risk["stop_loss_pct"])) / HUNDRED
            stop_loss = (price * (1 - move if long else 1 + move)).quantize(Decimal("1e-12"))
        if risk.get("take_profit_pct"):
            move = Decimal(str(risk["take_profit_pct"])) / HUNDRED
            take_profit = (price * (1 + move if long else 1 - move)).quantize(Decimal("1e-12"))
    if stop_loss is not None and stop_loss <= 0:
        stop_loss = None
    if take_profit is not None and take_profit <= 0:
        take_profit = None
    return _Order(
        symbol, f"open_{side}", "signal", side=side, quantity=quantity, price=price,
        leverage=leverage, stop_loss=stop_loss, take_profit=take_profit,
    )  # fmt: skip


# --- 4. write --------------------------------------------------------------------------------------


def _mark(state: _BotState, market: _Market, as_of: datetime) -> None:
    """Mark the bot's open positions at their symbols' last prices: one statement."""
    marks = {
        p.symbol: market.prices[p.symbol] for p in state.positions if p.symbol in market.prices
    }
    if any(p.current_price != marks.get(p.symbol, p.current_price) for p in state.positions):
        services.positions_mark(prices=marks, bot_id=state.bot.pk)
        for symbol, price in marks.items():  # coalesced by events: one per user+symbol a second
            events.publish_price_mark(
                owner_id=state.bot.owner_id, symbol=symbol, price=price, at=as_of
            )
    for position in state.positions:
        position.current_price = marks.get(position.symbol, position.current_price)


def _execute(state: _BotState, order: _Order, as_of: datetime, result: CycleResult) -> None:
    cid = client_order_id(state.bot.pk, as_of, order.symbol, order.action)
    try:
        if order.position is not None:
            services.position_close(
                position=order.position, price=order.price, fee_rate=fee_rate(),
                client_order_id=cid, executed_at=max(as_of, order.position.opened_at),
                reason=order.reason,
            )  # fmt: skip
            result.closed[order.reason] = result.closed.get(order.reason, 0) + 1
        else:
            services.position_open(
                bot=state.bot, symbol=order.symbol, side=order.side, quantity=order.quantity,
                price=order.price, leverage=order.leverage,
                fee=money(order.quantity * order.price * fee_rate()),
                stop_loss=order.stop_loss, take_profit=order.take_profit,
                client_order_id=cid, executed_at=as_of,
            )  # fmt: skip
            result.opened += 1
    except TradingError as exc:
        # Refused by the core (risk limits, cash, a position closed meanwhile): not a crash.
        result.rejected.append(f"{order.action} {order.symbol}: {exc.message}")


def cycles_run(
    *,
    bot_ids: list[int],
    as_of: datetime,
    client: MarketDataClient | None = None,
    snapshot: bool = True,
) -> list[CycleResult]:
    """Run one cycle at ``as_of`` for each of ``bot_ids`` (any owners; see module doc)."""
    started = time.perf_counter()
    results = {bot_id: CycleResult(bot_id, as_of) for bot_id in bot_ids}
    with count_queries() as queries:
        states = _load(bot_ids, as_of)
        loaded = time.perf_counter()
        release_db_connection()  # not held while the cache (or an exchange) answers
        try:
            market = _read_market(states.values(), as_of, client)
        except MarketDataError as exc:
            market = None
            for state in states.values():
                state.error = f"market data: {exc}"
        read = time.perf_counter()
        snapshot_bots: list[int] = []
        decide_seconds = write_seconds = 0.0
        for bot_id, state in states.items():
            result = results[bot_id]
            if state.bot.status != Bot.Status.ACTIVE:
                continue  # paused or stopped since it was claimed: nothing to do
            result.ran = True
            if market is None:
                result.error = state.error
                continue
            try:
                t0 = time.perf_counter()
                orders = _decide(state, market)
                t1 = time.perf_counter()
                _mark(state, market, as_of)
                for order in orders:
                    _execute(state, order, as_of, result)
                write_seconds += time.perf_counter() - t1
                decide_seconds += t1 - t0
                snapshot_bots.append(bot_id)
            except Exception as exc:  # one bot's failure never stops the others
                logger.exception("cycle of bot %s at %s failed", bot_id, as_of.isoformat())
                state.error = f"{type(exc).__name__}: {exc}"
            result.error = state.error
            if result.error:
                events.publish_cycle_error(
                    owner_id=state.bot.owner_id, bot_id=bot_id, message=result.error, at=as_of
                )
        t2 = time.perf_counter()
        if snapshot and snapshot_bots:
            try:  # one batch for the group, one account row per owner
                services.equity_snapshots_record(bot_ids=snapshot_bots, taken_at=as_of)
            except Exception as exc:
                logger.exception("equity snapshot of bots %s at %s failed", snapshot_bots, as_of)
                for b in snapshot_bots:
                    results[b].error = results[b].error or f"snapshot: {exc}"
        done = time.perf_counter()
    share = max(1, len(results))
    for result in results.values():
        result.queries = queries.count // share
        result.seconds = (done - started) / share
        result.timings = {
            "load": (loaded - started) / share,
            "market": (read - loaded) / share,
            "decide": decide_seconds / share,
            "write": write_seconds / share,
            "snapshot": (done - t2) / share,
        }
    return [results[b] for b in bot_ids]


def cycle_run(
    *, bot_id: int, as_of: datetime, client: MarketDataClient | None = None
) -> CycleResult:
    """One bot's cycle at ``as_of`` (a group of one)."""
    return cycles_run(bot_ids=[bot_id], as_of=as_of, client=client)[0]


__all__ = ["CycleResult", "client_order_id", "cycle_run", "cycles_run", "order_size"]
