"""In-process per-minute aggregates, written to the database off the request path.

``record_request`` (called by the middleware once per request) only updates a dict under a lock:
a histogram bucket, a few sums, a 5-entry heap of the minute's slowest requests. A background
thread per process (``monitoring.pool.start_background``, which also samples the pools), or ``flush()`` called by hand, adds those figures to the
shared ``RequestBucket``/``CacheBucket`` rows, inserts the slow requests/queries and pool samples,
and prunes rows past the retention. A flush that fails (database down, pool exhausted) drops that
batch with a log line: monitoring must never hold the request path or grow without bound.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import socket
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q

from monitoring.buckets import LATENCY_BOUNDS_MS, QUERY_BOUNDS
from monitoring.context import process_cache_counts

logger = logging.getLogger("zerobot.monitoring")

SLOW_REQUESTS_PER_MINUTE = 5
SLOW_QUERIES_PER_MINUTE = 50
SQL_MAX_CHARS = 4000
PRUNE_EVERY_SECONDS = 600


# The per-minute totals of a request bucket: summed, or kept as the maximum, when merging.
SUM_FIELDS = (
    "count", "errors", "duration_sum_ms", "query_count_sum", "query_time_sum_ms", "cache_hits",
    "cache_misses",
)  # fmt: skip
MAX_FIELDS = ("duration_max_ms", "query_count_max")


def merge_totals(into: Any, source: Any) -> None:
    """Add ``source``'s totals into ``into`` (in-memory buckets, rows, dashboard stats alike)."""
    for name in SUM_FIELDS:
        setattr(into, name, getattr(into, name) + getattr(source, name))
    for name in MAX_FIELDS:
        setattr(into, name, max(getattr(into, name), getattr(source, name)))


def process_name() -> str:
    """``host:pid``; computed each time, since gunicorn forks workers after import."""
    return f"{socket.gethostname()}:{os.getpid()}"


def minute_of(timestamp: float) -> int:
    """Epoch seconds of the start of the minute holding ``timestamp``."""
    return int(timestamp // 60) * 60


def bucket_index(bounds: tuple[float, ...], value: float) -> int:
    return bisect_left(bounds, value)


@dataclass(slots=True)
class RequestRecord:
    at: float
    operation: str
    method: str
    route: str
    path: str
    status: int
    duration_ms: float
    query_count: int
    query_time_ms: float
    user_id: int | None
    bot_id: int | None
    cache_hits: int
    cache_misses: int


@dataclass(slots=True)
class Totals:
    """A request bucket's totals; summed per minute here, per window on the dashboard."""

    count: int = 0
    errors: int = 0
    duration_sum_ms: float = 0.0
    duration_max_ms: float = 0.0
    query_count_sum: int = 0
    query_count_max: int = 0
    query_time_sum_ms: float = 0.0
    cache_hits: int = 0
    cache_misses: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))
    queries: list[int] = field(default_factory=lambda: [0] * (len(QUERY_BOUNDS) + 1))


@dataclass(slots=True)
class _PoolMinute:
    max_size: int
    size: int
    available: int
    in_use_max: int
    waiting_max: int
    usage_max_pct: float
    errors: int


@dataclass
class Batch:
    """What one flush writes: everything recorded since the previous flush."""

    totals: dict[tuple[int, str, str], Totals]
    slow_requests: list[RequestRecord]
    slow_queries: list[tuple[float, str, float, str]]
    pool: dict[tuple[int, str], _PoolMinute]
    alerts: list[Any]
    cache: dict[tuple[str, str], int]


class Aggregator:
    """Thread-safe in-memory aggregates of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tiebreak = itertools.count()
        self._reset()
        self._cache_flushed: dict[tuple[str, str], int] = {}

    def _reset(self) -> None:
        self._totals: dict[tuple[int, str, str], Totals] = {}
        # minute -> min-heap of (duration, tiebreak, record): the minute's slowest requests.
        self._slowest: dict[int, list[tuple[float, int, RequestRecord]]] = {}
        self._slow_queries: list[tuple[float, str, float, str]] = []
        self._slow_query_minutes: dict[int, int] = {}
        self._pool: dict[tuple[int, str], _PoolMinute] = {}
        self._alerts: list[Any] = []

    def record_request(self, record: RequestRecord) -> None:
        minute = minute_of(record.at)
        key = (minute, record.operation, record.method)
        with self._lock:
            totals = self._totals.get(key)
            if totals is None:
                totals = self._totals[key] = Totals()
            totals.count += 1
            if record.status >= 500:
                totals.errors += 1
            totals.duration_sum_ms += record.duration_ms
            if record.duration_ms > totals.duration_max_ms:
                totals.duration_max_ms = record.duration_ms
            totals.query_count_sum += record.query_count
            if record.query_count > totals.query_count_max:
                totals.query_count_max = record.query_count
            totals.query_time_sum_ms += record.query_time_ms
            totals.cache_hits += record.cache_hits
            totals.cache_misses += record.cache_misses
            totals.latency[bisect_left(LATENCY_BOUNDS_MS, record.duration_ms)] += 1
            totals.queries[bisect_left(QUERY_BOUNDS, record.query_count)] += 1
            heap = self._slowest.setdefault(minute, [])
            entry = (record.duration_ms, next(self._tiebreak), record)
            if len(heap) < SLOW_REQUESTS_PER_MINUTE:
                heapq.heappush(heap, entry)
            elif entry > heap[0]:
                heapq.heapreplace(heap, entry)

    def record_slow_query(self, *, at: float, operation: str, duration_ms: float, sql: str) -> bool:
        """Keep a slow statement for the dashboard; False when this minute's quota is used up."""
        minute = minute_of(at)
        with self._lock:
            seen = self._slow_query_minutes.get(minute, 0)
            if seen >= SLOW_QUERIES_PER_MINUTE:
                return False
            self._slow_query_minutes[minute] = seen + 1
            self._slow_queries.append((at, operation, duration_ms, sql[:SQL_MAX_CHARS]))
            return True

    def record_pool(
        self,
        *,
        at: float,
        alias: str,
        max_size: int,
        size: int,
        available: int,
        waiting: int,
        errors: int,
    ) -> None:
        in_use = max(size - available, 0)
        usage = 100.0 * in_use / max_size if max_size else 0.0
        key = (minute_of(at), alias)
        with self._lock:
            sample = self._pool.get(key)
            if sample is None:
                self._pool[key] = _PoolMinute(
                    max_size, size, available, in_use, waiting, usage, errors
                )
                return
            sample.max_size, sample.size, sample.available = max_size, size, available
            sample.in_use_max = max(sample.in_use_max, in_use)
            sample.waiting_max = max(sample.waiting_max, waiting)
            sample.usage_max_pct = max(sample.usage_max_pct, usage)
            sample.errors += errors

    def record_alert(self, alert: Any) -> None:
        """Queue a ``PoolAlert`` (new, or resolved) for the next flush."""
        with self._lock:
            if alert not in self._alerts:
                self._alerts.append(alert)

    def take(self, *, final: bool = False, now: float | None = None) -> Batch:
        """Remove and return what is ready to write.

        The current minute's slowest requests and pool sample stay in memory until the minute
        is over (so the top 5 and the maximum are over the whole minute), unless ``final``.
        """
        current = minute_of(time.time() if now is None else now)
        with self._lock:
            totals, self._totals = self._totals, {}
            slow_queries, self._slow_queries = self._slow_queries, []
            self._slow_query_minutes = {
                m: n for m, n in self._slow_query_minutes.items() if m >= current
            }
            alerts, self._alerts = self._alerts, []
            slow_requests: list[RequestRecord] = []
            for minute in [m for m in self._slowest if final or m < current]:
                slow_requests.extend(entry[2] for entry in self._slowest.pop(minute))
            # Pool samples of the current minute are written (upserted) but kept, so the next
            # flush rewrites the same row with the minute's running maximum.
            pool = dict(self._pool)
            self._pool = {} if final else {k: v for k, v in self._pool.items() if k[0] >= current}
            counts = process_cache_counts()
            cache = {
                key: value - self._cache_flushed.get(key, 0)
                for key, value in counts.items()
                if value != self._cache_flushed.get(key, 0)
            }
            self._cache_flushed = counts
        return Batch(totals, slow_requests, slow_queries, pool, alerts, cache)

    def clear(self) -> None:
        with self._lock:
            self._reset()
            self._cache_flushed = process_cache_counts()


aggregator = Aggregator()


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _add_histograms(stored: list[int], delta: list[int]) -> list[int]:
    if len(stored) != len(delta):  # bounds changed since the row was written: start over
        return list(delta)
    return [a + b for a, b in zip(stored, delta, strict=True)]


def _write_totals(totals: dict[tuple[int, str, str], Totals]) -> None:
    from monitoring.models import RequestBucket

    if not totals:
        return
    keys = {(_dt(m), op, method): value for (m, op, method), value in totals.items()}
    # Create missing rows (another process may create the same one: ignore), then lock every
    # row in primary-key order (no deadlock between processes), add, and write back.
    RequestBucket.objects.bulk_create(
        [RequestBucket(minute=m, operation=op, method=me) for (m, op, me) in keys],
        ignore_conflicts=True,
    )
    lookup = Q()
    for minute, operation, method in keys:
        lookup |= Q(minute=minute, operation=operation, method=method)
    rows = list(RequestBucket.objects.select_for_update().filter(lookup).order_by("pk"))
    for row in rows:
        delta = keys[(row.minute, row.operation, row.method)]
        merge_totals(row, delta)
        row.latency_histogram = _add_histograms(row.latency_histogram, delta.latency)
        row.query_histogram = _add_histograms(row.query_histogram, delta.queries)
    RequestBucket.objects.bulk_update(
        rows,
        [
            "count", "errors", "duration_sum_ms", "duration_max_ms", "query_count_sum",
            "query_count_max", "query_time_sum_ms", "cache_hits", "cache_misses",
            "latency_histogram", "query_histogram",
        ],
    )  # fmt: skip


def _write_cache(cache: dict[tuple[str, str], int], minute: datetime) -> None:
    from monitoring.models import CacheBucket

    namespaces: dict[str, list[int]] = {}
    for (namespace, result), delta in cache.items():
        namespaces.setdefault(namespace, [0, 0])[0 if result == "hit" else 1] += delta
    if not namespaces:
        return
    CacheBucket.objects.bulk_create(
        [CacheBucket(minute=minute, namespace=ns) for ns in namespaces], ignore_conflicts=True
    )
    rows = list(
        CacheBucket.objects.select_for_update()
        .filter(minute=minute, namespace__in=namespaces)
        .order_by("pk")
    )
    for row in rows:
        hits, misses = namespaces[row.namespace]
        row.hits += hits
        row.misses += misses
    CacheBucket.objects.bulk_update(rows, ["hits", "misses"])


def _write_pool(pool: dict[tuple[int, str], _PoolMinute]) -> None:
    from monitoring.models import PoolSample

    if not pool:
        return
    fields = [
        "max_size", "size", "available", "in_use_max", "waiting_max", "usage_max_pct", "errors",
    ]  # fmt: skip
    PoolSample.objects.bulk_create(
        [
            PoolSample(minute=_dt(m), process=process_name(), alias=alias, **vars_of(s, fields))
            for (m, alias), s in pool.items()
        ],
        update_conflicts=True,
        unique_fields=["minute", "process", "alias"],
        update_fields=fields,
    )


def vars_of(obj: Any, names: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in names}


def write(batch: Batch, *, now: float | None = None) -> None:
    """Write one batch in one transaction."""
    from monitoring.models import SlowQuery, SlowRequest

    now = time.time() if now is None else now
    with transaction.atomic():
        _write_totals(batch.totals)
        _write_cache(batch.cache, _dt(minute_of(now)))
        _write_pool(batch.pool)
        SlowRequest.objects.bulk_create(
            SlowRequest(
                at=_dt(r.at),
                operation=r.operation[:200],
                method=r.method,
                route=r.route[:300],
                path=r.path[:300],
                status=r.status,
                duration_ms=r.duration_ms,
                query_count=r.query_count,
                query_time_ms=r.query_time_ms,
                user_id=r.user_id,
                bot_id=r.bot_id,
            )
            for r in batch.slow_requests
        )
        SlowQuery.objects.bulk_create(
            SlowQuery(at=_dt(at), operation=op[:200], duration_ms=ms, sql=sql)
            for at, op, ms, sql in batch.slow_queries
        )
        for alert in batch.alerts:
            alert.save()


def prune(*, now: float | None = None) -> None:
    """Delete rows older than MONITORING_RETENTION_HOURS (each a range delete on its index)."""
    from monitoring.models import (
        CacheBucket,
        PoolAlert,
        PoolSample,
        RequestBucket,
        SlowQuery,
        SlowRequest,
    )

    now = time.time() if now is None else now
    cutoff = _dt(now) - timedelta(hours=settings.MONITORING_RETENTION_HOURS)
    RequestBucket.objects.filter(minute__lt=cutoff).delete()
    CacheBucket.objects.filter(minute__lt=cutoff).delete()
    PoolSample.objects.filter(minute__lt=cutoff).delete()
    SlowRequest.objects.filter(at__lt=cutoff).delete()
    SlowQuery.objects.filter(at__lt=cutoff).delete()
    PoolAlert.objects.filter(created_at__lt=cutoff).delete()


_last_prune = 0.0


def flush(*, final: bool = False) -> bool:
    """Write what this process aggregated since the last flush; False if it was dropped."""
    global _last_prune
    batch = aggregator.take(final=final)
    try:
        write(batch)
        now = time.time()
        if now - _last_prune >= PRUNE_EVERY_SECONDS:
            prune(now=now)
            _last_prune = now
    except DatabaseError as exc:
        logger.warning("monitoring flush failed, batch dropped: %s", exc)
        return False
    return True
