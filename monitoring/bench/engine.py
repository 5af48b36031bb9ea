"""The engine section of ``manage.py bench``: fleets of 10, 100 and 1,000 bots, each run for
one warm-up round (the market cache filling) and one measured round by the threaded runner,
through ``bench_engine``'s own fleet, round and connection sampler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model

from trading.management.commands.bench_engine import PREFIX, PeakConnections, _fleet, _round


def run(
    *, fleets: list[int], concurrency: int, symbols: int, seconds_left: Callable[[], float],
    say: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    rows, skipped = [], {}
    per_cycle: float | None = None
    for bots in fleets:
        if per_cycle is not None and per_cycle * bots * 2 * 1.5 > seconds_left():
            skipped[str(bots)] = f"time bound: {max(seconds_left(), 0):.0f} s left"
            say(f"    engine {bots:,} bots: skipped ({skipped[str(bots)]})")
            continue
        ids = _fleet(bots, symbols)
        with PeakConnections() as peak:
            warm = _round(ids, concurrency)
            peak.phase("warm")
            measured = _round(ids, concurrency)
            peak.phase("measured")
        per_cycle = (warm["seconds"] + measured["seconds"]) / max(2 * bots, 1)
        rows.append({
            "bots": bots, "warm_up": warm, **measured,
            "peak_server_connections": peak.phases["measured"],
        })  # fmt: skip
        say(f"    engine {bots:,} bots: {measured['cycles_per_s']:.0f} cycles/s, p95 "
            f"{measured['p95_ms']:.1f} ms, {measured['errors']} errors")  # fmt: skip
        for text in measured["error_messages"]:
            say(f"      {text['count']} x {text['message']}")
    get_user_model().objects.filter(username__startswith=PREFIX).delete()
    return {"concurrency": concurrency, "pool_max": settings.DB_POOL_MAX_SIZE, "symbols": symbols,
            "fleets": rows, "skipped": skipped}  # fmt: skip
