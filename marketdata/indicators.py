"""SMA, EMA, RSI and MACD over numpy float64 arrays, computed by TA-Lib.

Outputs have the input's length; the warm-up positions (too little history for a value) are NaN,
which the API renders as ``null``, never ``0``. A spec is written ``name[:period...]``:
``sma:50``, ``rsi`` (= ``rsi:14``), ``macd:12:26:9``; its text is also its cache key part.

**Warm-up.** An EMA-family value (EMA, RSI's Wilder smoothing, MACD) depends on every earlier
candle, with a weight that decays geometrically; TA-Lib seeds it with a simple average, so its
first values differ from those of a run over a long history. ``warmup(spec)`` is how many candles
to read before the first value one wants: TA-Lib's own lookback for the function plus a
convergence tail after which the seed's weight is below ``CONVERGENCE`` (1e-10, so values agree
with a long-history run to a relative 1e-8 with a margin): ``ln(1e-10) / ln(1 - alpha)`` candles
with ``alpha = 2 / (period + 1)`` for an EMA and ``1 / period`` for RSI; for MACD the slow EMA's
tail plus the signal's. An SMA needs only its lookback.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import talib
import talib.abstract

MIN_PERIOD = 2
MAX_PERIOD = 500
MAX_SPECS = 10
CONVERGENCE = 1e-10


def _tail(alpha: float) -> int:
    return math.ceil(math.log(CONVERGENCE) / math.log(1 - alpha))


def sma(close: np.ndarray, period: int = 20) -> np.ndarray:
    return talib.SMA(_prices(close), timeperiod=period)


def ema(close: np.ndarray, period: int = 20) -> np.ndarray:
    return talib.EMA(_prices(close), timeperiod=period)


def rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    return talib.RSI(_prices(close), timeperiod=period)


def macd(
    close: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(MACD line, signal line, histogram)."""
    return talib.MACD(_prices(close), fastperiod=fast, slowperiod=slow, signalperiod=signal)


def _prices(close: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(close, dtype=np.float64)


@dataclass(frozen=True)
class _Kind:
    defaults: tuple[int, ...]
    outputs: tuple[str, ...]
    function: Callable[..., np.ndarray | tuple[np.ndarray, ...]]


KINDS: dict[str, _Kind] = {
    "sma": _Kind((20,), ("values",), sma),
    "ema": _Kind((20,), ("values",), ema),
    "rsi": _Kind((14,), ("values",), rsi),
    "macd": _Kind((12, 26, 9), ("macd", "signal", "histogram"), macd),
}


_TALIB_NAMES = {"sma": ("SMA", ("timeperiod",)), "ema": ("EMA", ("timeperiod",)),
                "rsi": ("RSI", ("timeperiod",)),
                "macd": ("MACD", ("fastperiod", "slowperiod", "signalperiod"))}  # fmt: skip


@functools.lru_cache(maxsize=4096)
def _lookback(name: str, params: tuple[int, ...]) -> int:
    # Building a TA-Lib abstract Function costs ~30 us: once per spec, not per request.
    function, names = _TALIB_NAMES[name]
    return int(talib.abstract.Function(function, **dict(zip(names, params, strict=True))).lookback)


@functools.lru_cache(maxsize=4096)
def _warmup(spec: IndicatorSpec) -> int:
    return spec._warmup()


@dataclass(frozen=True)
class IndicatorSpec:
    name: str
    params: tuple[int, ...]

    @property
    def lookback(self) -> int:
        """TA-Lib's lookback: candles consumed before the first value."""
        return _lookback(self.name, self.params)

    @property
    def warmup(self) -> int:
        """Candles to read before the first wanted value (lookback plus convergence tail)."""
        return _warmup(self)

    def _warmup(self) -> int:
        if self.name == "sma":
            tail = 0
        elif self.name == "ema":
            tail = _tail(2 / (self.params[0] + 1))
        elif self.name == "rsi":
            tail = _tail(1 / self.params[0])
        else:  # macd: the slow EMA converges slowest, then the signal EMA over the MACD line
            tail = _tail(2 / (self.params[1] + 1)) + _tail(2 / (self.params[2] + 1))
        return self.lookback + tail

    @property
    def label(self) -> str:
        return ":".join([self.name, *map(str, self.params)])

    @property
    def outputs(self) -> tuple[str, ...]:
        return KINDS[self.name].outputs


def parse_spec(text: str) -> IndicatorSpec:
    """``"rsi"``, ``"sma:50"``, ``"macd:12:26:9"``; ValueError with a message a user can act on."""
    name, *raw = text.strip().lower().split(":")
    kind = KINDS.get(name)
    if kind is None:
        raise ValueError(f"{name!r} is not an indicator: use {', '.join(KINDS)}.")
    if len(raw) > len(kind.defaults):
        raise ValueError(f"{name} takes at most {len(kind.defaults)} period(s), got {text!r}.")
    try:
        given = tuple(int(value) for value in raw)
    except ValueError:
        raise ValueError(f"{text!r}: periods are whole numbers, e.g. {name}:14.") from None
    params = given + kind.defaults[len(given) :]
    for value in params:
        if not MIN_PERIOD <= value <= MAX_PERIOD:
            raise ValueError(f"{text!r}: periods must be between {MIN_PERIOD} and {MAX_PERIOD}.")
    if name == "macd" and params[0] >= params[1]:
        raise ValueError(f"{text!r}: the fast period must be shorter than the slow one.")
    return IndicatorSpec(name, params)


def parse_specs(text: str) -> list[IndicatorSpec]:
    """A comma-separated list of specs, duplicates removed, order kept."""
    items = [item for item in (part.strip() for part in text.split(",")) if item]
    if not items:
        raise ValueError("name at least one indicator, e.g. rsi,macd.")
    specs = list(dict.fromkeys(parse_spec(item) for item in items))
    if len(specs) > MAX_SPECS:
        raise ValueError(f"at most {MAX_SPECS} indicators per request.")
    return specs


def compute(spec: IndicatorSpec, close: np.ndarray) -> dict[str, np.ndarray]:
    """The spec's output arrays by name (``values``, or ``macd``/``signal``/``histogram``)."""
    kind = KINDS[spec.name]
    result = kind.function(close, *spec.params)
    arrays = result if isinstance(result, tuple) else (result,)
    return dict(zip(kind.outputs, arrays, strict=True))
