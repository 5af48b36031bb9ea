"""python manage.py bench [--out bench-report] [--iterations 100] [--seconds 10] [--loads 5]

One command, one report: measures the current database's data (``seed_demo`` first; the demo
user by default) and writes ``<out>/report.md`` and ``<out>/results.json``. Bounded in time
(``--max-minutes``, default 10: a phase that would start past it is skipped and says so), with a
progress line per phase. Phases:

1. each dashboard endpoint in process through the whole middleware stack (token auth, full
   responses, the response cache off): p50/p95/p99, queries, bytes;
2. conditional reads, data unchanged: a repeat from the per-user response cache and a 304 to
   ``If-None-Match``, against the full p50;
3. over HTTP: gunicorn started here on 127.0.0.1 (``WEB_CONCURRENCY`` workers, default 2), N
   clients (default 8) for ``--seconds`` each on a trivial endpoint (``/healthz``, the stack's
   ceiling), the dashboard mix with full responses, and the same mix as a polling client sends
   it (``If-None-Match``), and the full mix on a second, identical server without the pool
   (``DB_POOL_DISABLED=1``: a new connection per request), all interleaved in ``--rounds``
   slices: req/s, p50/p95/p99, errors, each mix as a share of the ceiling, pooled / unpooled;
4. the dashboard page in headless Chromium (``bench_page``'s measurement): cold and warm loads,
   with the page's first data inside and without (``/?initial=0``).

Not in it (yet): a dedicated benchmark database and profiles, indexes dropped, eager vs lazy
serializers, the history-depth scale, the engine, and charts.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from accounts.benchclient import token_client
from trading.dashboard import DASHBOARD_PATHS
from trading.management.commands.bench_api import percentile, quiet_request_logs
from trading.models import Bot, Position, Trade

REPO = Path(__file__).resolve().parents[3]
CEILING = "/healthz"
MIX = [*DASHBOARD_PATHS, "/api/bots/", "/api/trades/?limit=50"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 3),
        "p95": round(percentile(values, 95), 3),
        "p99": round(percentile(values, 99), 3),
    }


def _http_get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback, built here
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            response.read()
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code, dict(exc.headers)


class Load:
    """One kind of load, measured in slices (interleaved with the others by the caller, so a
    noisy neighbour weighs on every kind alike): ``clients`` threads request ``paths`` in turn;
    with ``conditional`` each client sends back the ETag it last got for a path (as a polling
    dashboard does), kept across slices."""

    def __init__(
        self, base: str, paths: list[str], headers: dict[str, str], clients: int,
        conditional: bool = False,
    ) -> None:  # fmt: skip
        self.base, self.paths, self.headers, self.clients = base, paths, headers, clients
        self.conditional = conditional
        self.tags: list[dict[str, str]] = [{} for _ in range(clients)]
        self.statuses: Counter = Counter()
        self.latencies: list[float] = []
        self.seconds = 0.0

    def run(self, seconds: float) -> None:
        slice_ = _load(self.base, self.paths, self.headers, self.clients, seconds,
                       self.tags if self.conditional else None)  # fmt: skip
        self.statuses.update(slice_["statuses"])
        self.latencies += slice_["latencies"]
        self.seconds += seconds

    def result(self) -> dict[str, Any]:
        errors = sum(n for status, n in self.statuses.items() if status == 0 or status >= 500)
        return {
            "clients": self.clients,
            "seconds": self.seconds,
            "requests": len(self.latencies),
            "rps": round(len(self.latencies) / self.seconds, 1) if self.seconds else 0.0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": errors,
            "latency_ms": _stats(self.latencies),
        }


def _load(
    base: str, paths: list[str], headers: dict[str, str], clients: int, seconds: float,
    tags: list[dict[str, str]] | None = None,
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
                status, got = _http_get(base + path, sent)
            except OSError:
                status, got = 0, {}
            elapsed = (time.perf_counter() - started) * 1000
            if conditional and got.get("ETag"):
                mine[path] = got["ETag"]
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


class Command(BaseCommand):
    help = "Run the benchmarks and write one report (bench-report/report.md, results.json)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", default="bench-report")
        parser.add_argument("--user", default="demo")
        parser.add_argument("--password", default="zerobot-demo", help="for the page's login")
        parser.add_argument("--iterations", type=int, default=100)
        parser.add_argument("--warmup", type=int, default=20)
        parser.add_argument("--clients", type=int, default=8)
        parser.add_argument("--seconds", type=float, default=10.0, help="per HTTP load kind")
        parser.add_argument(
            "--rounds", type=int, default=5,
            help="HTTP loads are interleaved in this many slices each",
        )  # fmt: skip
        parser.add_argument("--loads", type=int, default=5, help="page loads of each kind")
        parser.add_argument("--max-minutes", type=float, default=10.0)
        parser.add_argument(
            "--skip", action="append", default=[], choices=["http", "page"],
            help="Leave a phase out (repeatable).",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.DEBUG:
            raise CommandError("DEBUG is on: the figures would be several times the real ones.")
        self.deadline = time.monotonic() + options["max_minutes"] * 60
        user, client = token_client(options["user"], session=False)
        if not Bot.objects.filter(owner=user).exists():
            raise CommandError(f"{options['user']!r} has no bots: run seed_demo first.")
        data = {
            "user": user.username,
            "bots": Bot.objects.filter(owner=user).count(),
            "trades": Trade.objects.filter(owner=user).count(),
            "open_positions": Position.objects.filter(owner=user, status="open").count(),
        }
        machine = {
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "python": platform.python_version(),
        }
        results: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": self._commit(),
            "machine": machine,
            "data": data,
            "skipped": {},
        }
        phases = [
            ("endpoints", lambda: self._endpoints(client, options)),
            ("conditional", lambda: self._conditional(client, options)),
            ("http", lambda: self._http(user, options)),
            ("page", lambda: self._page(user, options)),
        ]
        for number, (name, run) in enumerate(phases, 1):
            if name in options["skip"]:
                results["skipped"][name] = "--skip"
                continue
            if time.monotonic() > self.deadline:
                results["skipped"][name] = "time bound (--max-minutes) reached"
                self.stdout.write(f"[{number}/{len(phases)}] {name}: skipped (time bound)")
                continue
            self.stdout.write(f"[{number}/{len(phases)}] {name} ...")
            started = time.monotonic()
            with quiet_request_logs():
                results[name] = run()
            self.stdout.write(f"[{number}/{len(phases)}] {name} done in "
                              f"{time.monotonic() - started:.0f} s")  # fmt: skip
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        (out / "report.md").write_text(self._report(results))
        self.stdout.write(f"wrote {out / 'report.md'} and {out / 'results.json'}")

    # --- phases ---------------------------------------------------------------------------

    def _endpoints(self, client: Any, options: dict[str, Any]) -> dict[str, Any]:
        rows = {}
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
                rows[url] = {**_stats(timings), "queries": len(queries),
                             "bytes": len(response.content)}  # fmt: skip
        return rows

    def _conditional(self, client: Any, options: dict[str, Any]) -> dict[str, Any]:
        rows = {}
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
                rows[url] = {"cached": _stats(cached), "not_modified": _stats(not_modified)}
        return rows

    def _server(self, pooled: bool) -> tuple[str, subprocess.Popen]:
        port = _free_port()
        env = {
            **os.environ,
            "DEBUG": "0", "SILK_ENABLED": "0", "MONITORING_FLUSH_SECONDS": "0",
            "SECURE_SSL_REDIRECT": "0", "GUNICORN_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": self.workers, "LOG_LEVEL": "WARNING",
            "SECRET_KEY": settings.SECRET_KEY, "DB_POOL_DISABLED": "0" if pooled else "1",
        }  # fmt: skip
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        server = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "zerobot.wsgi"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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

    def _http(self, user: Any, options: dict[str, Any]) -> dict[str, Any]:
        """Two servers alike but for the pool: the pooled one takes the ceiling, full and
        conditional mixes; the other (DB_POOL_DISABLED=1: a new server connection per request)
        the full mix, for the pooled / unpooled ratio."""
        from accounts.services import token_create

        self.workers = os.environ.get("WEB_CONCURRENCY", "2")
        servers: list[subprocess.Popen] = []
        try:
            base, server = self._server(pooled=True)
            servers.append(server)
            unpooled, server = self._server(pooled=False)
            servers.append(server)
            self._wait_for(base + CEILING, servers[0])
            self._wait_for(unpooled + CEILING, servers[1])
            headers = {"Authorization": f"Token {token_create(user=user).key}"}
            clients, seconds = options["clients"], options["seconds"]
            for path in MIX:  # warm the workers (connections, caches)
                _http_get(base + path, headers)
                _http_get(unpooled + path, headers)
            loads = {
                "ceiling": Load(base, [CEILING], {}, clients),
                "mix_full": Load(base, MIX, headers, clients),
                "mix_conditional": Load(base, MIX, headers, clients, conditional=True),
                "mix_unpooled": Load(unpooled, MIX, headers, clients),
            }
            rounds = max(1, options["rounds"])
            for _ in range(rounds):  # interleaved slices: the same noise on each kind
                for load in loads.values():
                    load.run(seconds / rounds)
            measured = {name: load.result() for name, load in loads.items()}
        finally:
            for server in servers:
                self._stop(server)
        ceiling = measured["ceiling"]["rps"]
        return {
            "server": f"gunicorn, {self.workers} sync worker(s), 127.0.0.1",
            **measured,
            "full_share_of_ceiling": round(measured["mix_full"]["rps"] / ceiling, 3),
            "conditional_share_of_ceiling": round(measured["mix_conditional"]["rps"] / ceiling, 3),
            "unpooled_share_of_ceiling": round(measured["mix_unpooled"]["rps"] / ceiling, 3),
            "pooled_vs_unpooled": round(
                measured["mix_full"]["rps"] / max(measured["mix_unpooled"]["rps"], 0.1), 2
            ),
        }

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

    def _page(self, user: Any, options: dict[str, Any]) -> dict[str, Any]:
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
            kind: {name: _stats(values) for name, values in samples[kind].items()}
            for kind in ("cold", "warm")
        } | {"event_latency": _stats(samples["event_latency"])}

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

    def _report(self, r: dict[str, Any]) -> str:
        m, d = r["machine"], r["data"]
        lines = [
            "# zerobot benchmark report",
            "",
            f"{r['date']}, commit `{r['commit']}`, {m['cpus']} CPUs, load average "
            f"{', '.join(f'{x:.2f}' for x in m['load_average'])} at the start, Python "
            f"{m['python']}. Data: user `{d['user']}`, {d['bots']} bots, {d['trades']:,} trades, "
            f"{d['open_positions']} open positions. Command: `python manage.py bench`. A shared "
            "machine is noisy: compare the ratios measured in this run.",
            "",
        ]
        if "endpoints" in r:
            lines += ["## Dashboard endpoints in process (full responses)", "",
                      "| endpoint | p50 ms | p95 ms | p99 ms | queries | bytes |",
                      "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
            for url, row in r["endpoints"].items():
                lines.append(f"| `{url}` | {row['p50']:.2f} | {row['p95']:.2f} | "
                             f"{row['p99']:.2f} | {row['queries']} | {row['bytes']:,} |")  # fmt: skip
            lines.append("")
        if "conditional" in r and "error" not in r["conditional"]:
            lines += ["## Conditional reads (data unchanged)", "",
                      "| endpoint | full p50 ms | cached p50 ms | 304 p50 ms | full / cached | "
                      "full / 304 |", "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
            for url, row in r["conditional"].items():
                full = r.get("endpoints", {}).get(url, {}).get("p50")
                c, n = row["cached"]["p50"], row["not_modified"]["p50"]
                if full:
                    lines.append(f"| `{url}` | {full:.2f} | {c:.2f} | {n:.2f} | "
                                 f"{full / c:.1f}x | {full / n:.1f}x |")  # fmt: skip
                else:
                    lines.append(f"| `{url}` | - | {c:.2f} | {n:.2f} | - | - |")
            lines.append("")
        if "http" in r:
            h = r["http"]
            lines += [f"## Over HTTP ({h['server']}, {h['ceiling']['clients']} clients, "
                      f"{h['ceiling']['seconds']:.0f} s each)", "",
                      "| load | req/s | p50 ms | p95 ms | p99 ms | errors | statuses | "
                      "share of ceiling |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
            for label, key, share in (
                (f"`{CEILING}` (ceiling)", "ceiling", 1.0),
                ("dashboard mix, full responses", "mix_full", h["full_share_of_ceiling"]),
                ("dashboard mix, If-None-Match", "mix_conditional",
                 h["conditional_share_of_ceiling"]),
                ("dashboard mix, full, no pool (a connection per request)", "mix_unpooled",
                 h["unpooled_share_of_ceiling"]),
            ):  # fmt: skip
                row = h[key]
                lat = row["latency_ms"]
                lines.append(f"| {label} | {row['rps']:.0f} | {lat.get('p50', 0):.1f} | "
                             f"{lat.get('p95', 0):.1f} | {lat.get('p99', 0):.1f} | "
                             f"{row['errors']} | {row['statuses']} | {share:.0%} |")  # fmt: skip
            lines += ["", f"Pooled / unpooled (full mix, req/s): {h['pooled_vs_unpooled']:.2f}x.",
                      ""]  # fmt: skip
        if "page" in r and "error" not in r["page"]:
            p = r["page"]
            lines += ["## Dashboard page in Chromium (navigation start -> every panel rendered)",
                      "", "| load | p50 ms | p95 ms | n |", "| --- | --- | --- | --- |"]  # fmt: skip
            for kind in ("cold", "warm"):
                for name, row in p[kind].items():
                    lines.append(f"| {kind}, {name} | {row.get('p50', 0):.1f} | "
                                 f"{row.get('p95', 0):.1f} | {row['n']} |")  # fmt: skip
            ev = p["event_latency"]
            lines += ["", f"Event latency, commit -> page: p50 {ev.get('p50', 0):.1f} ms, p95 "
                          f"{ev.get('p95', 0):.1f} ms (n={ev['n']}).", ""]  # fmt: skip
        for name, why in r["skipped"].items():
            lines.append(f"- {name}: skipped ({why})")
        errors = {k: v["error"] for k, v in r.items() if isinstance(v, dict) and "error" in v}
        for name, why in errors.items():
            lines.append(f"- {name}: not measured ({why})")
        lines += ["", "Not measured by this command yet: a dedicated benchmark database and its "
                      "profiles, indexes dropped, eager vs lazy serializers, "
                      "history depth x10/x100, the engine; no charts.", ""]  # fmt: skip
        return "\n".join(lines)
