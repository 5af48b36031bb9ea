"""The lock order is checked as locks are taken (trading/locks.py): an inversion inside one
transaction raises LockOrderError; separate transactions, and the order itself, pass."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction

from trading import locks, services
from trading.locks import LockOrderError
from trading.models import Position
from trading.tests.factories import make_bot

pytestmark = pytest.mark.postgres


def _open(bot, cid: str = "o1") -> Position:  # type: ignore[no-untyped-def]
    return services.position_open(
        bot=bot, symbol="BTC/USDT", side="long", quantity="1", price="100", client_order_id=cid
    )


@pytest.mark.django_db
def test_the_order_passes_and_an_inversion_in_one_transaction_raises() -> None:
    bot = make_bot()
    position = _open(bot)
    with transaction.atomic():
        locks.lock_owner(bot.owner_id)
        locks.lock_bot(bot.pk)
        locks.lock_position(position.pk)
        locks.lock_position(position.pk)  # the same level again
    with pytest.raises(LockOrderError, match="bot locked after positions"):
        with transaction.atomic():
            locks.lock_position(position.pk)
            locks.lock_bot(bot.pk)
    with pytest.raises(LockOrderError, match="owner locked after bot"):
        with transaction.atomic():
            locks.lock_bot(bot.pk)
            locks.lock_owner(bot.owner_id)


@pytest.mark.django_db
def test_a_mark_then_a_delete_in_one_callers_transaction_is_refused() -> None:
    """positions_mark may run inside a caller's transaction (a savepoint); a bot or owner lock
    after it in that transaction is the inversion that deadlocks against a close."""
    bot = make_bot()
    _open(bot)
    bot = services.bot_set_status(bot=bot, status="paused")
    with pytest.raises(LockOrderError, match="owner locked after positions"):
        with transaction.atomic():
            services.positions_mark(prices={"BTC/USDT": Decimal("101")}, bot_id=bot.pk)
            services.bot_delete(bot=bot)
    position = Position.objects.get(bot=bot)  # rolled back whole: nothing deleted, not marked
    assert position.current_price == Decimal("100")
    services.positions_mark(prices={"BTC/USDT": Decimal("101")}, bot_id=bot.pk)
    services.bot_delete(bot=bot)  # each in its own transaction: the order holds
    assert not Position.objects.filter(bot_id=bot.pk).exists()


@transaction.atomic
def _positions_then_commit(position_id: int) -> None:
    locks.lock_position(position_id)


@pytest.mark.django_db(transaction=True)
def test_each_real_transaction_starts_its_own_order() -> None:
    """Real commits (no test-case transaction around): a decorated function's one Atomic
    object runs many transactions; each starts from nothing."""
    bot = make_bot()
    position = _open(bot)
    _positions_then_commit(position.pk)
    _positions_then_commit(position.pk)
    with transaction.atomic():
        locks.lock_bot(bot.pk)  # a new transaction: not "after positions"
    with pytest.raises(LockOrderError):
        with transaction.atomic():
            _positions_then_commit(position.pk)  # a savepoint of this transaction now
            locks.lock_bot(bot.pk)
