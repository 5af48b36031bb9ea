"""Equity rollups: each bot's snapshots and each user's summed curve per hour, day and week.

The dashboard reads long periods from these rows instead of scanning every snapshot
(``trading.dashboard``), so its cost follows the number of points asked for, not the length of
the history. A bucket holds open/high/low/close equity, exact sums (averages of any run of
buckets), the largest drawdown inside it, and the all-time running peak and max drawdown at its
end (``trading.models.EquityRollupFields``).

Drawdowns combine exactly: the max drawdown of a run of rows is the largest ``(e(u) - e(t)) /
e(u)`` over pairs u <= t, so for consecutive parts A then B it is
``max(dd(A), dd(B), (high(A) - low(B)) / high(A))``. A bucket is the fold of its children (raw
rows for an hour, hours for a day, days for a week), and the dashboard folds a period the same
way from a few raw rows, hours, days and weeks.

Writes (PostgreSQL; on SQLite the dashboard scans the snapshots and these do nothing):

- ``equity_rollups_apply(snapshots)``: the one hook of the snapshot write path, called in the
  snapshots' transaction after the snapshots and the owner's account rows are written (owner
  locked). One statement for every level of the bots' and the owners' series: each affected
  series is recomputed from the hour bucket of its earliest new row onward, hours from the raw
  rows, days from the stored hours before that hour plus the new hours, weeks likewise from
  days. Appending a snapshot touches one bucket per level; an account row written before later
  ones (a late bot) recomputes the rest of the series, as ``_account_apply`` updates those rows.
- ``equity_rollups_rebuild(owner_ids=..., bots=...)``: delete and recompute from the snapshots
  (seeding, ``account_equity_rebuild``, repair), set-based.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from trading.models import (
    ROLLUP_ORIGIN,
    ROLLUP_WIDTHS,
    AccountEquityRollup,
    AccountEquitySnapshot,
    Bot,
    EquityRollup,
    EquitySnapshot,
)

# Where a rebuild starts: before any snapshot (date_bin floors correctly before its origin).
REBUILD_FROM = "0001-01-01 00:00:00+00"


def bin_sql(width: int, expression: str) -> str:
    """Start of the ``width``-second bucket containing ``expression`` (a timestamptz)."""
    return f"date_bin(interval '{width} seconds', {expression}, timestamptz '{ROLLUP_ORIGIN}')"


@dataclass(frozen=True)
class Series:
    """One kind of equity series and its rollup table."""

    prefix: str
    keys: tuple[str, ...]  # columns identifying one series in the rollup table
    raw: str  # the snapshot table
    raw_join: str  # raw row x of series s
    table: str  # the rollup table
    table_join: str  # rollup row r of series s
    conflict: str  # the rollup table's unique key
    raw_bots: str | None  # the raw rows' bot count (account only)


ACCOUNT = Series(
    prefix="a_",
    keys=("owner_id",),
    raw=AccountEquitySnapshot._meta.db_table,
    raw_join="x.owner_id = s.owner_id",  # account_owner_time_uniq
    table=AccountEquityRollup._meta.db_table,
    table_join="r.owner_id = s.owner_id",  # accountrollup_owner_width_bucket_uniq
    conflict="owner_id, width, bucket",
    raw_bots="x.bots",
)
BOTS = Series(
    prefix="b_",
    keys=("owner_id", "bot_id"),
    raw=EquitySnapshot._meta.db_table,
    raw_join="x.bot_id = s.bot_id",  # equity_bot_time_uniq
    table=EquityRollup._meta.db_table,
    table_join="r.bot_id = s.bot_id",  # equityrollup_bot_width_bucket_uniq
    conflict="bot_id, width, bucket",
    raw_bots=None,
)

_CHILD = "n, open, high, low, close, eq, cash, unr, bots, dd"


def _series_ctes(series: Series, src: str) -> tuple[list[str], str]:
    """CTEs recomputing every level of the series listed by the CTE ``src`` (its keys and ``t``,
    the earliest changed instant), and the name of the CTE that upserts them."""
    p, keys = series.prefix, ", ".join(series.keys)
    skeys = ", ".join(f"s.{k}" for k in series.keys)
    ctes: list[str] = []
    bots_raw = series.raw_bots or "1"
    bots_col = "r.bots" if series.raw_bots else "1"
    w0 = ROLLUP_WIDTHS[0]
    ctes.append(f"""{p}c0 AS (
        SELECT {skeys}, x.taken_at AS cb, 1 AS n, x.equity AS open, x.equity AS high,
               x.equity AS low, x.equity AS close, x.equity AS eq, x.cash AS cash,
               x.unrealized_pnl AS unr, {bots_raw} AS bots,
               (x.equity - x.equity) / NULLIF(x.equity, 0) AS dd
        FROM {src} s JOIN {series.raw} x ON {series.raw_join} AND x.taken_at >= {bin_sql(w0, "s.t")}
    )""")
    for level, width in enumerate(ROLLUP_WIDTHS):
        if level:
            finer = ROLLUP_WIDTHS[level - 1]
            # The stored finer buckets of this bucket before the recomputed range, then the
            # recomputed ones.
            ctes.append(f"""{p}c{level} AS (
                SELECT {skeys}, r.bucket AS cb, r.n, r.open, r.high, r.low, r.close,
                       r.equity_sum AS eq, r.cash_sum AS cash, r.unrealized_sum AS unr,
                       {bots_col} AS bots, r.drawdown AS dd
                FROM {src} s JOIN {series.table} r ON {series.table_join} AND r.width = {finer}
                     AND r.bucket >= {bin_sql(width, "s.t")} AND r.bucket < {bin_sql(finer, "s.t")}
                UNION ALL
                SELECT {keys}, bucket, {_CHILD} FROM {p}r{level - 1}
            )""")
        bucket = bin_sql(width, "c.cb")
        ctes.append(f"""{p}a{level} AS (
            SELECT c.*, {bucket} AS bucket,
                   MAX(c.high) OVER (PARTITION BY {", ".join(f"c.{k}" for k in series.keys)},
                                     {bucket} ORDER BY c.cb
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS ph
            FROM {p}c{level} c
        )""")
        ctes.append(f"""{p}g{level} AS (
            SELECT {keys}, bucket, SUM(n) AS n, (array_agg(open ORDER BY cb))[1] AS open,
                   MAX(high) AS high, MIN(low) AS low,
                   (array_agg(close ORDER BY cb DESC))[1] AS close, SUM(eq) AS eq,
                   SUM(cash) AS cash, SUM(unr) AS unr, MAX(bots) AS bots,
                   MAX(GREATEST(dd, (ph - low) / NULLIF(ph, 0))) AS dd
            FROM {p}a{level} GROUP BY {keys}, bucket
        )""")
        # Running values: the last stored bucket before the recomputed range, then a fold.
        ctes.append(f"""{p}q{level} AS (
            SELECT g.*, prev.peak AS p_peak, prev.run_drawdown AS p_dd,
                   GREATEST(prev.peak, MAX(g.high) OVER (
                       PARTITION BY {", ".join(f"g.{k}" for k in series.keys)} ORDER BY g.bucket
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) AS pp
            FROM {p}g{level} g
            JOIN {src} s ON {" AND ".join(f"s.{k} = g.{k}" for k in series.keys)}
            LEFT JOIN LATERAL (
                SELECT r.peak, r.run_drawdown FROM {series.table} r
                WHERE {series.table_join} AND r.width = {width}
                      AND r.bucket < {bin_sql(width, "s.t")}
                ORDER BY r.bucket DESC LIMIT 1
            ) prev ON TRUE
        )""")
        ctes.append(f"""{p}r{level} AS (
            SELECT q.*, GREATEST(q.p_peak, MAX(q.high) OVER w) AS peak,
                   GREATEST(q.p_dd, MAX(GREATEST(q.dd, (q.pp - q.low) / NULLIF(q.pp, 0))) OVER w)
                       AS run_dd
            FROM {p}q{level} q
            WINDOW w AS (PARTITION BY {", ".join(f"q.{k}" for k in series.keys)}
                         ORDER BY q.bucket ROWS UNBOUNDED PRECEDING)
        )""")
    bots_insert = ", bots" if series.raw_bots else ""
    selects = " UNION ALL ".join(
        f"SELECT {keys}, {width}, bucket, n, open, high, low, close, eq, cash, unr, dd, peak, "
        f"run_dd{bots_insert} FROM {p}r{level}"
        for level, width in enumerate(ROLLUP_WIDTHS)
    )
    updates = ", ".join(
        f"{col} = EXCLUDED.{col}"
        for col in (
            "n", "open", "high", "low", "close", "equity_sum", "cash_sum", "unrealized_sum",
            "drawdown", "peak", "run_drawdown", *(("bots",) if series.raw_bots else ()),
        )
    )  # fmt: skip
    ctes.append(f"""{p}ins AS (
        INSERT INTO {series.table} ({keys}, width, bucket, n, open, high, low, close,
                                    equity_sum, cash_sum, unrealized_sum, drawdown, peak,
                                    run_drawdown{bots_insert})
        {selects}
        ON CONFLICT ({series.conflict}) DO UPDATE SET {updates}
        RETURNING 1
    )""")
    return ctes, f"{p}ins"


def rollups_sql(*, accounts: str | None, bots: str | None) -> str:
    """One statement recomputing the account series selected by ``accounts`` (a SELECT of
    ``owner_id, t``) and the bot series selected by ``bots`` (``owner_id, bot_id, t``)."""
    ctes: list[str] = []
    counts: list[str] = []
    for series, select in ((ACCOUNT, accounts), (BOTS, bots)):
        if select is None:
            continue
        ctes.append(f"{series.prefix}src AS ({select})")
        more, inserted = _series_ctes(series, f"{series.prefix}src")
        ctes += more
        counts.append(f"(SELECT COUNT(*) FROM {inserted})")
    return f"WITH {', '.join(ctes)} SELECT {', '.join(counts)}"


def equity_rollups_apply(snapshots: Sequence[EquitySnapshot]) -> None:
    """Bring the rollups up to date after ``snapshots`` (and their owners' summed-curve rows at
    the same instants) were written. Call it in the same transaction, owners locked (both
    snapshot writers do: ``equity_snapshot_record`` and the engine's batch). One statement."""
    if not snapshots or connection.vendor != "postgresql":
        return
    owners: dict[int, datetime] = {}
    bots: dict[int, tuple[int, datetime]] = {}
    for row in snapshots:
        at = owners.get(row.owner_id)
        owners[row.owner_id] = row.taken_at if at is None else min(at, row.taken_at)
        before = bots.get(row.bot_id)
        if before is None or row.taken_at < before[1]:
            bots[row.bot_id] = (row.owner_id, row.taken_at)
    sql = rollups_sql(
        accounts="SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]) AS u(owner_id, t)",
        bots="SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[]) "
        "AS u(owner_id, bot_id, t)",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                list(owners), list(owners.values()),
                [owner for owner, _ in bots.values()], list(bots), [t for _, t in bots.values()],
            ],
        )  # fmt: skip


def equity_rollups_rebuild(*, owner_ids: Iterable[int], bots: bool = True) -> None:
    """Recompute these owners' account rollups (and, with ``bots``, every one of their bots')
    from the snapshots: delete, then one set-based statement. Run it in a transaction."""
    owners = sorted(set(owner_ids))
    if not owners or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {AccountEquityRollup._meta.db_table} WHERE owner_id = ANY(%s)", [owners]
        )
        if bots:
            cursor.execute(
                f"DELETE FROM {EquityRollup._meta.db_table} WHERE owner_id = ANY(%s)", [owners]
            )
        sql = rollups_sql(
            accounts=f"SELECT u.owner_id, timestamptz '{REBUILD_FROM}' AS t "
            "FROM unnest(%s::bigint[]) AS u(owner_id)",
            bots=None
            if not bots
            else f"SELECT b.owner_id, b.id AS bot_id, timestamptz '{REBUILD_FROM}' AS t "
            f"FROM {Bot._meta.db_table} b WHERE b.owner_id = ANY(%s)",
        )
        cursor.execute(sql, [owners, owners] if bots else [owners])
