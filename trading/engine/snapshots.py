"""Equity snapshots of many bots of one owner at one instant, in one transaction.

``equity_snapshot_record`` (``trading.services.equity``) records one bot and one account row;
a round of the engine records every bot of an owner at the same ``as_of``, so this batch writes
their snapshots with one INSERT and the owner's summed curve (``AccountEquitySnapshot``) with one
account row: the sum of the bots' changes since their previous snapshots. Same rules as the
single-bot service: peak and max drawdown kept, and an active bot whose equity is
``max_drawdown_pct`` or more below its peak is paused with the reason recorded. Same lock order
(``trading.locks``): owner, then the bots in primary-key order.

A bot that already has a snapshot at or after ``taken_at`` (a retried round, a late duplicate) is
left out: nothing is recorded twice.

Queries, whatever the number of bots and positions: owner lock, bots lock, open-position totals
per bot, previous snapshot per bot, one INSERT of the snapshots, two for the account row, one
UPDATE of peaks and drawdowns (plus one UPDATE pausing the bots that breached, when any did).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.db.models.expressions import RawSQL
from django.utils import timezone

from trading import events, locks
from trading.models import Bot, EquitySnapshot, Position
from trading.querysets import unrealized_exact_sql
from trading.risk import RiskLimits, drawdown_pct
from trading.services.equity import _account_apply, drawdown_reason
from zerobot.lib.money import money

ZERO = Decimal(0)


def equity_snapshots_record(
    *, owner_id: int, bot_ids: list[int], taken_at: datetime
) -> list[EquitySnapshot]:
    """Snapshot ``bot_ids`` (all of ``owner_id``) at ``taken_at``; returns the rows recorded."""
    if not bot_ids:
        return []
    with transaction.atomic(durable=True):
        locks.lock_owner(owner_id)
        bots = list(
            Bot.objects.select_for_update()
            .filter(pk__in=bot_ids, owner_id=owner_id)
            .order_by("pk")
            .only("name", "capital", "peak_equity", "max_drawdown_pct", "risk_params", "status")
        )
        ids = [bot.pk for bot in bots]
        # uses position_bot_open_idx
        totals = {
            row["bot_id"]: row
            for row in Position.objects.filter(bot_id__in=ids, status="open")
            .values("bot_id")
            .annotate(
                count=Count("id"),
                margin=Sum("margin"),
                unrealized=Sum(RawSQL(unrealized_exact_sql("trading_position"), [])),  # noqa: S611
            )
        }
        # uses equity_bot_time_uniq: each bot's newest snapshot (DISTINCT ON)
        previous = {
            s.bot_id: s
            for s in EquitySnapshot.objects.filter(bot_id__in=ids)
            .order_by("bot_id", "-taken_at")
            .distinct("bot_id")
            .only("bot_id", "taken_at", "equity", "cash", "unrealized_pnl")
        }
        rows: list[EquitySnapshot] = []
        delta = [ZERO, ZERO, ZERO, 0]
        peaks: list[tuple[int, Decimal, Decimal]] = []
        paused: list[tuple[int, str]] = []
        for bot in bots:
            before = previous.get(bot.pk)
            if before is not None and before.taken_at >= taken_at:
                continue
            total = totals.get(bot.pk, {})
            unrealized = money(total.get("unrealized") or 0)
            equity = bot.capital + (total.get("margin") or ZERO) + unrealized
            rows.append(
                EquitySnapshot(
                    owner_id=owner_id,
                    bot_id=bot.pk,
                    taken_at=taken_at,
                    cash=bot.capital,
                    unrealized_pnl=unrealized,
                    equity=equity,
                )
            )
            if before is None:
                changes = (equity, bot.capital, unrealized, 1)
            else:
                changes = (
                    equity - before.equity,
                    bot.capital - before.cash,
                    unrealized - before.unrealized_pnl,
                    0,
                )
            for i, value in enumerate(changes):
                delta[i] += value
            peak = max(bot.peak_equity, equity)
            drawdown = drawdown_pct(peak=peak, equity=equity)
            peaks.append((bot.pk, peak, max(bot.max_drawdown_pct, drawdown)))
            limit = RiskLimits.of(bot.risk_params).max_drawdown_pct
            if bot.status == Bot.Status.ACTIVE and drawdown >= limit:
                paused.append((bot.pk, drawdown_reason(drawdown=drawdown, limit=limit)))
        if not rows:
            return []
        EquitySnapshot.objects.bulk_create(rows)
        _account_apply(owner_id=owner_id, taken_at=taken_at, delta=tuple(delta))  # type: ignore[arg-type]
        table = Bot._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {table} AS b SET peak_equity = v.peak, max_drawdown_pct = v.drawdown
                FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::numeric[]) AS peak,
                             unnest(%s::numeric[]) AS drawdown) AS v
                WHERE b.id = v.id
                """,
                [[p[0] for p in peaks], [p[1] for p in peaks], [p[2] for p in peaks]],
            )
            if paused:
                now = timezone.now()
                cursor.execute(
                    f"""
                    UPDATE {table} AS b SET status = 'paused', status_reason = v.reason,
                                            updated_at = %s
                    FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::text[]) AS reason) AS v
                    WHERE b.id = v.id AND b.status = 'active'
                    """,
                    [now, [p[0] for p in paused], [p[1] for p in paused]],
                )
                names = {bot.pk: bot.name for bot in bots}
                for bot_id, reason in paused:  # sent after commit
                    events.publish(owner_id, events.BOT_STATUS, {
                        "bot": bot_id, "name": names[bot_id], "status": "paused",
                        "updated_at": now, "reason": reason,
                    })  # fmt: skip
        for row in rows:
            events.publish_equity_snapshot(snapshot=row)
    return rows
