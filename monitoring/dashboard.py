"""The figures behind /admin/monitoring/, read from the per-minute tables for one window.

Percentiles are estimated from the summed histograms (linear interpolation inside a bucket; the
buckets are 25-50% wide, so "p95 ~ 120 ms" is accurate to that). Six queries, each a range read on
its table's minute/time index; at most ~1,440 rows per operation for the 24 h window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from monitoring import charts
from monitoring.aggregation import LATENCY_BOUNDS_MS, QUERY_BOUNDS, Totals, merge_totals
from monitoring.models import (
    CacheBucket,
    PoolAlert,
    PoolSample,
    RequestBucket,
    SlowQuery,
    SlowRequest,
)

# window -> (length, seconds per chart point)
WINDOWS: dict[str, tuple[timedelta, int]] = {
    "15m": (timedelta(minutes=15), 60),
    "1h": (timedelta(hours=1), 60),
    "24h": (timedelta(hours=24), 900),
}
DEFAULT_WINDOW = "1h"
TOP_OPERATIONS = 15


def percentile(
    histogram: Sequence[int], bounds: Sequence[float], q: float, max_value: float
) -> float | None:
    """The q-quantile (0-1) of values counted in ``histogram`` (one bucket per bound + overflow)."""
    total = sum(histogram)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(histogram):
        if not count:
            continue
        if seen + count >= rank:
            lower = bounds[index - 1] if index > 0 else 0.0
            upper = bounds[index] if index < len(bounds) else max(max_value, lower)
            upper = min(upper, max_value) if max_value > lower else upper
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return max_value


def query_bucket_labels() -> list[str]:
    """'0', '1', ..., '7-8', '9-10', ..., '>100' for the buckets of QUERY_BOUNDS."""
    labels, previous = [], -1
    for bound in QUERY_BOUNDS:
        labels.append(str(bound) if bound == previous + 1 else f"{previous + 1}-{bound}")
        previous = bound
    return [*labels, f">{QUERY_BOUNDS[-1]}"]


def _add(into: list[int], values: Sequence[int]) -> None:
    if len(into) == len(values):
        for i, v in enumerate(values):
            into[i] += v


@dataclass
class OperationStats(Totals):
    operation: str = ""
    method: str = ""

    def add(self, row: RequestBucket) -> None:
        merge_totals(self, row)
        _add(self.latency, row.latency_histogram)
        _add(self.queries, row.query_histogram)

    def p(self, q: float) -> float | None:
        return percentile(self.latency, LATENCY_BOUNDS_MS, q, self.duration_max_ms)

    @property
    def p50(self) -> float | None:
        return self.p(0.5)

    @property
    def p95(self) -> float | None:
        return self.p(0.95)

    @property
    def p99(self) -> float | None:
        return self.p(0.99)

    @property
    def mean_ms(self) -> float:
        return self.duration_sum_ms / self.count if self.count else 0.0

    @property
    def mean_queries(self) -> float:
        return self.query_count_sum / self.count if self.count else 0.0

    @property
    def db_share_pct(self) -> float:
        return 100 * self.query_time_sum_ms / self.duration_sum_ms if self.duration_sum_ms else 0.0

    @property
    def cache_hit_pct(self) -> float | None:
        reads = self.cache_hits + self.cache_misses
        return 100 * self.cache_hits / reads if reads else None

    @property
    def label(self) -> str:
        return f"{self.method} {self.operation}"


def _steps(since: datetime, until: datetime, step: int) -> list[datetime]:
    start = since.timestamp() // step * step
    end = until.timestamp()
    return [
        datetime.fromtimestamp(t, tz=since.tzinfo) for t in range(int(start), int(end) + 1, step)
    ]


def build(window: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything the template shows for ``window`` (a key of WINDOWS)."""
    length, step = WINDOWS[window]
    now = now or timezone.now()
    since = now - length
    steps = _steps(since, now, step)
    first = steps[0].timestamp()

    def slot(moment: datetime) -> int:
        return min(int((moment.timestamp() - first) // step), len(steps) - 1)

    label_format = "%H:%M"
    x_labels = [s.strftime(label_format) for s in steps]

    operations: dict[tuple[str, str], OperationStats] = {}
    total = OperationStats(operation="all")
    per_step = [OperationStats(operation="all") for _ in steps]
    for row in RequestBucket.objects.filter(minute__gte=steps[0]).order_by("minute"):
        key = (row.operation, row.method)
        stats = operations.get(key)
        if stats is None:
            stats = operations[key] = OperationStats(operation=row.operation, method=row.method)
        stats.add(row)
        total.add(row)
        per_step[slot(row.minute)].add(row)
    ranked = sorted(operations.values(), key=lambda s: (s.p95 or 0) * s.count, reverse=True)

    pool_usage: list[float | None] = [None] * len(steps)
    pool_waiting: list[float | None] = [None] * len(steps)
    pool_peak = 0.0
    for sample in PoolSample.objects.filter(minute__gte=steps[0]).order_by("minute"):
        i = slot(sample.minute)
        pool_usage[i] = max(pool_usage[i] or 0.0, sample.usage_max_pct)
        pool_waiting[i] = max(pool_waiting[i] or 0.0, float(sample.waiting_max))
        pool_peak = max(pool_peak, sample.usage_max_pct)

    namespaces: dict[str, list[int]] = {}
    for bucket in CacheBucket.objects.filter(minute__gte=steps[0]):
        counts = namespaces.setdefault(bucket.namespace, [0, 0])
        counts[0] += bucket.hits
        counts[1] += bucket.misses
    cache_rows = [
        {"namespace": ns, "hits": h, "misses": m, "hit_pct": 100 * h / (h + m) if h + m else 0.0}
        for ns, (h, m) in sorted(namespaces.items())
    ]
    cache_reads = sum(r["hits"] + r["misses"] for r in cache_rows)
    cache_hit_pct = 100 * sum(r["hits"] for r in cache_rows) / cache_reads if cache_reads else None

    slowest = list(SlowRequest.objects.filter(at__gte=since).order_by("-duration_ms")[:20])
    slow_queries = list(SlowQuery.objects.by_statement(since).order_by("-max_ms")[:20])
    alerts = list(PoolAlert.objects.filter(created_at__gte=since)[:20])

    latency_chart = charts.line_chart(
        title="Latency, all operations (ms)",
        x_labels=x_labels,
        series=[
            charts.Series("p50", [s.p50 for s in per_step]),
            charts.Series("p95", [s.p95 for s in per_step]),
            charts.Series("p99", [s.p99 for s in per_step]),
        ],
        unit=" ms",
    )
    per_minute = step // 60
    throughput_chart = charts.column_chart(
        title=f"Requests per {'minute' if per_minute == 1 else f'{per_minute} minutes'}",
        labels=x_labels,
        values=[s.count for s in per_step],
    )
    top = ranked[:TOP_OPERATIONS]
    operations_chart = charts.bar_chart(
        title=f"Latency per operation (ms), top {len(top)} by p95 x requests",
        rows=[(s.label, [s.p50 or 0, s.p95 or 0, s.p99 or 0]) for s in top],
        series_names=["p50", "p95", "p99"],
        unit=" ms",
    )
    query_chart = charts.column_chart(
        title="Queries per request (number of requests)",
        labels=query_bucket_labels(),
        values=total.queries,
        color=charts.PALETTE[4],
    )
    pool_chart = charts.line_chart(
        title="Connection pool: busiest process, % of max_size in use",
        x_labels=x_labels,
        series=[charts.Series("usage %", pool_usage, color=charts.PALETTE[3])],
        unit="%",
        y_max=100,
        hlines=[(settings.POOL_ALERT_PCT, f"alert {settings.POOL_ALERT_PCT:g}%")],
    )
    cache_chart = charts.bar_chart(
        title="Cache hit rate per namespace (%)",
        rows=[(r["namespace"], [r["hit_pct"]]) for r in cache_rows],
        series_names=["hit %"],
        unit="%",
        x_max=100,
    )
    return {
        "window": window,
        "windows": list(WINDOWS),
        "since": since,
        "now": now,
        "total": total,
        "operations": ranked,
        "pool_peak": pool_peak,
        "pool_waiting_peak": max((w for w in pool_waiting if w is not None), default=0),
        "cache_rows": cache_rows,
        "cache_hit_pct": cache_hit_pct,
        "slowest": slowest,
        "slow_queries": slow_queries,
        "alerts": alerts,
        "charts": {
            "latency": latency_chart,
            "throughput": throughput_chart,
            "operations": operations_chart,
            "queries": query_chart,
            "pool": pool_chart,
            "cache": cache_chart,
        },
        "slow_query_ms": settings.SLOW_QUERY_MS,
        "max_queries": settings.MAX_QUERIES_PER_REQUEST,
        "flush_seconds": settings.MONITORING_FLUSH_SECONDS,
    }
