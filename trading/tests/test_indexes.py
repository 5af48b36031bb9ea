"""Every hot query is one index range scan on its named index, chosen by PostgreSQL itself.

Data: ``seed_demo``'s generator at a realistic shape (1,000 bots of 100 users, 60k fills, 300k
snapshots: a bots table of a handful of pages would rightly be read whole), then
ANALYZE, then EXPLAIN of the ORM queries the API runs. No planner settings are forced.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import QuerySet

from monitoring.management.commands.explain_dashboard import plan_nodes
from trading import dashboard, seed
from trading.models import AccountEquitySnapshot, Bot, EquitySnapshot, Position, Trade

pytestmark = pytest.mark.postgres

SHAPE = seed.Profile(
    users=100, bots_per_user=10, trades_per_bot=60, open_positions=4, closed_positions=25,
    snapshots_per_bot=300, symbols=20,
)  # fmt: skip


@pytest.fixture(scope="module")
def seeded(django_db_setup: Any, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            pytest.fail("These tests need PostgreSQL: set DATABASE_URL.", pytrace=False)
        seed.reset()
        seed.seed(SHAPE, seed_value=7)
        user = get_user_model().objects.get(username=seed.DEMO_USERNAME)
        bot = Bot.objects.filter(owner=user).order_by("id").first()
        yield {"user": user, "bot": bot}
        seed.reset()


def plan_of(queryset: QuerySet) -> list[dict[str, Any]]:
    raw = queryset.explain(format="json")
    return plan_nodes((json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"])


QUERIES: dict[str, Callable[[dict[str, Any]], QuerySet]] = {
    "trade_owner_time_idx": lambda s: Trade.objects.for_owner(s["user"]).newest_first()[:100],
    "trade_bot_time_idx": lambda s: Trade.objects.for_bot(s["bot"].pk).newest_first()[:100],
    "trade_symbol_time_idx": lambda s: Trade.objects.for_symbol("BTC/USDT").newest_first()[:100],
    "position_owner_opened_idx": lambda s: Position.objects.for_owner(s["user"]).newest_first()[:100],
    "position_owner_open_idx": lambda s: Position.objects.for_owner(s["user"]).open().newest_first()[:100],
    "position_bot_opened_idx": lambda s: Position.objects.for_bot(s["bot"].pk).newest_first()[:100],
    "position_bot_open_idx": lambda s: Position.objects.for_bot(s["bot"].pk).open().newest_first(),
    "equity_bot_time_uniq": lambda s: EquitySnapshot.objects.for_bot(s["bot"].pk).newest_first()[:500],
    "account_owner_time_uniq": lambda s: AccountEquitySnapshot.objects.for_owner(s["user"])
    .newest_first()[:100],
    "bot_owner_created_idx": lambda s: Bot.objects.for_owner(s["user"]).newest_first(),
}  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("index_name", sorted(QUERIES))
def test_query_is_an_index_scan_on_its_index(seeded: dict[str, Any], index_name: str) -> None:
    nodes = plan_of(QUERIES[index_name](seeded))
    types = [node["Node Type"] for node in nodes]
    scans = [
        node for node in nodes
        if node["Node Type"] in ("Index Scan", "Index Only Scan") and node.get("Index Name") == index_name
    ]  # fmt: skip
    assert scans, f"{index_name} not used: plan nodes {types}"
    assert "Seq Scan" not in types, types
    assert "Sort" not in types and "Incremental Sort" not in types, types


@pytest.mark.django_db
def test_every_named_index_exists_in_the_database(seeded: dict[str, Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
        existing = {row[0] for row in cursor.fetchall()}
    assert set(QUERIES) <= existing, set(QUERIES) - existing


def _walk(plan: dict[str, Any], parent: dict[str, Any] | None = None) -> Iterator[tuple]:
    yield plan, parent
    for child in plan.get("Plans", []):
        yield from _walk(child, plan)


CURVE_STATEMENTS = {
    "rollups": dashboard.equity_curve_sql,
    "scan": dashboard.equity_curve_scan_sql,
}
FIRST_ROW_INDEX = {  # the index of the series each scope reads (dashboard._equity_series)
    "all bots": ("trading_accountequitysnapshot", "account_owner_time_uniq"),
    "one bot": ("trading_equitysnapshot", "equity_bot_time_uniq"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("scope_name", sorted(FIRST_ROW_INDEX))
@pytest.mark.parametrize("statement", sorted(CURVE_STATEMENTS))
def test_period_all_curve_finds_the_first_snapshot_with_one_index_row(
    seeded: dict[str, Any], statement: str, scope_name: str
) -> None:
    """period=all starts the curve at the series' first snapshot. That lookup must be the first
    row of the series' index (a Limit over an index scan), not an aggregate over every snapshot
    of the history: MIN(EXTRACT(EPOCH FROM taken_at)) read them all (20x slower at x100)."""
    user, bot = seeded["user"], seeded["bot"]
    scope = dashboard.Scope(owner_id=user.pk, bot_id=None if scope_name == "all bots" else bot.pk)
    end = datetime.now(UTC)
    sql, params = CURVE_STATEMENTS[statement](scope, start=None, end=end, points=500)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    table, index = FIRST_ROW_INDEX[scope_name]
    scans = [
        (node, parent) for node, parent in _walk(plan)
        if node.get("Relation Name") == table and "Scan" in node["Node Type"]
    ]  # fmt: skip
    plain_aggregates = [
        parent["Node Type"] for _node, parent in scans
        if parent is not None and parent["Node Type"] == "Aggregate" and parent["Strategy"] == "Plain"
    ]  # fmt: skip
    assert not plain_aggregates, "the first snapshot is found by aggregating the whole series"
    first_row = [
        node for node, parent in scans
        if parent is not None and parent["Node Type"] == "Limit" and node.get("Index Name") == index
    ]  # fmt: skip
    assert first_row, [(n["Node Type"], p and p["Node Type"]) for n, p in scans]
    # (the scan statement's CTEs are inlined: the same one-row probe may appear more than once)
    assert {node["Actual Rows"] for node in first_row} == {1}
