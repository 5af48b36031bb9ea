"""Candle and indicator windows: what the cache stores per series, in a binary form that both the
JSON endpoints and the typed reads slice without parsing.

A **candle window** holds the newest closed candles of a series (up to ``WINDOW``): open times
(int64 Unix seconds), open/high/low/close/volume as float64 (for maths), the same candles as
pre-rendered JSON rows with exact decimal strings (for the API; sliced by byte offsets), and the
gaps found inside it. An **indicator window** holds an indicator's last ``WINDOW`` values (float64,
NaN where there is no value) with their times, pre-rendered as fixed-width JSON strings so a
request slices them too. Neither depends on the ``limit`` a request asks for.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

WINDOW = 1000  # = the API's maximum limit
_LEN = struct.Struct(">I")
_TIME_WIDTH = len(b'"2026-01-01T00:00:00Z",')  # ISO seconds with Z: fixed width until year 9999
_ND = orjson.OPT_SERIALIZE_NUMPY


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_times(times: np.ndarray) -> bytes:
    """``"...Z","...Z",`` (each exactly ``_TIME_WIDTH`` bytes, trailing comma included)."""
    text = np.datetime_as_string(times.astype("datetime64[s]"), unit="s")
    return "".join(f'"{t}Z",' for t in text.tolist()).encode()


def slice_times(rendered: bytes, count: int, total: int, end: int | None = None) -> bytes:
    """The JSON list items of times ``[end - count, end)`` (end defaults to all), no trailing comma."""
    end = total if end is None else end
    start = max(0, end - count)
    return rendered[start * _TIME_WIDTH : end * _TIME_WIDTH - 1] if end > start else b""


def _pack(meta: dict[str, Any], arrays: list[np.ndarray], tail: bytes = b"") -> bytes:
    head = orjson.dumps(meta)
    return b"".join([_LEN.pack(len(head)), head, *(a.tobytes() for a in arrays), tail])


def _unpack(blob: bytes) -> tuple[dict[str, Any], memoryview]:
    (size,) = _LEN.unpack_from(blob)
    return orjson.loads(blob[_LEN.size : _LEN.size + size]), memoryview(blob)[_LEN.size + size :]


@dataclass(frozen=True)
class CandleWindow:
    exchange: str
    symbol: str
    timeframe: str
    time: np.ndarray  # int64 open times, Unix seconds, oldest first
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    rows: bytes  # JSON rows joined by ","
    row_ends: np.ndarray  # int32 exclusive end of each row in ``rows``
    gaps: list[list[str]] = field(default_factory=list)  # [[first missing, last missing], ...]
    behind: bool = False  # the exchange had not published the newest closed candle yet

    def __len__(self) -> int:
        return len(self.time)

    def encode(self) -> bytes:
        meta = {"exchange": self.exchange, "symbol": self.symbol, "timeframe": self.timeframe,
                "n": len(self), "gaps": self.gaps, "behind": self.behind}  # fmt: skip
        arrays = [self.time.astype(np.int64), self.row_ends.astype(np.int32)]
        arrays += [a.astype(np.float64) for a in self.prices()]
        return _pack(meta, arrays, self.rows)

    def prices(self) -> tuple[np.ndarray, ...]:
        return self.open, self.high, self.low, self.close, self.volume

    @classmethod
    def decode(cls, blob: bytes) -> CandleWindow:
        meta, body = _unpack(blob)
        n = meta["n"]
        time = np.frombuffer(body, dtype=np.int64, count=n)
        ends = np.frombuffer(body, dtype=np.int32, count=n, offset=8 * n)
        offset = 12 * n
        columns = []
        for _ in range(5):
            columns.append(np.frombuffer(body, dtype=np.float64, count=n, offset=offset))
            offset += 8 * n
        return cls(meta["exchange"], meta["symbol"], meta["timeframe"], time, *columns,
                   rows=bytes(body[offset:]), row_ends=ends, gaps=meta["gaps"],
                   behind=meta["behind"])  # fmt: skip

    def rows_json(self, limit: int) -> bytes:
        """The newest ``limit`` rows as JSON list items."""
        n = len(self)
        first = max(0, n - limit)
        start = 0 if first == 0 else int(self.row_ends[first - 1]) + 1
        return self.rows[start:]

    def gaps_since(self, seconds: int) -> list[list[str]]:
        start = iso(seconds)
        return [gap for gap in self.gaps if gap[1] >= start]


def render_rows(rows: list[list[Any]]) -> tuple[bytes, np.ndarray]:
    parts = [orjson.dumps(row, option=orjson.OPT_UTC_Z) for row in rows]
    ends = np.cumsum([len(p) + 1 for p in parts], dtype=np.int64) - 1 if parts else np.array([])
    return b",".join(parts), ends.astype(np.int32)


@dataclass(frozen=True)
class IndicatorWindow:
    """One indicator's newest values (up to ``WINDOW``), NaN where there is none."""

    label: str
    time: np.ndarray  # int64
    outputs: dict[str, np.ndarray]
    times_json: bytes
    gaps: list[list[str]] = field(default_factory=list)
    available: int = 0  # candles the computation had (history plus window)
    needed: int = 0  # candles it needed for warm-up-correct values over the whole window

    def encode(self) -> bytes:
        meta = {"label": self.label, "n": len(self.time), "outputs": list(self.outputs),
                "gaps": self.gaps, "available": self.available, "needed": self.needed}  # fmt: skip
        arrays = [
            self.time.astype(np.int64),
            *(v.astype(np.float64) for v in self.outputs.values()),
        ]
        return _pack(meta, arrays, self.times_json)

    @classmethod
    def decode(cls, blob: bytes) -> IndicatorWindow:
        meta, body = _unpack(blob)
        n = meta["n"]
        time = np.frombuffer(body, dtype=np.int64, count=n)
        outputs = {}
        offset = 8 * n
        for name in meta["outputs"]:
            outputs[name] = np.frombuffer(body, dtype=np.float64, count=n, offset=offset)
            offset += 8 * n
        return cls(meta["label"], time, outputs, bytes(body[offset:]), meta["gaps"],
                   meta["available"], meta["needed"])  # fmt: skip

    def complete_for(self, limit: int) -> bool:
        """The newest ``limit`` values are all there (no NaN, no hole): nothing to report."""
        return len(self.time) >= limit and self.first_value_index <= len(self.time) - limit

    @functools.cached_property
    def first_value_index(self) -> int:
        """Index from which every output has a value to the end (len when none has)."""
        n = len(self.time)
        first = 0
        for values in self.outputs.values():
            missing = np.flatnonzero(np.isnan(values))
            if len(missing):
                first = max(first, int(missing[-1]) + 1)
        return min(first, n)

    def json(self, limit: int) -> bytes:
        """``{"time": [...], "<output>": [...], ...}`` for the newest ``limit`` values."""
        n = len(self.time)
        parts = [b'{"time":[', slice_times(self.times_json, limit, n), b"]"]
        for name, values in self.outputs.items():
            parts += [
                b',"',
                name.encode(),
                b'":',
                orjson.dumps(values[max(0, n - limit) :], option=_ND),
            ]
        return b"".join(parts) + b"}"
