"""Live connection-pool figures and the server's connection count for this database."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.utils import timezone

from monitoring import pool
from monitoring.models import PoolSample

RECENT = timedelta(minutes=2)


def server_activity(alias: str = "default") -> dict[str, Any]:
    """pg_stat_activity for the alias's database: connections by state, and the server limit."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(state, 'unknown'), count(*), "
            "count(*) FILTER (WHERE wait_event_type = 'Lock') "
            "FROM pg_stat_activity WHERE datname = current_database() GROUP BY 1 ORDER BY 1"
        )
        rows = cursor.fetchall()
        cursor.execute(
            "SELECT current_database(), current_setting('max_connections')::int, "
            "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
        )
        database, max_connections, all_clients = cursor.fetchone()
    return {
        "database": database,
        "connections": sum(n for _, n, _ in rows),
        "by_state": {state: n for state, n, _ in rows},
        "waiting_on_locks": sum(w for _, _, w in rows),
        "server_client_connections": all_clients,
        "max_connections": max_connections,
    }


def recent_samples(since: Any) -> list[dict[str, Any]]:
    """The latest sample of each process that wrote one since ``since`` (web workers, runners)."""
    latest: dict[tuple[str, str], PoolSample] = {}
    for sample in PoolSample.objects.filter(minute__gte=since).order_by("minute"):
        latest[(sample.process, sample.alias)] = sample
    return [
        {
            "process": s.process,
            "alias": s.alias,
            "minute": s.minute.isoformat(),
            "max_size": s.max_size,
            "size": s.size,
            "available": s.available,
            "in_use": max(s.size - s.available, 0),
            "in_use_max": s.in_use_max,
            "usage_max_pct": round(s.usage_max_pct, 1),
            "waiting_max": s.waiting_max,
            "errors": s.errors,
        }
        for s in latest.values()
    ]


class Command(BaseCommand):
    help = (
        "Show connection-pool figures: the processes that recorded a sample in the last two "
        "minutes (web workers write one every MONITORING_FLUSH_SECONDS), this command's own "
        "pool, and pg_stat_activity for this database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        if connections["default"].vendor != "postgresql":
            raise CommandError("pool_status needs PostgreSQL (DATABASE_URL=postgres://...).")
        samples = recent_samples(timezone.now() - RECENT)  # opens this process's pool
        activity = server_activity()
        own = {alias: pool.stats_of(p, alias).as_dict() for alias, p in pool.pools().items()}
        if options["json"]:
            self.stdout.write(
                json.dumps({"processes": samples, "this_process": own, "server": activity})
            )
            return
        self.stdout.write(self.style.MIGRATE_HEADING("Pools of running processes (last 2 min)"))
        if not samples:
            self.stdout.write(
                "  none recorded: no web process has sampled its pool in the last 2 minutes "
                "(is MONITORING_FLUSH_SECONDS > 0 and the server running?)"
            )
        for s in samples:
            self.stdout.write(
                f"  {s['process']} [{s['alias']}] {s['minute'][11:16]}: {s['in_use']}/"
                f"{s['max_size']} in use ({s['size']} open, {s['available']} idle), peak "
                f"{s['in_use_max']} = {s['usage_max_pct']}%, {s['waiting_max']} waiting, "
                f"{s['errors']} errors"
            )
        self.stdout.write(self.style.MIGRATE_HEADING("This command's own pool"))
        for alias, st in own.items():
            self.stdout.write(
                f"  [{alias}] {st['in_use']}/{st['max_size']} in use, {st['size']} open, "
                f"{st['available']} idle, {st['waiting']} waiting, {st['errors']} errors"
            )
        if not own:
            self.stdout.write("  no pool (not PostgreSQL)")
        mine = sum(st["size"] for st in own.values())
        self.stdout.write(self.style.MIGRATE_HEADING(f"Server: database {activity['database']}"))
        states = ", ".join(f"{n} {state}" for state, n in activity["by_state"].items())
        self.stdout.write(
            f"  pg_stat_activity: {activity['connections']} connections ({states}); "
            f"{mine} of them are this command's pool; {activity['waiting_on_locks']} waiting "
            f"on locks"
        )
        self.stdout.write(
            f"  all databases: {activity['server_client_connections']} client connections of "
            f"max_connections={activity['max_connections']}"
        )
