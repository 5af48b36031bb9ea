"""Pool monitoring: the >POOL_ALERT_PCT alert on a real pool held by the test, periodic stats,
drain on shutdown (in process and on SIGTERM), reset."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection, connections
from django.test import Client
from psycopg_pool import ConnectionPool

from monitoring import aggregation, metrics, pool
from monitoring.models import PoolAlert, PoolSample

REPO = Path(__file__).resolve().parents[2]


def _small_pool(max_size: int) -> ConnectionPool:
    """A pool on the test database with the project's connection parameters, sized for the test."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return ConnectionPool(kwargs=params, min_size=0, max_size=max_size, timeout=2, open=True)


@pytest.mark.postgres
@pytest.mark.django_db
def test_alert_fires_when_more_than_90_percent_of_a_small_pool_is_held(
    log_lines, admin_user, client: Client
) -> None:
    small = _small_pool(10)
    held = [small.getconn() for _ in range(9)]
    try:
        stats = pool.monitor.sample("small", small)
        assert (stats.in_use, stats.usage_pct) == (9, 90.0)
        assert log_lines.events("pool_alert") == []  # 90% is not more than 90%

        held.append(small.getconn())  # 10 of 10
        alerts_before = metrics.POOL_ALERTS.labels("small")._value.get()
        stats = pool.monitor.sample("small", small)
        assert stats.usage_pct == 100.0
        (warning,) = log_lines.events("pool_alert")
        assert warning["_level"] == "WARNING"
        assert warning["alias"] == "small" and warning["in_use"] == 10
        assert "10 of 10 connections in use (100% > POOL_ALERT_PCT=90%)" in warning["message"]
        assert metrics.POOL_ALERTS.labels("small")._value.get() == alerts_before + 1

        pool.monitor.sample("small", small)  # still above: the same episode, no second alert
        assert len(log_lines.events("pool_alert")) == 1
        assert aggregation.flush()
        alert = PoolAlert.objects.get()
        assert (alert.alias, alert.usage_pct, alert.max_size, alert.resolved_at) == (
            "small",
            100.0,
            10,
            None,
        )
    finally:
        for conn in held:
            small.putconn(conn)

    pool.monitor.sample("small", small)  # 0 in use: resolved
    assert len(log_lines.events("pool_alert_resolved")) == 1
    assert aggregation.flush(final=True)
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    sample = PoolSample.objects.get(alias="small")
    assert (sample.max_size, sample.in_use_max, sample.usage_max_pct) == (10, 10, 100.0)
    small.close()

    # Visible in the admin: its changelist and the dashboard.
    client.force_login(admin_user)
    assert (
        "10 of 10 connections in use" in client.get("/admin/monitoring/poolalert/").content.decode()
    )
    assert "10 of 10 connections in use" in client.get("/admin/monitoring/").content.decode()


@pytest.mark.postgres
@pytest.mark.django_db
def test_failed_connection_requests_raise_an_alert_too(log_lines) -> None:
    small = _small_pool(1)
    held = small.getconn()
    try:
        from psycopg_pool import PoolTimeout

        with pytest.raises(PoolTimeout):
            small.getconn(timeout=0.05)
        stats = pool.monitor.sample("tiny", small)
    finally:
        small.putconn(held)
        small.close()
    assert stats.errors == 1
    (warning,) = log_lines.events("pool_alert")
    assert "1 failed connection requests" in warning["message"]


@pytest.mark.postgres
@pytest.mark.django_db
def test_pool_stats_are_logged_every_pool_log_seconds(log_lines, settings) -> None:
    settings.POOL_LOG_SECONDS = 60
    small = _small_pool(4)
    try:
        pool.monitor.sample("periodic", small, now=1000.0)
        pool.monitor.sample("periodic", small, now=1030.0)
        pool.monitor.sample("periodic", small, now=1061.0)
    finally:
        small.close()
    lines = log_lines.events("pool_stats")
    assert len(lines) == 2
    assert {"size", "available", "waiting", "usage_pct", "errors", "max_size"} <= set(lines[0])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_drain_writes_the_last_figures_and_closes_the_pool_then_a_new_one_opens(
    log_lines,
) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close()  # back to the pool, as at the end of a request
    old = connection.pool
    assert not old.closed
    pool.drain(timeout=5)
    assert old.closed
    (line,) = log_lines.events("pool_drained")
    assert (line["alias"], line["was_open"]) == ("default", True)
    assert PoolSample.objects.filter(alias="default").exists()  # the last flush ran first
    with connection.cursor() as cursor:  # the next query opens a fresh pool
        cursor.execute("SELECT 1")
    assert connection.pool is not old and not connection.pool.closed


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_reset_forgets_the_pool_without_closing_it() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close()
    old = connection.pool
    pool.reset()
    assert connections["default"].pool is not old
    assert not old.closed  # a forked child must not close its parent's connections
    old.close()


SIGTERM_SCRIPT = """
import sys, time, django
django.setup()
from django.db import connection
from monitoring.pool import drain_on_sigterm
drain_on_sigterm()
with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
connection.close()
print("ready", flush=True)
time.sleep(30)
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sigterm_drains_the_pool_before_exit() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "zerobot.test_settings",
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "DB_POOL_MIN_SIZE": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_SCRIPT],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert '"event":"pool_drained"' in stderr and '"was_open":true' in stderr, stderr
