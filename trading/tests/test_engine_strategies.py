"""Strategies: pure functions of arrays and parameters (no database), validated parameters."""

from __future__ import annotations

import numpy as np
import pytest

from marketdata import indicators
from trading.engine.strategies import (
    STRATEGIES,
    Action,
    ParamError,
    SymbolView,
    get_strategy,
    validate_strategy,
)


def _view(series: dict[str, dict[str, list[float]]], position: str | None = None) -> SymbolView:
    arrays = {k: {o: np.array(v, dtype=float) for o, v in d.items()} for k, d in series.items()}
    return SymbolView(symbol="BTC/USDT", price=100.0, indicators=arrays, position=position)


def test_at_least_three_builtins_with_documented_params() -> None:
    trading = [s for s in STRATEGIES.values() if s.name != "manual"]
    assert len(trading) >= 3
    for strategy in STRATEGIES.values():
        assert strategy.description
        for param in strategy.all_params():
            assert param.help and param.name
        # Defaults are valid, and every indicator they read is a valid market-data spec.
        params = strategy.validate({})
        for label in strategy.indicators(params):
            assert indicators.parse_spec(label).label == label


def test_validation_fills_defaults_and_names_the_bad_parameter() -> None:
    assert validate_strategy("sma_cross", {"fast": 5}) == {
        "fast": 5, "slow": 30, "exponential": False, "leverage": 1, "allow_short": True,
    }  # fmt: skip
    with pytest.raises(ParamError, match="fast must be shorter than slow"):
        validate_strategy("sma_cross", {"fast": 40, "slow": 30})
    with pytest.raises(ParamError, match=r"unknown parameter.*colour"):
        validate_strategy("momentum", {"colour": "red"})
    with pytest.raises(ParamError, match="period must be a whole number"):
        validate_strategy("mean_reversion", {"period": 2.5})
    with pytest.raises(ParamError, match="leverage must be at most 125"):
        validate_strategy("mean_reversion", {"leverage": 500})
    with pytest.raises(ParamError, match="allow_short must be true or false"):
        validate_strategy("momentum", {"allow_short": "yes"})
    with pytest.raises(ParamError, match="oversold < exit_level < overbought"):
        validate_strategy("mean_reversion", {"oversold": 60})
    with pytest.raises(ParamError, match="is not a strategy"):
        validate_strategy("grid", {})
    with pytest.raises(ParamError, match="must be an object"):
        validate_strategy("momentum", [1, 2])


def test_sma_cross_enters_on_the_cross_and_exits_on_the_opposite_one() -> None:
    strategy = get_strategy("sma_cross")
    params = strategy.validate({"fast": 2, "slow": 3})
    up = {"sma:2": {"values": [9.0, 11.0]}, "sma:3": {"values": [10.0, 10.0]}}
    down = {"sma:2": {"values": [11.0, 9.0]}, "sma:3": {"values": [10.0, 10.0]}}
    flat = {"sma:2": {"values": [11.0, 12.0]}, "sma:3": {"values": [10.0, 10.0]}}
    assert strategy.decide(_view(up), params) is Action.OPEN_LONG
    assert strategy.decide(_view(down), params) is Action.OPEN_SHORT
    assert strategy.decide(_view(flat), params) is None  # no cross: no signal
    assert strategy.decide(_view(down, "long"), params) is Action.EXIT
    assert strategy.decide(_view(up, "long"), params) is None
    no_short = strategy.validate({"fast": 2, "slow": 3, "allow_short": False})
    assert strategy.decide(_view(down), no_short) is None
    warming = {"sma:2": {"values": [np.nan, 11.0]}, "sma:3": {"values": [np.nan, 10.0]}}
    assert strategy.decide(_view(warming), params) is None


def test_rsi_mean_reversion_levels() -> None:
    strategy = get_strategy("mean_reversion")
    params = strategy.validate({})
    rsi = lambda v: {"rsi:14": {"values": [v]}}  # noqa: E731
    assert strategy.decide(_view(rsi(25.0)), params) is Action.OPEN_LONG
    assert strategy.decide(_view(rsi(75.0)), params) is Action.OPEN_SHORT
    assert strategy.decide(_view(rsi(50.0)), params) is None
    assert strategy.decide(_view(rsi(49.0), "long"), params) is None
    assert strategy.decide(_view(rsi(50.0), "long"), params) is Action.EXIT
    assert strategy.decide(_view(rsi(50.0), "short"), params) is Action.EXIT
    assert strategy.decide(_view(rsi(np.nan)), params) is None


def test_macd_momentum_crosses_of_the_signal_line() -> None:
    strategy = get_strategy("momentum")
    params = strategy.validate({})
    label = "macd:12:26:9"
    bull = {label: {"macd": [-1.0, 1.0], "signal": [0.0, 0.0], "histogram": [-1.0, 1.0]}}
    bear = {label: {"macd": [1.0, -1.0], "signal": [0.0, 0.0], "histogram": [1.0, -1.0]}}
    assert strategy.decide(_view(bull), params) is Action.OPEN_LONG
    assert strategy.decide(_view(bear), params) is Action.OPEN_SHORT
    assert strategy.decide(_view(bull, "short"), params) is Action.EXIT
    assert strategy.decide(_view(bear, "short"), params) is None


def test_decisions_are_deterministic_over_real_indicator_values() -> None:
    rng = np.random.default_rng(7)
    close = 100 + np.cumsum(rng.normal(0, 1, 600))
    for name in ("sma_cross", "mean_reversion", "momentum"):
        strategy = get_strategy(name)
        params = strategy.validate({})
        specs = [indicators.parse_spec(label) for label in strategy.indicators(params)]
        answers = []
        for _ in range(2):
            seen = []
            for end in range(300, 600):
                series = {
                    s.label: {o: v[end - strategy.history : end]
                              for o, v in indicators.compute(s, close[:end]).items()}
                    for s in specs
                }  # fmt: skip
                seen.append(strategy.decide(_view_arrays(series), params))
            answers.append(seen)
        assert answers[0] == answers[1]
        assert any(a is not None for a in answers[0])  # it does trade on a random walk


def _view_arrays(series: dict) -> SymbolView:
    return SymbolView(symbol="BTC/USDT", price=100.0, indicators=series, position=None)
