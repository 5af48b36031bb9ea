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

The order is checked as locks are taken: a lock of a higher level after one of a lower level
in one transaction raises ``LockOrderError`` (a bug to fix, never a state to retry), for
example ``positions_apply_exits`` (marks, then closes: bot locks) inside a caller's
transaction. The check knows a transaction by a no-op commit hook it leaves (Django drops the
hooks at commit and at rollback) and, under a test case's wrapping transaction, by the savepoint
of the outermost block the code opened itself. Locks taken in a savepoint that was released
before are not seen (PostgreSQL still holds them): the check catches an inversion, it does not
prove the absence of one.

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
from django.db import connection, transaction

from trading.models import Bot, Position

OWNER, BOT, POSITIONS = 1, 2, 3
_NAMES = {OWNER: "owner", BOT: "bot", POSITIONS: "positions"}


class LockOrderError(RuntimeError):
    """A lock of a higher level after one of a lower level in one transaction."""


class _Held:
    """The deepest level a transaction has locked; also its no-op commit hook (its presence
    among the connection's hooks says the transaction is still the same one)."""

    __slots__ = ("key", "level")

    def __init__(self, key: str | None, level: int) -> None:
        self.key, self.level = key, level

    def __call__(self) -> None:
        pass


def _transaction_key() -> str | None:
    """The savepoint of the outermost atomic block below a test case's wrapping ones (None in
    a real transaction: its commit hook tells it apart)."""
    blocks = connection.atomic_blocks
    depth = next((i for i, b in enumerate(blocks) if not b._from_testcase), 0)
    return connection.savepoint_ids[depth - 1] if depth > 0 else None


def enter(level: int) -> None:
    """Check and record that this transaction locks at ``level`` (one of OWNER, BOT, POSITIONS)."""
    if not connection.in_atomic_block:
        raise RuntimeError("row locks are taken inside transaction.atomic()")
    key = _transaction_key()
    held: _Held | None = getattr(connection, "_zerobot_locks", None)
    same = (
        held is not None
        and held.key == key
        and any(hook[1] is held for hook in connection.run_on_commit)
    )
    if same:
        assert held is not None
        if level < held.level:
            raise LockOrderError(
                f"{_NAMES[level]} locked after {_NAMES[held.level]} in one transaction "
                "(trading.locks: owner -> bot -> positions)"
            )
        held.level = level
        return
    held = _Held(key, level)
    connection._zerobot_locks = held  # type: ignore[attr-defined]
    transaction.on_commit(held)


def lock_owner(owner_id: int) -> None:
    """Level 1: the user row (serialises a user's equity snapshots and bot deletions)."""
    enter(OWNER)
    get_user_model().objects.select_for_update(no_key=True).filter(pk=owner_id).values_list(
        "pk"
    ).first()


def lock_owners_of(bot_ids: Iterable[int]) -> None:
    """Level 1 for many bots: the users owning ``bot_ids``, in primary-key order, one statement
    (a bot's owner never changes, so reading it unlocked is safe)."""
    enter(OWNER)
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
    enter(BOT)
    queryset = Bot.objects.select_for_update(no_key=True).filter(pk__in=list(bot_ids))
    if fields is not None:
        queryset = queryset.only(*fields)
    return list(queryset.order_by("pk"))


def lock_bot(bot_id: int, *, fields: Iterable[str] | None = None) -> Bot | None:
    """Level 2: one bot row, returned (None if it is gone)."""
    enter(BOT)
    queryset = Bot.objects.select_for_update(no_key=True).filter(pk=bot_id)
    if fields is not None:
        queryset = queryset.only(*fields)
    return queryset.first()


def lock_positions(queryset: Any) -> list[Position]:
    """Level 3: the positions of ``queryset``, locked in primary-key order."""
    enter(POSITIONS)
    return list(queryset.select_for_update(no_key=True, of=("self",)).order_by("pk"))


def locked_position_ids(queryset: Any) -> Any:
    """Level 3 inside one statement: a subquery of ``queryset``'s ids that locks them in pk
    order (``UPDATE ... WHERE id IN (SELECT id ... ORDER BY id FOR UPDATE)``)."""
    enter(POSITIONS)
    return queryset.order_by("pk").select_for_update(no_key=True).values("pk")


def lock_position(position_id: int) -> Position | None:
    """Level 3: one position."""
    enter(POSITIONS)
    return Position.objects.select_for_update(no_key=True).filter(pk=position_id).first()
