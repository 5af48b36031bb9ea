"""Per-minute aggregates: merged across processes, bounded, pruned; the dashboard's figures."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from monitoring import aggregation, dashboard, pool
from monitoring.aggregation import (
    LATENCY_BOUNDS_MS,
    SLOW_QUERIES_PER_MINUTE,
    SLOW_REQUESTS_PER_MINUTE,
    Aggregator,
    RequestRecord,
)
from monitoring.models import CacheBucket, PoolSample, RequestBucket, SlowQuery, SlowRequest

pytestmark = pytest.mark.django_db


def record(at: float, ms: float, *, op: str = "bot-list", queries: int = 2, status: int = 200):
    return RequestRecord(
        at=at, operation=op, method="GET", route="api/bots/", path="/api/bots/", status=status,
        duration_ms=ms, query_count=queries, query_time_ms=ms / 4, user_id=1, bot_id=None,
        cache_hits=1, cache_misses=0,
    )  # fmt: skip


def test_percentile_interpolates_inside_the_bucket() -> None:
    bounds = (10.0, 20.0, 40.0)
    # 10 values <= 10 ms, 10 in (10, 20], nothing above.
    assert dashboard.percentile([10, 10, 0, 0], bounds, 0.5, 20.0) == pytest.approx(10.0)
    assert dashboard.percentile([10, 10, 0, 0], bounds, 0.75, 20.0) == pytest.approx(15.0)
    assert dashboard.percentile([10, 10, 0, 0], bounds, 1.0, 20.0) == pytest.approx(20.0)
    # The overflow bucket ends at the largest value seen.
    assert dashboard.percentile([0, 0, 0, 4], bounds, 1.0, 90.0) == pytest.approx(90.0)
    assert dashboard.percentile([0, 0, 0, 0], bounds, 0.5, 0.0) is None


def test_two_processes_flushing_the_same_minute_add_up() -> None:
    now = time.time()
    first, second = Aggregator(), Aggregator()
    for ms in (1.0, 4.0, 40.0):
        first.record_request(record(now, ms))
    second.record_request(record(now, 400.0, queries=12, status=503))
    aggregation.write(first.take(final=True))
    aggregation.write(second.take(final=True))

    row = RequestBucket.objects.get()
    assert (row.count, row.errors, row.query_count_sum, row.query_count_max) == (4, 1, 18, 12)
    assert row.duration_max_ms == 400.0
    assert row.duration_sum_ms == pytest.approx(445.0)
    assert sum(row.latency_histogram) == 4 == sum(row.query_histogram)
    assert row.latency_histogram[aggregation.bucket_index(LATENCY_BOUNDS_MS, 400.0)] == 1
    assert (row.cache_hits, row.cache_misses) == (4, 0)


def test_only_the_slowest_requests_of_each_minute_are_kept() -> None:
    agg = Aggregator()
    now = time.time()
    minute = aggregation.minute_of(now)
    for i in range(20):
        agg.record_request(record(minute + 1 + i * 0.1, float(i)))
    assert agg.take(now=minute + 30).slow_requests == []  # the minute is not over yet
    kept = agg.take(now=minute + 61).slow_requests
    assert sorted(r.duration_ms for r in kept) == [15.0, 16.0, 17.0, 18.0, 19.0]
    assert len(kept) == SLOW_REQUESTS_PER_MINUTE


def test_slow_queries_are_capped_per_minute() -> None:
    agg = Aggregator()
    now = time.time()
    accepted = [
        agg.record_slow_query(at=now, operation="x", duration_ms=60, sql="SELECT 1")
        for _ in range(SLOW_QUERIES_PER_MINUTE + 5)
    ]
    assert accepted.count(True) == SLOW_QUERIES_PER_MINUTE
    assert len(agg.take(final=True).slow_queries) == SLOW_QUERIES_PER_MINUTE


def test_flush_writes_everything_and_a_second_flush_adds_only_new_requests() -> None:
    now = time.time()
    aggregation.aggregator.record_request(record(now, 5.0))
    aggregation.aggregator.record_slow_query(
        at=now, operation="bot-list", duration_ms=70.0, sql="SELECT pg_sleep(%s)"
    )
    aggregation.aggregator.record_pool(
        at=now, alias="default", max_size=10, size=4, available=1, waiting=0, errors=0
    )
    assert aggregation.flush(final=True)
    aggregation.aggregator.record_request(record(now, 6.0))
    assert aggregation.flush(final=True)
    assert RequestBucket.objects.get().count == 2
    assert SlowRequest.objects.count() == 2
    assert SlowQuery.objects.get().sql == "SELECT pg_sleep(%s)"
    sample = PoolSample.objects.get()
    assert (sample.in_use_max, sample.usage_max_pct) == (3, 30.0)


def test_cache_reads_are_counted_per_namespace_from_the_process_totals() -> None:
    from monitoring.context import note_cache

    aggregation.flush(final=True)
    note_cache("market", True)
    note_cache("market", True)
    note_cache("market", False)
    note_cache("indicators", False)
    assert aggregation.flush(final=True)
    rows = {b.namespace: (b.hits, b.misses) for b in CacheBucket.objects.all()}
    assert rows == {"market": (2, 1), "indicators": (0, 1)}


def test_prune_deletes_rows_older_than_the_retention(settings) -> None:
    settings.MONITORING_RETENTION_HOURS = 2
    now = time.time()
    for at in (now - 3 * 3600, now - 60):
        aggregation.aggregator.record_request(record(at, 5.0))
        aggregation.aggregator.record_slow_query(at=at, operation="x", duration_ms=80, sql="S")
    aggregation.write(aggregation.aggregator.take(final=True))
    assert RequestBucket.objects.count() == 2
    aggregation.prune(now=now)
    assert RequestBucket.objects.count() == 1
    assert SlowQuery.objects.count() == 1
    assert SlowRequest.objects.count() == 1


def test_dashboard_figures_for_a_window() -> None:
    now = timezone.now()
    base = now.timestamp()
    for i in range(100):  # bot-list: 1..100 ms over the last 10 minutes
        aggregation.aggregator.record_request(record(base - 600 + i * 6, float(i + 1)))
    aggregation.aggregator.record_request(record(base - 2 * 3600, 999.0, op="old"))  # outside 1h
    aggregation.aggregator.record_pool(
        at=base - 120, alias="default", max_size=10, size=10, available=0, waiting=3, errors=0
    )
    aggregation.write(aggregation.aggregator.take(final=True))

    data = dashboard.build("1h", now=now)
    (ops,) = data["operations"]
    assert (ops.operation, ops.count) == ("bot-list", 100)
    assert 40 <= ops.p50 <= 60  # true median 50.5; buckets are 25-50% wide
    assert 90 <= ops.p95 <= 100 and 95 <= ops.p99 <= 100
    assert data["total"].count == 100
    assert data["pool_peak"] == 100.0 and data["pool_waiting_peak"] == 3
    assert len(data["slowest"]) == 20 and data["slowest"][0].duration_ms == 100.0
    assert '<path class="series"' in data["charts"]["latency"]
    assert data["charts"]["pool"].count('class="threshold"') == 1
    data24 = dashboard.build("24h", now=now)
    assert {o.operation for o in data24["operations"]} == {"bot-list", "old"}


def test_window_steps_cover_the_window() -> None:
    since = datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)
    steps = dashboard._steps(since, since + timedelta(hours=1), 60)
    assert steps[0] <= since and steps[-1] >= since + timedelta(minutes=59)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_background_thread_samples_the_pool_and_flushes(settings) -> None:
    from django.test import Client

    settings.MONITORING_FLUSH_SECONDS = 0.05
    assert Client().get("/healthz").status_code == 200  # the first request starts the thread
    try:
        deadline = time.monotonic() + 10
        while not (RequestBucket.objects.exists() and PoolSample.objects.exists()):
            assert time.monotonic() < deadline, "the monitoring thread wrote nothing in 10 s"
            time.sleep(0.05)
    finally:
        pool.stop_background()
    assert RequestBucket.objects.get(operation="healthz").count == 1
    assert pool.start_background() is True  # after a stop (or a fork) it starts again
    pool.stop_background()


@pytest.mark.postgres
def test_the_flush_waits_while_the_pool_is_exhausted(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import connection
    from psycopg_pool import ConnectionPool

    from monitoring import pool

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    small = ConnectionPool(kwargs=params, min_size=0, max_size=1, timeout=1, open=True)
    monkeypatch.setattr(pool, "pools", lambda: {"default": small})
    try:
        assert pool.saturated() is False
        held = small.getconn()
        assert pool.saturated() is True  # _loop skips its flush this round
        small.putconn(held)
    finally:
        small.close()


def test_chart_labels_are_escaped() -> None:
    from monitoring import charts

    svg = charts.bar_chart(
        title="<b>t</b>", rows=[("<script>x</script>", [1.0])], series_names=["p&50"]
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "p&amp;50" in svg
    line = charts.line_chart(
        title="t", x_labels=["a", "b"], series=[charts.Series('"q"', [1.0, None])]
    )
    assert 'data-series="&quot;q&quot;"' in line
    assert "chart-empty" in charts.column_chart(title="t", labels=["a"], values=[0])
