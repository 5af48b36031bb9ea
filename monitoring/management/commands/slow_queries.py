"""The slowest statements: pg_stat_statements when the server has it, else the slow-query log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from monitoring.models import SlowQuery

HOW_TO_ENABLE = (
    "pg_stat_statements is not available on this server. To enable it: add\n"
    "    shared_preload_libraries = 'pg_stat_statements'\n"
    "to postgresql.conf, restart PostgreSQL, then run in this database:\n"
    "    CREATE EXTENSION IF NOT EXISTS pg_stat_statements;\n"
    "Showing the application's slow-query log (queries over SLOW_QUERY_MS) instead."
)


def pg_stat_statements_available() -> bool:
    """The extension exists in this database and its shared library is loaded."""
    if connection.vendor != "postgresql":
        return False
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
            if cursor.fetchone() is None:
                return False
            cursor.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
    except DatabaseError:  # "must be loaded via shared_preload_libraries"
        return False
    return True


def from_pg_stat_statements(limit: int, order: str) -> list[dict[str, Any]]:
    column = {"mean": "mean_exec_time", "total": "total_exec_time", "max": "max_exec_time"}[order]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT query, calls, total_exec_time, mean_exec_time, max_exec_time, rows "
            "FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            f"ORDER BY {column} DESC LIMIT %s",
            [limit],
        )
        return [
            {"sql": q, "calls": c, "total_ms": t, "mean_ms": m, "max_ms": x, "rows": r}
            for q, c, t, m, x, r in cursor.fetchall()
        ]


def from_slow_query_log(limit: int, order: str, hours: float) -> list[dict[str, Any]]:
    field = {"mean": "mean_ms", "total": "total_ms", "max": "max_ms"}[order]
    since = timezone.now() - timedelta(hours=hours)
    rows = SlowQuery.objects.by_statement(since)
    result = []
    for row in rows:
        row["total_ms"] = row["mean_ms"] * row["calls"]
        result.append(row)
    result.sort(key=lambda r: r[field], reverse=True)
    return result[:limit]


class Command(BaseCommand):
    help = (
        "List the slowest SQL statements: from pg_stat_statements when the extension is "
        "loaded (says how to enable it otherwise), else from the slow-query log the request "
        "middleware keeps (statements over SLOW_QUERY_MS, parameters not recorded)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=20)
        parser.add_argument("--order", choices=["mean", "total", "max"], default="total")
        parser.add_argument(
            "--source", choices=["auto", "pg", "log"], default="auto",
            help="auto: pg_stat_statements if available, else the log.",
        )  # fmt: skip
        parser.add_argument(
            "--hours", type=float, default=24.0, help="Slow-query log: how far back."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        limit, order, source = options["limit"], options["order"], options["source"]
        available = source != "log" and pg_stat_statements_available()
        if source == "pg" and not available:
            raise CommandError(HOW_TO_ENABLE.rsplit("\n", 1)[0])
        if available:
            self.stdout.write(self.style.MIGRATE_HEADING(f"pg_stat_statements, by {order} time"))
            for row in from_pg_stat_statements(limit, order):
                self.stdout.write(
                    f"{row['total_ms']:12.1f} ms total {row['calls']:8d} calls "
                    f"{row['mean_ms']:9.2f} ms mean {row['max_ms']:9.2f} ms max  "
                    f"{' '.join(row['sql'].split())[:300]}"
                )
            return
        if source == "auto" and connection.vendor == "postgresql":
            self.stdout.write(HOW_TO_ENABLE)
        self.stdout.write(
            self.style.MIGRATE_HEADING(
                f"Slow-query log, last {options['hours']:g} h, by {order} time"
            )
        )
        rows = from_slow_query_log(limit, order, options["hours"])
        if not rows:
            self.stdout.write("No slow query recorded.")
        for row in rows:
            self.stdout.write(
                f"{row['total_ms']:12.1f} ms total {row['calls']:8d} calls "
                f"{row['mean_ms']:9.2f} ms mean {row['max_ms']:9.2f} ms max  "
                f"[{row['operation']}] {' '.join(row['sql'].split())[:300]}"
            )
