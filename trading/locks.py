"""The one lock order of the trading app. Every service that locks rows goes through here.

    owner (user row)  ->  bot  ->  positions (primary-key order)

A transaction may skip a level but never takes a lock of a higher level after one of a lower
level, and within a level it locks rows in ascending primary key. Two transactions that follow this
order cannot wait on each other in a cycle, so PostgreSQL never has to break a deadlock
(``deadlock detected``, which the API would answer with a 500).

Who takes what:

- ``bot_delete``: owner, then bot (and the bot's positions, in pk order, before the cascade
  deletes them in whatever order it likes).
- ``equity_snapshot_record``, ``equity_snapshots_record`` (one bot, or a batch of any owners):
  every owner in pk order (``lock_owners_of``), then every bot in pk order (``lock_bots``).
- ``position_open``, ``position_close``, ``positions_apply_exits``, ``bot_set_status`` (the
  drawdown pause): bot, then the positions it changes.
- ``positions_mark``: open positions only, in pk order, in its one UPDATE (no bot lock: it
  changes no balance).

Balances (``Bot.capital``) change only while the bot row is locked, so "cash never negative"
is a check on a locked row, not a race.

Rows are locked ``FOR NO KEY UPDATE``: it excludes the other writers as ``FOR UPDATE`` would, but
not the ``FOR KEY SHARE`` lock PostgreSQL takes on a referenced row when a row pointing at it is
inserted (a trade's owner, bot and position). With ``FOR UPDATE`` on the owner, a close inserting
a trade (key share on the owner) and a delete holding the owner waited on each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection

from trading.models import Bot, Position


def _in_transaction() -> None:
    if not connection.in_atomic_block:
        raise RuntimeError("row locks are taken inside transaction.atomic()")


def lock_owner(owner_id: int) -> None:
    """Level 1: the user row (serialises a user's equity snapshots and bot deletions)."""
    _in_transaction()
    get_user_model().objects.select_for_update(no_key=True).filter(pk=owner_id).values_list(
        "pk"
    ).first()


def lock_owners_of(bot_ids: Iterable[int]) -> None:
    """Level 1 for many bots: the users owning ``bot_ids``, in primary-key order, one statement
    (a bot's owner never changes, so reading it unlocked is safe)."""
    _in_transaction()
    owners = Bot.objects.filter(pk__in=list(bot_ids)).values("owner_id")
    list(
        get_user_model()
        .objects.select_for_update(no_key=True)
        .filter(pk__in=owners)
        .order_by("pk")
        .values_list("pk")
    )


def lock_bots(bot_ids: Iterable[int], *, fields: Iterable[str] | None = None) -> list[Bot]:
    """Level 2 for many bots: their rows in primary-key order, one statement (gone ones are
    missing from the list)."""
    _in_transaction()
    queryset = Bot.objects.select_for_update(no_key=True).filter(pk__in=list(bot_ids))
    if fields is not None:
        queryset = queryset.only(*fields)
    return list(queryset.order_by("pk"))


def lock_bot(bot_id: int, *, fields: Iterable[str] | None = None) -> Bot | None:
    """Level 2: one bot row, returned (None if it is gone)."""
    _in_transaction()
    queryset = Bot.objects.select_for_update(no_key=True).filter(pk=bot_id)
    if fields is not None:
        queryset = queryset.only(*fields)
    return queryset.first()


def lock_positions(queryset: Any) -> list[Position]:
    """Level 3: the positions of ``queryset``, locked in primary-key order."""
    _in_transaction()
    return list(queryset.select_for_update(no_key=True, of=("self",)).order_by("pk"))


def locked_position_ids(queryset: Any) -> Any:
    """Level 3 inside one statement: a subquery of ``queryset``'s ids that locks them in pk
    order (``UPDATE ... WHERE id IN (SELECT id ... ORDER BY id FOR UPDATE)``)."""
    _in_transaction()
    return queryset.order_by("pk").select_for_update(no_key=True).values("pk")


def lock_position(position_id: int) -> Position | None:
    """Level 3: one position."""
    _in_transaction()
    return Position.objects.select_for_update(no_key=True).filter(pk=position_id).first()
