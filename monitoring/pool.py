"""Connection-pool monitoring: figures, periodic log line, >POOL_ALERT_PCT alert, drain, reset.

Django's psycopg pool is per process (``connections[alias].pool``). ``sample()`` reads a pool's
figures (``get_stats()``, which does not reset its counters; ``pop_stats()`` would), updates the
Prometheus gauges, feeds the per-minute pool sample, logs them every ``POOL_LOG_SECONDS``, and
when usage rises above ``POOL_ALERT_PCT`` logs a warning and queues a ``PoolAlert`` (one per
episode; resolved when usage falls back below 80% of the threshold). The alert row is written by
the next flush, not here: when the pool is exhausted there is no connection to write it with.

Shutdown: ``drain()`` writes the last aggregates and closes the pools, waiting for borrowed
connections to come back; gunicorn.conf.py calls it when a worker exits (gunicorn turns SIGTERM
into a graceful stop: finish the requests in flight, then exit). Other long-running processes
call ``drain_on_sigterm()``. ``reset()`` forgets a pool (after a fork, a deploy, a database
fail-over): the next query opens a new one.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass
from types import FrameType
from typing import Any

from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from monitoring import aggregation, metrics
from monitoring.aggregation import aggregator, process_name

logger = logging.getLogger("zerobot.pool")


@dataclass(frozen=True)
class PoolStats:
    alias: str
    min_size: int
    max_size: int
    size: int
    available: int
    waiting: int
    requests: int
    errors: int

    @property
    def in_use(self) -> int:
        return max(self.size - self.available, 0)

    @property
    def usage_pct(self) -> float:
        return 100.0 * self.in_use / self.max_size if self.max_size else 0.0

    @property
    def exhausted(self) -> bool:
        """Every connection it may open is open and lent out."""
        return self.size >= self.max_size and self.available == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "in_use": self.in_use,
            "usage_pct": round(self.usage_pct, 1),
            "exhausted": self.exhausted,
        }


def pools() -> dict[str, Any]:
    """The psycopg pools of this process's configured PostgreSQL aliases (created, not opened)."""
    found = {}
    for alias in connections:
        conn = connections[alias]
        if conn.vendor == "postgresql" and conn.settings_dict.get("OPTIONS", {}).get("pool"):
            found[alias] = conn.pool
    return found


def stats_of(pool: Any, alias: str) -> PoolStats:
    """Figures of one pool; a pool not opened yet (or closed) holds no connection."""
    raw = pool.get_stats()
    if pool.closed:  # psycopg counts min_size connections before they exist
        raw.update(pool_size=0, pool_available=0)
    return PoolStats(
        alias=alias,
        min_size=raw.get("pool_min", pool.min_size),
        max_size=raw.get("pool_max", pool.max_size),
        size=raw.get("pool_size", 0),
        available=raw.get("pool_available", 0),
        waiting=raw.get("requests_waiting", 0),
        requests=raw.get("requests_num", 0),
        errors=raw.get("requests_errors", 0),
    )


class PoolMonitor:
    """Per-process state: counters seen at the last sample, open alerts, last log time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self._errors_seen: dict[str, int] = {}
        self._open_alerts: dict[str, Any] = {}
        self._last_log: dict[str, float] = {}

    def sample(self, alias: str, pool: Any, *, now: float | None = None) -> PoolStats:
        now = time.time() if now is None else now
        stats = stats_of(pool, alias)
        with self._lock:
            seen = self._errors_seen.get(alias, 0)
            # Counters restart at 0 if someone calls pop_stats(): then all of them are new.
            new_errors = stats.errors - seen if stats.errors >= seen else stats.errors
            self._errors_seen[alias] = stats.errors
            log_due = now - self._last_log.get(alias, 0.0) >= settings.POOL_LOG_SECONDS
            if log_due:
                self._last_log[alias] = now
            alert_change = self._check_alert(stats, new_errors)
        metrics.POOL_MAX_SIZE.labels(alias).set(stats.max_size)
        metrics.POOL_SIZE.labels(alias).set(stats.size)
        metrics.POOL_AVAILABLE.labels(alias).set(stats.available)
        metrics.POOL_WAITING.labels(alias).set(stats.waiting)
        metrics.POOL_USAGE.labels(alias).set(stats.usage_pct / 100)
        if new_errors:
            metrics.POOL_ERRORS.labels(alias).inc(new_errors)
        aggregator.record_pool(
            at=now,
            alias=alias,
            max_size=stats.max_size,
            size=stats.size,
            available=stats.available,
            waiting=stats.waiting,
            errors=new_errors,
        )
        if log_due:
            logger.info({"event": "pool_stats", "process": process_name(), **stats.as_dict()})
        if alert_change is not None:
            self._report(alert_change, stats, new_errors)
        return stats

    def _check_alert(self, stats: PoolStats, new_errors: int) -> str | None:
        threshold = settings.POOL_ALERT_PCT
        alias = stats.alias
        if alias not in self._open_alerts:
            if stats.usage_pct > threshold or new_errors:
                from monitoring.models import PoolAlert

                self._open_alerts[alias] = PoolAlert(
                    created_at=timezone.now(),
                    process=process_name(),
                    alias=alias,
                    usage_pct=round(stats.usage_pct, 1),
                    size=stats.size,
                    max_size=stats.max_size,
                    waiting=stats.waiting,
                    message="",
                )
                return "opened"
        elif stats.usage_pct < threshold * 0.8 and not new_errors and not stats.waiting:
            return "resolved"
        return None

    def _report(self, change: str, stats: PoolStats, new_errors: int) -> None:
        with self._lock:
            alert = (
                self._open_alerts.pop(stats.alias)
                if change == "resolved"
                else self._open_alerts[stats.alias]
            )
        if change == "opened":
            alert.message = (
                f"Pool '{stats.alias}' of {alert.process}: {stats.in_use} of {stats.max_size} "
                f"connections in use ({stats.usage_pct:.0f}% > POOL_ALERT_PCT="
                f"{settings.POOL_ALERT_PCT:g}%), {stats.waiting} waiting"
                + (f", {new_errors} failed connection requests" if new_errors else "")
                + "."
            )
            metrics.POOL_ALERTS.labels(stats.alias).inc()
            logger.warning(
                {"event": "pool_alert", "process": alert.process, "message": alert.message}
                | stats.as_dict()
            )
        else:
            alert.resolved_at = timezone.now()
            logger.info(
                {"event": "pool_alert_resolved", "process": alert.process} | stats.as_dict()
            )
        aggregator.record_alert(alert)


monitor = PoolMonitor()
# Pools and connections dropped by reset(): garbage-collecting them would close sockets that a
# parent process still uses.
_abandoned: list[Any] = []


def sample_all() -> list[PoolStats]:
    """Sample every pool of this process (one not opened yet shows 0 connections)."""
    return [monitor.sample(alias, pool) for alias, pool in pools().items()]


def saturated() -> bool:
    """True when some pool of this process has no connection to spare right now."""
    for alias, pool in pools().items():
        if not getattr(pool, "closed", True) and stats_of(pool, alias).exhausted:
            return True
    return False


def drain(*, timeout: float = 10.0, reason: str = "shutdown") -> None:
    """Last flush, then close every pool (waiting up to ``timeout`` for borrowed connections)."""
    stop_background()
    try:
        sample_all()
        aggregation.flush(final=True)
    except Exception:  # the database may be what is going away
        logger.exception("last monitoring flush failed")
    for alias in list(pools()):
        conn = connections[alias]
        conn.close()
        pool = conn.pool
        was_open = not pool.closed
        pool.close(timeout=timeout)
        type(conn)._connection_pools.pop(alias, None)
        logger.info(
            {
                "event": "pool_drained",
                "alias": alias,
                "process": process_name(),
                "reason": reason,
                "was_open": was_open,
            }
        )


def reset() -> None:
    """Forget this process's pools and pool state; the next query opens a fresh pool.

    For a forked child (never use a pool inherited from the parent), and after a deploy or a
    database restart/fail-over. Connections an inherited pool holds are not closed from the
    child (that would close the parent's sockets): they are kept referenced, never used again.
    """
    for alias in list(pools()):
        conn = connections[alias]
        _abandoned.append((type(conn)._connection_pools.pop(alias, None), conn.connection))
        conn.connection = None
    monitor.reset()
    aggregator.clear()


def drain_on_sigterm() -> None:
    """Install a SIGTERM handler that drains the pools, then exits (status 143, as if killed)."""
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: FrameType | None) -> None:
        drain(reason="SIGTERM")
        if callable(previous):
            previous(signum, frame)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


# --- Background thread --------------------------------------------------------------------------
_thread_lock = threading.Lock()
_thread_pid: int | None = None
_thread: threading.Thread | None = None
_stop = threading.Event()


def _loop(interval: float) -> None:
    while not _stop.wait(interval):
        try:
            sample_all()
            if saturated():
                # Writing would wait for a connection that requests need: keep the data (the
                # in-memory state is bounded per minute) and try again next round.
                continue
            aggregation.flush()
        except Exception:
            logger.exception("monitoring background round failed")
        finally:
            connection.close()  # give this thread's connection back to the pool


def start_background() -> bool:
    """Start this process's sampler/flush thread once (after a fork too); False when disabled."""
    global _thread, _thread_pid
    interval = settings.MONITORING_FLUSH_SECONDS
    if not interval or _thread_pid == os.getpid():
        return False
    with _thread_lock:
        if _thread_pid == os.getpid():
            return False
        _thread_pid = os.getpid()
        _stop.clear()
        _thread = threading.Thread(
            target=_loop, args=(interval,), name="zerobot-monitoring", daemon=True
        )
        _thread.start()
    return True


def stop_background(timeout: float = 5.0) -> None:
    """Stop this process's thread and wait (up to ``timeout``) for its current round to end."""
    global _thread, _thread_pid
    _stop.set()
    thread, _thread, _thread_pid = _thread, None, None
    if thread is not None and thread.is_alive() and thread is not threading.current_thread():
        thread.join(timeout)
