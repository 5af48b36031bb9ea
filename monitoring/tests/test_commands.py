"""pool_status and slow_queries."""

from __future__ import annotations

import json
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from monitoring import aggregation, pool
from monitoring.management.commands.slow_queries import (
    HOW_TO_ENABLE,
    pg_stat_statements_available,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_pool_status_shows_processes_own_pool_and_pg_stat_activity() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    pool.sample_all()  # what a web process's monitoring thread does
    assert aggregation.flush()

    data = json.loads(run("pool_status", "--json"))
    (sample,) = [p for p in data["processes"] if p["alias"] == "default"]
    assert sample["process"] == aggregation.process_name()
    assert sample["in_use"] >= 1  # this test's own connection
    assert data["this_process"]["default"]["max_size"] == connection.pool.max_size
    server = data["server"]
    assert server["database"] == connection.settings_dict["NAME"]
    assert server["connections"] >= 1 and server["max_connections"] > 0

    text = run("pool_status")
    assert "pg_stat_activity:" in text
    assert aggregation.process_name() in text


def _log_slow(sql: str, ms: float) -> None:
    aggregation.aggregator.record_slow_query(
        at=time.time(), operation="t_slow", duration_ms=ms, sql=sql
    )


def test_slow_queries_from_the_slow_query_log() -> None:
    _log_slow("SELECT pg_sleep(%s)", 80.0)
    _log_slow("SELECT pg_sleep(%s)", 120.0)
    _log_slow('SELECT * FROM "trading_trade" WHERE "owner_id" = %s', 60.0)
    assert aggregation.flush(final=True)
    text = run("slow_queries", "--source", "log", "--order", "max")
    lines = [line for line in text.splitlines() if "ms total" in line]
    assert len(lines) == 2
    assert "SELECT pg_sleep(%s)" in lines[0] and "2 calls" in lines[0]
    assert "120.00 ms max" in lines[0]
    assert "trading_trade" in lines[1]


def test_slow_queries_auto_says_how_to_enable_pg_stat_statements_when_missing() -> None:
    _log_slow("SELECT pg_sleep(%s)", 80.0)
    assert aggregation.flush(final=True)
    text = run("slow_queries")
    if pg_stat_statements_available():
        assert "pg_stat_statements, by total time" in text
    else:
        assert HOW_TO_ENABLE in text
        assert "shared_preload_libraries" in text
        assert "SELECT pg_sleep(%s)" in text
        with pytest.raises(CommandError, match="shared_preload_libraries"):
            run("slow_queries", "--source", "pg")
