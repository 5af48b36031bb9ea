"""Running totals (``BotSymbolStats``, ``BotDailyPnl`` and its weeks, months and years in
``BotPnlRollup``): kept per fill, rebuilt from the ledger."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction

from trading import dataversion
from trading.models import Bot, BotDailyPnl, BotPnlRollup, BotSymbolStats, Position, Trade

ZERO = Decimal("0")
UNITS = tuple(BotPnlRollup.Unit.values)  # week, month, year: PostgreSQL's date_trunc units


def bucket_starts(day: date) -> list[date]:
    """The first day of ``day``'s ISO week, month and year (``date_trunc`` of each ``UNITS``)."""
    return [day - timedelta(days=day.weekday()), day.replace(day=1), day.replace(month=1, day=1)]


def _daily_upsert_sql() -> str:
    """One statement per fill: the day row and, on PostgreSQL, its week, month and year rows
    (a data-modifying CTE, so a fill costs the round trips it did before the rollups)."""
    daily = BotDailyPnl._meta.db_table
    day = f"""
        INSERT INTO {daily} (owner_id, bot_id, day, trade_count, realized_pnl, fees)
        VALUES (%s, %s, %s, 1, %s, %s)
        ON CONFLICT (bot_id, day) DO UPDATE SET
            trade_count = {daily}.trade_count + 1,
            realized_pnl = {daily}.realized_pnl + EXCLUDED.realized_pnl,
            fees = {daily}.fees + EXCLUDED.fees
    """
    if connection.vendor != "postgresql":
        return day
    rollup = BotPnlRollup._meta.db_table
    values = ", ".join(
        f"(%s, %s, '{unit}', %s::date, 1, %s::numeric, %s::numeric)" for unit in UNITS
    )
    return f"""
        WITH d AS ({day} RETURNING 1)
        INSERT INTO {rollup} (owner_id, bot_id, unit, day, trade_count, realized_pnl, fees)
        VALUES {values}
        ON CONFLICT (bot_id, unit, day) DO UPDATE SET
            trade_count = {rollup}.trade_count + 1,
            realized_pnl = {rollup}.realized_pnl + EXCLUDED.realized_pnl,
            fees = {rollup}.fees + EXCLUDED.fees
    """


def pnl_rollups_rebuild_sql(where: str = "") -> str:
    """``BotPnlRollup`` from ``BotDailyPnl`` (rows matching ``where`` on alias ``d``)."""
    selects = " UNION ALL ".join(
        f"SELECT d.owner_id, d.bot_id, '{unit}', date_trunc('{unit}', d.day::timestamp)::date, "
        f"SUM(d.trade_count), SUM(d.realized_pnl), SUM(d.fees) "
        f"FROM {BotDailyPnl._meta.db_table} d {where} GROUP BY 1, 2, 4"
        for unit in UNITS
    )
    return (
        f"INSERT INTO {BotPnlRollup._meta.db_table} "
        f"(owner_id, bot_id, unit, day, trade_count, realized_pnl, fees) {selects}"
    )


def stats_add(
    *,
    bot: Bot | int,
    symbol: str,
    day: datetime,
    fee: Decimal,
    pnl: Decimal,
    owner_id: int | None = None,
    closed_net: Decimal | None = None,
) -> None:
    """Add one fill (and, when it closed a position, that position's net PnL) to the totals.

    Two upserts (INSERT ... ON CONFLICT DO UPDATE with increments): one round trip each whatever
    the history, and safe under concurrent fills of the same bot.
    """
    bot_id = bot if isinstance(bot, int) else bot.pk
    if owner_id is None:
        owner_id = bot.owner_id  # type: ignore[union-attr]
    closed = 1 if closed_net is not None else 0
    win = 1 if closed_net is not None and closed_net > 0 else 0
    loss = 1 if closed_net is not None and closed_net < 0 else 0
    profit = closed_net if win else ZERO
    lost = -closed_net if loss else ZERO
    stats = BotSymbolStats._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {stats} (owner_id, bot_id, symbol, trade_count, closed_positions, wins,
                                 losses, realized_pnl, fees, gross_profit, gross_loss)
            VALUES (%s, %s, %s, 1, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (bot_id, symbol) DO UPDATE SET
                trade_count = {stats}.trade_count + 1,
                closed_positions = {stats}.closed_positions + EXCLUDED.closed_positions,
                wins = {stats}.wins + EXCLUDED.wins,
                losses = {stats}.losses + EXCLUDED.losses,
                realized_pnl = {stats}.realized_pnl + EXCLUDED.realized_pnl,
                fees = {stats}.fees + EXCLUDED.fees,
                gross_profit = {stats}.gross_profit + EXCLUDED.gross_profit,
                gross_loss = {stats}.gross_loss + EXCLUDED.gross_loss
            """,
            [owner_id, bot_id, symbol, closed, win, loss, pnl, fee, profit, lost],
        )
        day_utc = day.astimezone(UTC).date()
        params: list[object] = [owner_id, bot_id, day_utc, pnl, fee]
        if connection.vendor == "postgresql":
            for start in bucket_starts(day_utc):
                params += [owner_id, bot_id, start, pnl, fee]
        cursor.execute(_daily_upsert_sql(), params)


def stats_rebuild(*, bot_ids: Iterable[int] | None = None) -> None:
    """Recompute BotSymbolStats, BotDailyPnl and BotPnlRollup from trades and positions (set-based SQL).

    Used by ``seed_demo`` after bulk loading, and as a repair tool; tests check it agrees with the
    incremental updates of ``position_open``/``position_close``.
    """
    ids = None if bot_ids is None else list(bot_ids)
    stats = BotSymbolStats._meta.db_table
    daily = BotDailyPnl._meta.db_table
    trades = Trade._meta.db_table
    positions = Position._meta.db_table
    where_t = "" if ids is None else "WHERE t.bot_id IN ({})".format(",".join(["%s"] * len(ids)))
    where_p = "" if ids is None else "AND p.bot_id IN ({})".format(",".join(["%s"] * len(ids)))
    params = [] if ids is None else ids
    with transaction.atomic():
        # DELETE + INSERT ... SELECT send no post_save: move the owners' dashboard versions here.
        owners = Bot.objects.all() if ids is None else Bot.objects.filter(pk__in=ids)
        for owner_id in owners.order_by().values_list("owner_id", flat=True).distinct():
            dataversion.bump_on_commit(owner_id)
        if ids is None:
            BotSymbolStats.objects.all().delete()
            BotPnlRollup.objects.all().delete()
            BotDailyPnl.objects.all().delete()
        else:
            BotSymbolStats.objects.filter(bot_id__in=ids).delete()
            BotPnlRollup.objects.filter(bot_id__in=ids).delete()
            BotDailyPnl.objects.filter(bot_id__in=ids).delete()
        if ids == []:
            return
        day_expr = (
            "(t.executed_at AT TIME ZONE 'UTC')::date"
            if connection.vendor == "postgresql"
            else "date(t.executed_at)"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {stats} (owner_id, bot_id, symbol, trade_count, closed_positions,
                                     wins, losses, realized_pnl, fees, gross_profit, gross_loss)
                SELECT f.owner_id, f.bot_id, f.symbol, f.trade_count,
                       COALESCE(c.closed, 0), COALESCE(c.wins, 0), COALESCE(c.losses, 0),
                       f.realized_pnl, f.fees,
                       COALESCE(c.gross_profit, 0), COALESCE(c.gross_loss, 0)
                FROM (
                    SELECT t.owner_id, t.bot_id, t.symbol, COUNT(*) AS trade_count,
                           SUM(t.realized_pnl) AS realized_pnl, SUM(t.fee) AS fees
                    FROM {trades} t {where_t}
                    GROUP BY t.owner_id, t.bot_id, t.symbol
                ) f
                LEFT JOIN (
                    SELECT p.bot_id, p.symbol, COUNT(*) AS closed,
                           SUM(CASE WHEN p.realized_pnl - p.fees > 0 THEN 1 ELSE 0 END) AS wins,
                           SUM(CASE WHEN p.realized_pnl - p.fees < 0 THEN 1 ELSE 0 END) AS losses,
                           SUM(CASE WHEN p.realized_pnl - p.fees > 0
                                    THEN p.realized_pnl - p.fees ELSE 0 END) AS gross_profit,
                           SUM(CASE WHEN p.realized_pnl - p.fees < 0
                                    THEN p.fees - p.realized_pnl ELSE 0 END) AS gross_loss
                    FROM {positions} p
                    WHERE p.status = 'closed' {where_p}
                    GROUP BY p.bot_id, p.symbol
                ) c ON c.bot_id = f.bot_id AND c.symbol = f.symbol
                """,
                params + params,
            )
            cursor.execute(
                f"""
                INSERT INTO {daily} (owner_id, bot_id, day, trade_count, realized_pnl, fees)
                SELECT t.owner_id, t.bot_id, {day_expr}, COUNT(*), SUM(t.realized_pnl), SUM(t.fee)
                FROM {trades} t {where_t}
                GROUP BY t.owner_id, t.bot_id, {day_expr}
                """,
                params,
            )
            if connection.vendor == "postgresql":
                cursor.execute(pnl_rollups_rebuild_sql(where_t.replace("t.", "d.")), params * 3)


def pnl_rollups_rebuild(*, bot_ids: Iterable[int]) -> None:
    """Recompute these bots' ``BotPnlRollup`` rows from their ``BotDailyPnl`` rows (repair,
    tests; ``stats_rebuild`` recomputes both from the trades). PostgreSQL only."""
    ids = list(bot_ids)
    if not ids or connection.vendor != "postgresql":
        return
    with transaction.atomic():
        BotPnlRollup.objects.filter(bot_id__in=ids).delete()
        with connection.cursor() as cursor:
            cursor.execute(pnl_rollups_rebuild_sql("WHERE d.bot_id = ANY(%s)"), [ids] * 3)
