"""python manage.py explain_dashboard [--user demo] [--big-table-rows 10000]

Requests every dashboard endpoint in-process, captures the SQL each one really runs (with
``connection.execute_wrapper``, whatever code issues it), and runs ``EXPLAIN (ANALYZE, BUFFERS)``
on each SELECT with its parameters. Reports the indexes each statement uses and its execution
time; exits with status 1 if any statement reads a big table (more than --big-table-rows rows)
with a sequential scan that runs (a node PostgreSQL plans but never executes, such as the
equity curve's scan fallback when the rollups answer, is listed as such and does not fail).
The per-user response cache is off while capturing: a cached body runs no statement.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test import Client
from django.test.utils import override_settings

from accounts.benchclient import token_client
from trading.dashboard import DASHBOARD_PATHS


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes, stack = [], [plan]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    return nodes


def scan_report(
    nodes: list[dict[str, Any]], sizes: dict[str, float], big: int
) -> tuple[list[str], list[str]]:
    """(the scans of an EXPLAIN ANALYZE plan's nodes, the sequential scans of a big table that
    ran). A node with no loops was never executed (its branch was cut by a one-time filter)."""
    scans, failures = [], []
    for node in nodes:
        kind = node["Node Type"]
        relation = node.get("Relation Name")
        never = " (never executed)" if node.get("Actual Loops", 1) == 0 else ""
        if "Index" in kind and node.get("Index Name"):
            scans.append(f"{kind} {node['Index Name']}{never}")
        elif kind == "Seq Scan":
            rows = sizes.get(relation, 0)
            scans.append(f"Seq Scan {relation} (~{int(rows)} rows){never}")
            if rows > big and not never:
                failures.append(f"sequential scan of {relation} (~{int(rows)} rows)")
    return scans, failures


class Command(BaseCommand):
    help = "EXPLAIN ANALYZE the dashboard's queries; fail on a sequential scan of a big table."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", default="demo", help="Whose dashboard (default demo).")
        parser.add_argument("--big-table-rows", type=int, default=10_000)
        parser.add_argument("--query", default="", help="Extra query string, e.g. period=all")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("explain_dashboard needs PostgreSQL (set DATABASE_URL).")
        _user, client = token_client(options["user"], session=False)
        sizes = self._table_sizes()
        failures: list[str] = []
        for endpoint in DASHBOARD_PATHS:
            url = f"{endpoint}?{options['query']}" if options["query"] else endpoint
            statements = self._capture(client, url)
            self.stdout.write(self.style.MIGRATE_HEADING(f"{url}  ({len(statements)} SELECTs)"))
            for number, (sql, params) in enumerate(statements, 1):
                failures += self._explain(
                    url, number, sql, params, sizes, options["big_table_rows"]
                )
        if failures:
            for failure in failures:
                self.stderr.write(self.style.ERROR(failure))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS("No sequential scan of a big table."))

    def _capture(self, client: Client, url: str) -> list[tuple[str, Any]]:
        statements: list[tuple[str, Any]] = []

        def wrapper(execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
            if not many and sql.lstrip().upper().startswith(("SELECT", "WITH")):
                statements.append((sql, params))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(wrapper), override_settings(DASHBOARD_CACHE_SECONDS=0):
            response = client.get(url)
        if response.status_code != 200:
            raise CommandError(f"{url}: HTTP {response.status_code} {response.content[:200]!r}")
        # Skip authentication (token lookup): it is not the endpoint's query.
        return [(sql, p) for sql, p in statements if "accounts_apitoken" not in sql]

    def _table_sizes(self) -> dict[str, float]:
        with connection.cursor() as cursor:
            # reltuples (ANALYZE) or n_live_tup (statistics collector), whichever knows more.
            cursor.execute(
                "SELECT c.relname, GREATEST(c.reltuples, s.n_live_tup, 0) FROM pg_class c "
                "JOIN pg_stat_user_tables s ON s.relid = c.oid"
            )
            return dict(cursor.fetchall())

    def _explain(
        self, url: str, number: int, sql: str, params: Any, sizes: dict[str, float], big: int
    ) -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
            raw = cursor.fetchone()[0]
        result = (json.loads(raw) if isinstance(raw, str) else raw)[0]
        scans, failures = scan_report(plan_nodes(result["Plan"]), sizes, big)
        failures = [f"{url} query {number}: {failure}" for failure in failures]
        self.stdout.write(
            f"  {number}. {result['Execution Time']:7.2f} ms  "
            + (", ".join(dict.fromkeys(scans)) or "no table access")
        )
        return failures
