"""What the admin dashboard reads: per-minute aggregates and a few samples, bounded and pruned.

Nothing here is written per request. Requests are aggregated in process memory
(``monitoring.aggregation``) and a background thread writes one row per minute, operation and
method (summed over processes), the few slowest requests and queries, and pool samples every
``MONITORING_FLUSH_SECONDS``. Rows older than ``MONITORING_RETENTION_HOURS`` are deleted by the
same thread. Bounds per process: 5 slowest requests and 50 slow queries per minute, one pool sample
per minute and alias.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models


class RequestBucket(models.Model):
    """One minute of requests to one operation and method, summed over every process.

    The histograms are counts per bucket of ``aggregation.LATENCY_BOUNDS_MS`` and
    ``aggregation.QUERY_BOUNDS`` (plus one overflow bucket), enough for p50/p95/p99 estimates.
    """

    minute = models.DateTimeField()
    operation = models.CharField(max_length=200)
    method = models.CharField(max_length=10)
    count = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0, help_text="Responses with status >= 500.")
    duration_sum_ms = models.FloatField(default=0)
    duration_max_ms = models.FloatField(default=0)
    query_count_sum = models.PositiveBigIntegerField(default=0)
    query_count_max = models.PositiveIntegerField(default=0)
    query_time_sum_ms = models.FloatField(default=0)
    cache_hits = models.PositiveIntegerField(default=0)
    cache_misses = models.PositiveIntegerField(default=0)
    latency_histogram = models.JSONField(default=list)
    query_histogram = models.JSONField(default=list)

    class Meta:
        constraints = [
            # Serves the flush (find the row of a minute/operation/method to add to) and the
            # dashboard's window read (minute >= since) as a range scan; pruning too.
            models.UniqueConstraint(
                fields=["minute", "operation", "method"], name="mon_reqbucket_minute_op_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.method} {self.operation}: {self.count}"


class CacheBucket(models.Model):
    """One minute of cache reads in one namespace, summed over every process."""

    minute = models.DateTimeField()
    namespace = models.CharField(max_length=100)
    hits = models.PositiveBigIntegerField(default=0)
    misses = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            # Serves the flush, the dashboard's window read and pruning (minute first).
            models.UniqueConstraint(fields=["minute", "namespace"], name="mon_cachebucket_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.namespace}: {self.hits}/{self.misses}"


class PoolSample(models.Model):
    """One process's connection pool during one minute (the pool is per process)."""

    minute = models.DateTimeField()
    process = models.CharField(max_length=100, help_text="host:pid")
    alias = models.CharField(max_length=50)
    max_size = models.PositiveIntegerField()
    size = models.PositiveIntegerField(help_text="Open connections at the last sample.")
    available = models.PositiveIntegerField(help_text="Idle connections at the last sample.")
    in_use_max = models.PositiveIntegerField()
    waiting_max = models.PositiveIntegerField()
    usage_max_pct = models.FloatField(help_text="Highest in-use / max_size seen in the minute.")
    errors = models.PositiveIntegerField(default=0, help_text="Failed connection requests.")

    class Meta:
        constraints = [
            # Serves the flush (upsert of the current minute), the window read and pruning.
            models.UniqueConstraint(
                fields=["minute", "process", "alias"], name="mon_poolsample_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.process} {self.alias}: {self.usage_max_pct}%"


class SlowRequest(models.Model):
    """One of the five slowest requests of a minute in one process."""

    at = models.DateTimeField()
    operation = models.CharField(max_length=200)
    method = models.CharField(max_length=10)
    route = models.CharField(max_length=300, blank=True)
    path = models.CharField(max_length=300, blank=True)
    status = models.PositiveSmallIntegerField()
    duration_ms = models.FloatField()
    query_count = models.PositiveIntegerField()
    query_time_ms = models.FloatField()
    user_id = models.BigIntegerField(null=True, blank=True)
    bot_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        # The dashboard's window read and pruning: at >= since.
        indexes = [models.Index(fields=["at"], name="mon_slowrequest_at_idx")]
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.duration_ms:.1f} ms"


class SlowQueryQuerySet(models.QuerySet):
    def by_statement(self, since: datetime) -> models.QuerySet:
        """One row per SQL text since ``since``: calls, mean_ms, max_ms, last_at, operation.
        The dashboard's slow-query table and ``slow_queries``' fallback read this."""
        return (
            self.filter(at__gte=since)  # uses mon_slowquery_at_idx
            .values("sql")
            .annotate(
                calls=models.Count("id"),
                mean_ms=models.Avg("duration_ms"),
                max_ms=models.Max("duration_ms"),
                last_at=models.Max("at"),
                operation=models.Max("operation"),
            )
        )


class SlowQuery(models.Model):
    """A statement slower than ``SLOW_QUERY_MS`` (its SQL without parameters)."""

    at = models.DateTimeField()
    operation = models.CharField(max_length=200)
    duration_ms = models.FloatField()
    sql = models.TextField()

    objects = SlowQueryQuerySet.as_manager()

    class Meta:
        # The dashboard's window read, slow_queries' fallback and pruning: at >= since.
        indexes = [models.Index(fields=["at"], name="mon_slowquery_at_idx")]
        ordering = ["-at"]
        verbose_name_plural = "slow queries"

    def __str__(self) -> str:
        return f"{self.duration_ms:.1f} ms {self.sql[:80]}"


class PoolAlert(models.Model):
    """Pool usage rose above ``POOL_ALERT_PCT`` in one process (one row per episode)."""

    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    process = models.CharField(max_length=100)
    alias = models.CharField(max_length=50)
    usage_pct = models.FloatField()
    size = models.PositiveIntegerField()
    max_size = models.PositiveIntegerField()
    waiting = models.PositiveIntegerField()
    message = models.TextField()

    class Meta:
        # The dashboard's "recent alerts" and pruning: created_at >= since.
        indexes = [models.Index(fields=["created_at"], name="mon_poolalert_created_idx")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.message
