"""python manage.py bench_market_cache --bots 100 --symbols 20 --timeframes 1h,4h --seconds 10

A load test of the read-through cache: bot threads start together and each reads, as fast as it
can, the OHLCV and the indicator set of every (symbol, timeframe) in the same order, so at the
start every bot misses the same key at the same moment (the stampede case). ``--processes N``
spreads the bots over N worker processes (``--worker`` runs one), so the Redis lock, not only the
in-process coordination, is what keeps a key from being computed twice. Candles are stored first
and the cache starts empty (a new epoch) unless ``--warm``.

Prints the hit rate per namespace (a read is a hit when its lookup found the value; a bot that
waited for another's computation counts as a miss) and the computations per key per value
lifetime (target: 1; a value lives until the next candle close or its TTL). Needs Redis for meaningful numbers. With several processes, keep each one's pool
small (e.g. DB_POOL_MIN_SIZE=2 DB_POOL_MAX_SIZE=20).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from marketdata import indicators, services, timeframes
from marketdata.cache import INDICATORS, MARKET, MarketCache, computed
from marketdata.clients.synthetic import BASE_PRICES
from marketdata.management.commands._args import split_list, timeframes_arg
from marketdata.series import WINDOW
from monitoring.context import process_cache_counts

STARTUP_SECONDS = 3.0  # time given to worker processes to start before the common start


def _unreachable_redis(mode: str) -> Any:
    """The production cache options pointed at a closed port, or at a blackhole: a listener
    that accepts connections and never answers (a hung Redis)."""
    from django.utils.module_loading import import_string

    config = dict(settings.CACHES["default"])
    if "django_redis" not in config["BACKEND"]:
        raise CommandError("--redis down/blackhole needs REDIS_URL (django-redis options).")
    port = 1
    if mode == "blackhole":
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1000)
        port = server.getsockname()[1]
        held: list[socket.socket] = []

        def accept() -> None:
            while True:
                held.append(server.accept()[0])

        threading.Thread(target=accept, daemon=True).start()
    return import_string(config["BACKEND"])(f"redis://127.0.0.1:{port}/0", config)


def bench_symbols(count: int) -> list[str]:
    bases = list(BASE_PRICES) + [f"SYN{i}" for i in range(max(0, count - len(BASE_PRICES)))]
    return [f"{base}/USDT" for base in bases[:count]]


def run_bots(
    *,
    bots: int,
    series: list[tuple[str, str]],
    specs: list[indicators.IndicatorSpec],
    limit: int,
    start_at: float,
    seconds: float,
    passes: int | None = None,
) -> dict[str, Any]:
    """Run ``bots`` threads from wall-clock ``start_at`` for ``seconds`` (or, with ``passes``,
    for exactly that many passes over the series, however long they take: what tests use, as
    it does not depend on timing); returns this process's read counts per namespace and its
    computations as (namespace, name, wall time, expiry)."""
    computations: list[tuple[str, str, float]] = []
    lock = threading.Lock()

    def on_computed(
        sender: Any, namespace: str, name: str, expires_at: float, **kwargs: Any
    ) -> None:
        with lock:
            computations.append((namespace, name, time.time(), expires_at))

    errors: list[BaseException] = []
    deadline = start_at + seconds

    def bot() -> None:
        time.sleep(max(0.0, start_at - time.time()))
        done = 0
        try:
            while (done < passes) if passes else (time.time() < deadline):
                done += 1
                for symbol, timeframe in series:
                    services.ohlcv_get(symbol=symbol, timeframe=timeframe, limit=limit)
                    services.indicators_get(
                        symbol=symbol, timeframe=timeframe, specs=specs, limit=limit
                    )
                    if not passes and time.time() >= deadline:
                        break
                connection.close()  # hand the pooled connection back between passes
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    computed.connect(on_computed, weak=False)
    before = Counter(process_cache_counts())
    threads = [threading.Thread(target=bot, daemon=True) for _ in range(bots)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    computed.disconnect(on_computed)
    if errors:
        raise CommandError(f"{len(errors)} bot(s) failed, first: {errors[0]!r}")
    counts = Counter(process_cache_counts())
    counts.subtract(before)
    return {
        "reads": {ns: [counts[ns, "hit"], counts[ns, "miss"]] for ns in (MARKET, INDICATORS)},
        "computations": computations,
    }


class Command(BaseCommand):
    help = "Load-test the market data cache with concurrent bots; prints hit rate and computations."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bots", type=int, default=100, help="bot threads in all")
        parser.add_argument("--processes", type=int, default=1, help="worker processes")
        parser.add_argument("--symbols", type=int, default=20)
        parser.add_argument("--timeframes", nargs="+", help="default 1h 4h")
        parser.add_argument("--seconds", type=float, default=10.0)
        parser.add_argument(
            "--passes", type=int, help="instead of --seconds: each bot reads every series N times"
        )
        parser.add_argument("--limit", type=int, default=200, help="candles per read (default 200)")
        parser.add_argument("--indicators", default="sma,ema,rsi,macd")
        parser.add_argument("--warm", action="store_true", help="keep what is already cached")
        parser.add_argument(
            "--redis", choices=["up", "down", "blackhole"], default="up",
            help="down: the cache points at a closed port; blackhole: at a server that accepts "
            "connections and never answers (each process starts its own)",
        )  # fmt: skip
        parser.add_argument("--worker", action="store_true", help="internal: one worker process")
        parser.add_argument("--start-at", type=float, help="internal: common start (Unix time)")

    def handle(self, *args: Any, **options: Any) -> None:
        bots, processes, seconds = options["bots"], options["processes"], options["seconds"]
        if min(bots, processes, options["symbols"]) < 1 or seconds <= 0 or processes > bots:
            raise CommandError("--bots, --processes, --symbols, --seconds must be positive, "
                               "with no more processes than bots.")  # fmt: skip
        frames = timeframes_arg(options["timeframes"], ["1h", "4h"])
        try:
            specs = indicators.parse_specs(",".join(split_list([options["indicators"]])))
        except ValueError as exc:
            raise CommandError(f"--indicators: {exc}") from None
        series = [(s, tf) for s in bench_symbols(options["symbols"]) for tf in frames]
        shared = services.cache
        if options["redis"] != "up":
            services.cache = MarketCache(backend=_unreachable_redis(options["redis"]))
        try:
            self._run(options, frames, specs, series)
        finally:
            services.cache = shared

    def _run(
        self,
        options: dict[str, Any],
        frames: list[str],
        specs: list[indicators.IndicatorSpec],
        series: list[tuple[str, str]],
    ) -> None:
        bots, processes, seconds = options["bots"], options["processes"], options["seconds"]
        limit = options["limit"]
        if options["worker"]:
            result = run_bots(bots=bots, series=series, specs=specs, limit=limit,
                              start_at=options["start_at"], seconds=seconds,
                              passes=options["passes"])  # fmt: skip
            self.stdout.write(json.dumps(result))
            return

        # Store the candles first (the window and the indicators' warm-up), so a miss computes
        # from PostgreSQL rather than the client.
        now = timeframes.utcnow()
        history = WINDOW + max(spec.warmup for spec in specs) + 2
        for symbol, timeframe in series:
            since = now - history * timeframes.timeframe_delta(timeframe)
            services.candles_sync(symbol=symbol, timeframe=timeframe, since=since)
        connection.close()
        if not options["warm"] and options["redis"] == "up":
            services.cache.invalidate_all()

        if processes == 1:
            start_at = time.time() + 0.2
            results = [run_bots(bots=bots, series=series, specs=specs, limit=limit,
                                start_at=start_at, seconds=seconds,
                                passes=options["passes"])]  # fmt: skip
        else:
            start_at = time.time() + STARTUP_SECONDS
            results = self._spawn(options, processes, start_at)

        if options["passes"]:  # the report's "seconds" is then how long the passes took
            options["seconds"] = max(time.time() - start_at, 1e-3)
        self._report(options, frames, specs, results, start_at)

    def _spawn(self, options: dict[str, Any], processes: int, start_at: float) -> list[dict]:
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        workers = []
        for index in range(processes):
            share = options["bots"] // processes + (index < options["bots"] % processes)
            command = [
                sys.executable, manage, "bench_market_cache", "--worker", "--bots", str(share),
                "--symbols", str(options["symbols"]), "--seconds", str(options["seconds"]),
                *(["--passes", str(options["passes"])] if options["passes"] else []),
                "--limit", str(options["limit"]), "--indicators", options["indicators"],
                "--start-at", repr(start_at), "--redis", options["redis"],
                "--timeframes", *(options["timeframes"] or ["1h,4h"]),
            ]  # fmt: skip
            workers.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))  # noqa: S603
        results = []
        for worker in workers:
            out, _ = worker.communicate()
            if worker.returncode:
                raise CommandError(f"a worker process failed (exit {worker.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results

    def _report(
        self,
        options: dict[str, Any],
        frames: list[str],
        specs: list[indicators.IndicatorSpec],
        results: list[dict],
        start_at: float,
    ) -> None:
        self.stdout.write(
            f"{options['bots']} bots in {options['processes']} process(es) x {options['symbols']} "
            f"symbols x {len(frames)} timeframes ({', '.join(frames)}), limit {options['limit']}, "
            f"indicators {', '.join(s.label for s in specs)}; {options['seconds']:g} s, cache "
            f"{'warm' if options['warm'] else 'cold'} at start, Redis {options['redis']}."
        )
        total_reads = total_hits = 0
        for namespace in (MARKET, INDICATORS):
            hits = sum(r["reads"][namespace][0] for r in results)
            misses = sum(r["reads"][namespace][1] for r in results)
            total_reads += hits + misses
            total_hits += hits
            rate = hits / (hits + misses) if hits + misses else 0.0
            self.stdout.write(
                f"  {namespace:<11} reads {hits + misses:>10,}  hits {hits:>10,}  misses "
                f"{misses:>7,}  hit rate {rate:.2%}"
            )
        self.stdout.write(
            f"  all         reads {total_reads:>10,}  hit rate {total_hits / max(total_reads, 1):.2%}"
            f"  ({total_reads / options['seconds']:,.0f} reads/s)"
        )
        computations = sorted(
            (tuple(c) for r in results for c in r["computations"]), key=lambda c: c[2]
        )
        # A value's lifetime runs from its computation to its expiry (the candle clock or the
        # TTL); a computation that starts while the previous value of its key still lives is
        # a duplicate. Count computations per key and lifetime (target: 1).
        lifetimes: Counter[tuple[str, str, int]] = Counter()
        current: dict[tuple[str, str], tuple[int, float]] = {}
        for ns, name, at, expires_at in computations:
            index, until = current.get((ns, name), (-1, float("-inf")))
            if at >= until:
                index, until = index + 1, expires_at
            current[ns, name] = (index, until)
            lifetimes[ns, name, index] += 1
        per_key = list(lifetimes.values()) or [0]
        self.stdout.write(
            f"  computations {len(computations):,} for {len(current):,} keys: per key per value "
            f"lifetime mean {sum(per_key) / len(per_key):.2f}, max {max(per_key)}"
        )
        if len(results) > 1:  # with Redis down each process computes for itself: 1 each
            per_process = Counter(
                (i, ns, name) for i, r in enumerate(results) for ns, name, *_ in r["computations"]
            )
            self.stdout.write(f"  per key per process: max {max(per_process.values(), default=0)}")
