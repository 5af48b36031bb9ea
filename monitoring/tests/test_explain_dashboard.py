"""explain_dashboard: reports plans of the real dashboard queries and fails on big seq scans."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test.utils import override_settings

from monitoring.management.commands.explain_dashboard import scan_report
from trading import seed

# Committed data (transaction=True), so the seed's VACUUM ANALYZE gives the planner real stats.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture
def ten_users() -> None:
    seed.seed(
        seed.Profile(users=10, bots_per_user=3, trades_per_bot=100, open_positions=10,
                     closed_positions=40, snapshots_per_bot=100, symbols=8, days=30),
    )  # fmt: skip


def test_reports_every_endpoint_with_its_indexes(ten_users: None) -> None:
    out = StringIO()
    call_command("explain_dashboard", stdout=out)
    text = out.getvalue()
    for endpoint in ["stats", "equity-curve", "positions", "trades", "performance"]:
        assert f"/api/dashboard/{endpoint}" in text
    # The demo user owns a tenth of 3,000 fills: the trades page comes from its index.
    assert "trade_owner_time_idx" in text
    assert "No sequential scan of a big table." in text


def test_exits_non_zero_on_a_sequential_scan_of_a_big_table(ten_users: None) -> None:
    # 30 bots: PostgreSQL rightly reads the bots table whole. Call every table "big" to see it fail.
    err = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("explain_dashboard", "--big-table-rows", "1", stdout=StringIO(), stderr=err)
    assert exit_info.value.code == 1
    assert "sequential scan of trading_bot" in err.getvalue()


def test_a_cached_dashboard_body_does_not_hide_the_statements(ten_users: None) -> None:
    with override_settings(DASHBOARD_CACHE_SECONDS=30):
        call_command("explain_dashboard", stdout=StringIO())  # fills the response cache
        out = StringIO()
        call_command("explain_dashboard", stdout=out)
    assert "(0 SELECTs)" not in out.getvalue()
    assert "trade_owner_time_idx" in out.getvalue()


def test_a_sequential_scan_that_never_ran_is_listed_but_does_not_fail() -> None:
    never = {"Node Type": "Seq Scan", "Relation Name": "trading_accountequitysnapshot",
             "Actual Loops": 0}  # fmt: skip
    ran = {**never, "Actual Loops": 1}
    sizes = {"trading_accountequitysnapshot": 200_000.0}
    scans, failures = scan_report([never], sizes, 10_000)
    assert scans == ["Seq Scan trading_accountequitysnapshot (~200000 rows) (never executed)"]
    assert failures == []
    assert scan_report([ran], sizes, 10_000)[1] == [
        "sequential scan of trading_accountequitysnapshot (~200000 rows)"
    ]
