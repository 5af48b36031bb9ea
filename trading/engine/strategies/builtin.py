"""The built-in strategies. Each reads warm-up-correct indicators (``marketdata.indicators``) and
decides on the newest two values, so a signal fires once, on the candle that crossed, and the same
candles always give the same orders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trading.engine.strategies.base import (
    Action,
    Param,
    ParamError,
    Strategy,
    SymbolView,
    crossed_above,
    crossed_below,
)


def _entry_or_exit(
    view: SymbolView, params: Mapping[str, Any], *, bullish: bool, bearish: bool
) -> Action | None:
    """Trend-following: a bullish cross exits a short and opens a long; bearish the other way.

    An exit and the opposite entry happen in the same cycle (the engine applies exits first)."""
    if view.position == "long":
        return Action.EXIT if bearish else None
    if view.position == "short":
        return Action.EXIT if bullish else None
    if bullish:
        return Action.OPEN_LONG
    if bearish and params["allow_short"]:
        return Action.OPEN_SHORT
    return None


class MovingAverageCross(Strategy):
    name = "sma_cross"
    description = (
        "Trend following on two moving averages: long when the fast one crosses above the slow "
        "one, short (if allowed) when it crosses below; the opposite cross exits."
    )
    params = (
        Param("fast", int, 10, "Period of the fast average (candles).", 2, 499),
        Param("slow", int, 30, "Period of the slow average (candles).", 3, 500),
        Param("exponential", bool, False, "Use EMAs instead of SMAs."),
    )

    def check(self, params: Mapping[str, Any]) -> None:
        if params["fast"] >= params["slow"]:
            raise ParamError("fast must be shorter than slow.")

    def _labels(self, params: Mapping[str, Any]) -> tuple[str, str]:
        kind = "ema" if params["exponential"] else "sma"
        return f"{kind}:{params['fast']}", f"{kind}:{params['slow']}"

    def indicators(self, params: Mapping[str, Any]) -> list[str]:
        return list(self._labels(params))

    def decide(self, view: SymbolView, params: Mapping[str, Any]) -> Action | None:
        fast_label, slow_label = self._labels(params)
        fast, slow = view.series(fast_label), view.series(slow_label)
        return _entry_or_exit(
            view, params, bullish=crossed_above(fast, slow), bearish=crossed_below(fast, slow)
        )


class RsiMeanReversion(Strategy):
    name = "mean_reversion"
    description = (
        "RSI mean reversion: long when RSI falls below oversold, short (if allowed) when it rises "
        "above overbought; exits when RSI gets back to exit_level."
    )
    params = (
        Param("period", int, 14, "RSI period (candles).", 2, 500),
        Param("oversold", float, 30.0, "RSI level below which it buys.", 1, 99),
        Param("overbought", float, 70.0, "RSI level above which it sells short.", 1, 99),
        Param("exit_level", float, 50.0, "RSI level at which a position is closed.", 1, 99),
    )
    history = 1

    def check(self, params: Mapping[str, Any]) -> None:
        if not params["oversold"] < params["exit_level"] < params["overbought"]:
            raise ParamError("oversold < exit_level < overbought must hold.")

    def indicators(self, params: Mapping[str, Any]) -> list[str]:
        return [f"rsi:{params['period']}"]

    def decide(self, view: SymbolView, params: Mapping[str, Any]) -> Action | None:
        values = view.series(f"rsi:{params['period']}")
        if not len(values) or values[-1] != values[-1]:  # no value (NaN) yet
            return None
        rsi = float(values[-1])
        if view.position == "long":
            return Action.EXIT if rsi >= params["exit_level"] else None
        if view.position == "short":
            return Action.EXIT if rsi <= params["exit_level"] else None
        if rsi < params["oversold"]:
            return Action.OPEN_LONG
        if rsi > params["overbought"] and params["allow_short"]:
            return Action.OPEN_SHORT
        return None


class MacdMomentum(Strategy):
    name = "momentum"
    description = (
        "MACD momentum: long when the MACD line crosses above its signal line, short (if allowed) "
        "when it crosses below; the opposite cross exits."
    )
    params = (
        Param("fast", int, 12, "Fast EMA period.", 2, 499),
        Param("slow", int, 26, "Slow EMA period.", 3, 500),
        Param("signal", int, 9, "Signal EMA period.", 2, 500),
    )

    def check(self, params: Mapping[str, Any]) -> None:
        if params["fast"] >= params["slow"]:
            raise ParamError("fast must be shorter than slow.")

    def _label(self, params: Mapping[str, Any]) -> str:
        return f"macd:{params['fast']}:{params['slow']}:{params['signal']}"

    def indicators(self, params: Mapping[str, Any]) -> list[str]:
        return [self._label(params)]

    def decide(self, view: SymbolView, params: Mapping[str, Any]) -> Action | None:
        label = self._label(params)
        macd, signal = view.series(label, "macd"), view.series(label, "signal")
        return _entry_or_exit(
            view, params, bullish=crossed_above(macd, signal), bearish=crossed_below(macd, signal)
        )


class Manual(Strategy):
    name = "manual"
    description = (
        "No signals: positions are opened and closed through the API; the engine still marks "
        "them and applies stop-loss, take-profit and liquidation."
    )
    params = ()
    history = 1

    def indicators(self, params: Mapping[str, Any]) -> list[str]:
        return []

    def decide(self, view: SymbolView, params: Mapping[str, Any]) -> Action | None:
        return None
