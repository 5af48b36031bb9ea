"""python manage.py bench_api [--iterations N] [--user demo] [--baseline] [--path P ...]

Server-side latency of the dashboard endpoints on the current database, through Django's full
middleware stack (in-process test Client, token auth), after a warm-up. Prints p50/p95/p99 per
endpoint with its query count and response size. ``--baseline`` also measures the naive
implementation in tests/performance/baseline.py (test-only code) and prints the ratio.

It refuses to run with ``DEBUG`` on (``make run``'s mode: Django then keeps every statement,
the debug toolbar and Silk record every request, and the figures come out ~10x too high) unless
given ``--allow-debug``, which prints a warning above and below the table. The per-request log
lines (``zerobot.requests``, ``zerobot.slow_queries``) are held back while it measures, so they
do not land in the table.
"""

from __future__ import annotations

import cProfile
import io
import logging
import pstats
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from accounts.benchclient import token_client
from trading.dashboard import DASHBOARD_PATHS


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


# Request and slow-query lines, one per timed request: measured in the figures, not printed.
QUIET_LOGGERS = ("zerobot.requests", "zerobot.slow_queries", "zerobot.pool", "django.request")

DEBUG_WARNING = (
    "WARNING: DEBUG is on. Django keeps every statement, and the debug toolbar and Silk record "
    "each request: these figures are several times the production ones. Rerun with DEBUG=0."
)


@contextmanager
def quiet_request_logs(*also: str) -> Iterator[None]:
    """Send per-request log lines (and those of the loggers named in ``also``) nowhere while
    measuring (handlers restored afterwards). The loggers stay enabled, so the middleware still
    builds each line: its cost is measured."""
    loggers = [logging.getLogger(name) for name in (*QUIET_LOGGERS, *also)]
    saved = [(logger.handlers, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.handlers = [logging.NullHandler()]
        logger.propagate = False
    try:
        yield
    finally:
        for logger, (handlers, propagate) in zip(loggers, saved, strict=True):
            logger.handlers = handlers
            logger.propagate = propagate


class Command(BaseCommand):
    help = "Measure dashboard endpoint latency (p50/p95/p99) on the current data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--iterations", type=int, default=200)
        parser.add_argument("--warmup", type=int, default=20)
        parser.add_argument("--user", default="demo")
        parser.add_argument("--query", default="", help="Extra query string, e.g. period=all")
        parser.add_argument("--baseline", action="store_true", help="Also time the naive version.")
        parser.add_argument(
            "--path", action="append", default=[],
            help="Time these paths instead of the dashboard (repeatable), e.g. /admin/trading/trade/",
        )  # fmt: skip
        parser.add_argument(
            "--profile", action="store_true",
            help="Also print a cProfile of the timed requests (top 15 functions by own time; with "
            "--conditional, also the cached reads, top 40 by cumulative time).",
        )  # fmt: skip
        parser.add_argument(
            "--conditional", action="store_true",
            help="Also time the cached repeat and the 304 (If-None-Match) of each endpoint.",
        )  # fmt: skip
        parser.add_argument(
            "--compare-token-lookup", action="store_true",
            help="Also time /api/auth/me with the precompiled token lookup and with the plain "
            "ORM query, in interleaved blocks.",
        )  # fmt: skip
        parser.add_argument(
            "--allow-debug", action="store_true",
            help="Measure even with DEBUG on (figures several times too high; warns).",
        )  # fmt: skip
        parser.add_argument(
            "--admin-exact-count", action="store_true",
            help="Use Django's exact-count paginator in the admin (to compare with the estimate).",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.DEBUG and not options["allow_debug"]:
            raise CommandError(
                "DEBUG is on: Django keeps every statement and the debug toolbar and Silk record "
                "each request, so the figures would be several times the real ones. Run with "
                "DEBUG=0 (or pass --allow-debug to measure anyway)."
            )
        if settings.DEBUG:
            self.stderr.write(DEBUG_WARNING)
        with quiet_request_logs():
            self._measure(options)
        if settings.DEBUG:
            self.stderr.write(DEBUG_WARNING)

    def _measure(self, options: dict[str, Any]) -> None:
        user, client = token_client(options["user"])
        if options["admin_exact_count"]:
            from django.core.paginator import Paginator

            from trading import admin as trading_admin

            for model_admin in (trading_admin.TradeAdmin, trading_admin.PositionAdmin,
                                trading_admin.EquitySnapshotAdmin):  # fmt: skip
                model_admin.paginator = Paginator
        self.stdout.write(
            f"user={user.username} iterations={options['iterations']} db={connection.vendor} "
            f"query={options['query'] or '-'}"
        )
        self.stdout.write(
            f"{'endpoint':<44}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'queries':>9}{'bytes':>9}"
        )
        # Full responses: the per-user response cache (trading/conditional.py) is off here;
        # --conditional measures it beside them.
        with override_settings(DASHBOARD_CACHE_SECONDS=0):
            results = self._run(client, options["path"] or DASHBOARD_PATHS, options)
        if options["compare_token_lookup"]:
            self._token_lookup(client, options)
        if options["conditional"]:
            self._conditional(client, options["path"] or DASHBOARD_PATHS, options, results)
        if options["baseline"]:
            with override_settings(ROOT_URLCONF="tests.performance.urls"):
                baseline = self._run(
                    client, ["/baseline" + e[4:] for e in DASHBOARD_PATHS], options
                )
            self.stdout.write("ratio (baseline p50 / optimised p50):")
            for (name, ours), (_, theirs) in zip(results.items(), baseline.items(), strict=True):
                self.stdout.write(f"  {name:<42}{theirs / ours:>8.1f}x")

    def _timed(self, client: Client, url: str, n: int, **headers: str) -> tuple[list[float], Any]:
        timings = []
        response = None
        for _ in range(n):
            started = time.perf_counter()
            response = client.get(url, headers=headers)
            timings.append((time.perf_counter() - started) * 1000)
        return timings, response

    def _token_lookup(self, client: Client, options: dict[str, Any]) -> None:
        """accounts.auth's precompiled lookup against the ORM query it replaces (kept here,
        benchmark code), alternating blocks of 20 requests so noise falls on both alike."""
        from accounts import auth
        from accounts.models import ApiToken

        def orm(digest: str) -> Any:
            return ApiToken.objects.select_related("user").filter(digest=digest).first()

        ways = {"precompiled": auth.token_with_user, "orm": orm}
        timings: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(options["warmup"]):
            client.get("/api/auth/me")
        try:
            for block in range(max(2, options["iterations"] // 20)):
                for name in sorted(ways, reverse=block % 2 == 1):
                    auth.token_with_user = ways[name]
                    for _ in range(20):
                        started = time.perf_counter()
                        client.get("/api/auth/me")
                        timings[name].append((time.perf_counter() - started) * 1000)
        finally:
            auth.token_with_user = ways["precompiled"]
        medians = {name: statistics.median(values) for name, values in timings.items()}
        self.stdout.write(
            f"\n/api/auth/me, token lookup: precompiled p50 {medians['precompiled']:.2f} ms, "
            f"ORM p50 {medians['orm']:.2f} ms, ORM / precompiled "
            f"{medians['orm'] / medians['precompiled']:.2f}x (n={len(timings['orm'])} each)"
        )

    def _conditional(
        self, client: Client, urls: list[str], options: dict[str, Any], full: dict[str, float]
    ) -> None:
        """Per endpoint, with the data unchanged: a repeat served from the per-user response
        cache, and a conditional request answered 304 (If-None-Match), against the full p50."""
        from trading import dataversion

        user = client.get("/api/auth/me").json()
        if dataversion.current(user["id"]) is None:
            raise CommandError("--conditional needs Redis (REDIS_URL): no data version without it.")
        seconds = max(settings.DASHBOARD_CACHE_SECONDS, 60)  # no bucket change while measuring
        self.stdout.write(
            f"\nconditional reads (DASHBOARD_CACHE_SECONDS={seconds}, data unchanged):\n"
            f"{'endpoint':<44}{'full p50':>10}{'cached p50':>12}{'304 p50':>10}"
            f"{'full/cached':>13}{'full/304':>10}{'queries':>9}"
        )
        extra = options["query"]
        with override_settings(DASHBOARD_CACHE_SECONDS=seconds):
            for url in urls:
                target = f"{url}?{extra}" if extra else url
                first = client.get(target)
                if first.status_code != 200 or "ETag" not in first:
                    raise CommandError(f"{target}: HTTP {first.status_code}, no ETag")
                for _ in range(options["warmup"]):
                    client.get(target)
                profiler = cProfile.Profile() if options["profile"] else None
                if profiler:
                    profiler.enable()
                cached, _ = self._timed(client, target, options["iterations"])
                if profiler:
                    profiler.disable()
                    report = io.StringIO()
                    stats = pstats.Stats(profiler, stream=report).sort_stats("cumulative")
                    stats.print_stats(40)
                    self.stdout.write(f"cached {target}:\n{report.getvalue()}")
                not_modified, last = self._timed(
                    client, target, options["iterations"], If_None_Match=first["ETag"]
                )
                if last.status_code != 304:
                    raise CommandError(f"{target}: If-None-Match answered {last.status_code}")
                with CaptureQueriesContext(connection) as queries:
                    client.get(target)
                c50, n50 = statistics.median(cached), statistics.median(not_modified)
                self.stdout.write(
                    f"{url:<44}{full[url]:>10.2f}{c50:>12.2f}{n50:>10.2f}"
                    f"{full[url] / c50:>12.1f}x{full[url] / n50:>9.1f}x{len(queries):>9}"
                )

    def _run(self, client: Client, urls: list[str], options: dict[str, Any]) -> dict[str, float]:
        medians: dict[str, float] = {}
        extra = options["query"]
        for url in urls:
            full = f"{url}?{extra}" if extra else url
            for _ in range(options["warmup"]):
                client.get(full)
            timings = []
            profiler = cProfile.Profile() if options["profile"] else None
            if profiler:
                profiler.enable()
            for _ in range(options["iterations"]):
                started = time.perf_counter()
                response = client.get(full)
                timings.append((time.perf_counter() - started) * 1000)
            if profiler:
                profiler.disable()
                report = io.StringIO()
                pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(15)
                self.stdout.write(report.getvalue())
            if response.status_code != 200:
                raise CommandError(
                    f"{full}: HTTP {response.status_code} {response.content[:200]!r}"
                )
            with CaptureQueriesContext(connection) as queries:
                client.get(full)
            medians[url] = statistics.median(timings)
            self.stdout.write(
                f"{url:<44}{medians[url]:>9.2f}{percentile(timings, 95):>9.2f}"
                f"{percentile(timings, 99):>9.2f}{len(queries):>9}{len(response.content):>9}"
            )
        return medians
