"""Positions and their fills: open, close (with a reason), mark to market, exits, liquidation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Count, F, Value, When

from marketdata.clients.base import MarketDataError
from marketdata.services import ticker_invalidate
from trading import dataversion, events, locks
from trading.errors import (
    InsufficientCapital,
    InvalidInput,
    InvalidState,
    PriceUnavailable,
    RiskRefused,
    TradingError,
)
from trading.models import CLOSE_REASONS, Bot, BotDailyPnl, Position, Trade, TradeReason
from trading.risk import (
    LIQUIDATION_FEE_RATE,
    PAPER_FEE_RATE,
    RiskLimits,
    check_exit_levels,
    default_exit_levels,
    drawdown_pct,
    exit_reason,
    is_liquidated,
    liquidation_price,
    open_refusal,
)
from trading.services._common import (
    ZERO,
    aware,
    client_order_id_arg,
    decimal_arg,
    optional_decimal,
    require_fits,
)
from trading.services.equity import drawdown_reason
from trading.services.totals import stats_add
from zerobot.lib.fields import PriceField
from zerobot.lib.money import MONEY_CONTEXT, PRICE_DECIMAL_PLACES, money, quantize
from zerobot.lib.symbols import normalize_symbol

logger = logging.getLogger(__name__)

PRICE_BAND = Decimal("0.10")  # an API close may fill at most 10 % away from the mark
MAX_LEVERAGE = Decimal(125)


# --- Open ---------------------------------------------------------------------------------------


def position_open(
    *,
    bot: Bot,
    symbol: str,
    side: str,
    quantity: Any,
    price: Any,
    client_order_id: str,
    leverage: Any = 1,
    fee: Any = 0,
    stop_loss: Any = None,
    take_profit: Any = None,
    executed_at: datetime | None = None,
) -> Position:
    """Open a position with one fill, locking ``quantity x price / leverage`` of the bot's cash.

    The bot's risk rules are enforced here (``trading.risk``): only an active bot opens; max
    open positions, max trades per day, max position size (margin vs equity); a drawdown at or past
    ``max_drawdown_pct`` pauses the bot (reason recorded) and refuses the order. Refusals raise
    ``RiskRefused`` (409), a non-active bot ``InvalidState`` (409). Stop-loss and take-profit
    default to the bot's percentages; the liquidation price is stored on the position.

    Idempotent on ``client_order_id``: recording the same order again returns the position it
    opened and moves no money; the same id with another symbol, side, quantity or price is an
    ``InvalidInput`` (400). Its own durable transaction: never call it inside ``atomic()``.
    """
    try:
        symbol = normalize_symbol(symbol)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="symbol") from None
    if symbol not in bot.symbols:
        raise InvalidInput(f"{bot.name} does not trade {symbol}.", field="symbol")
    if side not in Position.Side.values:
        raise InvalidInput("side must be 'long' or 'short'.", field="side")
    quantity = decimal_arg(quantity, field="quantity", places=12, positive=True)
    price = decimal_arg(price, field="price", places=12, positive=True)
    leverage = decimal_arg(leverage, field="leverage", places=2)
    if not Decimal(1) <= leverage <= MAX_LEVERAGE:
        raise InvalidInput("leverage must be between 1 and 125.", field="leverage")
    fee = decimal_arg(fee, field="fee", places=8, non_negative=True)
    stop_loss = optional_decimal(stop_loss, field="stop_loss", places=12, positive=True)
    take_profit = optional_decimal(take_profit, field="take_profit", places=12, positive=True)
    check_exit_levels(side=side, entry=price, stop_loss=stop_loss, take_profit=take_profit)
    client_order_id = client_order_id_arg(client_order_id)
    executed_at = aware(executed_at, field="executed_at")
    with localcontext(MONEY_CONTEXT):
        margin = money(quantity * price / leverage)
        cost = margin + fee
    require_fits(cost, "quantity", "This order is too large (its margin does not fit in money).")
    order = {"symbol": symbol, "side": side, "quantity": quantity, "price": price}

    refusal: str | None = None
    try:
        with transaction.atomic(durable=True):
            locked = locks.lock_bot(bot.pk)
            if locked is None:
                raise InvalidState("This bot no longer exists.")
            # A retry is answered before anything moves (and before the risk and cash checks,
            # which the first attempt may have used up).
            existing = _existing_trade(bot.pk, client_order_id)
            if existing is not None:
                return _replayed_open(existing, **order)
            refusal = _open_refusal(locked, margin=margin, day=executed_at)
            if refusal is not None and refusal.startswith("drawdown:"):
                # Recorded even though the order is refused: commit the pause, raise below.
                _pause_for_drawdown(locked)
            if refusal is None:
                position = _open(
                    locked, order=order, leverage=leverage, fee=fee, margin=margin, cost=cost,
                    stop_loss=stop_loss, take_profit=take_profit, executed_at=executed_at,
                    client_order_id=client_order_id,
                )  # fmt: skip
    except IntegrityError:
        # A concurrent request recorded the same order between our check and our insert.
        existing = _existing_trade(bot.pk, client_order_id)
        if existing is None:
            raise
        return _replayed_open(existing, **order)
    if refusal is not None:
        if refusal.startswith("only an active bot"):
            raise InvalidState(refusal[0].upper() + refusal[1:])
        raise RiskRefused("Risk rule: " + refusal)
    bot.refresh_from_db(fields=["capital"])
    return position


def _open_refusal(bot: Bot, *, margin: Decimal, day: datetime) -> str | None:
    if bot.status != Bot.Status.ACTIVE:  # answered before any query
        return f"only an active bot opens positions (this one is {bot.status})."
    totals = Position.objects.for_bot(bot.pk).open().totals()  # uses position_bot_open_idx
    trades_today = (
        BotDailyPnl.objects.filter(bot_id=bot.pk, day=day.date())  # uses dailypnl_bot_day_uniq
        .values_list("trade_count", flat=True)
        .first()
    )
    return open_refusal(
        status=bot.status,
        limits=RiskLimits.of(bot.risk_params),
        equity=bot.capital + totals["margin"] + totals["unrealized_pnl"],
        peak_equity=bot.peak_equity,
        margin=margin,
        open_positions=totals["count"],
        trades_today=trades_today or 0,
    )


def _pause_for_drawdown(bot: Bot) -> None:
    totals = Position.objects.for_bot(bot.pk).open().totals()
    equity = bot.capital + totals["margin"] + totals["unrealized_pnl"]
    reason = drawdown_reason(
        drawdown=drawdown_pct(peak=bot.peak_equity, equity=equity),
        limit=RiskLimits.of(bot.risk_params).max_drawdown_pct,
    )
    Bot.objects.filter(pk=bot.pk).update(status=Bot.Status.PAUSED, status_reason=reason)
    bot.status, bot.status_reason = Bot.Status.PAUSED, reason
    events.publish_bot_status(bot=bot)  # moves the data version too


def _open(
    bot: Bot,
    *,
    order: dict[str, Any],
    leverage: Decimal,
    fee: Decimal,
    margin: Decimal,
    cost: Decimal,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    executed_at: datetime,
    client_order_id: str,
) -> Position:
    symbol, side, quantity, price = (
        order["symbol"],
        order["side"],
        order["quantity"],
        order["price"],
    )
    if stop_loss is None or take_profit is None:
        default_stop, default_take = default_exit_levels(
            side=side, entry=price, limits=RiskLimits.of(bot.risk_params)
        )
        stop_loss = default_stop if stop_loss is None else stop_loss
        take_profit = default_take if take_profit is None else take_profit
    # The bot row is locked: its capital >= cost filter makes "insufficient cash" a 0-row update.
    if not Bot.objects.filter(pk=bot.pk, capital__gte=cost).update(capital=F("capital") - cost):
        raise InsufficientCapital(
            f"{bot.name} has not enough cash: this order needs {cost} (margin + fee)."
        )
    position = Position.objects.create(
        owner_id=bot.owner_id,
        bot=bot,
        symbol=symbol,
        side=side,
        quantity=quantity,
        leverage=leverage,
        entry_price=price,
        current_price=price,
        stop_loss=stop_loss,
        take_profit=take_profit,
        liquidation_price=liquidation_price(
            side=side, entry=price, margin=margin, open_quantity=quantity
        ),
        opened_at=executed_at,
        margin=margin,
        fees=fee,
    )
    trade = Trade.objects.create(
        owner_id=bot.owner_id,
        bot=bot,
        position=position,
        symbol=symbol,
        side=_opening_side(side),
        quantity=quantity,
        price=price,
        fee=fee,
        realized_pnl=ZERO,
        executed_at=executed_at,
        client_order_id=client_order_id,
        reason=TradeReason.OPEN,
    )
    stats_add(bot=bot, symbol=symbol, day=executed_at, fee=fee, pnl=ZERO)
    transaction.on_commit(lambda: ticker_invalidate(symbol=symbol), robust=True)
    # Live updates, sent once this transaction commits (never for a rolled-back or replayed order).
    events.publish_fill(trade=trade)
    events.publish_position_opened(position=position)
    return position


# --- Close --------------------------------------------------------------------------------------


def position_close(
    *,
    position: Position,
    client_order_id: str,
    price: Any = None,
    quantity: Any = None,
    fee: Any = None,
    fee_rate: Decimal | None = None,
    executed_at: datetime | None = None,
    reason: str = TradeReason.MANUAL,
) -> Position:
    """Close all (default) or part of an open position with one fill, crediting margin + PnL - fee.

    ``reason`` is one of ``CLOSE_REASONS`` (signal, stop_loss, take_profit, liquidation, manual,
    risk), recorded on the fill (``Trade.reason``) and, on the last fill, on the position
    (``close_reason``). ``price`` defaults to the position's current (mark) price; ``fee`` is given,
    or ``fee_rate`` x the fill's notional (computed on the locked row), or 0.

    Liquidation: a fill price at or beyond the position's liquidation price closes the whole open
    quantity AT the liquidation price with reason ``liquidation`` and the liquidation fee
    (``trading.risk``): the bot is credited (at least) nothing and never pays more than the margin.

    Idempotent on ``client_order_id``: a retry returns the position, whatever happened to it since;
    the same id with another quantity or price (when given) is an ``InvalidInput``. Locks bot, then
    position (``trading.locks``). Its own durable transaction.
    """
    price = optional_decimal(price, field="price", places=12, positive=True)
    fee = optional_decimal(fee, field="fee", places=8)
    if fee is not None and fee < 0:
        raise InvalidInput("fee must not be negative.", field="fee")
    quantity = optional_decimal(quantity, field="quantity", places=12, positive=True)
    if reason not in CLOSE_REASONS:
        raise InvalidInput(
            f"reason must be one of {', '.join(sorted(CLOSE_REASONS))}.", field="reason"
        )
    client_order_id = client_order_id_arg(client_order_id)
    executed_at = aware(executed_at, field="executed_at")
    try:
        with transaction.atomic(durable=True):
            locks.lock_bot(position.bot_id)
            locked = locks.lock_position(position.pk)
            if locked is None:
                raise InvalidState("This position no longer exists.")
            existing = _existing_trade(locked.bot_id, client_order_id)
            if existing is not None:
                return _replayed_close(existing, position=locked, quantity=quantity, price=price)
            if locked.status != Position.Status.OPEN:
                raise InvalidState("This position is already closed.")
            if executed_at < locked.opened_at:
                raise InvalidInput(
                    "executed_at is before the position opened.", field="executed_at"
                )
            _close(
                locked, price=price, quantity=quantity, fee=fee, fee_rate=fee_rate,
                executed_at=executed_at, reason=reason, client_order_id=client_order_id,
            )  # fmt: skip
    except IntegrityError:
        existing = _existing_trade(position.bot_id, client_order_id)
        if existing is None:
            raise
        current = Position.objects.get(pk=position.pk)
        return _replayed_close(existing, position=current, quantity=quantity, price=price)
    return locked


def _close(
    locked: Position,
    *,
    price: Decimal | None,
    quantity: Decimal | None,
    fee: Decimal | None,
    fee_rate: Decimal | None,
    executed_at: datetime,
    reason: str,
    client_order_id: str,
) -> None:
    remaining = locked.open_quantity
    qty = remaining if quantity is None else quantity
    if qty > remaining:
        raise InvalidInput(f"quantity {qty} is more than the open {remaining}.", field="quantity")
    fill_price = locked.current_price if price is None else price
    liquidation = locked.liquidation_price
    if is_liquidated(side=locked.side, price=fill_price, liquidation=liquidation):
        qty, fill_price, reason = remaining, liquidation, TradeReason.LIQUIDATION.value
        fee, fee_rate = None, LIQUIDATION_FEE_RATE
    full = qty == remaining
    direction = 1 if locked.side == Position.Side.LONG else -1
    with localcontext(MONEY_CONTEXT):
        if fee is None:
            fee = ZERO if fee_rate is None else money(fill_price * qty * fee_rate)
        pnl = money((fill_price - locked.entry_price) * qty * direction)
        # The last fill releases exactly what is left: partial closes never leak.
        release = locked.margin if full else money(locked.margin * qty / remaining)
        if reason == TradeReason.LIQUIDATION:
            # The liquidation price is rounded towards the entry, so margin + PnL >= 0; the fee
            # takes at most what is left (rounding of 1e-8), never the bot's other cash.
            fee = max(ZERO, min(fee, release + pnl))
        credit = release + pnl - fee
    for amount in (fee, pnl, credit, locked.realized_pnl + pnl, locked.fees + fee):
        require_fits(amount, "price", "This fill's PnL or fee does not fit in money.")
    bot = Bot.objects.filter(pk=locked.bot_id)
    if credit < 0:
        bot = bot.filter(capital__gte=-credit)  # the bot row is locked: no race
    if not bot.update(capital=F("capital") + credit):
        raise InsufficientCapital(
            "The fee of this close exceeds what the position returns and the bot's cash."
        )
    trade = Trade.objects.create(
        owner_id=locked.owner_id,
        bot_id=locked.bot_id,
        position=locked,
        symbol=locked.symbol,
        side=_closing_side(locked.side),
        quantity=qty,
        price=fill_price,
        fee=fee,
        realized_pnl=pnl,
        executed_at=executed_at,
        client_order_id=client_order_id,
        reason=reason,
    )
    locked.closed_quantity += qty
    locked.margin -= release
    locked.realized_pnl += pnl
    locked.fees += fee
    locked.current_price = fill_price
    if full:
        locked.status = Position.Status.CLOSED
        locked.closed_at = executed_at
        locked.close_reason = reason
    locked.save(
        update_fields=[
            "closed_quantity", "margin", "realized_pnl", "fees", "current_price", "status",
            "closed_at", "close_reason",
        ]
    )  # fmt: skip
    stats_add(
        bot=locked.bot_id,
        owner_id=locked.owner_id,
        symbol=locked.symbol,
        day=executed_at,
        fee=fee,
        pnl=pnl,
        closed_net=(locked.realized_pnl - locked.fees) if full else None,
    )
    symbol = locked.symbol
    transaction.on_commit(lambda: ticker_invalidate(symbol=symbol), robust=True)
    events.publish_fill(trade=trade)  # after commit, as every event
    if full:
        events.publish_position_closed(position=locked, reason=reason)


def position_close_at_market(
    *,
    position: Position,
    price: Any = None,
    quantity: Any = None,
    client_order_id: str | None = None,
    reason: str = TradeReason.MANUAL,
) -> Position:
    """Close (part of) a position as a user asks from the API: at a fresh market mark
    (``marketdata.prices.last_prices``, written to the bot's open positions in that symbol by
    ``positions_mark``), or at ``price`` if it is within PRICE_BAND of that mark (a limit near the
    market, never an arbitrary number that would mint PnL), with the paper fee.

    A partial close (``quantity``) needs a ``client_order_id`` (a retry without one would close
    twice); a full close without one gets ``close-<position id>`` (a position closes fully once).
    Raises ``PriceUnavailable`` (503) when no market price can be had.
    """
    if quantity is not None and not client_order_id:
        raise InvalidInput(
            "A partial close needs a client_order_id (so a retry cannot close twice).",
            field="client_order_id",
        )
    if price is not None:
        price = decimal_arg(price, field="price", places=12, positive=True)
    if position.status == Position.Status.OPEN:
        mark = position_mark_fresh(position=position)
        if price is not None and abs(price - mark) > mark * PRICE_BAND:
            raise InvalidInput(
                f"price must be within {PRICE_BAND:.0%} of the current price {mark.normalize()}.",
                field="price",
            )
    return position_close(
        position=position,
        price=price,
        quantity=quantity,
        fee_rate=PAPER_FEE_RATE,
        client_order_id=client_order_id or f"close-{position.pk}",
        reason=reason,
    )


def position_mark_fresh(*, position: Position) -> Decimal:
    """Read the symbol's market price now and mark the bot's open positions in it; returns it."""
    from marketdata.prices import last_prices  # typed read; imported late (marketdata is heavy)

    try:
        mark = last_prices([position.symbol])[position.symbol]
    except MarketDataError as exc:
        raise PriceUnavailable(f"No market price for {position.symbol}: {exc.message}") from None
    positions_mark(prices={position.symbol: mark}, bot_id=position.bot_id)
    position.current_price = quantize(mark, PRICE_DECIMAL_PLACES)
    return position.current_price


# --- Marks and exits ----------------------------------------------------------------------------


def positions_mark(*, prices: Mapping[str, Decimal], bot_id: int | None = None) -> int:
    """Set ``current_price`` of every open position in ``prices``' symbols (of one bot, or of all
    bots) to that symbol's price, in ONE statement whatever the number of positions; returns how
    many rows it updated. Prices come from ``marketdata.prices.last_prices`` (Decimals).

    Locks the positions it updates in pk order (level 3 of ``trading.locks``) inside that one
    statement, which also answers whose rows moved (their dashboard data version is bumped after
    commit, ``trading.dataversion``); unrealized PnL is not stored (it is computed from the mark:
    ``trading.querysets``). In a savepoint: callable inside a caller's transaction, which may
    then lock no bot or owner (``trading.locks`` raises ``LockOrderError``).
    """
    marks: dict[str, Decimal] = {}
    for symbol, value in prices.items():
        try:
            name = normalize_symbol(symbol)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="prices") from None
        marks[name] = decimal_arg(value, field="prices", places=12, positive=True)
    if not marks:
        return 0
    with transaction.atomic():
        locks.enter(locks.POSITIONS)  # the statement below locks them (checks the order)
        if connection.vendor == "postgresql":
            owners = _mark_sql(marks, bot_id)
        else:  # SQLite (make run): the same through the ORM, two statements
            owners = _mark_orm(marks, bot_id)
        for owner_id in owners:  # an UPDATE sends no post_save: move the owners' versions here
            dataversion.bump_on_commit(owner_id)
    return sum(owners.values())


def _mark_sql(marks: dict[str, Decimal], bot_id: int | None) -> dict[int, int]:
    """The one statement: lock the open positions in pk order (level 3 of trading.locks), set
    each one's symbol's price, and answer {owner_id: rows updated}."""
    table = Position._meta.db_table
    values = ", ".join(["(%s, %s::numeric)"] * len(marks))
    params: list[Any] = [x for pair in marks.items() for x in pair]
    bot_filter = ""
    params.append(list(marks))
    if bot_id is not None:
        bot_filter = "AND p.bot_id = %s"  # uses position_bot_open_idx
        params.append(bot_id)
    # else: uses position_open_symbol_idx
    sql = f"""
        WITH marks(symbol, price) AS (VALUES {values}),
        targets AS (
            SELECT p.id FROM {table} p
            WHERE p.status = 'open' AND p.symbol = ANY(%s) {bot_filter}
            ORDER BY p.id FOR NO KEY UPDATE
        ),
        updated AS (
            UPDATE {table} p SET current_price = m.price
            FROM targets t, marks m
            WHERE p.id = t.id AND p.symbol = m.symbol
            RETURNING p.owner_id
        )
        SELECT owner_id, COUNT(*) FROM updated GROUP BY owner_id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def _mark_orm(marks: dict[str, Decimal], bot_id: int | None) -> dict[int, int]:
    targets = Position.objects.open().filter(symbol__in=list(marks))
    if bot_id is not None:
        targets = targets.for_bot(bot_id)
    new_price = Case(
        *(When(symbol=s, then=Value(p, output_field=PriceField())) for s, p in marks.items()),
        output_field=PriceField(),
    )
    owners = dict(
        targets.order_by().values("owner_id").annotate(n=Count("id")).values_list("owner_id", "n")
    )
    Position.objects.filter(pk__in=locks.locked_position_ids(targets)).update(
        current_price=new_price
    )
    return owners


def positions_apply_exits(
    *, bot: Bot, prices: Mapping[str, Decimal], as_of: datetime | None = None
) -> list[Position]:
    """Mark the bot's open positions at ``prices`` and close those whose mark triggers an exit
    (``trading.risk.exit_reason``: liquidation, then stop-loss, then take-profit), each with its
    reason, at the mark (a liquidation at its liquidation price) with the paper fee, executed at
    ``as_of`` (default now). Returns the positions it closed.

    One statement to mark, one to read the open positions, then one ``position_close`` per exit
    (``exit-<position id>`` as client order id, so a retried cycle cannot close twice). A position
    that a concurrent request closed meanwhile is skipped.
    """
    as_of = aware(as_of, field="as_of")
    positions_mark(prices=prices, bot_id=bot.pk)
    marks = {
        normalize_symbol(s): decimal_arg(p, field="prices", places=12) for s, p in prices.items()
    }
    closed: list[Position] = []
    candidates = (
        Position.objects.for_bot(bot.pk)
        .open()
        .filter(symbol__in=list(marks))
        .order_by("pk")
        .only(
            "bot_id", "owner_id", "symbol", "side", "stop_loss", "take_profit",
            "liquidation_price", "status", "opened_at",
        )
    )  # fmt: skip
    for position in candidates:
        mark = marks[position.symbol]
        reason = exit_reason(
            side=position.side, price=mark, stop_loss=position.stop_loss,
            take_profit=position.take_profit, liquidation=position.liquidation_price,
        )  # fmt: skip
        if reason is None:
            continue
        try:
            closed.append(
                position_close(
                    position=position,
                    price=mark,
                    fee_rate=PAPER_FEE_RATE,
                    executed_at=max(as_of, position.opened_at),
                    reason=reason,
                    client_order_id=f"exit-{position.pk}",
                )
            )
        except TradingError as exc:  # closed meanwhile, or its id used: the next cycle sees it
            logger.info("exit of position %s skipped: %s", position.pk, exc.message)
    return closed


# --- Helpers ------------------------------------------------------------------------------------


def _opening_side(side: str) -> str:
    return Trade.Side.BUY if side == Position.Side.LONG else Trade.Side.SELL


def _closing_side(side: str) -> str:
    return Trade.Side.SELL if side == Position.Side.LONG else Trade.Side.BUY


def _reused(existing: Trade) -> InvalidInput:
    return InvalidInput(
        f"client_order_id {existing.client_order_id!r} was already used for another order of "
        f"this bot ({existing.side} {existing.quantity.normalize():f} {existing.symbol} @ "
        f"{existing.price.normalize():f}).",
        field="client_order_id",
    )


def _replayed_open(
    existing: Trade, *, symbol: str, side: str, quantity: Decimal, price: Decimal
) -> Position:
    """The position an earlier attempt of this very open created, or InvalidInput if the id was
    used for anything else (a close, another symbol, side, quantity or price)."""
    same_order = (
        existing.reason == TradeReason.OPEN
        and existing.position_id is not None
        and existing.symbol == symbol
        and existing.side == _opening_side(side)
        and existing.quantity == quantity
        and existing.price == price
    )
    if same_order:
        position = Position.objects.filter(pk=existing.position_id).first()
        if position is not None and position.side == side:
            return position
    raise _reused(existing)


def _replayed_close(
    existing: Trade, *, position: Position, quantity: Decimal | None, price: Decimal | None
) -> Position:
    """This very close was recorded: a retry, not an error, unless the id was used for another
    position or side, or the retry names another quantity or price than the fill recorded (a
    liquidation replaced the asked quantity and price: any retry of it is answered)."""
    same = existing.position_id == position.pk and existing.side == _closing_side(position.side)
    if same and existing.reason != TradeReason.LIQUIDATION:
        if quantity is not None and existing.quantity != quantity:
            same = False
        if price is not None and existing.price != price:
            same = False
    if same:
        return position
    raise _reused(existing)


def _existing_trade(bot_id: int, client_order_id: str) -> Trade | None:
    # uses trade_bot_client_order_uniq
    return Trade.objects.filter(bot_id=bot_id, client_order_id=client_order_id).first()
