"""Equity: snapshots of a bot's equity, its peak and drawdown, and the owner's summed curve."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from trading import dataversion, events, locks
from trading.errors import InvalidInput
from trading.models import AccountEquitySnapshot, Bot, EquitySnapshot, Position
from trading.risk import RiskLimits, drawdown_pct
from trading.services._common import ZERO, aware
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
    one owner cannot miss each other. A ``taken_at`` at or before the bot's last snapshot is a
    400 (``equity_snapshots_record``, the batch, skips such a bot instead).
    """
    taken_at = aware(taken_at, field="taken_at")
    with transaction.atomic(durable=True):
        written = _snapshots_write(bot_ids=[bot.pk], taken_at=taken_at)
        if bot.pk in written.missing:
            raise InvalidInput("This bot no longer exists.", field="bot")
        if bot.pk in written.stale:
            raise InvalidInput(
                "taken_at must be later than the bot's last snapshot "
                f"({written.stale[bot.pk].isoformat()}).",
                field="taken_at",
            )
    return written.rows[0]


def equity_snapshots_record(*, bot_ids: list[int], taken_at: datetime) -> list[EquitySnapshot]:
    """Record the equity of many bots (of any owners) at one instant, in one transaction: what a
    round of the engine does. The same rules as ``equity_snapshot_record`` (same implementation),
    in a fixed number of statements whatever the bots, owners and positions, and **one account
    row per owner**: the sum of its bots' changes since their previous snapshots. A bot already
    snapshotted at or after ``taken_at`` (a retried round, a late duplicate) or gone is left out:
    nothing is recorded twice. Returns the snapshots recorded."""
    taken_at = aware(taken_at, field="taken_at")
    if not bot_ids:
        return []
    with transaction.atomic(durable=True):
        return _snapshots_write(bot_ids=bot_ids, taken_at=taken_at).rows


def drawdown_reason(*, drawdown: Decimal, limit: Decimal) -> str:
    return f"max_drawdown_pct: equity fell {drawdown}% below its peak (limit {limit}%)."


@dataclass
class _Written:
    rows: list[EquitySnapshot] = field(default_factory=list)
    missing: set[int] = field(default_factory=set)  # bots that no longer exist
    stale: dict[int, datetime] = field(default_factory=dict)  # bot -> its newer last snapshot


_SNAPSHOT_BOT_FIELDS = (
    "owner_id", "name", "capital", "peak_equity", "max_drawdown_pct", "risk_params", "status",
    "status_reason", "updated_at",
)  # fmt: skip


def _snapshots_write(*, bot_ids: list[int], taken_at: datetime) -> _Written:
    """The one implementation of both services, inside their transaction. Statements, whatever
    the number of bots, owners and positions (the second set only when a bot was recorded):

    1. owners locked (pk order), 2. bots locked (pk order), 3. open-position totals per bot
    (``position_bot_open_idx``), 4. each bot's newest snapshot (``equity_bot_time_uniq``,
    DISTINCT ON); 5. INSERT of the snapshots, 6-7. the account rows, one per owner (at
    ``taken_at``, then the later ones), 8. one UPDATE of the bots' peaks and drawdowns that also
    pauses the bots past their drawdown limit.

    Events (after commit): each snapshot, and each pause as a status change. Every event moves
    its owner's data version (``trading.dataversion``), which covers the bulk INSERT and the raw
    UPDATEs here (no ``post_save``)."""
    written = _Written()
    locks.lock_owners_of(bot_ids)
    bots = locks.lock_bots(bot_ids, fields=_SNAPSHOT_BOT_FIELDS)
    written.missing = set(bot_ids) - {bot.pk for bot in bots}
    if not bots:
        return written
    ids = [bot.pk for bot in bots]
    totals = Position.objects.filter(bot_id__in=ids).open().totals_per_bot()
    previous = {
        s.bot_id: s
        for s in EquitySnapshot.objects.filter(bot_id__in=ids)
        .order_by("bot_id", "-taken_at")
        .distinct("bot_id")
        .only("bot_id", "taken_at", "equity", "cash", "unrealized_pnl")
    }
    deltas: dict[int, list] = {}  # owner -> [equity, cash, unrealized, bots] changes
    changes: list[tuple[int, Decimal, Decimal, str]] = []  # bot, peak, max drawdown, pause reason
    paused: list[Bot] = []
    for bot in bots:
        before = previous.get(bot.pk)
        if before is not None and before.taken_at >= taken_at:
            written.stale[bot.pk] = before.taken_at
            continue
        total = totals.get(bot.pk)
        unrealized = total["unrealized_pnl"] if total else ZERO
        equity = bot.capital + (total["margin"] if total else ZERO) + unrealized
        written.rows.append(
            EquitySnapshot(
                owner_id=bot.owner_id,
                bot_id=bot.pk,
                taken_at=taken_at,
                cash=bot.capital,
                unrealized_pnl=unrealized,
                equity=equity,
            )
        )
        if before is None:
            change = (equity, bot.capital, unrealized, 1)
        else:
            change = (
                equity - before.equity, bot.capital - before.cash,
                unrealized - before.unrealized_pnl, 0,
            )  # fmt: skip
        owner = deltas.setdefault(bot.owner_id, [ZERO, ZERO, ZERO, 0])
        for i, value in enumerate(change):
            owner[i] += value
        peak = max(bot.peak_equity, equity)
        drawdown = drawdown_pct(peak=peak, equity=equity)
        limit = RiskLimits.of(bot.risk_params).max_drawdown_pct
        reason = ""
        if bot.status == Bot.Status.ACTIVE and drawdown >= limit:
            reason = drawdown_reason(drawdown=drawdown, limit=limit)
            paused.append(bot)
        changes.append((bot.pk, peak, max(bot.max_drawdown_pct, drawdown), reason))
    if not written.rows:
        return written
    EquitySnapshot.objects.bulk_create(written.rows)
    _account_apply(taken_at=taken_at, deltas=deltas)
    equity_rollups_apply(written.rows)  # the owners' account rows at taken_at are written
    now = timezone.now()
    table = Bot._meta.db_table
    with connection.cursor() as cursor:
        # The bots are locked by this transaction: their status is the one read above.
        cursor.execute(
            f"""
            UPDATE {table} AS b SET peak_equity = v.peak, max_drawdown_pct = v.drawdown,
                status = CASE WHEN v.reason <> '' THEN 'paused' ELSE b.status END,
                status_reason = CASE WHEN v.reason <> '' THEN v.reason ELSE b.status_reason END,
                updated_at = CASE WHEN v.reason <> '' THEN %s ELSE b.updated_at END
            FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::numeric[]) AS peak,
                         unnest(%s::numeric[]) AS drawdown, unnest(%s::text[]) AS reason) AS v
            WHERE b.id = v.id
            """,
            [now, *([c[i] for c in changes] for i in range(4))],
        )
    for row in written.rows:
        events.publish_equity_snapshot(snapshot=row)
    reasons = {c[0]: c[3] for c in changes}
    for bot in paused:
        bot.status, bot.status_reason, bot.updated_at = Bot.Status.PAUSED, reasons[bot.pk], now
        events.publish_bot_status(bot=bot)
    return written


def _account_apply(*, taken_at: datetime, deltas: dict[int, list]) -> None:
    """Add each owner's ``[equity, cash, unrealized, bots]`` change to its account row at
    ``taken_at`` (created from its latest earlier row) and to its later rows: two statements for
    any number of owners (``account_owner_time_uniq``)."""
    table = AccountEquitySnapshot._meta.db_table
    owners = sorted(deltas)
    columns = [[deltas[o][i] for o in owners] for i in range(4)]
    # The owner's latest row before taken_at, per column (an index probe each).
    base = {
        col: f"(SELECT p.{col} FROM {table} p WHERE p.owner_id = {{owner}} AND p.taken_at < %(t)s "
        "ORDER BY p.taken_at DESC LIMIT 1)"
        for col in ("equity", "cash", "unrealized_pnl", "bots")
    }
    new = {col: sql.format(owner="d.owner_id") for col, sql in base.items()}
    old = {col: sql.format(owner="EXCLUDED.owner_id") for col, sql in base.items()}
    deltas_sql = (
        "SELECT unnest(%(owners)s::bigint[]) AS owner_id, unnest(%(equity)s::numeric[]) AS equity,"
        " unnest(%(cash)s::numeric[]) AS cash, unnest(%(unrealized)s::numeric[]) AS unrealized,"
        " unnest(%(bots)s::integer[]) AS bots"
    )
    params = {
        "t": taken_at, "owners": owners, "equity": columns[0], "cash": columns[1],
        "unrealized": columns[2], "bots": columns[3],
    }  # fmt: skip
    with connection.cursor() as cursor:
        # A row at taken_at may exist already (another batch of the owner at the same instant):
        # it gets the change added (its new value minus the base it was built on).
        cursor.execute(
            f"""
            INSERT INTO {table} (owner_id, taken_at, equity, cash, unrealized_pnl, bots)
            SELECT d.owner_id, %(t)s, COALESCE({new["equity"]}, 0) + d.equity,
                   COALESCE({new["cash"]}, 0) + d.cash,
                   COALESCE({new["unrealized_pnl"]}, 0) + d.unrealized,
                   COALESCE({new["bots"]}, 0) + d.bots
            FROM ({deltas_sql}) AS d
            ORDER BY d.owner_id
            ON CONFLICT (owner_id, taken_at) DO UPDATE SET
                equity = {table}.equity + EXCLUDED.equity - COALESCE({old["equity"]}, 0),
                cash = {table}.cash + EXCLUDED.cash - COALESCE({old["cash"]}, 0),
                unrealized_pnl = {table}.unrealized_pnl + EXCLUDED.unrealized_pnl
                                 - COALESCE({old["unrealized_pnl"]}, 0),
                bots = {table}.bots + EXCLUDED.bots - COALESCE({old["bots"]}, 0)
            """,
            params,
        )
        cursor.execute(
            f"""
            UPDATE {table} AS a SET equity = a.equity + d.equity, cash = a.cash + d.cash,
                unrealized_pnl = a.unrealized_pnl + d.unrealized, bots = a.bots + d.bots
            FROM ({deltas_sql}) AS d
            WHERE a.owner_id = d.owner_id AND a.taken_at > %(t)s
            """,
            params,
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
