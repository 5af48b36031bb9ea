"""Risk parameters of a bot: their names, bounds and validation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from trading.errors import InvalidInput
from zerobot.lib.money import InvalidAmount, quantize

# name: (minimum, maximum, default). Percentages are of equity.
PCT_PARAMS: dict[str, tuple[Decimal, Decimal, Decimal]] = {
    "max_position_pct": (Decimal("0.01"), Decimal("100"), Decimal("10")),
    "max_drawdown_pct": (Decimal("0.01"), Decimal("100"), Decimal("20")),
    "stop_loss_pct": (Decimal("0.01"), Decimal("100"), Decimal("5")),
    "take_profit_pct": (Decimal("0.01"), Decimal("1000"), Decimal("10")),
}
MAX_TRADES_PER_DAY = (1, 100_000, 100)


def validate_risk_params(raw: Any) -> dict[str, Any]:
    """Return the normalised parameters (defaults filled, ``validated: True``) or raise InvalidInput.

    Percentages are stored as strings of exact decimals so JSON never turns them into floats.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidInput("risk_params must be an object.", field="risk_params")
    unknown = set(raw) - set(PCT_PARAMS) - {"max_trades_per_day", "validated"}
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
    trades = raw.get("max_trades_per_day", MAX_TRADES_PER_DAY[2])
    if isinstance(trades, bool) or not isinstance(trades, int):
        raise InvalidInput(
            "risk_params.max_trades_per_day must be an integer.", field="risk_params"
        )
    if not MAX_TRADES_PER_DAY[0] <= trades <= MAX_TRADES_PER_DAY[1]:
        raise InvalidInput(
            f"risk_params.max_trades_per_day must be between {MAX_TRADES_PER_DAY[0]} and "
            f"{MAX_TRADES_PER_DAY[1]} (got {trades}).",
            field="risk_params",
        )
    result["max_trades_per_day"] = trades
    if Decimal(result["take_profit_pct"]) <= 0 or Decimal(result["stop_loss_pct"]) <= 0:
        raise InvalidInput(
            "stop_loss_pct and take_profit_pct must be positive.", field="risk_params"
        )
    result["validated"] = True
    return result
