"""Risk rules of a bot: the one home of ``risk_params`` validation, and the pure functions the
services (and the bot engine) use to decide what a position may do.

Nothing here touches the database: every function takes numbers and returns numbers, so the
services enforce the rules once (``trading.services.positions``) and the engine can ask the same
questions about a price it is about to act on.

Rules (README, "Risk"):

- Only an **active** bot opens positions (``open_refusal``).
- ``max_position_pct``: the margin of one new position (``quantity x price / leverage``) is at most
  this % of the bot's equity (cash + open margin + unrealized PnL at the stored marks).
- ``max_open_positions``: at most this many open positions per bot.
- ``max_trades_per_day``: at most this many fills per bot and UTC day; only **openings** are
  refused at the limit (an exit is never blocked by a risk rule).
- ``max_drawdown_pct``: when equity falls this % below the bot's peak equity, the bot is paused
  and the reason recorded on it (``Bot.status_reason``); a paused bot opens nothing.
- ``stop_loss_pct`` / ``take_profit_pct``: the default stop-loss and take-profit levels stored on
  a new position when the order names none (long: entry x (1 - sl%), entry x (1 + tp%); short:
  mirrored); a level that would be at or below zero is not set.

Liquidation (isolated margin): a position can lose at most its own margin. Its liquidation price
is where the loss plus the fee of the closing fill (``LIQUIDATION_FEE_RATE`` of the notional) equals
its margin, so liquidating it credits the bot exactly nothing and takes nothing from the rest of
its cash: cash never goes negative and other positions are untouched. This is an exchange's
maintenance-margin rule with the maintenance margin equal to the closing fee.

    long:  P_liq = (entry - margin / open_qty) / (1 - fee_rate)   (none at 1x: never reached)
    short: P_liq = (entry + margin / open_qty) / (1 + fee_rate)

``margin / open_qty`` stays ``entry / leverage`` through partial closes (margin is released pro
rata), so the price is computed once at opening and stored on the position.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from typing import Any

from trading.errors import InvalidInput
from zerobot.lib.money import MONEY_CONTEXT, PRICE_DECIMAL_PLACES, InvalidAmount, quantize

ZERO = Decimal(0)
HUNDRED = Decimal(100)
PRICE_STEP = Decimal(1).scaleb(-PRICE_DECIMAL_PLACES)
# The fee of a closing fill the engine or the API makes (and of a liquidation): 0.1 % of notional,
# a typical taker fee.
PAPER_FEE_RATE = Decimal("0.001")
LIQUIDATION_FEE_RATE = PAPER_FEE_RATE

# name: (minimum, maximum, default). Percentages are of equity (sl/tp: of the entry price).
PCT_PARAMS: dict[str, tuple[Decimal, Decimal, Decimal]] = {
    "max_position_pct": (Decimal("0.01"), Decimal("100"), Decimal("10")),
    "max_drawdown_pct": (Decimal("0.01"), Decimal("100"), Decimal("20")),
    "stop_loss_pct": (Decimal("0.01"), Decimal("100"), Decimal("5")),
    "take_profit_pct": (Decimal("0.01"), Decimal("1000"), Decimal("10")),
}
# name: (minimum, maximum, default).
INT_PARAMS: dict[str, tuple[int, int, int]] = {
    "max_trades_per_day": (1, 100_000, 100),
    "max_open_positions": (1, 10_000, 100),
}
MAX_TRADES_PER_DAY = INT_PARAMS["max_trades_per_day"]


def validate_risk_params(raw: Any) -> dict[str, Any]:
    """Return the normalised parameters (defaults filled, ``validated: True``) or raise InvalidInput.

    The one validation of ``risk_params``: the services, the API serializer and the admin call it.
    Percentages are stored as strings of exact decimals so JSON never turns them into floats.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidInput("risk_params must be an object.", field="risk_params")
    unknown = set(raw) - set(PCT_PARAMS) - set(INT_PARAMS) - {"validated"}
    if unknown:
        raise InvalidInput(
            f"Unknown risk parameter(s): {', '.join(sorted(unknown))}.", field="risk_params"
        )
    result: dict[str, Any] = {}
    for name, (low, high, default) in PCT_PARAMS.items():
        value = raw.get(name, default)
        if isinstance(value, bool):
            raise InvalidInput(f"risk_params.{name} must be a number.", field="risk_params")
        try:
            number = quantize(value, 4)
        except InvalidAmount:
            raise InvalidInput(
                f"risk_params.{name} must be a finite number.", field="risk_params"
            ) from None
        if not low <= number <= high:
            raise InvalidInput(
                f"risk_params.{name} must be between {low} and {high} (got {number}).",
                field="risk_params",
            )
        # Positional, shortest exact form: "10", "2.5" (never "1E+1").
        result[name] = format(number.normalize(), "f")
    for name, (low, high, default) in INT_PARAMS.items():
        value = raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"risk_params.{name} must be an integer.", field="risk_params")
        if not low <= value <= high:
            raise InvalidInput(
                f"risk_params.{name} must be between {low} and {high} (got {value}).",
                field="risk_params",
            )
        result[name] = value
    result["validated"] = True
    return result


@dataclass(frozen=True)
class RiskLimits:
    """A bot's validated ``risk_params`` as numbers."""

    max_position_pct: Decimal
    max_drawdown_pct: Decimal
    stop_loss_pct: Decimal
    take_profit_pct: Decimal
    max_trades_per_day: int
    max_open_positions: int

    @classmethod
    def of(cls, risk_params: Any) -> RiskLimits:
        """Limits from stored params (re-validated: rows written before a new parameter existed
        get its default)."""
        params = validate_risk_params(risk_params)
        return cls(
            **{name: Decimal(params[name]) for name in PCT_PARAMS},
            **{name: params[name] for name in INT_PARAMS},
        )


def direction(side: str) -> int:
    return 1 if side == "long" else -1


def default_exit_levels(
    *, side: str, entry: Decimal, limits: RiskLimits
) -> tuple[Decimal | None, Decimal | None]:
    """(stop_loss, take_profit) from the bot's percentages; None where the level would be <= 0."""
    sign = direction(side)
    with localcontext(MONEY_CONTEXT):
        stop = quantize(entry * (1 - sign * limits.stop_loss_pct / HUNDRED), PRICE_DECIMAL_PLACES)
        take = quantize(entry * (1 + sign * limits.take_profit_pct / HUNDRED), PRICE_DECIMAL_PLACES)
    return (stop if stop > 0 else None), (take if take > 0 else None)


def check_exit_levels(
    *, side: str, entry: Decimal, stop_loss: Decimal | None, take_profit: Decimal | None
) -> None:
    """A long's stop is below its entry and its target above (a short's mirrored), else
    InvalidInput: a level on the wrong side would trigger on the first mark."""
    sign = direction(side)
    if stop_loss is not None and (stop_loss - entry) * sign >= 0:
        where = "below" if sign > 0 else "above"
        raise InvalidInput(f"stop_loss must be {where} the entry price.", field="stop_loss")
    if take_profit is not None and (take_profit - entry) * sign <= 0:
        where = "above" if sign > 0 else "below"
        raise InvalidInput(f"take_profit must be {where} the entry price.", field="take_profit")


def liquidation_price(
    *,
    side: str,
    entry: Decimal,
    margin: Decimal,
    open_quantity: Decimal,
    fee_rate: Decimal = LIQUIDATION_FEE_RATE,
) -> Decimal | None:
    """The isolated-margin liquidation price (module docstring), rounded towards the entry (so a
    liquidation at it never credits less than zero); None when it is never reached."""
    if open_quantity <= 0:
        return None
    with localcontext(MONEY_CONTEXT) as ctx:
        per_unit = margin / open_quantity
        if side == "long":
            raw = (entry - per_unit) / (1 - fee_rate)
            if raw <= 0:
                return None
            ctx.rounding = ROUND_CEILING
        else:
            raw = (entry + per_unit) / (1 + fee_rate)
            ctx.rounding = ROUND_FLOOR
        return raw.quantize(PRICE_STEP)


def is_liquidated(*, side: str, price: Decimal, liquidation: Decimal | None) -> bool:
    """Whether a mark (or fill) at ``price`` has reached the liquidation price."""
    if liquidation is None:
        return False
    return price <= liquidation if side == "long" else price >= liquidation


def exit_reason(
    *,
    side: str,
    price: Decimal,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    liquidation: Decimal | None,
) -> str | None:
    """Which exit a mark at ``price`` triggers: ``liquidation`` first (it is reached before the
    stop when the stop is beyond it), then ``stop_loss``, then ``take_profit``; None if none."""
    if is_liquidated(side=side, price=price, liquidation=liquidation):
        return "liquidation"
    sign = direction(side)
    if stop_loss is not None and (price - stop_loss) * sign <= 0:
        return "stop_loss"
    if take_profit is not None and (price - take_profit) * sign >= 0:
        return "take_profit"
    return None


def drawdown_pct(*, peak: Decimal, equity: Decimal) -> Decimal:
    """(peak - equity) / peak in %, 4 places, capped at 100 (leverage can take equity below 0);
    0 when there is no positive peak."""
    if peak <= 0:
        return ZERO
    with localcontext(MONEY_CONTEXT):
        return min(quantize((peak - equity) / peak * HUNDRED, 4), HUNDRED)


def open_refusal(
    *,
    status: str,
    limits: RiskLimits,
    equity: Decimal,
    peak_equity: Decimal,
    margin: Decimal,
    open_positions: int,
    trades_today: int,
) -> str | None:
    """Why a bot may not open a position of ``margin`` now (a message), or None if it may.

    A drawdown breach is reported as ``"drawdown: ..."``: the caller pauses the bot with it.
    """
    if status != "active":
        return f"only an active bot opens positions (this one is {status})."
    drawdown = drawdown_pct(peak=peak_equity, equity=equity)
    if drawdown >= limits.max_drawdown_pct:
        return (
            f"drawdown: equity is {drawdown}% below its peak, at or past max_drawdown_pct "
            f"{limits.max_drawdown_pct}%."
        )
    if open_positions >= limits.max_open_positions:
        return f"the bot already has {open_positions} open positions (max_open_positions)."
    if trades_today >= limits.max_trades_per_day:
        return f"the bot made {trades_today} trades today (max_trades_per_day)."
    with localcontext(MONEY_CONTEXT):
        allowed = equity * limits.max_position_pct / HUNDRED
    if margin > allowed:
        return (
            f"this position's margin {margin} is more than max_position_pct "
            f"{limits.max_position_pct}% of equity ({quantize(max(allowed, ZERO), 8)})."
        )
    return None
