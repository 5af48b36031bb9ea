"""The API side of the engine: strategy and parameters validated on create/update, the engine's
fields in the bot detail, status changes taking effect at the next cycle."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from rest_framework.test import APIClient

from trading.engine import schedule
from trading.engine.cycle import cycle_run
from trading.models import Bot
from trading.tests.engine_fakes import ScriptedClient
from trading.tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def client() -> APIClient:
    api = APIClient()
    api.force_authenticate(make_user())
    return api


def _create(client: APIClient, **body: Any) -> Any:
    payload = {"name": "b", "strategy": "sma_cross", "initial_capital": "1000",
               "symbols": ["BTC/USDT"], **body}  # fmt: skip
    return client.post("/api/bots/", payload, format="json")


def test_create_fills_strategy_defaults_and_shows_engine_fields(client: APIClient) -> None:
    response = _create(client, strategy_params={"fast": 5})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["strategy_params"] == {
        "fast": 5, "slow": 30, "exponential": False, "leverage": 1, "allow_short": True,
    }  # fmt: skip
    for field in ("next_run_at", "last_cycle_at", "last_error", "cycle_count", "status_reason"):
        assert field in body
    assert body["cycle_count"] == 0 and body["last_cycle_at"] is None


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"strategy": "grid"}, "strategy", "strategy must be one of"),
        ({"strategy_params": {"fast": 50, "slow": 10}}, "strategy_params", "fast must be"),
        ({"strategy_params": {"colour": 1}}, "strategy_params", "unknown parameter"),
        ({"strategy_params": {"leverage": 0}}, "strategy_params", "leverage must be at least"),
        ({"strategy_params": "fast"}, "strategy_params", ""),
    ],
)
def test_bad_strategy_or_parameters_are_a_400_naming_them(
    client: APIClient, body: dict, field: str, message: str
) -> None:
    response = _create(client, **body)
    assert response.status_code == 400, response.content
    assert field in response.content.decode() and message in response.content.decode()


def test_patch_checks_parameters_against_the_bots_strategy(client: APIClient) -> None:
    bot = _create(client).json()
    bad = client.patch(f"/api/bots/{bot['id']}/", {"strategy_params": {"period": 7}}, format="json")
    assert bad.status_code == 400 and "period" in bad.content.decode()  # not an sma_cross param
    ok = client.patch(
        f"/api/bots/{bot['id']}/", {"strategy": "mean_reversion", "strategy_params": {"period": 7}},
        format="json",
    )  # fmt: skip
    assert ok.status_code == 200 and ok.json()["strategy_params"]["period"] == 7
    swapped = client.patch(f"/api/bots/{bot['id']}/", {"strategy": "momentum"}, format="json")
    assert swapped.json()["strategy_params"]["signal"] == 9  # the new strategy's defaults


@pytest.mark.redis
def test_start_and_pause_take_effect_at_the_next_cycle(
    client: APIClient, scripted: ScriptedClient, market_clock: datetime
) -> None:
    bot = _create(client, strategy="manual").json()
    assert not cycle_run(bot_id=bot["id"], as_of=market_clock, client=scripted).ran  # inactive
    assert client.post(f"/api/bots/{bot['id']}/start/").status_code == 200
    claims = schedule.claim(runner="t", limit=10, lease_seconds=30, interval=60)
    assert [c.bot_id for c in claims] == [bot["id"]]  # due at once
    result = cycle_run(bot_id=bot["id"], as_of=market_clock, client=scripted)
    schedule.complete(results=[(bot["id"], market_clock, result.error)], interval=60, runner="t")
    detail = client.get(f"/api/bots/{bot['id']}/").json()
    assert result.ran and detail["cycle_count"] == 1
    assert detail["last_cycle_at"] is not None and detail["last_error"] == ""
    assert client.post(f"/api/bots/{bot['id']}/pause/").status_code == 200
    assert schedule.claim(runner="t", limit=10, lease_seconds=30, interval=60) == []
    Bot.objects.filter(pk=bot["id"]).update(lease_until=None)
    assert not cycle_run(bot_id=bot["id"], as_of=market_clock, client=scripted).ran
