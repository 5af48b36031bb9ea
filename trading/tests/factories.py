"""Test data built through the services, so tests exercise the same write paths as the product."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model

from trading import services
from trading.models import Bot

_counter = itertools.count(1)


def make_user(username: str | None = None, **extra: Any) -> Any:
    User = get_user_model()
    name = username or f"user{next(_counter)}"
    return User.objects.create_user(username=name, password="pw-for-tests-123", **extra)


def make_bot(owner: Any = None, *, status: str = "active", **overrides: Any) -> Bot:
    """An active bot (only active bots open positions) whose risk rules let one position use all
    its equity; tests about a rule pass their own ``risk_params`` (and ``status``)."""
    fields: dict[str, Any] = {
        "owner": owner or make_user(),
        "name": f"bot {next(_counter)}",
        "strategy": "momentum",
        "initial_capital": Decimal("10000"),
        "symbols": ["BTC/USDT", "ETH/USDT"],
        "risk_params": {"max_position_pct": "100"},
    }
    fields.update(overrides)
    bot = services.bot_create(**fields)
    if status == "paused":
        services.bot_set_status(bot=bot, status="active")  # inactive cannot pause directly
    if status != bot.status:
        services.bot_set_status(bot=bot, status=status)
    return bot
