"""Per-request observations that code deep in the stack reports without knowing about HTTP.

``note_cache(namespace, hit)`` is called by the cache layer (``marketdata.cache``) on every read;
the monitoring middleware opens a scope per request and reads the counts at the end. Outside a
request (commands, bot workers) the call only feeds the process-wide totals and the Prometheus
counter. All are in-process memory (or, in multiprocess mode, a memory-mapped file): no I/O on the
hot path.
"""

from __future__ import annotations

import threading
from collections import Counter
from contextvars import ContextVar

from monitoring import metrics

_request_counts: ContextVar[Counter | None] = ContextVar("zerobot_request_cache", default=None)
_process_counts: Counter = Counter()
_lock = threading.Lock()


def note_cache(namespace: str, hit: bool) -> None:
    """Record one cache read in ``namespace`` (e.g. ``"market"``, ``"indicators"``)."""
    key = (namespace, "hit" if hit else "miss")
    counts = _request_counts.get()
    if counts is not None:
        counts[key] += 1
    with _lock:
        _process_counts[key] += 1
    metrics.observe_cache(namespace, hit)


def begin_request() -> object:
    """Start counting for the current request; returns a token for ``end_request``."""
    return _request_counts.set(Counter())


def end_request(token: object) -> Counter:
    """Stop counting; returns ``{(namespace, "hit"|"miss"): n}`` for the request."""
    counts = _request_counts.get() or Counter()
    _request_counts.reset(token)  # type: ignore[arg-type]
    return counts


def process_cache_counts() -> dict[tuple[str, str], int]:
    """Totals of this process since start (for metrics)."""
    with _lock:
        return dict(_process_counts)
