"""System checks about the connection budget.

Django's pool is per process: (web workers + other pooled processes) x DB_POOL_MAX_SIZE
connections can be opened at once, plus one per one-shot command running. When that exceeds what
the server accepts (max_connections minus the reserved slots), the last requests of a burst fail
with "too many clients" instead of waiting in the pool.
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


def pool_budget() -> dict[str, int]:
    """What the processes of one deployment may open, from the settings.

    Web workers (``WEB_CONCURRENCY``) and the other long-running pooled processes
    (``DB_POOL_OTHER_PROCESSES``: bot runners, workers) each hold a pool of the configured size;
    one-shot commands (``DB_POOL_COMMAND_CONNECTIONS`` at once) open one connection each, since
    manage.py gives them no idle floor. ``floor`` is what stays open while everything idles.
    """
    connection = connections["default"]
    pool = connection.settings_dict.get("OPTIONS", {}).get("pool")
    pool = pool if isinstance(pool, dict) else {}
    max_size = int(pool.get("max_size", settings.DB_POOL_MAX_SIZE))
    min_size = int(pool.get("min_size", settings.DB_POOL_MIN_SIZE))
    web = int(getattr(settings, "WEB_CONCURRENCY", 1))
    other = int(getattr(settings, "DB_POOL_OTHER_PROCESSES", 0))
    commands = int(getattr(settings, "DB_POOL_COMMAND_CONNECTIONS", 0))
    return {
        "web_processes": web,
        "other_processes": other,
        "command_connections": commands,
        "max_size": max_size,
        "min_size": min_size,
        "peak": (web + other) * max_size + commands,
        "floor": web * min_size,
    }


@register()
def check_pool_budget(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Warn when the pools of every process of the deployment may open more connections than
    the server accepts (max_connections minus the reserved slots)."""
    connection = connections["default"]
    pool = connection.settings_dict.get("OPTIONS", {}).get("pool")
    if connection.vendor != "postgresql" or not pool:
        return []
    budget = pool_budget()
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
    if budget["peak"] <= usable:
        return []
    return [
        Warning(
            f"The connection pools may open {budget['peak']} connections "
            f"(({budget['web_processes']} web process(es) WEB_CONCURRENCY + "
            f"{budget['other_processes']} other DB_POOL_OTHER_PROCESSES) x "
            f"DB_POOL_MAX_SIZE={budget['max_size']} + {budget['command_connections']} for "
            f"commands DB_POOL_COMMAND_CONNECTIONS) but the server accepts {usable} "
            f"(max_connections={max_connections} minus {reserved} reserved).",
            hint=(
                "Lower DB_POOL_MAX_SIZE (or the process counts) so that (WEB_CONCURRENCY + "
                "DB_POOL_OTHER_PROCESSES) x DB_POOL_MAX_SIZE + DB_POOL_COMMAND_CONNECTIONS <= "
                "max_connections - reserved, raise max_connections on the server, or put "
                "PgBouncer in front (see PERFORMANCE.md, 'Connection budget')."
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
