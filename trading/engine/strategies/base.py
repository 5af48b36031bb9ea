"""The strategy interface: pure Python over numpy arrays, no ORM, no I/O.

A strategy declares the indicators it reads (``indicators(params)``, specs in
``marketdata.indicators`` syntax) and how many of their newest values it needs (``history``); the
engine reads them for every symbol of the bot through the typed market reads (cached, shared by
every bot on the same series) and calls ``decide`` once per symbol with a ``SymbolView``. The
answer is an ``Action`` (or None): open long, open short, or exit the open position. Sizing, fees,
slippage, stop-loss/take-profit and risk limits are the engine's and the services' business, not
the strategy's. The same view and parameters always give the same answer (no clock, no randomness).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


class Action(enum.StrEnum):
    OPEN_LONG = "open_long"
    OPEN_SHORT = "open_short"
    EXIT = "exit"


@dataclass(frozen=True, slots=True)
class SymbolView:
    """What a strategy sees of one symbol at the cycle's ``as_of``."""

    symbol: str
    price: float  # last price at as_of
    # {spec label: {output: the newest ``history`` values, oldest first (NaN: no value yet)}}
    indicators: Mapping[str, Mapping[str, np.ndarray]]
    position: str | None = None  # side of the bot's open position in this symbol: long/short

    def series(self, label: str, output: str = "values") -> np.ndarray:
        return self.indicators[label][output]


class ParamError(ValueError):
    """A strategy parameter is invalid; the message names it."""


@dataclass(frozen=True, slots=True)
class Param:
    """One documented parameter: its type, bounds and default."""

    name: str
    kind: type  # int, float or bool
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None

    def clean(self, value: Any) -> Any:
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ParamError(f"{self.name} must be true or false.")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParamError(f"{self.name} must be a number.")
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ParamError(f"{self.name} must be a whole number.")
            value = int(value)
        else:
            value = float(value)
            if not np.isfinite(value):
                raise ParamError(f"{self.name} must be a finite number.")
        if self.minimum is not None and value < self.minimum:
            raise ParamError(f"{self.name} must be at least {self.minimum:g} (got {value:g}).")
        if self.maximum is not None and value > self.maximum:
            raise ParamError(f"{self.name} must be at most {self.maximum:g} (got {value:g}).")
        return value


# Parameters every strategy accepts (execution, not signal).
COMMON_PARAMS: tuple[Param, ...] = (
    Param("leverage", int, 1, "Leverage of the positions it opens (margin = notional / leverage).",
          1, 125),
    Param("allow_short", bool, True, "Open short positions on bearish signals."),
)  # fmt: skip


class Strategy:
    """Base of the built-ins (stateless: one shared instance each). Subclasses set ``name``,
    ``description``, ``params`` and implement ``indicators``, ``decide`` and (for rules across
    parameters) ``check``."""

    name: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[tuple[Param, ...]]
    history: ClassVar[int] = 2  # indicator values per series a decision needs

    def all_params(self) -> tuple[Param, ...]:
        return self.params + COMMON_PARAMS

    def validate(self, raw: Any) -> dict[str, Any]:
        """Normalised parameters (defaults filled) or ParamError naming the parameter."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ParamError("strategy_params must be an object.")
        known = {p.name: p for p in self.all_params()}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ParamError(
                f"unknown parameter(s) for {self.name}: {', '.join(unknown)} "
                f"(it takes {', '.join(known)})."
            )
        cleaned = {name: p.clean(raw.get(name, p.default)) for name, p in known.items()}
        self.check(cleaned)
        return cleaned

    def check(self, params: Mapping[str, Any]) -> None:
        """Rules across parameters (e.g. fast < slow); ParamError when broken."""

    def indicators(self, params: Mapping[str, Any]) -> list[str]:
        raise NotImplementedError

    def decide(self, view: SymbolView, params: Mapping[str, Any]) -> Action | None:
        raise NotImplementedError


def crossed_above(a: np.ndarray, b: np.ndarray | float) -> bool:
    """``a`` went from <= ``b`` to > ``b`` between its last two values (False on NaN)."""
    b0, b1 = (b[-2], b[-1]) if isinstance(b, np.ndarray) else (b, b)
    if len(a) < 2 or np.isnan([a[-2], a[-1], b0, b1]).any():
        return False
    return bool(a[-2] <= b0 and a[-1] > b1)


def crossed_below(a: np.ndarray, b: np.ndarray | float) -> bool:
    """``a`` went from >= ``b`` to < ``b`` between its last two values (False on NaN)."""
    b0, b1 = (b[-2], b[-1]) if isinstance(b, np.ndarray) else (b, b)
    if len(a) < 2 or np.isnan([a[-2], a[-1], b0, b1]).any():
        return False
    return bool(a[-2] >= b0 and a[-1] < b1)
