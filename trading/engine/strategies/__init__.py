"""The strategy registry: name -> strategy, and parameter validation for bot create/update.

``validate_strategy(name, params)`` is the one place a bot's strategy and ``strategy_params`` are
checked (the API serializers and ``trading.services`` call it). Built-ins (``builtin.py``):

- ``sma_cross``: ``fast`` (10), ``slow`` (30), ``exponential`` (false)
- ``mean_reversion``: ``period`` (14), ``oversold`` (30), ``overbought`` (70), ``exit_level`` (50)
- ``momentum``: MACD ``fast`` (12), ``slow`` (26), ``signal`` (9)
- ``manual``: no signals

and, for all of them, ``leverage`` (1, 1..125) and ``allow_short`` (true).
"""

from __future__ import annotations

from typing import Any

from trading.engine.strategies.base import Action, Param, ParamError, Strategy, SymbolView
from trading.engine.strategies.builtin import (
    MacdMomentum,
    Manual,
    MovingAverageCross,
    RsiMeanReversion,
)

__all__ = [
    "STRATEGIES",
    "Action",
    "Param",
    "ParamError",
    "Strategy",
    "SymbolView",
    "get_strategy",
    "validate_strategy",
]

STRATEGIES: dict[str, Strategy] = {
    s.name: s for s in (MovingAverageCross(), RsiMeanReversion(), MacdMomentum(), Manual())
}


class UnknownStrategy(ParamError):
    pass


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UnknownStrategy(
            f"{name!r} is not a strategy: use {', '.join(sorted(STRATEGIES))}."
        ) from None


def validate_strategy(name: str, params: Any) -> dict[str, Any]:
    """The normalised ``strategy_params`` of ``name`` (defaults filled), or ParamError."""
    return get_strategy(name).validate(params)
