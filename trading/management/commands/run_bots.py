"""python manage.py run_bots [--bots all|ID,...] [--interval S] [--concurrency N]
                             [--cycles K | --duration S] [--lease S] [--quiet]

Runs active bots on their schedule (``trading.engine.runner``): any number of these processes, on
any number of machines, share the fleet through leases in PostgreSQL. ``--cycles K`` stops once
each selected bot ran K cycles in this process; ``--duration S`` after S seconds; neither: until
SIGTERM/SIGINT, which finishes the running cycles, gives back the leases and closes the pool.

Prints a progress line every ``--progress`` seconds (stderr): cycles done and per second, p50/p95
cycle time, lag behind schedule (p95), the pool (in use / waiting / errors) and the market cache
hit rate of this process. A failing bot is logged with its id (``zerobot.engine``) and recorded
as its ``last_error``; the others go on.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitoring import pool as monitoring_pool
from monitoring.context import process_cache_counts
from trading.engine.runner import Runner, pool_stats
from trading.models import Bot


def _bots_arg(value: str) -> list[int] | None:
    if value == "all":
        return None
    try:
        ids = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        raise CommandError(f"--bots must be 'all' or ids such as 1,2,3 (got {value!r}).") from None
    if not ids:
        raise CommandError("--bots names no bot.")
    return ids


def cache_hit_rate(since: dict[tuple[str, str], int]) -> float | None:
    now = process_cache_counts()
    hits = sum(v - since.get(k, 0) for k, v in now.items() if k[1] == "hit")
    misses = sum(v - since.get(k, 0) for k, v in now.items() if k[1] == "miss")
    return None if hits + misses == 0 else hits / (hits + misses)


class Command(BaseCommand):
    help = "Run active bots on their schedule (leases in PostgreSQL; many processes may share)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bots", default="all", help="all (default) or ids: 1,2,3")
        parser.add_argument("--interval", type=float, default=60.0, help="seconds between cycles")
        parser.add_argument("--concurrency", type=int, default=10, help="worker threads")
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--cycles", type=int, help="stop after K cycles of each bot")
        group.add_argument("--duration", type=float, help="stop after S seconds")
        parser.add_argument("--lease", type=float, help="lease seconds (default 2 x interval)")
        parser.add_argument("--progress", type=float, default=2.0, help="seconds between lines")
        parser.add_argument("--quiet", action="store_true", help="no progress line")

    def handle(self, *args: Any, **options: Any) -> None:
        interval, concurrency = options["interval"], options["concurrency"]
        if not 0.05 <= interval <= 86_400:
            raise CommandError("--interval must be between 0.05 and 86400 seconds.")
        if not 1 <= concurrency <= 1000:
            raise CommandError("--concurrency must be between 1 and 1000.")
        if options["cycles"] is not None and options["cycles"] < 1:
            raise CommandError("--cycles must be at least 1.")
        bot_ids = _bots_arg(options["bots"])
        if options["cycles"] is not None and bot_ids is None:
            bot_ids = list(
                Bot.objects.filter(status=Bot.Status.ACTIVE).values_list("pk", flat=True)
            )
        runner = Runner(
            interval=interval, concurrency=concurrency, bot_ids=bot_ids,
            cycles=options["cycles"], lease_seconds=options["lease"],
        )  # fmt: skip
        stop_signals = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.stderr.write(f"{stop_signals.get(signum, signum)}: finishing running cycles")
            runner.stop()

        previous = {s: signal.signal(s, on_signal) for s in stop_signals}
        monitoring_pool.start_background()  # cycles and pool figures reach the monitoring tables
        cache_since = process_cache_counts()
        done = threading.Event()
        reporter = None
        if not options["quiet"]:
            reporter = threading.Thread(
                target=self._report, args=(runner, done, options["progress"], cache_since),
                name="run-bots-progress", daemon=True,
            )  # fmt: skip
            reporter.start()
        self.stdout.write(
            f"runner {runner.name}: {len(bot_ids) if bot_ids is not None else 'all'} bot(s), "
            f"interval {interval:g}s, concurrency {concurrency}"
        )
        try:
            stats = runner.run(duration=options["duration"])
        finally:
            done.set()
            if reporter is not None:
                reporter.join(timeout=5)
            for s, handler in previous.items():
                signal.signal(s, handler)
            pool = pool_stats()
            # Last monitoring flush, then close the pool (a later query opens a new one).
            monitoring_pool.drain(timeout=10, reason="run_bots exit")
        summary = stats.summary()
        hit = cache_hit_rate(cache_since)
        self.stdout.write(
            f"done: {summary['cycles']} cycles, {summary['errors']} with errors, "
            f"p50 {summary['p50_ms']:.1f} ms, p95 {summary['p95_ms']:.1f} ms, "
            f"lag p95 {summary['lag_p95_s']:.2f} s, pool errors {pool['errors']}, "
            f"cache hit {'-' if hit is None else f'{hit:.1%}'}"
        )

    def _report(
        self, runner: Runner, done: threading.Event, every: float, cache_since: dict
    ) -> None:
        while not done.wait(every):
            summary = runner.stats.summary()
            pool = pool_stats()
            hit = cache_hit_rate(cache_since)
            line = (
                f"\r{summary['cycles']} cycles  {runner.stats.rate():.1f}/s  "
                f"p50 {summary['p50_ms']:.1f} ms  p95 {summary['p95_ms']:.1f} ms  "
                f"lag p95 {summary['lag_p95_s']:.2f} s  errors {summary['errors']}  "
                f"pool {pool['in_use']}/{pool['size']} in use, {pool['waiting']} waiting, "
                f"{pool['errors']} errors  cache hit {'-' if hit is None else f'{hit:.1%}'}"
            )
            sys.stderr.write(line + ("\n" if not sys.stderr.isatty() else ""))
            sys.stderr.flush()
        time.sleep(0)
