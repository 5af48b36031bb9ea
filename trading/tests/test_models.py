"""Database-level guarantees: constraints and decimal precision (PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from trading.models import Bot, Position, Trade
from trading.tests.factories import make_bot

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _trade(bot: Bot, client_order_id: str, **extra: object) -> Trade:
    fields = {
        "owner_id": bot.owner_id, "bot": bot, "symbol": "BTC/USDT", "side": "buy",
        "quantity": Decimal("1"), "price": Decimal("100"), "executed_at": T0,
        "client_order_id": client_order_id,
    }  # fmt: skip
    fields.update(extra)
    return Trade.objects.create(**fields)


def test_capital_cannot_go_negative_even_bypassing_services() -> None:
    bot = make_bot(initial_capital=Decimal("100"))
    with pytest.raises(IntegrityError, match="bot_capital_non_negative"), transaction.atomic():
        Bot.objects.filter(pk=bot.pk).update(capital=F("capital") - Decimal("100.00000001"))
    bot.refresh_from_db()
    assert bot.capital == Decimal("100")
    # Exactly zero is allowed.
    Bot.objects.filter(pk=bot.pk).update(capital=F("capital") - Decimal("100"))
    bot.refresh_from_db()
    assert bot.capital == Decimal("0E-8")


@pytest.mark.parametrize(
    ("price", "quantity"),
    [
        (Decimal("0.000012345678"), Decimal("123456789.123456789012")),  # SHIB-like
        (Decimal("123456789012345678.123456789012"), Decimal("0.000000000001")),  # extremes
        (Decimal("60123.5"), Decimal("0.00042")),
    ],
)
def test_price_and_quantity_round_trip_with_12_places(price: Decimal, quantity: Decimal) -> None:
    bot = make_bot()
    trade = _trade(bot, "rt", price=price, quantity=quantity, fee=Decimal("0.00000001"),
                   realized_pnl=Decimal("-123456789012345678.12345678"))  # fmt: skip
    stored = Trade.objects.get(pk=trade.pk)
    assert stored.price == price
    assert stored.quantity == quantity
    assert stored.fee == Decimal("0.00000001")
    assert stored.realized_pnl == Decimal("-123456789012345678.12345678")
    assert isinstance(stored.price, Decimal)


def test_client_order_id_is_unique_per_bot_not_globally() -> None:
    bot_a, bot_b = make_bot(), make_bot()
    _trade(bot_a, "order-1")
    _trade(bot_b, "order-1")  # another bot may reuse the id
    with pytest.raises(IntegrityError, match="trade_bot_client_order_uniq"), transaction.atomic():
        _trade(bot_a, "order-1")
    assert Trade.objects.filter(client_order_id="order-1").count() == 2


def test_position_status_and_closed_at_must_agree() -> None:
    bot = make_bot()
    with (
        pytest.raises(IntegrityError, match="position_closed_at_matches_status"),
        transaction.atomic(),
    ):
        Position.objects.create(
            owner_id=bot.owner_id, bot=bot, symbol="BTC/USDT", side="long",
            quantity=Decimal("1"), entry_price=Decimal("1"), current_price=Decimal("1"),
            opened_at=T0, status="closed", closed_at=None,
        )  # fmt: skip


def test_trade_is_kept_when_its_position_is_deleted() -> None:
    bot = make_bot()
    position = Position.objects.create(
        owner_id=bot.owner_id, bot=bot, symbol="BTC/USDT", side="long", quantity=Decimal("1"),
        entry_price=Decimal("1"), current_price=Decimal("1"), opened_at=T0,
    )  # fmt: skip
    trade = _trade(bot, "x", position=position)
    position.delete()
    trade.refresh_from_db()
    assert trade.position_id is None
