"""Equity rollups: each bot's snapshots and each user's summed curve per hour, day and week.

The dashboard reads long periods from these rows instead of scanning every snapshot
(``trading.dashboard``), so its cost follows the number of points asked for, not the length of
the history. A bucket holds open/high/low/close equity, exact sums (averages of any run of
buckets), the largest drawdown inside it, and the all-time running peak and max drawdown at its
end (``trading.models.EquityRollupFields``).

Drawdowns combine exactly: the max drawdown of a run of rows is the largest ``(e(u) - e(t)) /
e(u)`` over pairs u <= t, so for consecutive parts A then B it is
``max(dd(A), dd(B), (high(A) - low(B)) / high(A))``. That needs equity >= 0 (for e(t) < 0 the
ratio falls as the peak rises, and a later, lower peak would win), so every drawdown clamps
equity at 0 (``drawdown_ratio_sql``): a drawdown is at most 100 % and there is none without a
positive peak, as ``trading.risk.drawdown_pct`` already rules for the bot's own. A bucket is the fold of its children (raw
rows for an hour, hours for a day, days for a week), and the dashboard folds a period the same
way from a few raw rows, hours, days and weeks.

Writes (PostgreSQL; on SQLite the dashboard scans the snapshots and these do nothing):

- ``equity_rollups_apply(snapshots)``: the one hook of the snapshot write path, called in the
  snapshots' transaction after the snapshots and the owner's account rows are written (owner
  locked). Two statements for every level of the bots' and the owners' series: each affected
  series is recomputed from the hour bucket of its earliest new row onward, hours from the raw
  rows, days from the stored hours before that hour plus the new hours, weeks likewise from
  days (read in one statement, folded in Python, upserted in the second). Appending a snapshot
  touches one bucket per level; an account row written before later ones (a late bot)
  recomputes the rest of the series, as ``_account_apply`` updates those rows.
- ``equity_rollups_rebuild(owner_ids=..., bots=...)``: delete and recompute from the snapshots
  (seeding, ``account_equity_rebuild``, repair), set-based.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

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

# The per-series reads are LATERAL ... OFFSET 0 (not flattened into joins) so each is an index
# range scan for its series: as a join the planner hashed the whole snapshot table (1.5 s with
# 400,000 snapshots, where the index scans take ~2 ms).

# Where a rebuild starts: before any snapshot (date_bin floors correctly before its origin).
REBUILD_FROM = "0001-01-01 00:00:00+00"


def drawdown_ratio_sql(peak: str, low: str) -> str:
    """(peak - low) / peak with both clamped at 0 (NULL without a positive peak): exact to fold
    when leverage takes equity below 0, and capped at 1 like ``trading.risk.drawdown_pct``."""
    return f"(GREATEST({peak}, 0) - GREATEST({low}, 0)) / NULLIF(GREATEST({peak}, 0), 0)"


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
               {drawdown_ratio_sql("x.equity", "x.equity")} AS dd
        FROM {src} s CROSS JOIN LATERAL (
            SELECT * FROM {series.raw} x
            WHERE {series.raw_join} AND x.taken_at >= {bin_sql(w0, "s.t")} OFFSET 0
        ) x
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
                FROM {src} s CROSS JOIN LATERAL (
                    SELECT * FROM {series.table} r
                    WHERE {series.table_join} AND r.width = {finer}
                          AND r.bucket >= {bin_sql(width, "s.t")}
                          AND r.bucket < {bin_sql(finer, "s.t")} OFFSET 0
                ) r
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
                   MAX(GREATEST(dd, {drawdown_ratio_sql("ph", "low")})) AS dd
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
                   GREATEST(q.p_dd, MAX(GREATEST(q.dd, {drawdown_ratio_sql("q.pp", "q.low")})) OVER w)
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


_RAW_COLUMNS = (
    "x.taken_at, 1, x.equity, x.equity, x.equity, x.equity, x.equity, x.cash, "
    "x.unrealized_pnl, {bots}, NULL::numeric, NULL::numeric, NULL::numeric"
)
_ROLLUP_COLUMNS = (
    "r.bucket, r.n, r.open, r.high, r.low, r.close, r.equity_sum, r.cash_sum, "
    "r.unrealized_sum, {bots}, r.drawdown, r.peak, r.run_drawdown"
)


def _fetch_sql() -> str:
    """What recomputing the changed suffix of each listed series needs, as tagged rows: its raw
    rows from the hour of ``t`` on, its stored hours of that day before that hour and stored days
    of that week before that day, and per level the last stored bucket before the range (for the
    running values). Each part is an index range scan per series (LATERAL ... OFFSET 0)."""
    hour, day, week = ROLLUP_WIDTHS
    parts = []
    for kind, series, src in (("a", ACCOUNT, "sa"), ("b", BOTS, "sb")):
        id_col = "owner_id" if kind == "a" else "bot_id"
        bots = series.raw_bots or "1"
        rbots = "r.bots" if series.raw_bots else "1"
        raw = _RAW_COLUMNS.format(bots=bots)
        stored = _ROLLUP_COLUMNS.format(bots=rbots)
        parts.append(
            f"SELECT '{kind}', s.id, 'raw', 0, x.* FROM {src} s CROSS JOIN LATERAL ("
            f"SELECT {raw} FROM {series.raw} x WHERE x.{id_col} = s.id "
            f"AND x.taken_at >= {bin_sql(hour, 's.t')} OFFSET 0) x"
        )
        for finer, coarser in ((hour, day), (day, week)):
            parts.append(
                f"SELECT '{kind}', s.id, 'child', {finer}, r.* FROM {src} s CROSS JOIN LATERAL ("
                f"SELECT {stored} FROM {series.table} r WHERE r.{id_col} = s.id "
                f"AND r.width = {finer} AND r.bucket >= {bin_sql(coarser, 's.t')} "
                f"AND r.bucket < {bin_sql(finer, 's.t')} OFFSET 0) r"
            )
        for width in ROLLUP_WIDTHS:
            parts.append(
                f"SELECT '{kind}', s.id, 'prev', {width}, r.* FROM {src} s CROSS JOIN LATERAL ("
                f"SELECT {stored} FROM {series.table} r WHERE r.{id_col} = s.id "
                f"AND r.width = {width} AND r.bucket < {bin_sql(width, 's.t')} "
                "ORDER BY r.bucket DESC LIMIT 1) r"
            )
    return (
        "WITH sa AS (SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]) AS u(id, t)), "
        "sb AS (SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]) AS u(id, t)) "
        + " UNION ALL ".join(parts)
    )


def _upsert_sql() -> str:
    columns = ("width", "bucket", "n", "open", "high", "low", "close", "equity_sum", "cash_sum",
               "unrealized_sum", "drawdown", "peak", "run_drawdown")  # fmt: skip
    types = ("int", "timestamptz", "int", *["numeric"] * 10)
    ctes = []
    for name, series, keys, extra in (
        ("a", ACCOUNT, ("owner_id",), ("bots",)),
        ("b", BOTS, ("owner_id", "bot_id"), ()),
    ):
        cols = (*keys, *columns, *extra)
        arrays = ", ".join(
            f"%s::{t}[]" for t in (*["bigint"] * len(keys), *types, *["int"] * len(extra))
        )
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in (*columns[2:], *extra))
        ctes.append(
            f"{name} AS (INSERT INTO {series.table} ({', '.join(cols)}) "
            f"SELECT * FROM unnest({arrays}) "
            f"ON CONFLICT ({series.conflict}) DO UPDATE SET {updates} RETURNING 1)"
        )
    return f"WITH {', '.join(ctes)} SELECT (SELECT COUNT(*) FROM a), (SELECT COUNT(*) FROM b)"


FETCH_SQL = _fetch_sql()
UPSERT_SQL = _upsert_sql()
_ORIGIN = datetime.fromisoformat(ROLLUP_ORIGIN)


def _bucket(moment: datetime, width: int) -> datetime:
    step = timedelta(seconds=width)
    return _ORIGIN + ((moment - _ORIGIN) // step) * step


def _ratio(peak: Decimal | None, low: Decimal) -> Decimal | None:
    """``drawdown_ratio_sql`` in Python: (peak - low) / peak, both clamped at 0 (None without a
    positive peak)."""
    if peak is None or peak <= 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 50
        return (peak - max(low, Decimal(0))) / peak


def _max(*values: Decimal | None) -> Decimal | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _recompute(rows: list[tuple]) -> list[tuple]:
    """One series: the fetched rows (``_fetch_sql``'s columns after the tags) -> the rollup rows
    (width, bucket, n, open, high, low, close, eq, cash, unr, dd, peak, run_dd, bots) of every
    level from the changed range on. The same folds as ``rollups_sql``."""
    # child: (start, n, open, high, low, close, eq, cash, unr, bots, dd)
    children: list[tuple] = []
    stored: dict[int, list[tuple]] = {w: [] for w in ROLLUP_WIDTHS}
    prev: dict[int, tuple[Decimal | None, Decimal | None]] = {}
    for part, width, t, n, o, h, lo, c, eq, cash, unr, bots, dd, peak, run_dd in rows:
        if part == "raw":
            children.append((t, 1, o, h, lo, c, eq, cash, unr, bots, _ratio(o, o)))
        elif part == "child":
            stored[width].append((t, n, o, h, lo, c, eq, cash, unr, bots, dd))
        else:
            prev[width] = (peak, run_dd)
    out: list[tuple] = []
    finer: int | None = None
    for width in ROLLUP_WIDTHS:
        if finer is not None:
            children = sorted(stored[finer]) + children
        children.sort(key=lambda child: child[0])
        buckets: dict[datetime, list[tuple]] = {}
        for child in children:
            buckets.setdefault(_bucket(child[0], width), []).append(child)
        p_peak, p_dd = prev.get(width, (None, None))
        run_peak, run_dd = p_peak, p_dd
        level: list[tuple] = []
        for start in sorted(buckets):
            members = buckets[start]
            dd: Decimal | None = None
            high: Decimal | None = None
            for child in members:
                dd = _max(dd, child[10], _ratio(high, child[4]))
                high = _max(high, child[3])
            low = min(child[4] for child in members)
            run_dd = _max(run_dd, dd, _ratio(run_peak, low))
            run_peak = _max(run_peak, high)
            row = (
                start, sum(m[1] for m in members), members[0][2], high, low, members[-1][5],
                sum(m[6] for m in members), sum(m[7] for m in members),
                sum(m[8] for m in members), max(m[9] for m in members), dd,
            )  # fmt: skip
            level.append(row)
            out.append((width, *row[:9], dd, run_peak, run_dd, row[9]))
        children, finer = level, width
    return out


def equity_rollups_apply(snapshots: Sequence[EquitySnapshot]) -> None:
    """Bring the rollups up to date after ``snapshots`` (and their owners' summed-curve rows at
    the same instants) were written. Call it in the same transaction, owners locked (both
    snapshot writers do: ``equity_snapshot_record`` and the engine's batch).

    Two statements whatever the number of bots: one reads what the changed buckets need (a few
    rows per series: its raw rows from the hour of its earliest new row on, the stored hours
    and days before that in the day and week, the last bucket of each level before them), the
    other upserts the recomputed buckets. (One statement doing the folds in SQL, as the rebuild
    does, took longer to plan than the whole snapshot write.)"""
    if not snapshots or connection.vendor != "postgresql":
        return
    owners: dict[int, datetime] = {}
    bots: dict[int, tuple[int, datetime]] = {}
    for snapshot in snapshots:
        at = owners.get(snapshot.owner_id)
        owners[snapshot.owner_id] = snapshot.taken_at if at is None else min(at, snapshot.taken_at)
        before = bots.get(snapshot.bot_id)
        if before is None or snapshot.taken_at < before[1]:
            bots[snapshot.bot_id] = (snapshot.owner_id, snapshot.taken_at)
    series: dict[tuple[str, int], list[tuple]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            FETCH_SQL,
            [list(owners), list(owners.values()), list(bots), [t for _, t in bots.values()]],
        )
        for kind, series_id, *rest in cursor.fetchall():
            series.setdefault((kind, series_id), []).append(tuple(rest))
        account: list[list[Any]] = [[] for _ in range(15)]
        per_bot: list[list[Any]] = [[] for _ in range(15)]
        for (kind, series_id), rows in series.items():
            for width, *values, bots_max in _recompute(rows):
                if kind == "a":
                    record = [series_id, width, *values, bots_max]
                    target = account
                else:
                    record = [bots[series_id][0], series_id, width, *values]
                    target = per_bot
                for column, value in zip(target, record, strict=True):
                    column.append(value)
        cursor.execute(UPSERT_SQL, [*account, *per_bot])


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
