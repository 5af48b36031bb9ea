"""Pool defaults and the connection-budget check (monitoring.checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from monitoring import checks

REPO = Path(__file__).resolve().parents[2]

ONE_QUERY = """
import json
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
stats = connection.pool.get_stats()
print(json.dumps({"min": connection.pool.min_size, "max": connection.pool.max_size,
                  "size": stats.get("pool_size"), "opened": stats.get("connections_num")}))
"""


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_one_shot_command_opens_one_connection() -> None:
    """manage.py gives commands no idle floor: one query, one connection (it used to be 21)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DB_POOL_")}
    env.update(
        DJANGO_SETTINGS_MODULE="zerobot.settings",
        SECRET_KEY="test-secret-key-not-for-production-0123456789",
        DATABASE_URL="postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        MONITORING_FLUSH_SECONDS="0",
    )
    proc = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", ONE_QUERY],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures == {"min": 0, "max": 20, "size": 1, "opened": 1}


def test_the_budget_counts_every_pooled_process_and_the_commands(settings) -> None:
    settings.WEB_CONCURRENCY = 3
    settings.DB_POOL_OTHER_PROCESSES = 2
    settings.DB_POOL_COMMAND_CONNECTIONS = 4
    pool = connection.settings_dict["OPTIONS"]["pool"]
    budget = checks.pool_budget()
    assert budget["max_size"] == pool["max_size"]
    assert budget["peak"] == (3 + 2) * pool["max_size"] + 4
    assert budget["floor"] == 3 * pool["min_size"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # the check closes its connection
def test_the_defaults_fit_a_stock_server_and_too_many_processes_warn(settings) -> None:
    # The project's defaults (2 web workers + 1 runner, 20 each, 3 commands) on this server.
    settings.WEB_CONCURRENCY = 2
    settings.DB_POOL_OTHER_PROCESSES = 1
    settings.DB_POOL_COMMAND_CONNECTIONS = 3
    limit, reserved = checks.server_connection_limit(connection)
    assert checks.pool_budget()["peak"] <= limit - reserved  # 63 <= 97 on a default server
    assert checks.check_pool_budget() == []

    settings.WEB_CONCURRENCY = limit  # far more workers than the server can serve
    (warning,) = checks.check_pool_budget()
    assert warning.id == "monitoring.W001"
    assert f"{limit} web process(es)" in warning.msg
    assert "1 other DB_POOL_OTHER_PROCESSES" in warning.msg
