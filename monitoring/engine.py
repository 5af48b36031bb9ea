"""Bot cycles observed like requests: each finished cycle (``trading.engine.signals.
cycle_finished``) becomes an operation ``bot_cycle`` in the per-minute aggregates (so the admin
monitoring page shows its count, errors and p50/p95 beside the API's operations), a Prometheus
histogram of cycle time and of queries per cycle, and a histogram of the schedule lag (how late a
cycle started after it was due), shown on the page as the operation ``bot_schedule_lag`` (its
"latency" is the lag). Connected in ``MonitoringConfig.ready``; the engine does not import this.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram

from monitoring import aggregation
from monitoring.buckets import LATENCY_BOUNDS_S, QUERY_BOUNDS

CYCLE_OPERATION = "bot_cycle"
LAG_OPERATION = "bot_schedule_lag"
LAG_BUCKETS_S = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)

CYCLE_DURATION = Histogram(
    "zerobot_bot_cycle_duration_seconds",
    "Duration of one bot cycle.",
    buckets=LATENCY_BOUNDS_S,  # the requests' buckets (monitoring.buckets)
)
CYCLE_QUERIES = Histogram(
    "zerobot_bot_cycle_queries", "SQL statements of one bot cycle.",
    buckets=QUERY_BOUNDS,
)  # fmt: skip
CYCLE_LAG = Histogram(
    "zerobot_bot_cycle_lag_seconds", "How late a cycle started after it was due.",
    buckets=LAG_BUCKETS_S,
)  # fmt: skip
CYCLES = Counter("zerobot_bot_cycles", "Bot cycles finished.", ["outcome"])


def on_cycle_finished(sender: Any, *, result: Any, lag: float, **kwargs: Any) -> None:
    outcome = "error" if result.error else ("ok" if result.ran else "skipped")
    CYCLES.labels(outcome).inc()
    CYCLE_DURATION.observe(result.seconds)
    CYCLE_QUERIES.observe(result.queries)
    CYCLE_LAG.observe(max(lag, 0.0))
    now = time.time()
    common = {
        "at": now, "method": "CYCLE", "path": "", "query_time_ms": 0.0, "user_id": None,
        "bot_id": result.bot_id, "cache_hits": 0, "cache_misses": 0,
    }  # fmt: skip
    aggregation.aggregator.record_request(
        aggregation.RequestRecord(
            operation=CYCLE_OPERATION,
            route="trading.engine.cycle",
            status=500 if result.error else 200,
            duration_ms=result.seconds * 1000,
            query_count=result.queries,
            **common,
        )
    )
    aggregation.aggregator.record_request(
        aggregation.RequestRecord(
            operation=LAG_OPERATION,
            route="trading.engine.schedule",
            status=200,
            duration_ms=max(lag, 0.0) * 1000,
            query_count=0,
            **common,
        )
    )
