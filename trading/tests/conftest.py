from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from trading import seed
from trading.tests.engine_fakes import market_clock, scripted  # noqa: F401 - engine fixtures


def seed_user(*, bots: int, username: str = seed.DEMO_USERNAME) -> Any:
    """A user with ``bots`` bots of realistic history, via the demo generator (fast)."""
    profile = seed.Profile(
        users=1, bots_per_user=bots, trades_per_bot=44, open_positions=6, closed_positions=18,
        snapshots_per_bot=40, symbols=6, days=10,
    )  # fmt: skip
    seed.seed(profile, seed_value=bots)
    return get_user_model().objects.get(username=username)


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def demo_user(db: Any) -> Any:
    return seed_user(bots=3)


@pytest.fixture
def demo_api(api: APIClient, demo_user: Any) -> APIClient:
    # force_authenticate: no token/session queries, so query counts are the endpoint's own.
    api.force_authenticate(demo_user)
    return api
