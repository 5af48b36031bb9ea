"""python manage.py cache_stats [--reset]: hit rate, key counts and memory of the market data cache."""

from __future__ import annotations

from typing import Any

from django.core.cache import caches
from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketdata import cache as market_cache

SCAN_BATCH = 500


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return ""  # pragma: no cover


class Command(BaseCommand):
    help = (
        "Market data cache: hits, misses, hit rate and computations per namespace (summed over "
        "all processes, flushed every 5 s / 1,000 reads), key counts and memory in Redis."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reset", action="store_true", help="Zero the counters afterwards.")

    def handle(self, *args: Any, **options: Any) -> None:
        backend = caches["default"]
        client = market_cache.redis_client(backend)
        if client is None:
            raise CommandError(
                "cache_stats reads Redis: set REDIS_URL (the cache is local memory)."
            )
        market_cache.flush_stats(backend)  # this process's own counts, if any
        stats = market_cache.read_stats(backend)
        self.stdout.write(
            f"{'namespace':<12}{'hits':>12}{'misses':>10}{'hit rate':>10}{'computed':>10}"
            f"{'keys':>8}{'memory':>12}"
        )
        for namespace in market_cache.NAMESPACES:
            keys, memory = self._keys_and_memory(client, backend.make_key(f"{namespace}:*"))
            counts = stats[namespace]
            reads = counts["hit"] + counts["miss"]
            rate = f"{counts['hit'] / reads:.1%}" if reads else "-"
            self.stdout.write(
                f"{namespace:<12}{counts['hit']:>12,}{counts['miss']:>10,}{rate:>10}"
                f"{counts['compute']:>10,}{keys:>8,}{_size(memory):>12}"
            )
        info = client.info("memory")
        evicted = client.info("stats").get("evicted_keys", 0)
        limit = info.get("maxmemory", 0)
        self.stdout.write(
            f"Redis used memory {_size(info['used_memory'])} (maxmemory "
            f"{_size(limit) if limit else 'unlimited'}, policy {info.get('maxmemory_policy')}), "
            f"evicted keys {evicted:,}."
        )
        if options["reset"]:
            market_cache.reset_stats(backend)
            self.stdout.write("Counters reset.")

    @staticmethod
    def _keys_and_memory(client: Any, pattern: str) -> tuple[int, int]:
        """SCAN (non-blocking) the keys, and sum MEMORY USAGE in pipelined batches."""
        count = memory = 0
        batch: list[bytes] = []

        def measure() -> int:
            pipe = client.pipeline(transaction=False)
            for key in batch:
                pipe.memory_usage(key)
            return sum(size or 0 for size in pipe.execute())

        for key in client.scan_iter(match=pattern, count=1000):
            count += 1
            batch.append(key)
            if len(batch) >= SCAN_BATCH:
                memory += measure()
                batch.clear()
        if batch:
            memory += measure()
        return count, memory
