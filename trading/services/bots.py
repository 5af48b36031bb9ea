"""Bots: create, change settings, change status (with a recorded reason), delete."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from marketdata import prices as market_prices
from marketdata.clients.base import MarketDataError
from trading import dataversion, locks
from trading.engine.strategies import ParamError, get_strategy, validate_strategy
from trading.errors import InvalidInput, InvalidState, PriceUnavailable
from trading.models import Bot, Position, Timeframe
from trading.risk import validate_risk_params
from trading.services._common import decimal_arg
from trading.services.equity import account_equity_rebuild
from zerobot.lib.symbols import normalize_symbol

MAX_SYMBOLS_PER_BOT = 50
# Which status changes a bot accepts: stopped is final until restarted explicitly.
BOT_TRANSITIONS: dict[str, set[str]] = {
    Bot.Status.INACTIVE: {Bot.Status.ACTIVE, Bot.Status.STOPPED},
    Bot.Status.ACTIVE: {Bot.Status.PAUSED, Bot.Status.STOPPED},
    Bot.Status.PAUSED: {Bot.Status.ACTIVE, Bot.Status.STOPPED},
    Bot.Status.STOPPED: {Bot.Status.ACTIVE},
}


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
    strategy_params: dict[str, Any] | None = None,
) -> Bot:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("name must not be blank.", field="name")
    capital = decimal_arg(initial_capital, field="initial_capital", places=8, positive=True)
    if timeframe not in Timeframe.values:
        raise InvalidInput(
            f"timeframe must be one of {', '.join(Timeframe.values)}.", field="timeframe"
        )
    symbol_list = _symbols(symbols)
    params = validate_risk_params(risk_params)
    strategy = (strategy or "").strip() or "manual"
    settings = strategy_settings(strategy, strategy_params)
    try:
        with transaction.atomic():
            return Bot.objects.create(
                owner=owner,
                name=name,
                strategy=strategy,
                strategy_params=settings,
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
    try:
        unknown = market_prices.unlisted(result)  # the venue's markets (ccxt: loaded once)
    except MarketDataError as exc:
        raise PriceUnavailable(
            f"The exchange cannot say which symbols it lists right now ({exc.message}): retry."
        ) from None
    if unknown:
        raise InvalidInput(
            f"The exchange has no market {', '.join(unknown)}: a bot trades listed symbols only.",
            field="symbols",
        )
    return result


def strategy_settings(strategy: str, params: Any) -> dict[str, Any]:
    """``params`` of ``strategy`` validated by the engine's registry (defaults filled), or
    InvalidInput naming ``strategy`` (unknown) or ``strategy_params`` (a bad parameter)."""
    try:
        get_strategy(strategy)
    except ParamError as exc:
        raise InvalidInput(str(exc), field="strategy") from None
    try:
        return validate_strategy(strategy, params)
    except ParamError as exc:
        raise InvalidInput(f"strategy_params: {exc}", field="strategy_params") from None


def bot_changes_validate(**changes: Any) -> dict[str, Any]:
    """Normalised settings changes (name, strategy, strategy_params, symbols, timeframe,
    risk_params), or InvalidInput naming the field. Money, owner and status change elsewhere.
    ``strategy_params`` alone is checked against the bot's strategy by ``bot_update``."""
    allowed = {"name", "strategy", "strategy_params", "symbols", "timeframe", "risk_params"}
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
    if "strategy" in changes:
        changes["strategy"] = (changes["strategy"] or "").strip() or "manual"
        changes["strategy_params"] = strategy_settings(
            changes["strategy"], changes.get("strategy_params")
        )
    return changes


def bot_update(*, bot: Bot, **changes: Any) -> Bot:
    """Change a bot's settings (see bot_changes_validate). A new strategy without
    ``strategy_params`` gets its defaults; new parameters alone are checked against the bot's
    strategy. The engine uses them from the bot's next cycle on."""
    changes = bot_changes_validate(**changes)
    if "strategy_params" in changes and "strategy" not in changes:
        changes["strategy_params"] = strategy_settings(bot.strategy, changes["strategy_params"])
    for field, value in changes.items():
        setattr(bot, field, value)
    try:
        with transaction.atomic():
            bot.save(update_fields=[*changes, "updated_at"])
    except IntegrityError:
        raise InvalidInput(f"You already have a bot named {bot.name!r}.", field="name") from None
    return bot


def bot_set_status(*, bot: Bot, status: str, reason: str = "") -> Bot:
    """Start, pause or stop a bot, recording ``reason`` (blank for a user's own command) in
    ``status_reason``. Stopping closes nothing: open positions stay open."""
    if status not in Bot.Status.values:
        raise InvalidInput(f"status must be one of {', '.join(Bot.Status.values)}.", field="status")
    if status == bot.status:
        return bot
    if status not in BOT_TRANSITIONS[bot.status]:
        raise InvalidState(f"A {bot.status} bot cannot become {status}.")
    # Compare-and-set on the old status, so two concurrent requests cannot both win (the UPDATE
    # locks only the bot row: level 2 of trading.locks).
    updated = Bot.objects.filter(pk=bot.pk, status=bot.status).update(
        status=status, status_reason=reason[:200], updated_at=timezone.now()
    )
    if not updated:
        bot.refresh_from_db(fields=["status", "status_reason", "updated_at"])
        raise InvalidState(f"The bot changed meanwhile and is now {bot.status}.")
    dataversion.bump_on_commit(bot.owner_id)  # an .update(): no post_save
    bot.refresh_from_db(fields=["status", "status_reason", "updated_at"])
    return bot


def bot_delete(*, bot: Bot) -> None:
    """Delete a bot and its history, and rebuild its owner's summed equity curve.

    Locks owner, bot, then the bot's positions in pk order (``trading.locks``) before the cascade
    deletes them, so a concurrent close or mark waits instead of deadlocking. An active bot must
    be stopped or paused first.
    """
    # Not durable: the admin's delete view already runs inside a transaction.
    with transaction.atomic():
        locks.lock_owner(bot.owner_id)
        locked = locks.lock_bot(bot.pk)
        if locked is None:
            return
        if locked.status == Bot.Status.ACTIVE:
            raise InvalidState("Stop or pause the bot before deleting it.")
        locks.lock_positions(Position.objects.for_bot(bot.pk).only("pk"))
        locked.delete()
        account_equity_rebuild(owner_id=locked.owner_id)
