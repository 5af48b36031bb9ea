"""Read models of the dashboard: each function is one (or two, three) SQL statements whose cost is
bounded by the user's bots, symbols and the chosen period, never by the length of the history.

- stats: bots (a handful of rows), open positions (partial index), running totals (BotSymbolStats).
- equity curve: snapshots in the period, bucketed by the database to at most ``points`` rows.
- performance: running totals per bot/symbol, PnL per day (BotDailyPnl; weeks, months and years
  from BotPnlRollup for long periods), drawdown over the period from the equity rollups.

Functions return plain dicts/lists; money stays ``Decimal`` (rendered as exact strings). Every
statement here is built by a ``*_sql`` function that returns ``(sql, params)``
(``explain_dashboard`` EXPLAINs what the endpoints really run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Any

from django.db import connection

from trading.models import (
    ROLLUP_ORIGIN,
    ROLLUP_WIDTHS,
    AccountEquityRollup,
    AccountEquitySnapshot,
    Bot,
    BotDailyPnl,
    BotPnlRollup,
    BotSymbolStats,
    EquityRollup,
    EquitySnapshot,
    Position,
)
from trading.querysets import BotNotFound, unrealized_exact_sql
from trading.services.rollups import drawdown_ratio_sql
from zerobot.lib.money import MONEY_CONTEXT, money, quantize

ZERO = Decimal(0)
HUNDRED = Decimal(100)
BOT = Bot._meta.db_table
POSITION = Position._meta.db_table
STATS = BotSymbolStats._meta.db_table
DAILY = BotDailyPnl._meta.db_table
PNL_ROLLUP = BotPnlRollup._meta.db_table
SNAPSHOT = EquitySnapshot._meta.db_table
ACCOUNT = AccountEquitySnapshot._meta.db_table
ACCOUNT_ROLLUP = AccountEquityRollup._meta.db_table
BOT_ROLLUP = EquityRollup._meta.db_table
ORIGIN = datetime.fromisoformat(ROLLUP_ORIGIN).timestamp()  # aligns every rollup level


# The five dashboard endpoints (bench_api and explain_dashboard walk them all).
DASHBOARD_PATHS = (
    "/api/dashboard/stats",
    "/api/dashboard/equity-curve",
    "/api/dashboard/positions",
    "/api/dashboard/trades",
    "/api/dashboard/performance",
)


@dataclass(frozen=True)
class Scope:
    """Whose data: a user, optionally narrowed to one of their bots."""

    owner_id: int
    bot_id: int | None = None

    def where(self, alias: str, *, bot_column: str = "bot_id") -> tuple[str, list[Any]]:
        sql = f"{alias}.owner_id = %s"
        params: list[Any] = [self.owner_id]
        if self.bot_id is not None:
            sql += f" AND {alias}.{bot_column} = %s"
            params.append(self.bot_id)
        return sql, params


def _fetch(sql: str, params: list[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _ratio(numerator: Decimal | int, denominator: Decimal | int, places: int = 4) -> Decimal | None:
    """numerator / denominator to ``places`` decimals in the project's decimal context (a
    default 28-digit context fails to quantize a profit factor >= ~1e24)."""
    if not denominator:
        return None
    with localcontext(MONEY_CONTEXT):
        return quantize(Decimal(numerator) / Decimal(denominator), places)


def _dec(value: Any) -> Decimal:
    return ZERO if value is None else Decimal(value)


# --- Stats --------------------------------------------------------------------------------------

# The exact sum, rounded once in Python (the rule of trading.querysets).
UNREALIZED_SUM_SQL = f"SUM({unrealized_exact_sql('p')})"


def stats_sql(scope: Scope) -> tuple[str, list[Any]]:
    bots_where, bots_params = scope.where("b", bot_column="id")
    pos_where, pos_params = scope.where("p")
    stats_where, stats_params = scope.where("s")
    # One pass over the user's bots (FILTERed counts): seven scalar subqueries each read them.
    sql = f"""
        SELECT
            bt.n, bt.active, bt.paused, bt.stopped, bt.inactive, bt.cash, bt.initial,
            pos.n, pos.margin, pos.unrealized,
            st.trades, st.closed, st.wins, st.losses, st.pnl, st.fees
        FROM
            (SELECT COUNT(*) AS n,
                    COUNT(*) FILTER (WHERE b.status = 'active') AS active,
                    COUNT(*) FILTER (WHERE b.status = 'paused') AS paused,
                    COUNT(*) FILTER (WHERE b.status = 'stopped') AS stopped,
                    COUNT(*) FILTER (WHERE b.status = 'inactive') AS inactive,
                    COALESCE(SUM(b.capital), 0) AS cash,
                    COALESCE(SUM(b.initial_capital), 0) AS initial
             FROM {BOT} b WHERE {bots_where}) bt,
            (SELECT COUNT(*) AS n, COALESCE(SUM(p.margin), 0) AS margin,
                    COALESCE({UNREALIZED_SUM_SQL}, 0) AS unrealized
             FROM {POSITION} p WHERE {pos_where} AND p.status = 'open') pos,
            (SELECT COALESCE(SUM(s.trade_count), 0) AS trades,
                    COALESCE(SUM(s.closed_positions), 0) AS closed,
                    COALESCE(SUM(s.wins), 0) AS wins, COALESCE(SUM(s.losses), 0) AS losses,
                    COALESCE(SUM(s.realized_pnl), 0) AS pnl, COALESCE(SUM(s.fees), 0) AS fees
             FROM {STATS} s WHERE {stats_where}) st
    """
    return sql, bots_params + pos_params + stats_params


def stats(scope: Scope) -> dict[str, Any]:
    """One query. Balances are current; PnL, trades and win rate are all-time (running totals)."""
    sql, params = stats_sql(scope)
    (bots, active, paused, stopped, inactive, cash, initial, open_n, margin, unrealized, trades,
     closed, wins, losses, pnl, fees) = _fetch(sql, params)[0]  # fmt: skip
    if scope.bot_id is not None and not bots:
        raise BotNotFound
    cash, initial, margin = _dec(cash), _dec(initial), _dec(margin)
    unrealized = money(_dec(unrealized))  # exact sum, rounded once
    pnl, fees = _dec(pnl), _dec(fees)
    equity = cash + margin + unrealized
    return {
        "bots": {"total": bots, "active": active, "paused": paused, "stopped": stopped,
                 "inactive": inactive},
        "initial_capital": money(initial),
        "equity": money(equity),
        "cash": money(cash),
        "margin": money(margin),
        "realized_pnl": money(pnl),
        "fees": money(fees),
        "net_realized_pnl": money(pnl - fees),
        "unrealized_pnl": money(unrealized),
        "return_pct": _ratio((equity - initial) * HUNDRED, initial, 4) if initial else None,
        "open_positions": open_n,
        "trade_count": trades,
        "closed_positions": closed,
        "wins": wins,
        "losses": losses,
        "win_rate": _ratio(wins, wins + losses),
    }  # fmt: skip


# --- Equity curve -------------------------------------------------------------------------------


def _epoch(expression: str) -> str:
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {expression})"
    return f"((julianday({expression}) - 2440587.5) * 86400.0)"  # SQLite (make run without PG)


def _first_epoch(source: str, where: str) -> str:
    """Epoch seconds of the series' first snapshot. MIN of the indexed column itself, so
    PostgreSQL reads one row from the start of the (owner/bot, taken_at) index (an index-only
    scan under a Limit); MIN over ``EXTRACT(EPOCH ...)`` of the column made it read every row
    of the history (and, on that estimate, JIT-compile the statement)."""
    return _epoch(f"(SELECT MIN(e.taken_at) FROM {source} e WHERE {where})")


def _equity_series(scope: Scope) -> tuple[str, str, list[Any]]:
    """(table, condition on alias ``e``, params) of the equity series a scope reads: the summed
    curve of the user's bots (account_owner_time_uniq), or one bot's snapshots
    (equity_bot_time_uniq), always restricted to the owner."""
    if scope.bot_id is None:
        return ACCOUNT, "e.owner_id = %s", [scope.owner_id]
    return SNAPSHOT, "e.bot_id = %s AND e.owner_id = %s", [scope.bot_id, scope.owner_id]


def _rollup_series(scope: Scope) -> tuple[str, str, list[Any]]:
    """(table, condition on alias ``r``, params) of the rollups of the series a scope reads
    (accountrollup_owner_width_bucket_uniq / equityrollup_bot_width_bucket_uniq)."""
    if scope.bot_id is None:
        return ACCOUNT_ROLLUP, "r.owner_id = %s", [scope.owner_id]
    return BOT_ROLLUP, "r.bot_id = %s AND r.owner_id = %s", [scope.bot_id, scope.owner_id]


def equity_curve_sql(
    scope: Scope, *, start: datetime | None, end: datetime, points: int
) -> tuple[str, list[Any]]:
    """The equity curve in [start, end], at most ``points`` points, oldest first: one statement.

    On PostgreSQL it reads the coarsest rollup level (week, day, hour: ``trading.models.
    ROLLUP_WIDTHS``) that still has ``points`` buckets in the period, merged ``k`` at a time into
    buckets aligned on that level (so each point is the exact average of the snapshots in its
    bucket, from the rollups' sums), starting at the period's first whole bucket (``start=None``,
    period "all": the bucket of the first row). The rows read are bounded by ``points`` times
    the ratio between two levels, whatever the length of the history. A period too short for
    ``points`` hours reads the snapshots themselves (``equity_curve_scan_sql``): bounded by the
    period. Elsewhere (SQLite) always the scan.
    """
    if connection.vendor != "postgresql":
        return equity_curve_scan_sql(scope, start=start, end=end, points=points)
    source, where, params = _equity_series(scope)
    rtable, rwhere, rparams = _rollup_series(scope)
    t0 = f"COALESCE(%s, {_first_epoch(source, where)})"
    extra = "MAX(e.bots)" if scope.bot_id is None else "1"
    rextra = "MAX(r.bots)" if scope.bot_id is None else "1"
    levels = ", ".join(f"({w})" for w in ROLLUP_WIDTHS)
    start_s = None if start is None else start.timestamp()
    curve = f"""
        WITH b AS (SELECT {t0}::double precision AS t0),
             lv AS (
                SELECT x.w, x.i0, x.ie FROM (
                    SELECT l.w,
                           CASE WHEN %s::double precision IS NULL
                                THEN FLOOR((b.t0 - {ORIGIN}) / l.w)
                                ELSE CEIL((b.t0 - {ORIGIN}) / l.w) END AS i0,
                           FLOOR((%s::double precision - {ORIGIN}) / l.w) AS ie
                    FROM b, (VALUES {levels}) AS l(w)
                ) x
                WHERE x.ie - x.i0 + 1 >= %s
                ORDER BY x.w DESC LIMIT 1
             ),
             g AS (SELECT lv.w, {ORIGIN} + lv.i0 * lv.w AS t0,
                          lv.w * CEIL((lv.ie - lv.i0 + 1) / %s) AS width FROM lv),
             wr AS (SELECT b.t0, GREATEST((%s - b.t0) / %s, 1.0) AS width FROM b)
        SELECT CAST(FLOOR((EXTRACT(EPOCH FROM r.bucket) - g.t0) / g.width) AS INTEGER) AS bucket,
               ROUND(SUM(r.equity_sum) / SUM(r.n), 8) AS equity,
               ROUND(SUM(r.cash_sum) / SUM(r.n), 8) AS cash,
               ROUND(SUM(r.unrealized_sum) / SUM(r.n), 8) AS unrealized, {rextra} AS bots,
               MIN(g.t0) AS t0, MIN(g.width) AS width
        FROM g, {rtable} r
        WHERE {rwhere} AND r.width = (SELECT w FROM lv)
              AND r.bucket >= to_timestamp(g.t0) AND r.bucket <= %s
        GROUP BY 1
        UNION ALL
        SELECT CAST(FLOOR(({_epoch("e.taken_at")} - wr.t0) / wr.width) AS INTEGER) AS bucket,
               ROUND(AVG(e.equity), 8), ROUND(AVG(e.cash), 8), ROUND(AVG(e.unrealized_pnl), 8),
               {extra}, MIN(wr.t0), MIN(wr.width)
        FROM {source} e, wr
        WHERE {where} AND e.taken_at >= %s AND e.taken_at <= %s
              AND NOT EXISTS (SELECT 1 FROM lv)
        GROUP BY 1
    """
    first = start or datetime.fromtimestamp(0, tz=UTC)
    curve_params = [
        start_s, *params, start_s, end.timestamp(), points, points, end.timestamp(), points,
        *rparams, end, *params, first, end,
    ]  # fmt: skip
    return _curve_columns(scope, curve, curve_params)


def _curve_columns(scope: Scope, curve: str, params: list[Any]) -> tuple[str, list[Any]]:
    if connection.vendor == "postgresql":
        # The response's own strings, made by the database: exact decimals (8 places) and the
        # bucket start in ISO 8601 UTC. Python then builds no Decimal and no datetime per point
        # (~2 ms of 500 points: see PERFORMANCE.md).
        columns = (
            "c.bucket, c.equity::text, c.cash::text, c.unrealized::text, c.bots, c.t0, c.width, "
            "to_char(to_timestamp(c.t0 + c.bucket * c.width) AT TIME ZONE 'UTC', "
            '\'YYYY-MM-DD"T"HH24:MI:SS"Z"\')'
        )
    else:
        columns = "c.bucket, c.equity, c.cash, c.unrealized, c.bots, c.t0, c.width, NULL"
    if scope.bot_id is None:
        return f"SELECT {columns} FROM ({curve}) c ORDER BY c.bucket", params
    sql = f"""
        SELECT {columns}
        FROM {BOT} bot LEFT JOIN ({curve}) c ON TRUE
        WHERE bot.id = %s AND bot.owner_id = %s
        ORDER BY c.bucket
    """
    return sql, [*params, scope.bot_id, scope.owner_id]


def equity_curve_scan_sql(
    scope: Scope, *, start: datetime | None, end: datetime, points: int
) -> tuple[str, list[Any]]:
    """Snapshots in [start, end] averaged into ``points`` equal buckets, oldest first: the scan
    of every snapshot in the period (SQLite; periods shorter than ``points`` hours; tests).

    Summed over the user's bots: ``AccountEquitySnapshot`` (one row per instant, maintained on
    write) through account_owner_time_uniq. One bot: its snapshots through
    equity_bot_time_uniq, with the bot row as the driving table so an unknown bot is an empty
    result (404) in this same statement. ``start=None`` (period "all") begins at the first row.
    """
    source, where, params = _equity_series(scope)
    extra = "MAX(e.bots)" if scope.bot_id is None else "1"
    t0 = f"COALESCE(%s, {_first_epoch(source, where)})"
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    curve = f"""
        WITH b AS (SELECT {t0} AS t0),
             w AS (SELECT b.t0, {greatest}((%s - b.t0) / %s, 1.0) AS width FROM b)
        SELECT CAST(FLOOR(({_epoch("e.taken_at")} - w.t0) / w.width) AS INTEGER) AS bucket,
               ROUND(AVG(e.equity), 8) AS equity, ROUND(AVG(e.cash), 8) AS cash,
               ROUND(AVG(e.unrealized_pnl), 8) AS unrealized, {extra} AS bots, MIN(w.t0) AS t0, MIN(w.width) AS width
        FROM {source} e, w
        WHERE {where} AND e.taken_at >= %s AND e.taken_at <= %s
        GROUP BY bucket
    """
    first = start or datetime.fromtimestamp(0, tz=UTC)
    curve_params = [
        None if start is None else start.timestamp(), *params, end.timestamp(), points,
        *params, first, end,
    ]  # fmt: skip
    return _curve_columns(scope, curve, curve_params)


def equity_curve(
    scope: Scope, *, start: datetime | None, end: datetime, points: int
) -> list[dict[str, Any]]:
    """At most ``points`` points ``{"t", "equity", "cash", "unrealized_pnl", "bots"}``, oldest first;
    ``t`` is the start of the bucket. Buckets without a snapshot are omitted (not zero)."""
    sql, params = equity_curve_sql(scope, start=start, end=end, points=points)
    rows = _fetch(sql, params)
    if scope.bot_id is not None and not rows:
        raise BotNotFound
    if not rows or rows[0][0] is None:
        return []
    if connection.vendor == "postgresql":
        return [
            {"t": t, "equity": equity, "cash": cash, "unrealized_pnl": unrealized, "bots": bots}
            for _bucket, equity, cash, unrealized, bots, _t0, _width, t in rows
        ]
    # SQLite (make run without PostgreSQL): floats made exact decimal strings, times in Python.
    t0, width = float(rows[0][5]), float(rows[0][6])
    return [
        {"t": datetime.fromtimestamp(int(t0 + bucket * width), tz=UTC), "equity": money(equity),
         "cash": money(cash), "unrealized_pnl": money(unrealized), "bots": bots}
        for bucket, equity, cash, unrealized, bots, _t0, _width, _t in rows
    ]  # fmt: skip


# --- Performance --------------------------------------------------------------------------------


def performance_stats_sql(scope: Scope) -> tuple[str, list[Any]]:
    """Running totals per bot x symbol, and each bot's all-time max drawdown (kept on the bot by
    equity_snapshot_record). Driven by the user's bots so bots without fills still appear."""
    where, params = scope.where("b", bot_column="id")
    sql = f"""
        SELECT b.id, b.name, s.symbol, s.trade_count, s.closed_positions, s.wins, s.losses,
               s.realized_pnl, s.fees, s.gross_profit, s.gross_loss, b.max_drawdown_pct
        FROM {BOT} b LEFT JOIN {STATS} s ON s.bot_id = b.id AND s.owner_id = %s
        WHERE {where}
    """  # the owner condition lets the planner probe botstats by owner, not scan all stats
    return sql, [scope.owner_id, *params]


# PnL per day up to this many days of period (or of history, for "all"), then per ISO week
# (Monday) up to WEEKLY_MAX_DAYS, per month up to MONTHLY_MAX_DAYS, then per year: a body of at
# most ~130 rows whatever the history.
DAILY_MAX_DAYS = 92
WEEKLY_MAX_DAYS = 731
MONTHLY_MAX_DAYS = 3653


def _unit_case(first: str, today: str) -> str:
    return f"""CASE WHEN {first} IS NULL OR {today} - {first} <= {DAILY_MAX_DAYS} THEN 'day'
                    WHEN {today} - {first} <= {WEEKLY_MAX_DAYS} THEN 'week'
                    WHEN {today} - {first} <= {MONTHLY_MAX_DAYS} THEN 'month'
                    ELSE 'year' END"""


def _rollup_pnl_scope(scope: Scope) -> tuple[str, list[Any]]:
    # pnlrollup_owner_unit_day_idx, or pnlrollup_bot_unit_day_uniq with ?bot=
    if scope.bot_id is None:
        return "r.owner_id = %s", [scope.owner_id]
    return "r.bot_id = %s AND r.owner_id = %s", [scope.bot_id, scope.owner_id]


def daily_pnl_sql(scope: Scope, *, start: datetime | None) -> tuple[str, list[Any]]:
    """PnL per UTC day over the period, summed over the scope's bots, per week, month or year
    beyond ``DAILY_MAX_DAYS`` (``unit`` column; each row's day is its bucket's first day).

    On PostgreSQL a day-unit period reads the day rows of the period (dailypnl_owner_day_idx,
    or dailypnl_bot_day_uniq with ?bot=): at most ``DAILY_MAX_DAYS`` per bot. A longer one reads
    the bots' ``BotPnlRollup`` rows of that unit (at most the response's rows per bot), plus the
    day rows of a partial first bucket (a period from ``start`` inside a week, month or year).
    The bounds are scalar subqueries, so both index ranges are known before the scans start.
    Elsewhere (SQLite) ``daily_pnl_scan_sql``.
    """
    if connection.vendor != "postgresql":
        return daily_pnl_scan_sql(scope, start=start)
    where, params = scope.where("d")
    first_where, first_params = where, list(params)
    start_day = None if start is None else start.date()
    if start is not None:
        where += " AND d.day >= %s"
        params.append(start_day)
    rwhere, rparams = _rollup_pnl_scope(scope)
    today = datetime.now(UTC).date()
    sql = f"""
        WITH f AS (SELECT COALESCE(%s::date,
                                   (SELECT MIN(d.day) FROM {DAILY} d WHERE {first_where})) AS day,
                          %s::date AS today),
             u AS (SELECT {_unit_case("f.day", "f.today")} AS unit FROM f),
             e AS (SELECT u.unit,
                          CASE WHEN u.unit = 'day' THEN 'infinity'::date
                               WHEN %s::date IS NULL THEN '-infinity'::date
                               ELSE (date_trunc(u.unit, %s::timestamp)
                                     + ('1 ' || u.unit)::interval)::date END AS edge
                   FROM u)
        SELECT date_trunc((SELECT unit FROM e), d.day::timestamp)::date, SUM(d.trade_count),
               SUM(d.realized_pnl), SUM(d.fees), (SELECT unit FROM e)
        FROM {DAILY} d WHERE {where} AND d.day < (SELECT edge FROM e)
        GROUP BY 1
        UNION ALL
        SELECT r.day, SUM(r.trade_count), SUM(r.realized_pnl), SUM(r.fees), (SELECT unit FROM e)
        FROM {PNL_ROLLUP} r
        WHERE {rwhere} AND r.unit = (SELECT unit FROM e) AND r.day >= (SELECT edge FROM e)
        GROUP BY 1
        ORDER BY 1
    """
    return sql, [start_day, *first_params, today, start_day, start_day, *params, *rparams]


def daily_pnl_scan_sql(scope: Scope, *, start: datetime | None) -> tuple[str, list[Any]]:
    """The same rows as ``daily_pnl_sql`` from every day row of the period, grouped by the
    database (SQLite: per day; tests compare the two)."""
    where, params = scope.where("d")
    first_where, first_params = where, list(params)
    if start is not None:
        where += " AND d.day >= %s"
        params.append(start.date())
    if connection.vendor != "postgresql":
        sql = f"""
            SELECT d.day, SUM(d.trade_count), SUM(d.realized_pnl), SUM(d.fees), 'day'
            FROM {DAILY} d WHERE {where}
            GROUP BY d.day ORDER BY d.day
        """
        return sql, params
    today = datetime.now(UTC).date()
    sql = f"""
        WITH f AS (SELECT COALESCE(%s::date,
                                   (SELECT MIN(d.day) FROM {DAILY} d WHERE {first_where})) AS day,
                          %s::date AS today),
             u AS (SELECT {_unit_case("f.day", "f.today")} AS unit FROM f)
        SELECT date_trunc(u.unit, d.day::timestamp)::date, SUM(d.trade_count),
               SUM(d.realized_pnl), SUM(d.fees), MIN(u.unit)
        FROM {DAILY} d, u WHERE {where}
        GROUP BY 1 ORDER BY 1
    """
    return sql, [None if start is None else start.date(), *first_params, today, *params]


def _ceil_to(moment: datetime, width: int) -> datetime:
    """The first rollup bucket boundary at or after ``moment``."""
    steps = -(-(moment.timestamp() - ORIGIN) // width)
    return datetime.fromtimestamp(ORIGIN + steps * width, tz=UTC)


def drawdown_sql(scope: Scope, *, start: datetime | None) -> tuple[str, list[Any]]:
    """Max over the period of (running peak - equity) / running peak, on the summed curve
    (all bots) or one bot's snapshots, the peak running from the period's start: one row.

    On PostgreSQL from the rollups, never scanning the period: period "all" is the running max
    drawdown kept on the newest bucket; a period from ``start`` folds the raw rows before the
    first whole hour, the hours before the first whole day, the days before the first whole
    week, then the weeks (at most one hour of rows + 23 + 6 + the weeks), each part against the
    highest equity before it (``trading.services.rollups`` explains why that is exact).
    """
    if connection.vendor != "postgresql":
        return drawdown_scan_sql(scope, start=start)
    rtable, rwhere, rparams = _rollup_series(scope)
    if start is None:
        sql = f"""
            SELECT (SELECT r.run_drawdown FROM {rtable} r WHERE {rwhere} AND r.width = %s
                    ORDER BY r.bucket DESC LIMIT 1)
        """
        return sql, [*rparams, ROLLUP_WIDTHS[-1]]
    source, where, params = _equity_series(scope)
    edges = [start] + [_ceil_to(start, width) for width in ROLLUP_WIDTHS]
    parts = [
        f"""SELECT e.taken_at AS t, e.equity AS high, e.equity AS low,
                   {drawdown_ratio_sql("e.equity", "e.equity")} AS dd
            FROM {source} e WHERE {where} AND e.taken_at >= %s AND e.taken_at < %s"""
    ]
    part_params: list[Any] = [*params, edges[0], edges[1]]
    for level, width in enumerate(ROLLUP_WIDTHS):
        last = level == len(ROLLUP_WIDTHS) - 1
        parts.append(
            f"""SELECT r.bucket, r.high, r.low, r.drawdown FROM {rtable} r
                WHERE {rwhere} AND r.width = %s AND r.bucket >= %s
                {"" if last else "AND r.bucket < %s"}"""
        )
        part_params += [*rparams, width, edges[level + 1]]
        if not last:
            part_params.append(edges[level + 2])
    union = " UNION ALL ".join(parts)
    sql = f"""
        SELECT MAX(GREATEST(p.dd, {drawdown_ratio_sql("p.ph", "p.low")}))
        FROM (
            SELECT q.dd, q.low, MAX(q.high) OVER (
                ORDER BY q.t ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS ph
            FROM ({union}) q
        ) p
    """
    return sql, part_params


def drawdown_scan_sql(scope: Scope, *, start: datetime | None) -> tuple[str, list[Any]]:
    """Max over the period of (running peak - equity) / running peak, on the summed curve
    (all bots) or one bot's snapshots, by scanning them in time order (SQLite; tests). Equity
    below 0 counts as 0 (at most 100 %, none without a positive peak), as the rollups' folds."""
    source, where, params = _equity_series(scope)
    if start is not None:
        where += " AND e.taken_at >= %s"
        params.append(start)
    g = "GREATEST" if connection.vendor == "postgresql" else "MAX"  # SQLite: scalar MAX
    ratio = f"({g}(w.peak, 0) - {g}(w.equity, 0)) / NULLIF({g}(w.peak, 0), 0)"  # as the rollups
    sql = f"""
        SELECT MAX({ratio})
        FROM (
            SELECT e.equity, MAX(e.equity) OVER (ORDER BY e.taken_at) AS peak
            FROM {source} e WHERE {where}
        ) w
    """
    return sql, params


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    trades = sum(r["trade_count"] for r in rows)
    wins = sum(r["wins"] for r in rows)
    losses = sum(r["losses"] for r in rows)
    pnl = sum((r["realized_pnl"] for r in rows), ZERO)
    fees = sum((r["fees"] for r in rows), ZERO)
    profit = sum((r["gross_profit"] for r in rows), ZERO)
    loss = sum((r["gross_loss"] for r in rows), ZERO)
    return {
        "trades": trades,
        "closed_positions": sum(r["closed_positions"] for r in rows),
        "wins": wins,
        "losses": losses,
        "win_rate": _ratio(wins, wins + losses),
        "realized_pnl": money(pnl),
        "fees": money(fees),
        "net_pnl": money(pnl - fees),
        "profit_factor": _ratio(profit, loss),
        "average_win": _ratio(profit, wins, 8),
        "average_loss": _ratio(loss, losses, 8),
    }


def performance(scope: Scope, *, start: datetime | None) -> dict[str, Any]:
    """Three queries: running totals per bot x symbol (with each bot's all-time max drawdown),
    PnL per day (week, month, year: ``daily_pnl_unit``) over the period, and the max drawdown over the
    period (summed or one bot)."""
    sql, params = performance_stats_sql(scope)
    rows = []
    names: dict[int, str] = {}
    bot_drawdowns: dict[int, Decimal] = {}
    for r in _fetch(sql, params):
        names[r[0]] = r[1]
        bot_drawdowns[r[0]] = _dec(r[11])
        if r[2] is None:  # a bot without fills yet
            continue
        rows.append({
            "bot_id": r[0], "symbol": r[2], "trade_count": r[3], "closed_positions": r[4],
            "wins": r[5], "losses": r[6], "realized_pnl": _dec(r[7]), "fees": _dec(r[8]),
            "gross_profit": _dec(r[9]), "gross_loss": _dec(r[10]),
        })  # fmt: skip
    if scope.bot_id is not None and not names:
        raise BotNotFound
    by_bot: dict[int, list[dict[str, Any]]] = {bot_id: [] for bot_id in names}
    by_symbol: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_bot[row["bot_id"]].append(row)
        by_symbol.setdefault(row["symbol"], []).append(row)
    bots = [
        {"bot": bot_id, "bot_name": names[bot_id], **_summary(by_bot[bot_id]),
         "max_drawdown_pct": bot_drawdowns[bot_id].quantize(Decimal("0.0001"))}
        for bot_id in sorted(by_bot)
    ]  # fmt: skip
    symbols = [{"symbol": symbol, **_summary(by_symbol[symbol])} for symbol in sorted(by_symbol)]

    sql, params = daily_pnl_sql(scope, start=start)
    days = _fetch(sql, params)
    daily = [
        {"day": day, "trades": n, "realized_pnl": money(pnl), "fees": money(fees),
         "net_pnl": money(_dec(pnl) - _dec(fees))}
        for day, n, pnl, fees, _unit in days
    ]  # fmt: skip
    sql, params = drawdown_sql(scope, start=start)
    (drawdown,) = _fetch(sql, params)[0]
    return {
        "total": {
            **_summary(rows),
            "max_drawdown_pct": None
            if drawdown is None
            else (Decimal(drawdown) * HUNDRED).quantize(Decimal("0.0001")),
        },
        "bots": bots,
        "symbols": symbols,
        "daily_pnl": daily,
        "daily_pnl_unit": days[0][4] if days else "day",
    }
