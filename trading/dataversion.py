"""A per-user data version: one Redis counter per user, bumped after every committed write of
that user's trading data. The dashboard's ETags and per-user response cache
(``trading/conditional.py``) are derived from it, so a write invalidates them at once.

Where the bumps come from (each after commit, never for a rolled-back write):

- every live event (``trading/events.py``: fills, positions opened/closed, equity snapshots,
  bot status changes, price marks): what the services, the API and the engine publish;
- ``post_save`` of ``Bot``, ``Position``, ``Trade`` and ``EquitySnapshot``, and ``post_delete``
  of ``Bot`` (connected in ``trading/apps.py``): the writes that publish nothing (bot create,
  update and delete) and any fill or snapshot written without an event. Deleting a bot bumps
  once for all it owned (no receiver on the children: their cascade stays a fast delete).

A write that bypasses both (a queryset ``.update()`` or raw SQL without an event) must call
``bump_on_commit(owner_id)`` itself, as ``positions_mark``, ``bot_set_status``, the drawdown
pause, ``stats_rebuild``, ``account_equity_rebuild`` and the engine's ``schedule.complete`` do;
one that forgets serves cached bodies and 304s until the ``DASHBOARD_CACHE_SECONDS`` bucket ends. Without Redis (or while it fails) there is no version:
``current`` answers None and the dashboard answers in full, uncached.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from zerobot.lib.redis_client import shared_redis

logger = logging.getLogger("zerobot.cache")
_OUTAGE = {"cache_outage": True}  # one line per outage and minute (zerobot.lib.logfilters)


def key_prefix() -> str:
    """Every user's version key is this prefix and the user's id."""
    return f"{settings.CACHE_KEY_PREFIX}:dv:"


def _key(owner_id: int) -> str:
    return f"{key_prefix()}{int(owner_id)}"


def current(owner_id: int) -> int | None:
    """The user's data version (0 before any write), or None when it cannot be known."""
    try:
        client = shared_redis()
        if client is None:
            return None
        return int(client.get(_key(owner_id)) or 0)
    except Exception as exc:  # Redis down or hung: no version, so nothing cached is trusted
        logger.warning("data version unavailable for user %s: %s", owner_id, exc, extra=_OUTAGE)
        return None


def bump(owner_id: int) -> None:
    """Move the user's version now (never raises: a failed bump is logged)."""
    try:
        client = shared_redis()
        if client is not None:
            client.incr(_key(owner_id))
    except Exception as exc:
        logger.warning("data version not bumped for user %s: %s", owner_id, exc, extra=_OUTAGE)


def bump_on_commit(owner_id: int, using: str = DEFAULT_DB_ALIAS) -> None:
    """Bump once the current transaction commits (at once outside one); one bump per user and
    transaction however many rows it writes."""
    connection = connections[using]
    owner_id = int(owner_id)
    if connection.in_atomic_block:
        pending = connection.__dict__.setdefault("_zb_dataversion", {})
        callback = pending.get(owner_id)
        # Still registered in this transaction (a rollback drops its callbacks, and them).
        if callback is not None and any(f is callback for _, f, _ in connection.run_on_commit):
            return

        def callback() -> None:
            pending.pop(owner_id, None)
            bump(owner_id)

        pending[owner_id] = callback
        transaction.on_commit(callback, using=using, robust=True)
    else:
        bump(owner_id)


def _on_row_saved(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
    owner_id = getattr(instance, "owner_id", None)
    if owner_id is not None:
        bump_on_commit(owner_id, using=using)


def connect_signals() -> None:
    """Called by TradingConfig.ready()."""
    from django.db.models.signals import post_delete, post_save

    from trading.models import Bot, EquitySnapshot, Position, Trade

    for model in (Bot, Position, Trade, EquitySnapshot):
        post_save.connect(_on_row_saved, sender=model, dispatch_uid=f"dataversion.{model.__name__}")
    post_delete.connect(_on_row_saved, sender=Bot, dispatch_uid="dataversion.Bot.delete")
