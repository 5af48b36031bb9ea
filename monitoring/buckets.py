"""The one definition of the latency and query-count histogram buckets.

Both the Prometheus histograms (``monitoring.metrics``, in seconds) and the admin's per-minute
aggregates (``monitoring.aggregation``, in ms) count requests in these buckets, so a p95 read
from either is interpolated inside the same bucket and the two figures agree.
"""

from __future__ import annotations

# Upper bounds (inclusive) of the histogram buckets; one overflow bucket follows.
LATENCY_BOUNDS_MS = (
    0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000,
    3000, 5000, 10000,
)  # fmt: skip
LATENCY_BOUNDS_S = tuple(bound / 1000 for bound in LATENCY_BOUNDS_MS)
QUERY_BOUNDS = (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100)
