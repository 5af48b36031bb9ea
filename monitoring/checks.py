"""System checks about the connection budget.

Django's pool is per process: N worker processes x DB_POOL_MAX_SIZE connections can be opened at
once. When that exceeds what the server accepts (max_connections minus the reserved slots), the
last requests of a burst fail with "too many clients" instead of waiting in the pool.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.db import DatabaseError, connections


def server_connection_limit(connection: Any) -> tuple[int, int]:
    """(max_connections, slots reserved for superusers and replication/roles) of the server."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, setting::int FROM pg_settings WHERE name IN "
            "('max_connections', 'superuser_reserved_connections', 'reserved_connections')"
        )
        values = dict(cursor.fetchall())
    reserved = values.get("superuser_reserved_connections", 0) + values.get(
        "reserved_connections", 0
    )
    return values["max_connections"], reserved


@register()
def check_pool_budget(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Warn when WEB_CONCURRENCY x DB_POOL_MAX_SIZE exceeds the server's usable connections."""
    connection = connections["default"]
    pool = connection.settings_dict.get("OPTIONS", {}).get("pool")
    if connection.vendor != "postgresql" or not pool:
        return []
    max_size = pool.get("max_size", 100) if isinstance(pool, dict) else 100
    processes = settings.WEB_CONCURRENCY  # what gunicorn.conf.py starts (same variable, default)
    try:
        max_connections, reserved = server_connection_limit(connection)
    except DatabaseError as exc:
        return [
            Warning(
                f"Could not read max_connections from PostgreSQL to check the pool budget: {exc}",
                id="monitoring.W002",
            )
        ]
    finally:
        connection.close()
    usable = max_connections - reserved
    budget = processes * max_size
    if budget <= usable:
        return []
    return [
        Warning(
            f"The connection pools may open {budget} connections ({processes} process(es) x "
            f"DB_POOL_MAX_SIZE={max_size}) but the server accepts {usable} "
            f"(max_connections={max_connections} minus {reserved} reserved).",
            hint=(
                "Lower DB_POOL_MAX_SIZE (or WEB_CONCURRENCY) so that WEB_CONCURRENCY x "
                "DB_POOL_MAX_SIZE <= max_connections - reserved, raise max_connections on the "
                "server, or put PgBouncer in front (see PERFORMANCE.md, 'Connection budget')."
            ),
            id="monitoring.W001",
        )
    ]


@register()
def check_silk_does_not_explain(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Silk's SILKY_ANALYZE_QUERIES re-runs each statement under EXPLAIN ANALYZE: an UPDATE or
    INSERT would be executed twice (a balance debited twice)."""
    if getattr(settings, "SILKY_ANALYZE_QUERIES", False):
        return [
            Error(
                "SILKY_ANALYZE_QUERIES is on: Silk would execute every recorded write twice.",
                hint="Leave SILKY_ANALYZE_QUERIES = False (zerobot/settings.py); use "
                "qs.explain(analyze=True) on a copy of the data instead.",
                id="monitoring.E001",
            )
        ]
    return []
