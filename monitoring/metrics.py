"""Prometheus series (prometheus-client), exposed at ``/metrics``.

Under gunicorn every worker is a process with its own memory, so a scrape answered by one worker
would show only that worker's requests. With ``PROMETHEUS_MULTIPROC_DIR`` set (before the first
import of prometheus_client, i.e. in the server's environment), each process writes its values to
memory-mapped files in that directory and a scrape sums them (``MultiProcessCollector``);
gunicorn.conf.py empties the directory at start and marks exited workers dead. Without it (a single
process: runserver, tests) the default registry is used.

Label values are bounded: ``operation`` is a URL pattern name (or ``unresolved``), ``method`` one of
the HTTP methods (else ``OTHER``), ``namespace`` a cache namespace chosen in code.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from monitoring.buckets import LATENCY_BOUNDS_S, QUERY_BOUNDS

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUEST_DURATION = Histogram(
    "zerobot_request_duration_seconds",
    "Request latency, from the outermost middleware to the response.",
    ["operation", "method"],
    buckets=LATENCY_BOUNDS_S,
)
REQUESTS = Counter(
    "zerobot_requests",
    "Requests by operation, method and status.",
    ["operation", "method", "status"],
)
REQUEST_QUERIES = Histogram(
    "zerobot_request_queries",
    "Database queries per request.",
    ["operation"],
    buckets=QUERY_BOUNDS,
)
REQUEST_DB_SECONDS = Counter(
    "zerobot_request_db_seconds", "Time spent in database queries by requests.", ["operation"]
)
SLOW_QUERIES = Counter(
    "zerobot_slow_queries", "Queries slower than SLOW_QUERY_MS, by operation.", ["operation"]
)
CACHE_REQUESTS = Counter(
    "zerobot_cache_requests", "Cache reads by namespace and result.", ["namespace", "result"]
)
# Pool figures are per process; "livesum" adds up the live workers, "livemax" shows the busiest.
POOL_MAX_SIZE = Gauge(
    "zerobot_db_pool_max_size", "Pool max_size.", ["alias"], multiprocess_mode="livesum"
)
POOL_SIZE = Gauge(
    "zerobot_db_pool_size", "Connections open in the pool.", ["alias"], multiprocess_mode="livesum"
)
POOL_AVAILABLE = Gauge(
    "zerobot_db_pool_available",
    "Idle connections ready in the pool.",
    ["alias"],
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "zerobot_db_pool_waiting",
    "Callers waiting for a connection.",
    ["alias"],
    multiprocess_mode="livesum",
)
POOL_USAGE = Gauge(
    "zerobot_db_pool_usage_ratio",
    "Connections in use / max_size, in the busiest process (0-1).",
    ["alias"],
    multiprocess_mode="livemax",
)
POOL_ERRORS = Counter(
    "zerobot_db_pool_errors",
    "Connection requests that failed (timed out or errored) in the pool.",
    ["alias"],
)
POOL_ALERTS = Counter(
    "zerobot_db_pool_alerts", "Times pool usage rose above POOL_ALERT_PCT.", ["alias"]
)
# /readyz: 1 when a check passed at the last probe, per check (database, pool, cache). A failed
# cache check degrades readiness (still 200) and shows here; "livemin": any worker failing shows.
READY_CHECK = Gauge(
    "zerobot_ready_check",
    "1 if the check passed at this process's last /readyz, else 0.",
    ["check"],
    multiprocess_mode="livemin",
)


def normalize_method(method: str | None) -> str:
    return method if method in METHODS else "OTHER"


def observe_request(
    *,
    operation: str,
    method: str,
    status: int,
    duration_s: float,
    query_count: int,
    query_time_s: float,
    slow_queries: int,
) -> None:
    REQUEST_DURATION.labels(operation, method).observe(duration_s)
    REQUESTS.labels(operation, method, str(status)).inc()
    REQUEST_QUERIES.labels(operation).observe(query_count)
    if query_time_s:
        REQUEST_DB_SECONDS.labels(operation).inc(query_time_s)
    if slow_queries:
        SLOW_QUERIES.labels(operation).inc(slow_queries)


def observe_cache(namespace: str, hit: bool) -> None:
    CACHE_REQUESTS.labels(namespace, "hit" if hit else "miss").inc()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> tuple[bytes, str]:
    """The text exposition of every process's series, and its content type."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
