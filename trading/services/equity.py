"""Equity: snapshots of a bot's equity, its peak and drawdown, and the owner's summed curve."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction

from trading import dataversion, events, locks
from trading.errors import InvalidInput
from trading.models import AccountEquitySnapshot, Bot, EquitySnapshot, Position
from trading.risk import RiskLimits, drawdown_pct
from trading.services._common import aware
from trading.services.rollups import equity_rollups_apply, equity_rollups_rebuild


def equity_snapshot_record(*, bot: Bot, taken_at: datetime | None = None) -> EquitySnapshot:
    """Record the bot's equity now: cash + open margin + unrealized PnL at the stored marks
    (mark first: ``positions_mark``).

    In the same transaction: the bot's all-time peak and max drawdown, the drawdown rule (an
    active bot whose equity is ``max_drawdown_pct`` or more below its peak is paused, the reason
    recorded on it), and the owner's summed curve (``AccountEquitySnapshot``): the bot's change
    since its previous snapshot is added to the account row at ``taken_at`` (created from the
    latest earlier row) and to any later rows, which is exactly "every bot's latest snapshot,
    carried forward, summed". Locks owner, then bot (``trading.locks``), so concurrent bots of
    one owner cannot miss each other.
    """
    taken_at = aware(taken_at, field="taken_at")
    with transaction.atomic(durable=True):
        locks.lock_owner(bot.owner_id)
        locked = locks.lock_bot(bot.pk)
        if locked is None:
            raise InvalidInput("This bot no longer exists.", field="bot")
        previous = EquitySnapshot.objects.for_bot(bot.pk).newest_first().first()
        if previous is not None and taken_at <= previous.taken_at:
            raise InvalidInput(
                "taken_at must be later than the bot's last snapshot "
                f"({previous.taken_at.isoformat()}).",
                field="taken_at",
            )
        totals = Position.objects.for_bot(bot.pk).open().totals()
        unrealized = totals["unrealized_pnl"]
        equity = locked.capital + totals["margin"] + unrealized
        snapshot = EquitySnapshot.objects.create(
            owner_id=bot.owner_id,
            bot=locked,
            taken_at=taken_at,
            cash=locked.capital,
            unrealized_pnl=unrealized,
            equity=equity,
        )
        if previous is None:
            delta = (equity, locked.capital, unrealized, 1)
        else:
            delta = (
                equity - previous.equity,
                locked.capital - previous.cash,
                unrealized - previous.unrealized_pnl,
                0,
            )
        _account_apply(owner_id=bot.owner_id, taken_at=taken_at, delta=delta)
        equity_rollups_apply([snapshot])
        peak = max(locked.peak_equity, equity)
        drawdown = drawdown_pct(peak=peak, equity=equity)
        changes = {"peak_equity": peak, "max_drawdown_pct": max(locked.max_drawdown_pct, drawdown)}
        limit = RiskLimits.of(locked.risk_params).max_drawdown_pct
        if locked.status == Bot.Status.ACTIVE and drawdown >= limit:
            changes.update(
                status=Bot.Status.PAUSED,
                status_reason=drawdown_reason(drawdown=drawdown, limit=limit),
            )
        Bot.objects.filter(pk=bot.pk).update(
            **changes
        )  # the snapshot's post_save moved the version
        events.publish_equity_snapshot(snapshot=snapshot)  # after commit
        if changes.get("status") == Bot.Status.PAUSED:
            locked.status, locked.status_reason = Bot.Status.PAUSED, changes["status_reason"]
            events.publish_bot_status(bot=locked)
    return snapshot


def drawdown_reason(*, drawdown: Decimal, limit: Decimal) -> str:
    return f"max_drawdown_pct: equity fell {drawdown}% below its peak (limit {limit}%)."


def _account_apply(
    *, owner_id: int, taken_at: datetime, delta: tuple[Decimal, Decimal, Decimal, int]
) -> None:
    table = AccountEquitySnapshot._meta.db_table
    d_equity, d_cash, d_unrealized, d_bots = delta
    previous = (
        f"(SELECT {{col}} FROM {table} WHERE owner_id = %s AND taken_at < %s "
        "ORDER BY taken_at DESC LIMIT 1)"
    )
    base = [previous.format(col=col) for col in ("equity", "cash", "unrealized_pnl", "bots")]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (owner_id, taken_at, equity, cash, unrealized_pnl, bots)
            VALUES (%s, %s, COALESCE({base[0]}, 0) + %s, COALESCE({base[1]}, 0) + %s,
                    COALESCE({base[2]}, 0) + %s, COALESCE({base[3]}, 0) + %s)
            ON CONFLICT (owner_id, taken_at) DO UPDATE SET
                equity = {table}.equity + EXCLUDED.equity - COALESCE({base[0]}, 0),
                cash = {table}.cash + EXCLUDED.cash - COALESCE({base[1]}, 0),
                unrealized_pnl = {table}.unrealized_pnl + EXCLUDED.unrealized_pnl
                                 - COALESCE({base[2]}, 0),
                bots = {table}.bots + EXCLUDED.bots - COALESCE({base[3]}, 0)
            """,
            [
                owner_id, taken_at,
                owner_id, taken_at, d_equity, owner_id, taken_at, d_cash,
                owner_id, taken_at, d_unrealized, owner_id, taken_at, d_bots,
                owner_id, taken_at, owner_id, taken_at, owner_id, taken_at, owner_id, taken_at,
            ],
        )  # fmt: skip
        cursor.execute(
            f"""
            UPDATE {table} SET equity = equity + %s, cash = cash + %s,
                               unrealized_pnl = unrealized_pnl + %s, bots = bots + %s
            WHERE owner_id = %s AND taken_at > %s
            """,
            [d_equity, d_cash, d_unrealized, d_bots, owner_id, taken_at],
        )


def account_equity_rebuild(*, owner_id: int) -> None:
    """Recompute a user's summed curve and its rollups from the bots' snapshots (after deleting
    a bot, repair).

    For every instant any of the user's bots has a snapshot: each bot's latest snapshot at or
    before it, summed. Costs one index probe per (instant, bot): fine as a one-off, which is why
    the per-snapshot path is incremental instead.
    """
    table = AccountEquitySnapshot._meta.db_table
    snapshots = EquitySnapshot._meta.db_table
    bots = Bot._meta.db_table
    latest = (
        f"(SELECT s.{{col}} FROM {snapshots} s WHERE s.bot_id = b.id AND s.taken_at <= t.taken_at "
        "ORDER BY s.taken_at DESC LIMIT 1)"
    )
    with transaction.atomic():
        dataversion.bump_on_commit(owner_id)  # raw SQL: no post_save
        AccountEquitySnapshot.objects.filter(owner_id=owner_id).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {table} (owner_id, taken_at, equity, cash, unrealized_pnl, bots)
                SELECT %s, x.taken_at, SUM(x.equity), SUM(x.cash), SUM(x.unrealized), COUNT(x.equity)
                FROM (
                    SELECT t.taken_at, {latest.format(col="equity")} AS equity,
                           {latest.format(col="cash")} AS cash,
                           {latest.format(col="unrealized_pnl")} AS unrealized
                    FROM (SELECT DISTINCT taken_at FROM {snapshots} WHERE owner_id = %s) t,
                         {bots} b
                    WHERE b.owner_id = %s
                ) x
                WHERE x.equity IS NOT NULL
                GROUP BY x.taken_at
                """,
                [owner_id, owner_id, owner_id],
            )
        equity_rollups_rebuild(owner_ids=[owner_id], bots=False)
