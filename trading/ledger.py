"""The ledger checks behind ``manage.py check_ledger`` and the tests (``tests/ledger.py``).

Plain SQL over any DB-API cursor (Django's, or a raw psycopg one on a private server in the fault
tests). Each check returns violations naming the bot and the difference:

- ``capital``: capital = initial_capital + sum(fill realized PnL) - sum(fees) - margin of the open
  positions, and capital >= 0.
- ``position``: a closed position's fills add up: closing quantity = its quantity, and the sums
  of its fills' realized PnL and fees equal the position's; an open one has margin >= 0 and
  closed_quantity < quantity.
- ``duplicate_fill``: one (bot, client_order_id) per fill (the unique constraint's job; checked
  in case the constraint is ever dropped).
- ``snapshot``: every equity snapshot says equity = cash + held margin + unrealized PnL with a
  non-negative margin; the owner's newest summed row equals the sum of its bots' newest
  snapshots at or before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

CAPITAL_SQL = """
SELECT b.id, b.capital - (b.initial_capital + COALESCE(t.pnl, 0) - COALESCE(t.fees, 0)
       - COALESCE(p.margin, 0)), b.capital
FROM trading_bot b
LEFT JOIN (SELECT bot_id, SUM(realized_pnl) pnl, SUM(fee) fees FROM trading_trade
           {where_t} GROUP BY bot_id) t ON t.bot_id = b.id
LEFT JOIN (SELECT bot_id, SUM(margin) margin FROM trading_position WHERE status = 'open' {and_p}
           GROUP BY bot_id) p ON p.bot_id = b.id
WHERE (b.capital <> b.initial_capital + COALESCE(t.pnl, 0) - COALESCE(t.fees, 0)
                    - COALESCE(p.margin, 0)
       OR b.capital < 0) {and_b}
ORDER BY b.id
"""

# Opening fill: buy for a long, sell for a short; every other fill of a position closes it.
POSITION_SQL = """
SELECT p.bot_id, p.id, p.status, p.quantity, COALESCE(f.closed_qty, 0), p.closed_quantity,
       p.realized_pnl - COALESCE(f.pnl, 0), p.fees - COALESCE(f.fees, 0), p.margin
FROM trading_position p
LEFT JOIN (
    SELECT t.position_id,
           SUM(CASE WHEN (t.side = 'sell') = (q.side = 'long') THEN t.quantity ELSE 0 END)
               AS closed_qty,
           SUM(t.realized_pnl) AS pnl, SUM(t.fee) AS fees
    FROM trading_trade t JOIN trading_position q ON q.id = t.position_id
    {where_t}
    GROUP BY t.position_id
) f ON f.position_id = p.id
WHERE (p.realized_pnl <> COALESCE(f.pnl, 0) OR p.fees <> COALESCE(f.fees, 0)
       OR p.closed_quantity <> COALESCE(f.closed_qty, 0)
       OR (p.status = 'closed' AND (p.closed_quantity <> p.quantity OR p.margin <> 0))
       OR (p.status = 'open' AND (p.closed_quantity >= p.quantity OR p.margin < 0))) {and_p}
ORDER BY p.bot_id, p.id
"""

DUPLICATE_SQL = """
SELECT bot_id, client_order_id, COUNT(*) FROM trading_trade {where_t}
GROUP BY bot_id, client_order_id HAVING COUNT(*) > 1 ORDER BY bot_id
"""

SNAPSHOT_SQL = """
SELECT s.bot_id, s.taken_at, s.equity - s.cash - s.unrealized_pnl
FROM trading_equitysnapshot s
WHERE s.equity - s.cash - s.unrealized_pnl < 0 {and_s}
ORDER BY s.bot_id, s.taken_at
"""

ACCOUNT_SQL = """
SELECT a.owner_id, a.taken_at, a.equity - COALESCE(SUM(x.equity), 0)
FROM (SELECT DISTINCT ON (owner_id) owner_id, taken_at, equity FROM trading_accountequitysnapshot
      {where_o} ORDER BY owner_id, taken_at DESC) a
LEFT JOIN LATERAL (
    SELECT (SELECT s.equity FROM trading_equitysnapshot s
            WHERE s.bot_id = b.id AND s.taken_at <= a.taken_at
            ORDER BY s.taken_at DESC LIMIT 1) AS equity
    FROM trading_bot b WHERE b.owner_id = a.owner_id
) x ON TRUE
GROUP BY a.owner_id, a.taken_at, a.equity
HAVING a.equity <> COALESCE(SUM(x.equity), 0)
"""


@dataclass(frozen=True)
class Violation:
    check: str
    bot_id: int | None  # None: an owner-level check (owner_id in detail)
    detail: str

    def __str__(self) -> str:
        who = f"bot {self.bot_id}" if self.bot_id is not None else "account"
        return f"{self.check}: {who}: {self.detail}"


def _fmt(value: Any) -> str:
    return format(value.normalize(), "f") if isinstance(value, Decimal) else str(value)


def ledger_violations(cursor: Any, *, bot_id: int | None = None) -> list[Violation]:
    """Every violation of the ledger rules (of one bot, or of all), empty when it holds."""
    params = [] if bot_id is None else [bot_id]
    found: list[Violation] = []
    f = "%s"
    cursor.execute(
        CAPITAL_SQL.format(
            where_t="" if bot_id is None else f"WHERE bot_id = {f}",
            and_p="" if bot_id is None else f"AND bot_id = {f}",
            and_b="" if bot_id is None else f"AND b.id = {f}",
        ),
        params * 3,
    )
    for bot, difference, capital in cursor.fetchall():
        found.append(Violation("capital", bot, f"capital {_fmt(capital)} differs from the "
                               f"ledger by {_fmt(difference)}"))  # fmt: skip
    cursor.execute(
        POSITION_SQL.format(
            where_t="" if bot_id is None else f"WHERE q.bot_id = {f}",
            and_p="" if bot_id is None else f"AND p.bot_id = {f}",
        ),
        params * 2,
    )
    for bot, position, status, qty, fill_qty, closed_qty, d_pnl, d_fees, margin in cursor:
        found.append(Violation(
            "position", bot,
            f"{status} position {position}: quantity {_fmt(qty)}, closing fills {_fmt(fill_qty)}, "
            f"closed_quantity {_fmt(closed_qty)}, PnL off by {_fmt(d_pnl)}, fees off by "
            f"{_fmt(d_fees)}, margin {_fmt(margin)}",
        ))  # fmt: skip
    cursor.execute(
        DUPLICATE_SQL.format(where_t="" if bot_id is None else f"WHERE bot_id = {f}"), params
    )
    for bot, order_id, count in cursor.fetchall():
        found.append(Violation("duplicate_fill", bot, f"client_order_id {order_id!r} x{count}"))
    cursor.execute(
        SNAPSHOT_SQL.format(and_s="" if bot_id is None else f"AND s.bot_id = {f}"), params
    )
    for bot, taken_at, margin in cursor.fetchall():
        found.append(Violation("snapshot", bot, f"snapshot at {taken_at.isoformat()} implies a "
                               f"negative margin {_fmt(margin)}"))  # fmt: skip
    if bot_id is None:
        cursor.execute(ACCOUNT_SQL.format(where_o=""))
        for owner, taken_at, difference in cursor.fetchall():
            found.append(Violation(
                "snapshot", None,
                f"owner {owner}: summed equity at {taken_at.isoformat()} differs from its bots' "
                f"newest snapshots by {_fmt(difference)}",
            ))  # fmt: skip
    return found


def check_ledger(*, bot_id: int | None = None) -> list[Violation]:
    """``ledger_violations`` on Django's connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        return ledger_violations(cursor, bot_id=bot_id)
