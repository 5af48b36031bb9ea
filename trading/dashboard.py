"""Read models of the dashboard: each function is one (or two, three) SQL statements whose cost is
bounded by the user's bots, symbols and the chosen period, never by the length of the history.

- stats: bots (a handful of rows), open positions (partial index), running totals (BotSymbolStats).
- equity curve: snapshots in the period, bucketed by the database to at most ``points`` rows.
- performance: running totals per bot/symbol, PnL per day (BotDailyPnl), drawdown over the period.

Functions return plain dicts/lists; money stays ``Decimal`` (rendered as exact strings).
``explain_dashboard`` runs EXPLAIN on ``dashboard_sql`` statements, so every statement here is
built by a ``*_sql`` function that returns ``(sql, params)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import connection

from trading.models import Bot, BotDailyPnl, BotSymbolStats, EquitySnapshot, Position
from zerobot.lib.money import money

ZERO = Decimal(0)
HUNDRED = Decimal(100)
BOT = Bot._meta.db_table
POSITION = Position._meta.db_table
STATS = BotSymbolStats._meta.db_table
DAILY = BotDailyPnl._meta.db_table
SNAPSHOT = EquitySnapshot._meta.db_table


class BotNotFound(Exception):
    """The ``bot`` filter names no bot of this user (mapped to a 404)."""


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
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1).scaleb(-places))


def _dec(value: Any) -> Decimal:
    return ZERO if value is None else Decimal(value)


# --- Stats --------------------------------------------------------------------------------------

UNREALIZED_SQL = (
    "ROUND((p.current_price - p.entry_price) * (p.quantity - p.closed_quantity)"
    " * CASE WHEN p.side = 'long' THEN 1 ELSE -1 END, 8)"
)


def stats_sql(scope: Scope) -> tuple[str, list[Any]]:
    bots_where, bots_params = scope.where("b", bot_column="id")
    pos_where, pos_params = scope.where("p")
    stats_where, stats_params = scope.where("s")
    sql = f"""
        SELECT
            (SELECT COUNT(*) FROM {BOT} b WHERE {bots_where}),
            (SELECT COUNT(*) FROM {BOT} b WHERE {bots_where} AND b.status = 'active'),
            (SELECT COUNT(*) FROM {BOT} b WHERE {bots_where} AND b.status = 'paused'),
            (SELECT COUNT(*) FROM {BOT} b WHERE {bots_where} AND b.status = 'stopped'),
            (SELECT COUNT(*) FROM {BOT} b WHERE {bots_where} AND b.status = 'inactive'),
            (SELECT COALESCE(SUM(b.capital), 0) FROM {BOT} b WHERE {bots_where}),
            (SELECT COALESCE(SUM(b.initial_capital), 0) FROM {BOT} b WHERE {bots_where}),
            pos.n, pos.margin, pos.unrealized,
            st.trades, st.closed, st.wins, st.losses, st.pnl, st.fees
        FROM
            (SELECT COUNT(*) AS n, COALESCE(SUM(p.margin), 0) AS margin,
                    COALESCE(SUM({UNREALIZED_SQL}), 0) AS unrealized
             FROM {POSITION} p WHERE {pos_where} AND p.status = 'open') pos,
            (SELECT COALESCE(SUM(s.trade_count), 0) AS trades,
                    COALESCE(SUM(s.closed_positions), 0) AS closed,
                    COALESCE(SUM(s.wins), 0) AS wins, COALESCE(SUM(s.losses), 0) AS losses,
                    COALESCE(SUM(s.realized_pnl), 0) AS pnl, COALESCE(SUM(s.fees), 0) AS fees
             FROM {STATS} s WHERE {stats_where}) st
    """
    return sql, bots_params * 7 + pos_params + stats_params


def stats(scope: Scope) -> dict[str, Any]:
    """One query. Balances are current; PnL, trades and win rate are all-time (running totals)."""
    sql, params = stats_sql(scope)
    (bots, active, paused, stopped, inactive, cash, initial, open_n, margin, unrealized, trades,
     closed, wins, losses, pnl, fees) = _fetch(sql, params)[0]  # fmt: skip
    if scope.bot_id is not None and not bots:
        raise BotNotFound
    cash, initial, margin, unrealized = _dec(cash), _dec(initial), _dec(margin), _dec(unrealized)
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


def equity_curve_sql(
    scope: Scope, *, start: datetime | None, end: datetime, points: int
) -> tuple[str, list[Any]]:
    """Snapshots in [start, end] in ``points`` equal buckets: per bot the mean of its snapshots in
    a bucket, then summed over bots. ``start=None`` (period "all") starts at the first snapshot,
    found by the same statement (one index probe). With ``bot``, the bot row is the driving
    table, so an unknown bot is an empty result (404) in this one query."""
    where, params = scope.where("e")
    t0 = f"COALESCE(%s, (SELECT MIN({_epoch('e.taken_at')}) FROM {SNAPSHOT} e WHERE {where}))"
    t0_params = [None if start is None else start.timestamp(), *params]
    epoch_end = end.timestamp()
    per_bot = f"""
        SELECT e.bot_id, CAST(FLOOR(({_epoch("e.taken_at")} - w.t0) / w.width) AS INTEGER) AS bucket,
               AVG(e.equity) AS equity, AVG(e.cash) AS cash, AVG(e.unrealized_pnl) AS unrealized
        FROM {SNAPSHOT} e, w
        WHERE {where} AND e.taken_at >= %s AND e.taken_at <= %s
        GROUP BY e.bot_id, bucket
    """
    window = f"""
        WITH b AS (SELECT {t0} AS t0),
             w AS (SELECT b.t0, GREATEST((%s - b.t0) / %s, 1.0) AS width FROM b)
    """
    if connection.vendor != "postgresql":
        window = window.replace("GREATEST(", "MAX(")
    first = start or datetime.fromtimestamp(0, tz=end.tzinfo)
    window_params = [*t0_params, epoch_end, points]
    per_bot_params = [*params, first, end]
    if scope.bot_id is None:
        sql = f"""{window}
            SELECT per.bucket, SUM(per.equity), SUM(per.cash), SUM(per.unrealized), COUNT(*),
                   MIN(w.t0), MIN(w.width)
            FROM ({per_bot}) per, w
            GROUP BY per.bucket ORDER BY per.bucket
        """
        return sql, window_params + per_bot_params
    sql = f"""{window}
        SELECT per.bucket, per.equity, per.cash, per.unrealized, 1, w.t0, w.width
        FROM {BOT} bot CROSS JOIN w LEFT JOIN ({per_bot}) per ON per.bot_id = bot.id
        WHERE bot.id = %s AND bot.owner_id = %s
        ORDER BY per.bucket
    """
    return sql, window_params + per_bot_params + [scope.bot_id, scope.owner_id]


def equity_curve(
    scope: Scope, *, start: datetime | None, end: datetime, points: int
) -> list[dict[str, Any]]:
    """At most ``points`` points ``{"t", "equity", "cash", "unrealized_pnl", "bots"}``, oldest first;
    ``t`` is the start of the bucket. Buckets without a snapshot are omitted (not zero)."""
    sql, params = equity_curve_sql(scope, start=start, end=end, points=points)
    rows = _fetch(sql, params)
    if scope.bot_id is not None and not rows:
        raise BotNotFound
    result = []
    for bucket, equity, cash, unrealized, bots, t0, width in rows:
        if bucket is None:
            continue
        moment = datetime.fromtimestamp(float(t0) + bucket * float(width), tz=UTC)
        result.append({
            "t": moment.replace(microsecond=0), "equity": money(equity), "cash": money(cash),
            "unrealized_pnl": money(unrealized), "bots": bots,
        })  # fmt: skip
    return result


# --- Performance --------------------------------------------------------------------------------


def performance_stats_sql(scope: Scope) -> tuple[str, list[Any]]:
    where, params = scope.where("s")
    sql = f"""
        SELECT s.bot_id, b.name, s.symbol, s.trade_count, s.closed_positions, s.wins, s.losses,
               s.realized_pnl, s.fees, s.gross_profit, s.gross_loss
        FROM {STATS} s JOIN {BOT} b ON b.id = s.bot_id
        WHERE {where}
    """
    return sql, params


def daily_pnl_sql(scope: Scope, *, start: datetime | None) -> tuple[str, list[Any]]:
    where, params = scope.where("d")
    if start is not None:
        where += " AND d.day >= %s"
        params.append(start.date())
    sql = f"""
        SELECT d.day, SUM(d.trade_count), SUM(d.realized_pnl), SUM(d.fees)
        FROM {DAILY} d WHERE {where}
        GROUP BY d.day ORDER BY d.day
    """
    return sql, params


def drawdown_sql(scope: Scope, *, start: datetime | None) -> tuple[str, list[Any]]:
    """Per bot: max over the period of (running peak - equity) / running peak. Each bot's
    snapshots are read in time order from equity_bot_time_uniq (a LATERAL per bot: no sort)."""
    where, params = scope.where("b", bot_column="id")
    since = "" if start is None else "AND e.taken_at >= %s"
    lateral_params = [] if start is None else [start]
    sql = f"""
        SELECT b.id, dd.max_drawdown, dd.peak
        FROM {BOT} b
        LEFT JOIN LATERAL (
            SELECT MAX((w.peak - w.equity) / NULLIF(w.peak, 0)) AS max_drawdown,
                   MAX(w.peak) AS peak
            FROM (
                SELECT e.equity, MAX(e.equity) OVER (ORDER BY e.taken_at) AS peak
                FROM {SNAPSHOT} e
                WHERE e.bot_id = b.id {since}
            ) w
        ) dd ON TRUE
        WHERE {where}
    """
    return sql, lateral_params + params


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
        "average_win": money(profit / wins) if wins else None,
        "average_loss": money(loss / losses) if losses else None,
    }


def performance(scope: Scope, *, start: datetime | None) -> dict[str, Any]:
    """Three queries: running totals per bot x symbol, PnL per day over the period, drawdowns."""
    if connection.vendor != "postgresql":  # LATERAL: PostgreSQL only; SQLite dev runs get none
        drawdowns: dict[int, Decimal | None] = {}
    else:
        sql, params = drawdown_sql(scope, start=start)
        drawdowns = {
            bot_id: None if dd is None else (Decimal(dd) * HUNDRED).quantize(Decimal("0.0001"))
            for bot_id, dd, _peak in _fetch(sql, params)
        }
        if scope.bot_id is not None and not drawdowns:
            raise BotNotFound

    sql, params = performance_stats_sql(scope)
    rows = [
        {
            "bot_id": r[0], "bot_name": r[1], "symbol": r[2], "trade_count": r[3],
            "closed_positions": r[4], "wins": r[5], "losses": r[6], "realized_pnl": _dec(r[7]),
            "fees": _dec(r[8]), "gross_profit": _dec(r[9]), "gross_loss": _dec(r[10]),
        }
        for r in _fetch(sql, params)
    ]  # fmt: skip
    by_bot: dict[int, list[dict[str, Any]]] = {}
    names: dict[int, str] = {}
    by_symbol: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_bot.setdefault(row["bot_id"], []).append(row)
        names[row["bot_id"]] = row["bot_name"]
        by_symbol.setdefault(row["symbol"], []).append(row)

    bots = []
    for bot_id in sorted(set(by_bot) | set(drawdowns)):
        bots.append({
            "bot": bot_id, "bot_name": names.get(bot_id), **_summary(by_bot.get(bot_id, [])),
            "max_drawdown_pct": drawdowns.get(bot_id),
        })  # fmt: skip
    symbols = [{"symbol": symbol, **_summary(by_symbol[symbol])} for symbol in sorted(by_symbol)]

    sql, params = daily_pnl_sql(scope, start=start)
    daily = [
        {"day": day, "trades": n, "realized_pnl": money(pnl), "fees": money(fees),
         "net_pnl": money(_dec(pnl) - _dec(fees))}
        for day, n, pnl, fees in _fetch(sql, params)
    ]  # fmt: skip
    drawdown_values = [d for d in drawdowns.values() if d is not None]
    return {
        "total": {**_summary(rows), "max_drawdown_pct": max(drawdown_values, default=None)},
        "bots": bots,
        "symbols": symbols,
        "daily_pnl": daily,
    }


def dashboard_sql(
    scope: Scope, *, start: datetime, end: datetime, points: int = 500
) -> dict[str, tuple[str, list[Any]]]:
    """Every raw statement the dashboard runs, by name (for ``explain_dashboard``)."""
    return {
        "stats": stats_sql(scope),
        "equity_curve": equity_curve_sql(scope, start=start, end=end, points=points),
        "performance_totals": performance_stats_sql(scope),
        "performance_daily": daily_pnl_sql(scope, start=start),
        "performance_drawdown": drawdown_sql(scope, start=start),
    }
