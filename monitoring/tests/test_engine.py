"""Bot cycles in the monitoring: an operation on the admin page, Prometheus histograms."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from monitoring import aggregation, dashboard, metrics
from trading.engine.cycle import CycleResult
from trading.engine.runner import Runner
from trading.engine.signals import cycle_finished

pytestmark = pytest.mark.django_db
AT = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _send(ms: float, *, lag: float, error: str = "", queries: int = 16) -> None:
    result = CycleResult(bot_id=7, as_of=AT, ran=True, error=error, queries=queries,
                         seconds=ms / 1000)  # fmt: skip
    cycle_finished.send(sender=Runner, result=result, lag=lag)


def test_cycles_are_an_operation_with_percentiles_errors_and_schedule_lag(
    client: Client, staff_user: object
) -> None:
    for i in range(20):
        _send(10.0 + i, lag=0.5)
    _send(400.0, lag=4.0, error="market data: down")
    assert aggregation.flush(final=True)
    data = dashboard.build("1h")
    ops = {op.operation: op for op in data["operations"]}
    cycle = ops["bot_cycle"]
    assert cycle.count == 21 and cycle.errors == 1
    assert 10 <= cycle.p50 <= 30 and cycle.p95 >= cycle.p50
    lag = ops["bot_schedule_lag"]
    assert lag.count == 21 and 300 <= lag.p50 <= 1000  # lag in ms: 0.5 s
    client.force_login(staff_user)
    page = client.get("/admin/monitoring/?window=1h").content.decode()
    assert "bot_cycle" in page and "bot_schedule_lag" in page
    body, _ = metrics.exposition()
    assert b"zerobot_bot_cycle_duration_seconds_bucket" in body
    assert b"zerobot_bot_cycle_lag_seconds_bucket" in body
    assert b'zerobot_bot_cycles_total{outcome="error"}' in body
