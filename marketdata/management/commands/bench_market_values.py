"""python manage.py bench_market_values: sizes of cached market values, raw and compressed.

For 200 and 1,000 synthetic candles: the rendered OHLCV body and the candle window (the binary
value the cache stores per series), raw, LZ4 (what the cache uses) and zlib levels 1 and 6, with
median compress / decompress times over 200 rounds each (PERFORMANCE.md, "Value sizes").
"""

from __future__ import annotations

import statistics
import time
import zlib
from collections.abc import Callable
from typing import Any

import lz4.block
import orjson
from django.core.management.base import BaseCommand

from marketdata import series, services
from marketdata.clients.synthetic import SyntheticClient

ROUNDS = 200


def _median_us(call: Callable[[], Any]) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


class Command(BaseCommand):
    help = "Sizes and (de)compression costs of cached market values: raw, LZ4, zlib."

    def handle(self, *args: Any, **options: Any) -> None:
        codecs: list[tuple[str, Callable[[bytes], bytes], Callable[[bytes], bytes]]] = [
            ("lz4", lz4.block.compress, lz4.block.decompress),
            ("zlib-1", lambda b: zlib.compress(b, 1), zlib.decompress),
            ("zlib-6", lambda b: zlib.compress(b, 6), zlib.decompress),
        ]
        self.stdout.write(f"{'value':<26}{'raw':>9}  " + "  ".join(
            f"{name:>8} {'ratio':>5} {'enc us':>7} {'dec us':>7}" for name, _, _ in codecs))  # fmt: skip
        for count in (200, 1000):
            candles = SyntheticClient().fetch_ohlcv(symbol="BTC/USDT", timeframe="1h", limit=count)
            rows = [[c.open_time, services._text(c.open), services._text(c.high),
                     services._text(c.low), services._text(c.close), services._text(c.volume)]
                    for c in candles]  # fmt: skip
            body = orjson.dumps({"candles": rows}, option=orjson.OPT_UTC_Z)
            tuples = [(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in candles]
            rendered, ends = series.render_rows(rows)
            window = series.CandleWindow(
                "synthetic", "BTC/USDT", "1h", services._seconds(tuples),
                *(services._floats(tuples, i) for i in range(1, 6)), rows=rendered, row_ends=ends,
            ).encode()  # fmt: skip
            for label, value in (
                (f"OHLCV body, {count}", body),
                (f"candle window, {count}", window),
            ):
                cells = []
                for _, compress, decompress in codecs:
                    packed = compress(value)
                    cells.append(
                        f"{len(packed):>8,} {len(value) / len(packed):>4.2f}x "
                        f"{_median_us(lambda: compress(value)):>7.0f} "  # noqa: B023
                        f"{_median_us(lambda: decompress(packed)):>7.0f}"  # noqa: B023
                    )
                self.stdout.write(f"{label:<26}{len(value):>9,}  " + "  ".join(cells))
