"""python manage.py bench [--profile reference|large|...] [--out bench-report] [--max-minutes 10]

One command, one report, on a benchmark database of its own (``monitoring/bench/database.py``):
the process you start creates ``<DATABASE_URL's name>_bench`` on the same server (``--database``
to name it), and a second process, pointed at it with its own cache key prefix, migrates it,
seeds it (``seed_demo --profile P``, ``reference`` by default; any profile of
``trading.seed.PROFILES``), measures and writes ``<out>/report.md``, ``<out>/results.json`` and
PNG charts; the database is dropped at the end unless ``--keep``. Bounded in time
(``--max-minutes``, default 10, setup included: a phase that would start past it is skipped and the
report says so; the scale and engine series skip the levels that would not fit), with a progress
line per phase. Phases:

1. ``endpoints``: each dashboard endpoint in process through the whole middleware stack (token
   auth, full responses, the response cache off): p50/p95/p99, queries, bytes;
2. ``light_page``: what a light dashboard page costs, the five endpoints at ``period=24h`` one
   after the other (as a browser without parallel requests would send them), full responses:
   p50/p95/p99 of the sum, beside the inherited system's one combined call (issue 13: 19-33 ms on
   this machine, quoted, not measured here);
3. ``conditional``: data unchanged, a repeat from the per-user response cache and a 304 to
   ``If-None-Match``, against the full p50;
4. ``indexes``: the dashboard and list endpoints with the hot indexes present, dropped (then
   ANALYZE) and present again (``monitoring/bench/compare.py``);
5. ``eager_lazy``: the open positions through the product, the naive ModelSerializer with the bot
   loaded eagerly, and lazily (N+1) (``tests/performance/baseline.py``), interleaved;
6. ``page_vs_list``: one page of trades against the whole history in the same rows, interleaved;
7. ``market_cache``: OHLCV and an indicator set from a warm and a cold cache, interleaved;
8. ``http``: gunicorn started here on 127.0.0.1 (``WEB_CONCURRENCY`` workers, default 2), N
   clients (default 8) for ``--seconds`` each on a trivial endpoint (``/healthz``, the stack's
   ceiling), the dashboard mix with full responses, and the same mix as a polling client sends
   it (``If-None-Match``), and the full mix with the response cache off
   (``DASHBOARD_CACHE_SECONDS=0``: every request runs its SQL) on two more servers, one pooled
   and one without the pool (``DB_POOL_DISABLED=1``: a new connection per request), all
   interleaved in ``--rounds`` slices: req/s, p50/p95/p99, errors, each mix as a share of the
   ceiling, pooled / unpooled (cache off on both), cache on / off;
9. ``page``: the dashboard page in headless Chromium (``bench_page``'s measurement): cold and warm
   loads, with the page's first data inside and without (``/?initial=0``);
10. ``engine``: fleets of ``--engine-bots`` (10, 100, 1,000) through ``bench_engine``'s fleet and
   rounds: cycles/s, p95 cycle time, pool size and errors, peak server connections;
11. ``scale``: the demo user alone with ``--scale`` trades (1k, 10k, 100k, 1M), p95 per endpoint
    at each level (``monitoring/bench/scale.py``).
"""

from __future__ import annotations

import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import warnings
from argparse import SUPPRESS
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from accounts.benchclient import token_client
from monitoring.bench import charts, compare, database, httpclient, report, scale
from monitoring.bench import engine as bench_engine_section
from trading.dashboard import DASHBOARD_PATHS
from trading.management.commands.bench_api import quiet_request_logs
from trading.models import Bot, Position, Trade
from trading.seed import PROFILES

REPO = Path(__file__).resolve().parents[3]
CEILING = "/healthz"
MIX = [*DASHBOARD_PATHS, "/api/bots/", "/api/trades/?limit=50"]
# The inherited system's one combined dashboard call, sequential, on this 2-core machine (issue
# 13): the light page's yardstick, quoted (that system is not part of this repository).
INHERITED_COMBINED_MS = (19, 33)
PHASES = [
    ("endpoints", "dashboard endpoints in process"),
    ("light_page", "a light page: five endpoints at period=24h"),
    ("conditional", "cached repeats and 304s"),
    ("indexes", "indexes present vs dropped"),
    ("eager_lazy", "eager vs lazy serializer"),
    ("page_vs_list", "a page vs the whole list"),
    ("market_cache", "market data cache warm vs cold"),
    ("http", "over HTTP (gunicorn)"),
    ("page", "the page in Chromium"),
    ("engine", "the bot engine"),
    ("scale", "trades per user"),
]
# Options the process you start hands to the measuring one (everything but the database's).
FORWARDED = ("out", "profile", "user", "password", "iterations", "warmup", "compare_iterations",
             "clients", "wide_clients", "http_client", "seconds", "rounds", "loads", "scale", "scale_iterations", "engine_bots",
             "engine_concurrency", "engine_symbols", "max_minutes")  # fmt: skip


def _forwarded(options: dict[str, Any]) -> list[str]:
    argv = []
    for name in FORWARDED:
        argv += [f"--{name.replace('_', '-')}", str(options[name])]
    for phase in _skipped(options):
        argv += ["--skip", phase]
    if options.get("baseline"):
        argv += ["--baseline", str(Path(options["baseline"]).resolve())]
    return argv


def _skipped(options: dict[str, Any]) -> list[str]:
    """``--skip`` phases, and with ``--only`` every phase not named."""
    only = options.get("only") or []
    return [name for name, _ in PHASES if name in options["skip"] or (only and name not in only)]


def baseline_python(checkout: Path) -> str:
    """The other checkout's interpreter (its ``.venv``), else ours."""
    python = checkout / ".venv" / "bin" / "python"
    return str(python) if python.exists() else sys.executable


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_http_get = httpclient.raw_get  # start-up probes and warm-up


class Load:
    """One kind of load, measured in slices (interleaved with the others by the caller, so a
    noisy neighbour weighs on every kind alike): ``clients`` threads request ``paths`` in turn;
    with ``conditional`` each client sends back the ETag it last got for a path (as a polling
    dashboard does), kept across slices."""

    def __init__(
        self, base: str, paths: list[str], headers: dict[str, str], clients: int,
        conditional: bool = False, get: httpclient.Get = httpclient.raw_get,
    ) -> None:  # fmt: skip
        self.base, self.paths, self.headers, self.clients = base, paths, headers, clients
        self.conditional, self.get = conditional, get
        self.tags: list[dict[str, str]] = [{} for _ in range(clients)]
        self.statuses: Counter = Counter()
        self.latencies: list[float] = []
        self.seconds = 0.0
        self.slice_rps: list[float] = []  # req/s of each slice, in order

    def run(self, seconds: float) -> None:
        slice_ = _load(self.base, self.paths, self.headers, self.clients, seconds,
                       self.tags if self.conditional else None, self.get)  # fmt: skip
        self.statuses.update(slice_["statuses"])
        self.latencies += slice_["latencies"]
        self.seconds += seconds
        self.slice_rps.append(round(len(slice_["latencies"]) / seconds, 1) if seconds else 0.0)

    def result(self) -> dict[str, Any]:
        errors = sum(n for status, n in self.statuses.items() if status == 0 or status >= 500)
        return {
            "clients": self.clients,
            "seconds": self.seconds,
            "requests": len(self.latencies),
            "rps": round(len(self.latencies) / self.seconds, 1) if self.seconds else 0.0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": errors,
            "latency_ms": compare.stats(self.latencies),
            "slice_rps": self.slice_rps,
        }


def _load(
    base: str, paths: list[str], headers: dict[str, str], clients: int, seconds: float,
    tags: list[dict[str, str]] | None = None, get: httpclient.Get = httpclient.raw_get,
) -> dict[str, Any]:  # fmt: skip
    """``clients`` threads request ``paths`` in turn for ``seconds``; with ``tags`` (one dict per
    client) each sends back the ETag it last got for a path."""
    stop_at = time.monotonic() + seconds
    statuses: Counter = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    conditional = tags is not None

    def client(offset: int) -> None:
        mine: dict[str, str] = tags[offset] if tags is not None else {}
        i = offset
        while time.monotonic() < stop_at:
            path = paths[i % len(paths)]
            sent = dict(headers)
            if conditional and path in mine:
                sent["If-None-Match"] = mine[path]
            started = time.perf_counter()
            try:
                status, got = get(base + path, sent)
            except OSError:
                status, got = 0, {}
            elapsed = (time.perf_counter() - started) * 1000
            if conditional and got.get("etag"):
                mine[path] = got["etag"]
            with lock:
                statuses[status] += 1
                latencies.append(elapsed)
            i += 1

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    return {"statuses": statuses, "latencies": latencies}


def _slice_line(loads: dict[str, Load]) -> str:
    """The last slice of the baseline's loads and ours, req/s (progress while it runs)."""
    parts = []
    for name in ("ceiling", "mix_full", "baseline_ceiling", "baseline_mix_full"):
        load = loads[name]
        parts.append(f"{name} {load.slice_rps[-1]:.0f}")
    return ", ".join(parts) + " req/s"


def _baseline_figures(measured: dict[str, Any], checkout: str) -> dict[str, Any]:
    """Ours against the other checkout's server, same run and database, interleaved slice by
    slice: totals, and the median of the per-slice ratios (each pair of slices ran back to
    back, under the same neighbours)."""
    mix, base_ceiling_row = measured.pop("baseline_mix_full"), measured.pop("baseline_ceiling")
    ours, theirs = measured["mix_full"]["rps"], mix["rps"]
    ceiling, base_ceiling = measured["ceiling"]["rps"], base_ceiling_row["rps"]

    def median_ratio(top: list[float], bottom: list[float]) -> float:
        return round(
            statistics.median(a / max(b, 0.1) for a, b in zip(top, bottom, strict=True)), 2
        )

    ours_slices, theirs_slices = measured["mix_full"]["slice_rps"], mix["slice_rps"]
    figures: dict[str, Any] = {
        "checkout": checkout,
        "ceiling": base_ceiling_row,
        "mix_full": mix,
        "mix_full_vs_baseline": round(ours / max(theirs, 0.1), 2),
        "mix_full_vs_baseline_median": median_ratio(ours_slices, theirs_slices),
        "ceiling_vs_baseline": round(ceiling / max(base_ceiling, 0.1), 2),
        "share_of_ceiling_median": median_ratio(ours_slices, measured["ceiling"]["slice_rps"]),
        "baseline_share_of_ceiling_median": median_ratio(
            theirs_slices, base_ceiling_row["slice_rps"]
        ),
    }
    figures["summary"] = (
        f"full mix {ours:.0f} req/s vs baseline {theirs:.0f} req/s: "
        f"{figures['mix_full_vs_baseline']:.2f}x (median of slices "
        f"{figures['mix_full_vs_baseline_median']:.2f}x); ceiling {ceiling:.0f} vs "
        f"{base_ceiling:.0f} req/s; share of own ceiling (median of slices) "
        f"{figures['share_of_ceiling_median']:.0%} vs {figures['baseline_share_of_ceiling_median']:.0%}"
    )
    return {"baseline": figures}


class Command(BaseCommand):
    help = "Run the benchmarks on a benchmark database of their own and write one report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", default="bench-report")
        parser.add_argument(
            "--profile", choices=sorted(PROFILES), default="reference",
            help="seed_demo profile of the benchmark database (default reference).",
        )  # fmt: skip
        parser.add_argument(
            "--database", help="Name of the benchmark database (default: DATABASE_URL's name "
            "+ _bench), created on the same server. Never DATABASE_URL's own.",
        )  # fmt: skip
        parser.add_argument(
            "--keep", action="store_true",
            help="Keep the benchmark database afterwards (default: dropped).",
        )  # fmt: skip
        parser.add_argument("--user", default="demo")
        parser.add_argument("--password", default="zerobot-demo", help="for the page's login")
        parser.add_argument("--iterations", type=int, default=100)
        parser.add_argument("--warmup", type=int, default=20)
        parser.add_argument(
            "--compare-iterations", type=int, default=30,
            help="requests per side of each side-by-side comparison",
        )  # fmt: skip
        parser.add_argument("--clients", type=int, default=8)
        parser.add_argument(
            "--wide-clients", type=int, default=32,
            help="the ceiling and the full mix again with this many clients, interleaved with "
            "the others (0: leave out)",
        )  # fmt: skip
        parser.add_argument(
            "--http-client", choices=sorted(httpclient.CLIENTS), default="raw",
            help="the load's HTTP client: raw (a prebuilt request on a socket, cheap) or urllib",
        )  # fmt: skip
        parser.add_argument("--seconds", type=float, default=10.0, help="per HTTP load kind")
        parser.add_argument(
            "--rounds", type=int, default=5,
            help="HTTP loads are interleaved in this many slices each",
        )  # fmt: skip
        parser.add_argument("--loads", type=int, default=5, help="page loads of each kind")
        parser.add_argument(
            "--scale", default="1000,10000,100000,1000000",
            help="trades per user of the scale series (comma-separated)",
        )  # fmt: skip
        parser.add_argument("--scale-iterations", type=int, default=50)
        parser.add_argument("--engine-bots", default="10,100,1000", help="fleets (comma-separated)")
        parser.add_argument("--engine-concurrency", type=int, default=10)
        parser.add_argument("--engine-symbols", type=int, default=20)
        parser.add_argument("--max-minutes", type=float, default=10.0)
        parser.add_argument(
            "--skip", action="append", default=[], choices=[name for name, _ in PHASES],
            help="Leave a phase out (repeatable).",
        )  # fmt: skip
        parser.add_argument(
            "--only", action="append", default=[], choices=[name for name, _ in PHASES],
            help="Run only this phase (repeatable); the others are skipped.",
        )  # fmt: skip
        parser.add_argument(
            "--baseline", metavar="DIR",
            help="http phase: also start gunicorn from the checkout DIR (e.g. `git worktree add "
            "DIR main`) on the same benchmark database, its own cache key prefix, and "
            "interleave its ceiling and full mix with ours: req/s each and ours / baseline.",
        )  # fmt: skip
        # Internal: the process that measures, started by the one you run (module docstring).
        parser.add_argument("--in-bench-database", action="store_true", help=SUPPRESS)
        parser.add_argument("--deadline", type=float, default=0.0, help=SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.DEBUG:
            raise CommandError("DEBUG is on: the figures would be several times the real ones.")
        if options["baseline"] and not (Path(options["baseline"]) / "manage.py").is_file():
            raise CommandError(f"--baseline {options['baseline']}: no manage.py there.")
        if options["in_bench_database"]:
            return self._measure(options)
        return self._orchestrate(options)

    # --- the process you start: the benchmark database around the measuring process ----------

    def _orchestrate(self, options: dict[str, Any]) -> None:
        name = options["database"] or database.default_name()
        deadline = time.time() + options["max_minutes"] * 60
        self.stdout.write(f"benchmark database {name!r} (profile {options['profile']}) ...")
        database.create(name)
        env = {
            **os.environ, "DATABASE_URL": database.url_for(name), "DEBUG": "0",
            # Its own cache keys: the benchmark's users, data versions and bodies never meet
            # those of DATABASE_URL's users on the same Redis.
            "CACHE_KEY_PREFIX": f"{settings.CACHE_KEY_PREFIX}-bench",
            "SECRET_KEY": settings.SECRET_KEY,
        }  # fmt: skip
        # The measuring process stops starting phases a little earlier: its start-up, the last
        # phase it started, the report and the drop fit in --max-minutes too.
        margin = min(60.0, options["max_minutes"] * 60 * 0.1)
        argv = [sys.executable, str(REPO / "manage.py"), "bench", "--in-bench-database",
                "--deadline", str(deadline - margin), *_forwarded(options)]  # fmt: skip
        child = subprocess.Popen(  # noqa: S603 - our interpreter, our manage.py, our arguments
            argv, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        try:
            assert child.stdout is not None
            for line in child.stdout:
                self.stdout.write(line.rstrip("\n"))
            code = child.wait()
        finally:
            if child.poll() is None:
                child.terminate()
                child.wait(timeout=60)
            if options["keep"]:
                self.stdout.write(f"kept the benchmark database {name!r} (--keep)")
            else:
                database.drop(name)
                self.stdout.write(f"dropped the benchmark database {name!r}")
        if code != 0:
            raise CommandError(f"the measuring process failed (exit {code}); see above")

    # --- the measuring process, inside the benchmark database --------------------------------

    def _measure(self, options: dict[str, Any]) -> None:
        database.require_marked()
        # The in-process client builds WhiteNoise without collectstatic: not a finding.
        warnings.filterwarnings("ignore", "No directory at", UserWarning)
        self.deadline = time.monotonic() + (options["deadline"] - time.time())
        started = time.monotonic()
        self.stdout.write("[setup] migrate ...")
        call_command("migrate", verbosity=0, interactive=False)
        self.stdout.write(f"[setup] seed_demo --profile {options['profile']} ...")
        seeded = time.monotonic()
        call_command("seed_demo", profile=options["profile"], force=True, verbosity=0,
                     stdout=io.StringIO())  # fmt: skip
        seed_seconds = time.monotonic() - seeded
        self.stdout.write(f"[setup] done in {time.monotonic() - started:.0f} s "
                          f"(seeding {seed_seconds:.0f} s)")  # fmt: skip
        user, client = token_client(options["user"], session=False)
        if not Bot.objects.filter(owner=user).exists():
            raise CommandError(f"{options['user']!r} has no bots in profile {options['profile']}.")
        self.user, self.client = user, client
        data = {
            "profile": options["profile"],
            "database": connection.settings_dict["NAME"],
            "seed_seconds": round(seed_seconds, 1),
            "user": user.username,
            "bots": Bot.objects.filter(owner=user).count(),
            "trades": Trade.objects.filter(owner=user).count(),
            "open_positions": Position.objects.filter(owner=user, status="open").count(),
            "all_trades": Trade.objects.count(),
        }
        machine = {
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "python": platform.python_version(),
        }
        results: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": self._commit(),
            "command": "python manage.py bench " + " ".join(_forwarded(options)),
            "machine": machine,
            "data": data,
            "skipped": {},
        }
        skipped = _skipped(options)
        for number, (name, _) in enumerate(PHASES, 1):
            label = f"[{number}/{len(PHASES)}] {name}"
            if name in skipped:
                results["skipped"][name] = "--skip"
                continue
            if time.monotonic() > self.deadline:
                results["skipped"][name] = "time bound (--max-minutes) reached"
                self.stdout.write(f"{label}: skipped (time bound)")
                continue
            self.stdout.write(f"{label} ...")
            began = time.monotonic()
            with quiet_request_logs("zerobot.engine.cycle"):  # and a line per bot cycle
                try:
                    results[name] = getattr(self, f"_{name}")(options)
                except Exception as exc:  # one phase failing must not lose the others' figures
                    results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                    self.stderr.write(f"{label} failed: {exc}")
            self.stdout.write(f"{label} done in {time.monotonic() - began:.0f} s")
        results["machine"]["load_average_end"] = os.getloadavg()
        results["seconds"] = round(time.monotonic() - started, 1)
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        results["charts"] = charts.draw(results, out)
        (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (out / "report.md").write_text(report.render(results))
        self.stdout.write(f"wrote {out / 'report.md'}, {out / 'results.json'} and "
                          f"{len(results['charts'])} charts in {results['seconds']:.0f} s")  # fmt: skip
        self._forget_cache_keys()

    def _seconds_left(self) -> float:
        return self.deadline - time.monotonic()

    def _forget_cache_keys(self) -> None:
        """The benchmark's own Redis keys (its prefix only), so runs leave nothing behind."""
        if "django_redis" not in settings.CACHES["default"]["BACKEND"]:
            return
        from django_redis import get_redis_connection

        redis = get_redis_connection("default")
        keys = list(redis.scan_iter(match=f"{settings.CACHE_KEY_PREFIX}:*", count=1000))
        for offset in range(0, len(keys), 1000):
            redis.delete(*keys[offset : offset + 1000])

    # --- phases ---------------------------------------------------------------------------

    # --- phases ---------------------------------------------------------------------------

    def _endpoints(self, options: dict[str, Any]) -> dict[str, Any]:
        client, rows = self.client, {}
        with override_settings(DASHBOARD_CACHE_SECONDS=0):
            for url in DASHBOARD_PATHS:
                for _ in range(options["warmup"]):
                    client.get(url)
                timings = []
                for _ in range(options["iterations"]):
                    started = time.perf_counter()
                    response = client.get(url)
                    timings.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise CommandError(f"{url}: HTTP {response.status_code}")
                with CaptureQueriesContext(connection) as queries:
                    client.get(url)
                rows[url] = {**compare.stats(timings), "queries": len(queries),
                             "bytes": len(response.content)}  # fmt: skip
        return rows

    def _light_page(self, options: dict[str, Any]) -> dict[str, Any]:
        """The five dashboard endpoints at ``period=24h`` in sequence: the sum per page load."""
        client = self.client
        urls = [f"{path}?period=24h" for path in DASHBOARD_PATHS]
        totals: list[float] = []
        parts: dict[str, list[float]] = {url: [] for url in urls}
        with override_settings(DASHBOARD_CACHE_SECONDS=0):
            for _ in range(options["warmup"]):
                for url in urls:
                    client.get(url)
            for _ in range(options["iterations"]):
                total = 0.0
                for url in urls:
                    started = time.perf_counter()
                    response = client.get(url)
                    spent = (time.perf_counter() - started) * 1000
                    if response.status_code != 200:
                        raise CommandError(f"{url}: HTTP {response.status_code}")
                    parts[url].append(spent)
                    total += spent
                totals.append(total)
        return {
            "page": compare.stats(totals),
            "parts": {url: compare.stats(values) for url, values in parts.items()},
            "inherited_combined_ms": INHERITED_COMBINED_MS,
        }

    def _conditional(self, options: dict[str, Any]) -> dict[str, Any]:
        client, rows = self.client, {}
        with override_settings(DASHBOARD_CACHE_SECONDS=max(settings.DASHBOARD_CACHE_SECONDS, 600)):
            for url in DASHBOARD_PATHS:
                first = client.get(url)
                if "ETag" not in first:
                    return {"error": "no ETag: the data version needs Redis (REDIS_URL)"}
                cached, not_modified = [], []
                for _ in range(options["warmup"]):
                    client.get(url)
                for _ in range(options["iterations"]):
                    started = time.perf_counter()
                    client.get(url)
                    cached.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    response = client.get(url, headers={"If-None-Match": first["ETag"]})
                    not_modified.append((time.perf_counter() - started) * 1000)
                if response.status_code != 304:
                    raise CommandError(f"{url}: If-None-Match answered {response.status_code}")
                rows[url] = {
                    "cached": compare.stats(cached),
                    "not_modified": compare.stats(not_modified),
                }
        return rows

    def _server(
        self, pooled: bool, checkout: Path | None = None, cached: bool = True
    ) -> tuple[str, subprocess.Popen]:
        """gunicorn on a free port, from this checkout or (``checkout``) another one; ``cached``
        False turns the dashboard response cache off (``DASHBOARD_CACHE_SECONDS=0``)."""
        port = _free_port()
        env = {
            **os.environ,
            "DEBUG": "0", "SILK_ENABLED": "0", "MONITORING_FLUSH_SECONDS": "0",
            "SECURE_SSL_REDIRECT": "0", "GUNICORN_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": self.workers, "LOG_LEVEL": "WARNING",
            "SECRET_KEY": settings.SECRET_KEY, "DB_POOL_DISABLED": "0" if pooled else "1",
        }  # fmt: skip
        if not cached:
            env["DASHBOARD_CACHE_SECONDS"] = "0"
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        python = sys.executable
        if checkout is not None:
            python = baseline_python(checkout)
            # Its own keys: the two versions' token cache entries need not share a format.
            env["CACHE_KEY_PREFIX"] = f"{settings.CACHE_KEY_PREFIX}-baseline"
        server = subprocess.Popen(  # noqa: S603 - an interpreter and arguments chosen here
            [python, "-m", "gunicorn", "-c", "gunicorn.conf.py", "zerobot.wsgi"],
            cwd=checkout or REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        return f"http://127.0.0.1:{port}", server

    @staticmethod
    def _stop(server: subprocess.Popen) -> None:
        server.terminate()
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)

    def _http(self, options: dict[str, Any]) -> dict[str, Any]:
        """The pooled server takes the ceiling, full and conditional mixes. Two more, alike but
        with the response cache off (``DASHBOARD_CACHE_SECONDS=0``: every mix request runs its
        SQL), one pooled and one with ``DB_POOL_DISABLED=1`` (a new server connection per
        request), take the full mix for the pooled / unpooled ratio: with the cache on, a mix
        request reads a cached body and no connection at all, so the ratio would not measure
        the pool."""
        from accounts.services import token_create

        user = self.user
        self.workers = os.environ.get("WEB_CONCURRENCY", "2")
        servers: list[subprocess.Popen] = []
        try:
            base, server = self._server(pooled=True)
            servers.append(server)
            uncached, server = self._server(pooled=True, cached=False)
            servers.append(server)
            unpooled, server = self._server(pooled=False, cached=False)
            servers.append(server)
            baseline = None
            if options["baseline"]:
                baseline, server = self._server(pooled=True, checkout=Path(options["baseline"]))
                servers.append(server)
            began = time.monotonic()
            for url, server in zip((base, uncached, unpooled, baseline), servers, strict=False):
                self._wait_for(url + CEILING, server)
            self.stdout.write(f"    {len(servers)} gunicorn servers up in "
                              f"{time.monotonic() - began:.0f} s")  # fmt: skip
            headers = {"Authorization": f"Token {token_create(user=user).key}"}
            clients, seconds = options["clients"], options["seconds"]
            get = httpclient.CLIENTS[options["http_client"]]
            for path in MIX:  # warm the workers (connections, caches)
                for url in (base, uncached, unpooled, baseline):
                    if url is not None:
                        self._warm(url + path, headers)
            loads = {
                "ceiling": Load(base, [CEILING], {}, clients, get=get),
                "mix_full": Load(base, MIX, headers, clients, get=get),
                "mix_conditional": Load(base, MIX, headers, clients, conditional=True, get=get),
                "mix_uncached": Load(uncached, MIX, headers, clients, get=get),
                "mix_unpooled": Load(unpooled, MIX, headers, clients, get=get),
            }
            if wide := options["wide_clients"]:
                loads["ceiling_wide"] = Load(base, [CEILING], {}, wide, get=get)
                loads["mix_full_wide"] = Load(base, MIX, headers, wide, get=get)
            if baseline is not None:
                loads["baseline_ceiling"] = Load(baseline, [CEILING], {}, clients, get=get)
                loads["baseline_mix_full"] = Load(baseline, MIX, headers, clients, get=get)
            rounds = max(1, options["rounds"])
            for number in range(rounds):  # interleaved slices: the same noise on each kind
                for load in loads.values():
                    load.run(seconds / rounds)
                if baseline is not None:
                    self.stdout.write("    round " + str(number + 1) + ": " + _slice_line(loads))
            measured = {name: load.result() for name, load in loads.items()}
        finally:
            began = time.monotonic()
            for server in servers:
                server.terminate()  # both drain at once
            for server in servers:
                self._stop(server)
            self.stdout.write(f"    servers stopped in {time.monotonic() - began:.0f} s")
        ceiling = measured["ceiling"]["rps"]
        extra: dict[str, Any] = {}
        if "baseline_mix_full" in measured:
            extra = _baseline_figures(measured, options["baseline"])
            self.stdout.write("    " + extra["baseline"]["summary"])
        return {
            **extra,
            "server": f"gunicorn, {self.workers} sync worker(s), 127.0.0.1",
            "client": f"{options['http_client']} ({clients} threads)",
            **measured,
            "full_share_of_ceiling": round(measured["mix_full"]["rps"] / ceiling, 3),
            "conditional_share_of_ceiling": round(measured["mix_conditional"]["rps"] / ceiling, 3),
            **(
                {
                    "full_wide_share_of_ceiling": round(
                        measured["mix_full_wide"]["rps"]
                        / max(measured["ceiling_wide"]["rps"], 0.1),
                        3,
                    )
                }
                if "mix_full_wide" in measured
                else {}
            ),
            "uncached_share_of_ceiling": round(measured["mix_uncached"]["rps"] / ceiling, 3),
            "unpooled_share_of_ceiling": round(measured["mix_unpooled"]["rps"] / ceiling, 3),
            "pooled_vs_unpooled": round(
                measured["mix_uncached"]["rps"] / max(measured["mix_unpooled"]["rps"], 0.1), 2
            ),
            "cached_vs_uncached": round(
                measured["mix_full"]["rps"] / max(measured["mix_uncached"]["rps"], 0.1), 2
            ),
        }

    @staticmethod
    def _warm(url: str, headers: dict[str, str]) -> None:
        status, _ = _http_get(url, headers)
        if status != 200:
            raise CommandError(f"{url}: HTTP {status} while warming up")

    def _wait_for(self, url: str, server: subprocess.Popen) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise CommandError("the benchmark server exited at start")
            try:
                if _http_get(url, {})[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise CommandError("the benchmark server did not answer within 60 s")

    def _page(self, options: dict[str, Any]) -> dict[str, Any]:
        user = self.user
        from web.management.commands import bench_page

        if not Path(bench_page.CHROMIUM).exists():
            return {"error": f"{bench_page.CHROMIUM} is missing (make chromium)"}
        if "django_redis" not in settings.CACHES["default"]["BACKEND"]:
            return {"error": "needs REDIS_URL"}
        page = bench_page.Command(stdout=self.stdout, stderr=self.stderr)
        port = bench_page._free_port()
        server = page._start_server(port)
        try:
            samples = page._browser(
                f"http://127.0.0.1:{port}", user,
                {"username": user.username, "password": options["password"],
                 "loads": options["loads"], "events": 20},
            )  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=20)
        return {
            kind: {name: compare.stats(values) for name, values in samples[kind].items()}
            for kind in ("cold", "warm")
        } | {"event_latency": compare.stats(samples["event_latency"])}

    def _indexes(self, options: dict[str, Any]) -> dict[str, Any]:
        urls = [*DASHBOARD_PATHS, *compare.LISTS]
        return compare.indexes(self.client, urls, max(3, options["compare_iterations"] // 2))

    def _eager_lazy(self, options: dict[str, Any]) -> dict[str, Any]:
        return compare.eager_lazy(self.client, options["compare_iterations"])

    def _page_vs_list(self, options: dict[str, Any]) -> dict[str, Any]:
        return compare.page_vs_list(self.client, max(2, options["compare_iterations"] // 3))

    def _market_cache(self, options: dict[str, Any]) -> dict[str, Any]:
        return compare.market_cache(self.client, options["compare_iterations"])

    def _engine(self, options: dict[str, Any]) -> dict[str, Any]:
        return bench_engine_section.run(
            fleets=_ints(options["engine_bots"]), concurrency=options["engine_concurrency"],
            symbols=options["engine_symbols"], seconds_left=self._seconds_left,
            say=self.stdout.write,
        )  # fmt: skip

    def _scale(self, options: dict[str, Any]) -> dict[str, Any]:
        def client_for(username: str) -> Any:
            return token_client(username, session=False)[1]

        return scale.run(
            profile=options["profile"], levels=_ints(options["scale"]),
            urls=[*DASHBOARD_PATHS, *compare.LISTS], iterations=options["scale_iterations"],
            client_for=client_for, seconds_left=self._seconds_left, say=self.stdout.write,
        )  # fmt: skip

    # --- report ---------------------------------------------------------------------------

    def _commit(self) -> str:
        try:
            done = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
                cwd=REPO, capture_output=True, text=True, timeout=10, check=False,
            )  # fmt: skip
            return done.stdout.strip() or "unknown"
        except OSError:
            return "unknown"
