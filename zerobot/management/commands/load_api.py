"""python manage.py load_api --base http://127.0.0.1:8000 --clients 8 --seconds 30

N client threads request the dashboard mix over HTTP (a real server: gunicorn) for T seconds, as
one user, and print requests, status codes and latency percentiles; the exit code is 1 on any
5xx or connection error. Reads the server's /metrics afterwards for pool errors when allowed.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

MIX = [
    "/api/dashboard/stats", "/api/dashboard/equity-curve", "/api/dashboard/positions",
    "/api/dashboard/trades", "/api/dashboard/performance", "/api/bots/", "/api/trades/?limit=50",
]  # fmt: skip


def _get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    if not url.startswith(("http://", "https://")):
        raise CommandError(f"--base must be an http(s) URL (got {url!r}).")
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Command(BaseCommand):
    help = "HTTP load on a running server: N clients x T seconds on the dashboard mix."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base", default="http://127.0.0.1:8000")
        parser.add_argument("--clients", type=int, default=8)
        parser.add_argument("--seconds", type=float, default=30.0)
        parser.add_argument("--username", default="demo")

    def handle(self, *args: Any, **options: Any) -> None:
        from accounts.services import token_create

        try:
            user = get_user_model().objects.get(username=options["username"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user {options['username']!r}: run seed_demo first.") from None
        headers = {"Authorization": f"Token {token_create(user=user).key}"}
        base, stop_at = options["base"].rstrip("/"), time.monotonic() + options["seconds"]
        statuses: Counter = Counter()
        latencies: list[float] = []
        lock = threading.Lock()

        def client(offset: int) -> None:
            i = offset
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                try:
                    status, _ = _get(base + MIX[i % len(MIX)], headers)
                except OSError:
                    status = 0
                elapsed = time.perf_counter() - started
                with lock:
                    statuses[status] += 1
                    latencies.append(elapsed)
                i += 1

        threads = [threading.Thread(target=client, args=(n,)) for n in range(options["clients"])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        latencies.sort()
        n = len(latencies)

        def pct(p: float) -> float:
            return latencies[min(n - 1, int(n * p))] * 1000 if n else 0.0

        errors = sum(count for status, count in statuses.items() if status >= 500 or status == 0)
        self.stdout.write(
            f"{options['clients']} clients x {options['seconds']:.0f} s: {n} requests "
            f"({n / options['seconds']:.0f}/s), statuses {dict(sorted(statuses.items()))}, "
            f"p50 {pct(0.5):.1f} ms, p95 {pct(0.95):.1f} ms, p99 {pct(0.99):.1f} ms, "
            f"max {pct(1.0):.1f} ms, 5xx+errors {errors}"
        )
        status, body = _get(base + "/metrics", headers={})
        if status == 200:
            pool_errors = sum(
                float(line.rsplit(" ", 1)[1])
                for line in body.decode().splitlines()
                if line.startswith("zerobot_db_pool_errors_total")
            )
            self.stdout.write(f"pool errors (zerobot_db_pool_errors_total): {pool_errors:.0f}")
        if errors:
            raise CommandError(f"{errors} responses were 5xx or connection errors.")
