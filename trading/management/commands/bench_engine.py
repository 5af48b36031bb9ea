"""python manage.py bench_engine [--bots 1000] [--symbols 20] [--concurrency 10,50,100]
                                [--schedule-seconds 0] [--unpooled 100] [--processes 2]
       python manage.py bench_engine --fleets 1000,2000,5000 --schedule-seconds 70

Engine figures (PERFORMANCE.md, "Bot engine"). Creates a benchmark fleet (users ``bench-engine-*``,
replaced on each run; ``--keep`` leaves it): ``--bots`` active bots, ten per owner, over
``--symbols`` synthetic symbols (each bot trades 2 of them on 1h candles, strategies mixed), and
with the process's pool (``DB_POOL_MAX_SIZE``, 20 for the figures) measures:

1. **Throughput** per concurrency level: one round (every bot due once) run by the threaded
   runner: cycles/s, p50/p95 cycle time, where the time goes (database load / market reads /
   strategy / database writes / snapshot), pool errors and timeouts.
2. **Schedule** (``--schedule-seconds S`` > 0): the runner on an ``--interval`` schedule (60 s)
   for S seconds: lag behind schedule p50/p95/max, cycles run vs cycles due.
3. **Pooled vs unpooled** (``--unpooled N``): one round of N bots in a child process whose
   database connections are not pooled (a new connection per database phase of a cycle; this
   exists in benchmark code only) beside the same round pooled: throughput ratio.
4. **Processes** (``--processes P``): one round of the whole fleet by P runner processes at once
   against one process: throughput ratio, and no bot run twice (cycle counts).

``--fleets 1000,2000,3000,5000``: instead of the above, the largest fleet on the schedule: for
each size in one run, a new fleet, one round (``--schedule-concurrency`` threads), then the
schedule for ``--schedule-seconds`` (lag, cycles/s, where the time goes), peak connections and
``check_ledger`` per fleet, with the load average.

Throughout: peak server connections of this database (``pg_stat_activity``, sampled every
50 ms), the market cache hit rate (this process), and ``check_ledger`` at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, connections
from django.utils import timezone

from marketdata.clients.synthetic import BASE_PRICES
from monitoring import pool as monitoring_pool
from monitoring.context import process_cache_counts
from trading.engine import schedule
from trading.engine.runner import MAX_GROUP, Runner, _Unit, pool_stats
from trading.ledger import check_ledger
from trading.management.commands.run_bots import cache_hit_rate
from trading.models import Bot

PREFIX = "bench-engine-"
STRATEGIES = [
    ("sma_cross", {"fast": 10, "slow": 30}),
    ("mean_reversion", {}),
    ("momentum", {}),
    ("sma_cross", {"fast": 5, "slow": 20, "exponential": True}),
]


class PeakConnections:
    """Samples this database's server connections (all processes) in a side thread."""

    def __init__(self) -> None:
        self.peak = 0
        self.phases: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-activity", daemon=True)

    def phase(self, name: str) -> None:
        """Close the current phase: its peak is recorded under ``name``; the next starts at 0."""
        self.phases[name] = self.peak
        self.peak = 0

    def _run(self) -> None:
        import psycopg

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        with psycopg.connect(**params, autocommit=True) as conn:
            while not self._stop.wait(0.05):
                count = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                ).fetchone()[0]
                self.peak = max(self.peak, count)

    def __enter__(self) -> PeakConnections:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _fleet(bots: int, symbols: int) -> list[int]:
    user_model = get_user_model()
    user_model.objects.filter(username__startswith=PREFIX).delete()
    names = [f"{base}/USDT" for base in list(BASE_PRICES)[:symbols]]
    if len(names) < symbols:
        names += [f"X{i}/USDT" for i in range(symbols - len(names))]
    owners = [
        user_model(username=f"{PREFIX}{i}", password="!")  # noqa: S106 - unusable: never logs in
        for i in range((bots + 9) // 10)
    ]
    user_model.objects.bulk_create(owners)
    owners = list(user_model.objects.filter(username__startswith=PREFIX).order_by("pk"))
    capital = Decimal("10000")
    now = timezone.now()
    rows = []
    for i in range(bots):
        strategy, params = STRATEGIES[i % len(STRATEGIES)]
        rows.append(Bot(
            owner=owners[i // 10], name=f"bench {i}", strategy=strategy, strategy_params={
                **params, "allow_short": True, "leverage": 1,
            }, status=Bot.Status.ACTIVE, initial_capital=capital, capital=capital,
            symbols=[names[i % symbols], names[(i * 7 + 3) % symbols]], timeframe="1h",
            risk_params={}, next_run_at=now,
        ))  # fmt: skip
    Bot.objects.bulk_create(rows, batch_size=1000)
    from trading.risk import validate_risk_params

    Bot.objects.filter(owner__username__startswith=PREFIX).update(
        risk_params=validate_risk_params({})
    )
    return list(
        Bot.objects.filter(owner__username__startswith=PREFIX)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


class ErrorTexts:
    """The distinct error texts of a round's cycles with how often each came (``on_result`` of
    the runner: called from its worker threads), so a report says what failed, not only how
    often."""

    def __init__(self, limit: int = 5) -> None:
        self.limit = limit
        self.counts: dict[str, int] = {}  # in order of first appearance
        self.other = 0  # errors whose text is not among the first ``limit``
        self._lock = threading.Lock()

    def add(self, result: Any, lag: float) -> None:
        if not result.error:
            return
        with self._lock:
            if result.error in self.counts or len(self.counts) < self.limit:
                self.counts[result.error] = self.counts.get(result.error, 0) + 1
            else:
                self.other += 1

    def rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = [
            {"message": m[:500], "count": n} for m, n in self.counts.items()
        ]
        if self.other:
            rows.append({"message": "(other texts)", "count": self.other})
        return rows


def _due_now(ids: list[int]) -> None:
    Bot.objects.filter(pk__in=ids).update(
        next_run_at=timezone.now(), lease_until=None, lease_owner="", status=Bot.Status.ACTIVE
    )


class OwnerUnitsRunner(Runner):
    """The runner as it grouped before the schedule's tick (benchmark only, for ``--ab``): each
    bot at its exact due instant, units of one owner and ``as_of``; on a spread schedule nearly
    every unit is one bot."""

    def _dispatch(self, claims: list[Any]) -> None:
        groups: dict[tuple[int, Any], list[Any]] = {}
        for claim in claims:
            groups.setdefault((claim.owner_id, claim.as_of), []).append(claim)
        for (_owner, as_of), members in groups.items():
            for start in range(0, len(members), MAX_GROUP):
                part = members[start : start + MAX_GROUP]
                with self._in_flight_lock:
                    self._in_flight += 1
                    for claim in part:
                        self._dispatched[claim.bot_id] = self._dispatched.get(claim.bot_id, 0) + 1
                self._queue.put(_Unit(as_of, part))


@contextmanager
def _exact_due_times() -> Iterator[None]:
    """``as_of`` = the exact due instant (no tick), as before the tick (``--ab`` baseline)."""
    original = schedule.tick_floor
    schedule.tick_floor = lambda at, interval: at  # type: ignore[assignment]
    try:
        yield
    finally:
        schedule.tick_floor = original


def _phases(timings: dict[str, float], cycles: int, thread_seconds: float) -> dict[str, float]:
    """Milliseconds per cycle in each phase: inside the cycle (load, market, decide, write,
    snapshot) and around it (claim, complete, observe: the JSON log line and the metrics);
    ``other`` is the rest of the workers' time (waiting for work or the GIL, queues)."""
    phases = {k: round(v / cycles * 1000, 3) for k, v in timings.items()}
    phases["other"] = round(max(0.0, thread_seconds - sum(timings.values())) / cycles * 1000, 3)
    return phases


def _round(ids: list[int], concurrency: int) -> dict[str, Any]:
    """Every bot due once, run by one runner until idle."""
    _due_now(ids)
    connection.close()
    texts = ErrorTexts()
    runner = Runner(interval=3600, concurrency=concurrency, bot_ids=ids, on_result=texts.add)
    cache_since = process_cache_counts()
    started = time.perf_counter()
    stats = runner.run(until_idle=True)
    wall = time.perf_counter() - started
    summary = stats.summary()
    cycles = max(summary["cycles"], 1)
    phases = _phases(stats.timings, cycles, wall * concurrency)
    pool = pool_stats()
    return {
        "concurrency": concurrency, "cycles": summary["cycles"], "errors": summary["errors"],
        "error_messages": texts.rows(), "seconds": round(wall, 2), "cycles_per_s": round(summary["cycles"] / wall, 1),
        "p50_ms": round(summary["p50_ms"], 1), "p95_ms": round(summary["p95_ms"], 1),
        "phases_ms": phases, "pool_errors": pool["errors"], "pool_size": pool["size"],
        "cache_hit": cache_hit_rate(cache_since),
    }  # fmt: skip


class Command(BaseCommand):
    help = "Bot engine benchmark (throughput, schedule lag, pooled vs unpooled, processes)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bots", type=int, default=1000)
        parser.add_argument("--symbols", type=int, default=20)
        parser.add_argument("--concurrency", default="10,50,100")
        parser.add_argument("--interval", type=float, default=60.0)
        parser.add_argument("--schedule-seconds", type=float, default=0.0)
        parser.add_argument("--schedule-concurrency", type=int, default=20)
        parser.add_argument(
            "--fleets", default="",
            help="comma-separated fleet sizes: for each, a new fleet, one round, then the "
            "schedule for --schedule-seconds (the largest fleet on the schedule); only this",
        )  # fmt: skip
        parser.add_argument(
            "--ab", action="store_true",
            help="with --fleets: also the schedule with the grouping before the tick (one owner "
            "per unit, exact due times), alternated with the tick in one run",
        )  # fmt: skip
        parser.add_argument("--unpooled", type=int, default=0, help="bots for pooled vs unpooled")
        parser.add_argument("--processes", type=int, default=0)
        parser.add_argument("--keep", action="store_true")
        # Internal: a child process of this benchmark.
        parser.add_argument(
            "--child", choices=["round", "pooled", "unpooled"], help=argparse_hidden()
        )
        parser.add_argument("--ids", default="", help=argparse_hidden())
        parser.add_argument("--start-at", type=float, default=0.0, help=argparse_hidden())

    def handle(self, *args: Any, **options: Any) -> None:
        if options["child"]:
            return self._child(options)
        if connection.vendor != "postgresql":
            raise CommandError("bench_engine needs PostgreSQL (DATABASE_URL).")
        if options["fleets"]:
            return self._fleets(options)
        levels = [int(x) for x in options["concurrency"].split(",") if x.strip()]
        self.stdout.write(
            f"bench_engine: {options['bots']} bots, {options['symbols']} symbols, pool max "
            f"{settings.DB_POOL_MAX_SIZE}, concurrency {levels}"
        )
        ids = _fleet(options["bots"], options["symbols"])
        report: dict[str, Any] = {"bots": len(ids), "pool_max": settings.DB_POOL_MAX_SIZE}
        with PeakConnections() as peak:
            warm = _round(ids, max(levels))  # first round: computes every window once
            self.stdout.write(f"warm-up round (cache filling): {json.dumps(warm)}")
            report["throughput"] = []
            for level in levels:
                row = _round(ids, level)
                report["throughput"].append(row)
                self.stdout.write(f"round: {json.dumps(row)}")
            if options["schedule_seconds"] > 0:
                report["schedule"] = self._schedule(ids, options)
                self.stdout.write(f"schedule: {json.dumps(report['schedule'])}")
            peak.phase("one_process")
            # The children below have pools of their own: this process's idle ones go first.
            connections.close_all()
            monitoring_pool.drain(timeout=5, reason="bench children")
            if options["unpooled"]:
                sample = ids[: options["unpooled"]]
                _due_now(sample)
                connection.close()
                pooled = self._spawn("pooled", sample, 1)[0]  # both in a fresh process
                unpooled = self._spawn("unpooled", sample, 1)[0]
                report["pooling"] = {
                    "bots": len(sample), "pooled_cycles_per_s": pooled["cycles_per_s"],
                    "unpooled_cycles_per_s": unpooled["cycles_per_s"],
                    "ratio": round(pooled["cycles_per_s"] / max(unpooled["cycles_per_s"], 1e-9), 2),
                }  # fmt: skip
                self.stdout.write(f"pooling: {json.dumps(report['pooling'])}")
            if options["processes"]:
                report["processes"] = self._processes(ids, options["processes"])
                self.stdout.write(f"processes: {json.dumps(report['processes'])}")
            peak.phase("children")
        report["peak_server_connections"] = peak.phases
        violations = check_ledger()
        report["ledger_violations"] = len(violations)
        for violation in violations[:10]:
            self.stderr.write(str(violation))
        self.stdout.write(f"peak server connections: {peak.phases}; ledger violations: "
                          f"{len(violations)}")  # fmt: skip
        self.stdout.write("REPORT " + json.dumps(report))
        if not options["keep"]:
            get_user_model().objects.filter(username__startswith=PREFIX).delete()

    def _fleets(self, options: dict[str, Any]) -> None:
        """The largest fleet on the schedule: for each size, one round then the schedule."""
        sizes = [int(x) for x in options["fleets"].split(",") if x.strip()]
        level = options["schedule_concurrency"]
        self.stdout.write(
            f"bench_engine --fleets: {sizes} bots, {options['symbols']} symbols, pool max "
            f"{settings.DB_POOL_MAX_SIZE}, concurrency {level}, interval {options['interval']} s "
            f"for {options['schedule_seconds']} s each"
        )
        report: dict[str, Any] = {"pool_max": settings.DB_POOL_MAX_SIZE, "fleets": []}
        for index, size in enumerate(sizes):
            ids = _fleet(size, options["symbols"])
            result: dict[str, Any] = {"bots": size}
            with PeakConnections() as peak:
                result["round"] = _round(ids, level)
                # --ab: both groupings, the first one alternating from fleet to fleet.
                kinds = ["tick", "owner"] if options["ab"] else ["tick"]
                if index % 2:
                    kinds.reverse()
                for kind in kinds:
                    if kind == "tick":
                        result["schedule"] = self._schedule(ids, options)
                        continue
                    with _exact_due_times():
                        result["schedule_owner_units"] = self._schedule(
                            ids, options, runner_class=OwnerUnitsRunner
                        )
            violations = check_ledger()
            result.update(
                load_average=[round(x, 2) for x in os.getloadavg()],
                peak_server_connections=peak.peak, ledger_violations=len(violations),
            )  # fmt: skip
            report["fleets"].append(result)
            self.stdout.write(f"fleet: {json.dumps(result)}")
        self.stdout.write("REPORT " + json.dumps(report))
        if not options["keep"]:
            get_user_model().objects.filter(username__startswith=PREFIX).delete()

    def _schedule(
        self, ids: list[int], options: dict[str, Any], *, runner_class: type[Runner] = Runner
    ) -> dict[str, Any]:
        interval = options["interval"]
        _due_now(ids)
        # Spread first due times over one interval at arbitrary milliseconds, as bots started
        # at different moments are (the schedule's tick, not the benchmark, lines them up).
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE trading_bot SET next_run_at = now() + "
                "((id * 7919) %% (%s * 1000)) * interval '1 millisecond' WHERE id = ANY(%s)",
                [int(interval), ids],
            )
        connection.close()
        level = options["schedule_concurrency"]
        runner = runner_class(interval=interval, concurrency=level)
        started = time.perf_counter()
        stats = runner.run(duration=options["schedule_seconds"])
        wall = time.perf_counter() - started
        summary = stats.summary()
        due = sum(
            int(options["schedule_seconds"] // interval)
            + (1 if (i * 7919) % (int(interval) * 1000) / 1000 < options["schedule_seconds"]
               % interval else 0)
            for i in ids
        )  # fmt: skip
        return {
            "interval": interval, "seconds": options["schedule_seconds"],
            "concurrency": options["schedule_concurrency"], "cycles": summary["cycles"],
            "cycles_due_approx": due, "lag_p50_s": round(summary["lag_p50_s"], 3),
            "lag_p95_s": round(summary["lag_p95_s"], 3), "lag_max_s": round(summary["lag_max_s"], 3),
            "errors": summary["errors"], "pool_errors": pool_stats()["errors"],
            "cycles_per_s": round(summary["cycles"] / wall, 1),
            "p50_ms": round(summary["p50_ms"], 2), "p95_ms": round(summary["p95_ms"], 2),
            "phases_ms": _phases(stats.timings, max(summary["cycles"], 1), wall * level),
        }  # fmt: skip

    def _spawn(
        self, kind: str, ids: list[int], count: int, *, pool_max: int | None = None
    ) -> list[dict[str, Any]]:
        """Run ``count`` child processes at once; they start together (after their imports)."""
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get(
            "DJANGO_SETTINGS_MODULE", "zerobot.settings")}  # fmt: skip
        if pool_max is not None:
            env.update(DB_POOL_MAX_SIZE=str(pool_max), DB_POOL_MIN_SIZE=str(min(4, pool_max)))
        manage = Path(settings.BASE_DIR) / "manage.py"
        start_at = time.time() + 8.0  # after every child imported Django and the project
        procs = [
            subprocess.Popen(  # noqa: S603 - our own manage.py, our own arguments
                [
                    sys.executable,
                    str(manage),
                    "bench_engine",
                    "--child",
                    kind,
                    "--ids",
                    ",".join(map(str, ids)),
                    "--start-at",
                    str(start_at),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(count)
        ]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=1800)
            if proc.returncode != 0:
                raise CommandError(f"child failed: {err[-2000:]}")
            line = [x for x in out.splitlines() if x.startswith("CHILD ")][-1]
            results.append(json.loads(line[6:]))
        return results

    def _processes(self, ids: list[int], count: int) -> dict[str, Any]:
        """One round by one process (pool max 20) vs ``count`` processes sharing the same
        connection budget (pool max 20 / count each), timed from the common start to the last
        child's end."""
        budget = settings.DB_POOL_MAX_SIZE
        _due_now(ids)
        before = dict(Bot.objects.filter(pk__in=ids).values_list("pk", "cycle_count"))
        connection.close()
        single = self._spawn("round", ids, 1, pool_max=budget)[0]
        _due_now(ids)
        mid = dict(Bot.objects.filter(pk__in=ids).values_list("pk", "cycle_count"))
        connection.close()
        many = self._spawn("round", ids, count, pool_max=max(1, budget // count))
        after = dict(Bot.objects.filter(pk__in=ids).values_list("pk", "cycle_count"))
        connection.close()
        one_wall = single["end"] - single["start"]
        many_wall = max(r["end"] for r in many) - min(r["start"] for r in many)
        not_once = sum(1 for b in ids if after[b] - mid[b] != 1)
        not_once += sum(1 for b in ids if mid[b] - before[b] != 1)
        return {
            "processes": count, "pool_max_each": max(1, budget // count),
            "one_process_cycles_per_s": round(single["cycles"] / one_wall, 1),
            "processes_cycles_per_s": round(sum(r["cycles"] for r in many) / many_wall, 1),
            "ratio": round(one_wall / many_wall, 2), "bots_not_run_exactly_once": not_once,
            "per_process_cycles": [r["cycles"] for r in many],
        }  # fmt: skip

    def _child(self, options: dict[str, Any]) -> None:
        ids = [int(x) for x in options["ids"].split(",") if x]
        if options["child"] == "unpooled":
            # A new server connection for every database phase of a cycle: no pool (benchmark
            # only). Must happen before this process's first query.
            for alias in connections:
                connections[alias].settings_dict["OPTIONS"].pop("pool", None)
        Bot.objects.filter(pk__in=ids[:1]).exists()  # imports and first connection, untimed
        connection.close()
        time.sleep(max(0.0, options["start_at"] - time.time()))
        start = time.time()
        if options["child"] in ("pooled", "unpooled"):
            row = _round(ids, 10)
        else:
            stats = Runner(interval=3600, concurrency=10, bot_ids=ids).run(until_idle=True)
            row = {"cycles": stats.summary()["cycles"]}
        row.update(start=start, end=time.time())
        self.stdout.write("CHILD " + json.dumps(row))


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS
