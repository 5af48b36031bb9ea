"""Every write to trading data goes through these functions.

Balances change with ``F()`` updates inside ``transaction.atomic(durable=True)``; running totals
(``BotSymbolStats``, ``BotDailyPnl``) change in the same transaction as the trades they count, so
dashboards read a few rows instead of the whole history. Ledger invariant, per bot:

    capital = initial_capital + sum(trade.realized_pnl) - sum(trade.fee) - sum(open position.margin)
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from marketdata.services import ticker_invalidate
from marketdata.symbols import normalize_symbol
from trading.errors import InsufficientCapital, InvalidInput, InvalidState
from trading.models import (
    AccountEquitySnapshot,
    Bot,
    BotDailyPnl,
    BotSymbolStats,
    EquitySnapshot,
    Position,
    Timeframe,
    Trade,
)
from trading.risk import validate_risk_params
from zerobot.lib.money import MONEY_CONTEXT, InvalidAmount, fits_money, money, quantize

logger = logging.getLogger(__name__)

ZERO = Decimal("0")
HUNDRED = Decimal(100)
MAX_SYMBOLS_PER_BOT = 50
# Which status changes a bot accepts: stopped is final until restarted explicitly.
BOT_TRANSITIONS: dict[str, set[str]] = {
    Bot.Status.INACTIVE: {Bot.Status.ACTIVE, Bot.Status.STOPPED},
    Bot.Status.ACTIVE: {Bot.Status.PAUSED, Bot.Status.STOPPED},
    Bot.Status.PAUSED: {Bot.Status.ACTIVE, Bot.Status.STOPPED},
    Bot.Status.STOPPED: {Bot.Status.ACTIVE},
}


def _decimal(
    value: Any, *, field: str, places: int, positive: bool = False, non_negative: bool = False
) -> Decimal:
    try:
        number = quantize(value, places)
    except (InvalidAmount, TypeError):
        raise InvalidInput(f"{field} must be a finite decimal number.", field=field) from None
    if positive and number <= 0:
        raise InvalidInput(f"{field} must be greater than 0.", field=field)
    if non_negative and number < 0:
        raise InvalidInput(f"{field} must not be negative.", field=field)
    return number


def _aware(value: datetime | None, *, field: str) -> datetime:
    if value is None:
        return timezone.now()
    if timezone.is_naive(value):
        raise InvalidInput(f"{field} must be timezone-aware (UTC).", field=field)
    return value


# --- Bots ---------------------------------------------------------------------------------------


def bot_create(
    *,
    owner: Any,
    name: str,
    strategy: str,
    initial_capital: Any,
    symbols: Iterable[str],
    timeframe: str = Timeframe.H1,
    risk_params: dict[str, Any] | None = None,
    paper_trading: bool = True,
) -> Bot:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("name must not be blank.", field="name")
    capital = _decimal(initial_capital, field="initial_capital", places=8, positive=True)
    if timeframe not in Timeframe.values:
        raise InvalidInput(
            f"timeframe must be one of {', '.join(Timeframe.values)}.", field="timeframe"
        )
    symbol_list = _symbols(symbols)
    params = validate_risk_params(risk_params)
    try:
        with transaction.atomic():
            return Bot.objects.create(
                owner=owner,
                name=name,
                strategy=(strategy or "").strip() or "manual",
                initial_capital=capital,
                capital=capital,
                symbols=symbol_list,
                timeframe=timeframe,
                risk_params=params,
                paper_trading=paper_trading,
            )
    except IntegrityError:
        if Bot.objects.filter(owner=owner, name=name).exists():
            raise InvalidInput(f"You already have a bot named {name!r}.", field="name") from None
        raise


def _symbols(symbols: Iterable[str]) -> list[str]:
    if isinstance(symbols, str) or not isinstance(symbols, Iterable):
        raise InvalidInput('symbols must be a list such as ["BTC/USDT"].', field="symbols")
    result: list[str] = []
    for raw in symbols:
        try:
            symbol = normalize_symbol(raw)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="symbols") from None
        if symbol not in result:
            result.append(symbol)
    if not result:
        raise InvalidInput("symbols must name at least one symbol.", field="symbols")
    if len(result) > MAX_SYMBOLS_PER_BOT:
        raise InvalidInput(f"A bot trades at most {MAX_SYMBOLS_PER_BOT} symbols.", field="symbols")
    return result


def bot_changes_validate(**changes: Any) -> dict[str, Any]:
    """Normalised settings changes (name, strategy, symbols, timeframe, risk_params), or
    InvalidInput naming the field. Money, owner and status change elsewhere, never here."""
    allowed = {"name", "strategy", "symbols", "timeframe", "risk_params"}
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))} here.")
    if "name" in changes:
        changes["name"] = (changes["name"] or "").strip()
        if not changes["name"]:
            raise InvalidInput("name must not be blank.", field="name")
    if "symbols" in changes:
        changes["symbols"] = _symbols(changes["symbols"])
    if "timeframe" in changes and changes["timeframe"] not in Timeframe.values:
        raise InvalidInput(
            f"timeframe must be one of {', '.join(Timeframe.values)}.", field="timeframe"
        )
    if "risk_params" in changes:
        changes["risk_params"] = validate_risk_params(changes["risk_params"])
    return changes


def bot_update(*, bot: Bot, **changes: Any) -> Bot:
    """Change a bot's settings (see bot_changes_validate)."""
    changes = bot_changes_validate(**changes)
    for field, value in changes.items():
        setattr(bot, field, value)
    try:
        with transaction.atomic():
            bot.save(update_fields=[*changes, "updated_at"])
    except IntegrityError:
        raise InvalidInput(f"You already have a bot named {bot.name!r}.", field="name") from None
    return bot


def bot_set_status(*, bot: Bot, status: str) -> Bot:
    """Start, pause or stop a bot. Stopping closes nothing: open positions stay open."""
    if status not in Bot.Status.values:
        raise InvalidInput(f"status must be one of {', '.join(Bot.Status.values)}.", field="status")
    if status == bot.status:
        return bot
    if status not in BOT_TRANSITIONS[bot.status]:
        raise InvalidState(f"A {bot.status} bot cannot become {status}.")
    # Compare-and-set on the old status, so two concurrent requests cannot both win.
    updated = Bot.objects.filter(pk=bot.pk, status=bot.status).update(
        status=status, updated_at=timezone.now()
    )
    if not updated:
        bot.refresh_from_db(fields=["status", "updated_at"])
        raise InvalidState(f"The bot changed meanwhile and is now {bot.status}.")
    bot.refresh_from_db(fields=["status", "updated_at"])
    return bot


# --- Positions and trades -----------------------------------------------------------------------


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

    Idempotent on ``client_order_id``: recording the same order again returns the position it
    opened and moves no money.
    """
    try:
        symbol = normalize_symbol(symbol)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="symbol") from None
    if symbol not in bot.symbols:
        raise InvalidInput(f"{bot.name} does not trade {symbol}.", field="symbol")
    if side not in Position.Side.values:
        raise InvalidInput("side must be 'long' or 'short'.", field="side")
    quantity = _decimal(quantity, field="quantity", places=12, positive=True)
    price = _decimal(price, field="price", places=12, positive=True)
    leverage = _decimal(leverage, field="leverage", places=2)
    if not Decimal(1) <= leverage <= Decimal(125):
        raise InvalidInput("leverage must be between 1 and 125.", field="leverage")
    fee = _decimal(fee, field="fee", places=8, non_negative=True)
    stop_loss = (
        None
        if stop_loss is None
        else _decimal(stop_loss, field="stop_loss", places=12, positive=True)
    )
    take_profit = (
        None
        if take_profit is None
        else _decimal(take_profit, field="take_profit", places=12, positive=True)
    )
    client_order_id = _client_order_id(client_order_id)
    executed_at = _aware(executed_at, field="executed_at")
    with localcontext(MONEY_CONTEXT):
        margin = money(quantity * price / leverage)
        cost = margin + fee
    _require_fits(cost, "quantity", "This order is too large (its margin does not fit in money).")

    try:
        with transaction.atomic(durable=True):
            # A retry is answered before anything moves (and before the cash check, which the
            # first attempt may have used up).
            existing = _existing_trade(bot.pk, client_order_id)
            if existing is not None:
                return _replayed_open(existing, side=side)
            # Debit first: the UPDATE locks the bot row, serialising this bot's writes, and its
            # capital >= cost filter makes "insufficient cash" a 0-row update, not a race.
            if not Bot.objects.filter(pk=bot.pk, capital__gte=cost).update(
                capital=F("capital") - cost
            ):
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
                opened_at=executed_at,
                margin=margin,
                fees=fee,
            )
            Trade.objects.create(
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
            )
            _stats_add(bot=bot, symbol=symbol, day=executed_at, fee=fee, pnl=ZERO)
            transaction.on_commit(lambda: ticker_invalidate(symbol=symbol), robust=True)
    except IntegrityError:
        # A concurrent request recorded the same order between our check and our insert.
        existing = _existing_trade(bot.pk, client_order_id)
        if existing is None:
            raise
        return _replayed_open(existing, side=side)
    bot.refresh_from_db(fields=["capital"])
    return position


def position_close(
    *,
    position: Position,
    client_order_id: str,
    price: Any = None,
    quantity: Any = None,
    fee: Any = None,
    fee_rate: Decimal | None = None,
    executed_at: datetime | None = None,
) -> Position:
    """Close all (default) or part of an open position with one fill, crediting margin + PnL - fee.

    ``price`` defaults to the position's current price; ``fee`` is given, or ``fee_rate`` x the
    fill's notional (computed on the locked row), or 0. Idempotent on ``client_order_id`` like
    ``position_open``: a retry returns the position, whatever happened to it since.
    """
    price = None if price is None else _decimal(price, field="price", places=12, positive=True)
    fee = None if fee is None else _decimal(fee, field="fee", places=8, non_negative=True)
    quantity = (
        None if quantity is None else _decimal(quantity, field="quantity", places=12, positive=True)
    )
    client_order_id = _client_order_id(client_order_id)
    executed_at = _aware(executed_at, field="executed_at")
    try:
        with transaction.atomic(durable=True):
            locked = Position.objects.select_for_update().get(pk=position.pk)
            existing = _existing_trade(locked.bot_id, client_order_id)
            if existing is not None:
                return _replayed_close(existing, position=locked)
            if locked.status != Position.Status.OPEN:
                raise InvalidState("This position is already closed.")
            if executed_at < locked.opened_at:
                raise InvalidInput(
                    "executed_at is before the position opened.", field="executed_at"
                )
            remaining = locked.open_quantity
            qty = remaining if quantity is None else quantity
            if qty > remaining:
                raise InvalidInput(
                    f"quantity {qty} is more than the open {remaining}.", field="quantity"
                )
            fill_price = locked.current_price if price is None else price
            full = qty == remaining
            direction = 1 if locked.side == Position.Side.LONG else -1
            with localcontext(MONEY_CONTEXT):
                if fee is None:
                    fee = ZERO if fee_rate is None else money(fill_price * qty * fee_rate)
                pnl = money((fill_price - locked.entry_price) * qty * direction)
                # The last fill releases exactly what is left: partial closes never leak.
                release = locked.margin if full else money(locked.margin * qty / remaining)
                credit = release + pnl - fee
            for amount in (fee, pnl, credit, locked.realized_pnl + pnl, locked.fees + fee):
                _require_fits(amount, "price", "This fill's PnL or fee does not fit in money.")
            bot = Bot.objects.filter(pk=locked.bot_id)
            if credit < 0:
                bot = bot.filter(capital__gte=-credit)
            if not bot.update(capital=F("capital") + credit):
                raise InsufficientCapital(
                    "The loss of this close exceeds the bot's cash; add capital first."
                )
            Trade.objects.create(
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
            )
            locked.closed_quantity += qty
            locked.margin -= release
            locked.realized_pnl += pnl
            locked.fees += fee
            locked.current_price = fill_price
            if full:
                locked.status = Position.Status.CLOSED
                locked.closed_at = executed_at
            locked.save(
                update_fields=[
                    "closed_quantity",
                    "margin",
                    "realized_pnl",
                    "fees",
                    "current_price",
                    "status",
                    "closed_at",
                ]
            )
            _stats_add(
                bot=locked.bot_id,
                owner_id=locked.owner_id,
                symbol=locked.symbol,
                day=executed_at,
                fee=fee,
                pnl=pnl,
                closed_net=(locked.realized_pnl - locked.fees) if full else None,
            )
            transaction.on_commit(lambda: ticker_invalidate(symbol=locked.symbol), robust=True)
    except IntegrityError:
        existing = _existing_trade(position.bot_id, client_order_id)
        if existing is None:
            raise
        return _replayed_close(existing, position=Position.objects.get(pk=position.pk))
    return locked


def _opening_side(side: str) -> str:
    return Trade.Side.BUY if side == Position.Side.LONG else Trade.Side.SELL


def _closing_side(side: str) -> str:
    return Trade.Side.SELL if side == Position.Side.LONG else Trade.Side.BUY


def _replayed_open(existing: Trade, *, side: str) -> Position:
    """The position an earlier attempt of this very open created, or an error if the id was
    used for something else (a close, another side): never a silent success."""
    if existing.position_id is not None and existing.side == _opening_side(side):
        position = Position.objects.get(pk=existing.position_id)
        if position.side == side and position.opened_at == existing.executed_at:
            return position
    raise InvalidInput(
        "client_order_id was already used for another order of this bot.", field="client_order_id"
    )


def _replayed_close(existing: Trade, *, position: Position) -> Position:
    if existing.position_id == position.pk and existing.side == _closing_side(position.side):
        return position  # this very close was recorded: a retry, not an error
    raise InvalidInput(
        "client_order_id was already used for another order of this bot.", field="client_order_id"
    )


def _require_fits(amount: Decimal, field: str, message: str) -> None:
    if not fits_money(amount):
        raise InvalidInput(message, field=field)


def _client_order_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("client_order_id must be a non-empty string.", field="client_order_id")
    value = value.strip()
    if len(value) > 64:
        raise InvalidInput(
            "client_order_id must be at most 64 characters.", field="client_order_id"
        )
    return value


def _existing_trade(bot_id: int, client_order_id: str) -> Trade | None:
    # uses trade_bot_client_order_uniq
    return Trade.objects.filter(bot_id=bot_id, client_order_id=client_order_id).first()


def _stats_add(
    *,
    bot: Bot | int,
    symbol: str,
    day: datetime,
    fee: Decimal,
    pnl: Decimal,
    owner_id: int | None = None,
    closed_net: Decimal | None = None,
) -> None:
    """Add one fill (and, when it closed a position, that position's net PnL) to the totals.

    Two upserts (INSERT ... ON CONFLICT DO UPDATE with increments): one round trip each whatever
    the history, and safe under concurrent fills of the same bot.
    """
    bot_id = bot if isinstance(bot, int) else bot.pk
    if owner_id is None:
        owner_id = bot.owner_id  # type: ignore[union-attr]
    closed = 1 if closed_net is not None else 0
    win = 1 if closed_net is not None and closed_net > 0 else 0
    loss = 1 if closed_net is not None and closed_net < 0 else 0
    profit = closed_net if win else ZERO
    lost = -closed_net if loss else ZERO
    stats = BotSymbolStats._meta.db_table
    daily = BotDailyPnl._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {stats} (owner_id, bot_id, symbol, trade_count, closed_positions, wins,
                                 losses, realized_pnl, fees, gross_profit, gross_loss)
            VALUES (%s, %s, %s, 1, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (bot_id, symbol) DO UPDATE SET
                trade_count = {stats}.trade_count + 1,
                closed_positions = {stats}.closed_positions + EXCLUDED.closed_positions,
                wins = {stats}.wins + EXCLUDED.wins,
                losses = {stats}.losses + EXCLUDED.losses,
                realized_pnl = {stats}.realized_pnl + EXCLUDED.realized_pnl,
                fees = {stats}.fees + EXCLUDED.fees,
                gross_profit = {stats}.gross_profit + EXCLUDED.gross_profit,
                gross_loss = {stats}.gross_loss + EXCLUDED.gross_loss
            """,
            [owner_id, bot_id, symbol, closed, win, loss, pnl, fee, profit, lost],
        )
        cursor.execute(
            f"""
            INSERT INTO {daily} (owner_id, bot_id, day, trade_count, realized_pnl, fees)
            VALUES (%s, %s, %s, 1, %s, %s)
            ON CONFLICT (bot_id, day) DO UPDATE SET
                trade_count = {daily}.trade_count + 1,
                realized_pnl = {daily}.realized_pnl + EXCLUDED.realized_pnl,
                fees = {daily}.fees + EXCLUDED.fees
            """,
            [owner_id, bot_id, day.astimezone(UTC).date(), pnl, fee],
        )


# --- Equity -------------------------------------------------------------------------------------


def equity_snapshot_record(*, bot: Bot, taken_at: datetime | None = None) -> EquitySnapshot:
    """Record the bot's equity now: cash + open margin + unrealized PnL at current prices.

    In the same transaction: the bot's all-time peak and max drawdown, and the owner's summed
    curve (``AccountEquitySnapshot``): the bot's change since its previous snapshot is added to
    the account row at ``taken_at`` (created from the latest earlier row) and to any later rows,
    which is exactly "every bot's latest snapshot, carried forward, summed". Snapshots of one
    owner are serialised (a row lock on the owner) so concurrent bots cannot miss each other.
    """
    taken_at = _aware(taken_at, field="taken_at")
    with transaction.atomic(durable=True):
        get_user_model().objects.select_for_update().filter(pk=bot.owner_id).first()
        locked = Bot.objects.select_for_update().get(pk=bot.pk)
        previous = EquitySnapshot.objects.for_bot(bot.pk).newest_first().first()
        if previous is not None and taken_at <= previous.taken_at:
            raise InvalidInput(
                "taken_at must be later than the bot's last snapshot "
                f"({previous.taken_at.isoformat()}).",
                field="taken_at",
            )
        margin = ZERO
        unrealized = ZERO
        for position in (
            Position.objects.for_bot(bot.pk)
            .open()
            .only(
                "side",
                "quantity",
                "closed_quantity",
                "entry_price",
                "current_price",
                "margin",
                "status",
            )
        ):
            margin += position.margin
            unrealized += position.unrealized_pnl
        unrealized = money(unrealized)
        equity = locked.capital + margin + unrealized
        snapshot = EquitySnapshot.objects.create(
            owner_id=bot.owner_id,
            bot=bot,
            taken_at=taken_at,
            cash=locked.capital,
            unrealized_pnl=unrealized,
            equity=equity,
        )
        if previous is None:
            delta = (equity, locked.capital, unrealized, 1)
        else:
            delta = (
                equity - previous.equity,
                locked.capital - previous.cash,
                unrealized - previous.unrealized_pnl,
                0,
            )
        _account_apply(owner_id=bot.owner_id, taken_at=taken_at, delta=delta)
        peak = max(locked.peak_equity, equity)
        # Capped at 100 %: leverage can take equity below zero, and "lost everything" is the
        # most a drawdown can say (the column holds 999.9999 at most).
        with localcontext(MONEY_CONTEXT):
            drawdown = min(quantize((peak - equity) / peak * 100, 4), HUNDRED) if peak > 0 else ZERO
        Bot.objects.filter(pk=bot.pk).update(
            peak_equity=peak, max_drawdown_pct=max(locked.max_drawdown_pct, drawdown)
        )
    return snapshot


def _account_apply(
    *, owner_id: int, taken_at: datetime, delta: tuple[Decimal, Decimal, Decimal, int]
) -> None:
    table = AccountEquitySnapshot._meta.db_table
    d_equity, d_cash, d_unrealized, d_bots = delta
    previous = (
        f"(SELECT {{col}} FROM {table} WHERE owner_id = %s AND taken_at < %s "
        "ORDER BY taken_at DESC LIMIT 1)"
    )
    base = [previous.format(col=col) for col in ("equity", "cash", "unrealized_pnl", "bots")]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (owner_id, taken_at, equity, cash, unrealized_pnl, bots)
            VALUES (%s, %s, COALESCE({base[0]}, 0) + %s, COALESCE({base[1]}, 0) + %s,
                    COALESCE({base[2]}, 0) + %s, COALESCE({base[3]}, 0) + %s)
            ON CONFLICT (owner_id, taken_at) DO UPDATE SET
                equity = {table}.equity + EXCLUDED.equity - COALESCE({base[0]}, 0),
                cash = {table}.cash + EXCLUDED.cash - COALESCE({base[1]}, 0),
                unrealized_pnl = {table}.unrealized_pnl + EXCLUDED.unrealized_pnl
                                 - COALESCE({base[2]}, 0),
                bots = {table}.bots + EXCLUDED.bots - COALESCE({base[3]}, 0)
            """,
            [
                owner_id, taken_at,
                owner_id, taken_at, d_equity, owner_id, taken_at, d_cash,
                owner_id, taken_at, d_unrealized, owner_id, taken_at, d_bots,
                owner_id, taken_at, owner_id, taken_at, owner_id, taken_at, owner_id, taken_at,
            ],
        )  # fmt: skip
        cursor.execute(
            f"""
            UPDATE {table} SET equity = equity + %s, cash = cash + %s,
                               unrealized_pnl = unrealized_pnl + %s, bots = bots + %s
            WHERE owner_id = %s AND taken_at > %s
            """,
            [d_equity, d_cash, d_unrealized, d_bots, owner_id, taken_at],
        )


def account_equity_rebuild(*, owner_id: int) -> None:
    """Recompute a user's summed curve from the bots' snapshots (after deleting a bot, repair).

    For every instant any of the user's bots has a snapshot: each bot's latest snapshot at or
    before it, summed. Costs one index probe per (instant, bot): fine as a one-off, which is why
    the per-snapshot path is incremental instead.
    """
    table = AccountEquitySnapshot._meta.db_table
    snapshots = EquitySnapshot._meta.db_table
    bots = Bot._meta.db_table
    latest = (
        f"(SELECT s.{{col}} FROM {snapshots} s WHERE s.bot_id = b.id AND s.taken_at <= t.taken_at "
        "ORDER BY s.taken_at DESC LIMIT 1)"
    )
    with transaction.atomic():
        AccountEquitySnapshot.objects.filter(owner_id=owner_id).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {table} (owner_id, taken_at, equity, cash, unrealized_pnl, bots)
                SELECT %s, x.taken_at, SUM(x.equity), SUM(x.cash), SUM(x.unrealized), COUNT(x.equity)
                FROM (
                    SELECT t.taken_at, {latest.format(col="equity")} AS equity,
                           {latest.format(col="cash")} AS cash,
                           {latest.format(col="unrealized_pnl")} AS unrealized
                    FROM (SELECT DISTINCT taken_at FROM {snapshots} WHERE owner_id = %s) t,
                         {bots} b
                    WHERE b.owner_id = %s
                ) x
                WHERE x.equity IS NOT NULL
                GROUP BY x.taken_at
                """,
                [owner_id, owner_id, owner_id],
            )


# --- Running totals, rebuilt from the ledger ----------------------------------------------------


def stats_rebuild(*, bot_ids: Iterable[int] | None = None) -> None:
    """Recompute BotSymbolStats and BotDailyPnl from trades and positions (set-based SQL).

    Used by ``seed_demo`` after bulk loading, and as a repair tool; tests check it agrees with the
    incremental updates of ``position_open``/``position_close``.
    """
    ids = None if bot_ids is None else list(bot_ids)
    stats = BotSymbolStats._meta.db_table
    daily = BotDailyPnl._meta.db_table
    trades = Trade._meta.db_table
    positions = Position._meta.db_table
    where_t = "" if ids is None else "WHERE t.bot_id IN ({})".format(",".join(["%s"] * len(ids)))
    where_p = "" if ids is None else "AND p.bot_id IN ({})".format(",".join(["%s"] * len(ids)))
    params = [] if ids is None else ids
    with transaction.atomic():
        if ids is None:
            BotSymbolStats.objects.all().delete()
            BotDailyPnl.objects.all().delete()
        else:
            BotSymbolStats.objects.filter(bot_id__in=ids).delete()
            BotDailyPnl.objects.filter(bot_id__in=ids).delete()
        if ids == []:
            return
        day_expr = (
            "(t.executed_at AT TIME ZONE 'UTC')::date"
            if connection.vendor == "postgresql"
            else "date(t.executed_at)"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {stats} (owner_id, bot_id, symbol, trade_count, closed_positions,
                                     wins, losses, realized_pnl, fees, gross_profit, gross_loss)
                SELECT f.owner_id, f.bot_id, f.symbol, f.trade_count,
                       COALESCE(c.closed, 0), COALESCE(c.wins, 0), COALESCE(c.losses, 0),
                       f.realized_pnl, f.fees,
                       COALESCE(c.gross_profit, 0), COALESCE(c.gross_loss, 0)
                FROM (
                    SELECT t.owner_id, t.bot_id, t.symbol, COUNT(*) AS trade_count,
                           SUM(t.realized_pnl) AS realized_pnl, SUM(t.fee) AS fees
                    FROM {trades} t {where_t}
                    GROUP BY t.owner_id, t.bot_id, t.symbol
                ) f
                LEFT JOIN (
                    SELECT p.bot_id, p.symbol, COUNT(*) AS closed,
                           SUM(CASE WHEN p.realized_pnl - p.fees > 0 THEN 1 ELSE 0 END) AS wins,
                           SUM(CASE WHEN p.realized_pnl - p.fees < 0 THEN 1 ELSE 0 END) AS losses,
                           SUM(CASE WHEN p.realized_pnl - p.fees > 0
                                    THEN p.realized_pnl - p.fees ELSE 0 END) AS gross_profit,
                           SUM(CASE WHEN p.realized_pnl - p.fees < 0
                                    THEN p.fees - p.realized_pnl ELSE 0 END) AS gross_loss
                    FROM {positions} p
                    WHERE p.status = 'closed' {where_p}
                    GROUP BY p.bot_id, p.symbol
                ) c ON c.bot_id = f.bot_id AND c.symbol = f.symbol
                """,
                params + params,
            )
            cursor.execute(
                f"""
                INSERT INTO {daily} (owner_id, bot_id, day, trade_count, realized_pnl, fees)
                SELECT t.owner_id, t.bot_id, {day_expr}, COUNT(*), SUM(t.realized_pnl), SUM(t.fee)
                FROM {trades} t {where_t}
                GROUP BY t.owner_id, t.bot_id, {day_expr}
                """,
                params,
            )


# --- API commands -------------------------------------------------------------------------------

PAPER_FEE_RATE = Decimal("0.001")  # 0.1 % of notional per fill, a typical taker fee


PRICE_BAND = Decimal("0.10")  # an API close may fill at most 10 % away from the mark


def position_close_at_market(
    *,
    position: Position,
    price: Any = None,
    quantity: Any = None,
    client_order_id: str | None = None,
) -> Position:
    """Close (part of) a position as a user asks from the API: at the position's current (mark)
    price, or at ``price`` if it is within PRICE_BAND of it (a limit near the market, never an
    arbitrary number that would mint PnL), with the paper fee. Pass ``client_order_id`` to make
    retries safe."""
    if price is not None:
        price = _decimal(price, field="price", places=12, positive=True)
        mark = position.current_price
        if abs(price - mark) > mark * PRICE_BAND:
            raise InvalidInput(
                f"price must be within {PRICE_BAND:.0%} of the current price {mark.normalize()}.",
                field="price",
            )
    return position_close(
        position=position,
        price=price,
        quantity=quantity,
        fee_rate=PAPER_FEE_RATE,
        client_order_id=client_order_id or f"api-close-{uuid.uuid4().hex}",
    )


def bot_delete(*, bot: Bot) -> None:
    """Delete a bot and its history, and rebuild its owner's summed equity curve.

    Locks the owner (as equity_snapshot_record does, so no snapshot lands mid-rebuild) and the
    bot (so a concurrent start cannot slip past the status check). An active bot must be
    stopped or paused first.
    """
    # Not durable: the admin's delete view already runs inside a transaction.
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=bot.owner_id).first()
        locked = Bot.objects.select_for_update().filter(pk=bot.pk).first()
        if locked is None:
            return
        if locked.status == Bot.Status.ACTIVE:
            raise InvalidState("Stop or pause the bot before deleting it.")
        locked.delete()
        account_equity_rebuild(owner_id=locked.owner_id)
