"""The ledger invariant, checked in SQL after fault and concurrency tests.

Per bot: capital = initial_capital + sum(realized PnL of its fills) - sum(fees) - margin of its
open positions, and capital is never negative.
"""

from __future__ import annotations

from typing import Any

LEDGER_SQL = """
SELECT b.id, b.capital, b.initial_capital + COALESCE(t.pnl, 0) - COALESCE(t.fees, 0)
       - COALESCE(p.margin, 0)
FROM trading_bot b
LEFT JOIN (SELECT bot_id, SUM(realized_pnl) pnl, SUM(fee) fees FROM trading_trade
           GROUP BY bot_id) t ON t.bot_id = b.id
LEFT JOIN (SELECT bot_id, SUM(margin) margin FROM trading_position WHERE status = 'open'
           GROUP BY bot_id) p ON p.bot_id = b.id
WHERE b.capital <> b.initial_capital + COALESCE(t.pnl, 0) - COALESCE(t.fees, 0)
                   - COALESCE(p.margin, 0)
   OR b.capital < 0
"""


def ledger_violations(cursor: Any) -> list[tuple]:
    cursor.execute(LEDGER_SQL)
    return list(cursor.fetchall())


def assert_ledger_holds(cursor: Any = None) -> None:
    """Against Django's connection, or a raw DB-API cursor (a private server in fault tests)."""
    if cursor is None:
        from django.db import connection

        with connection.cursor() as django_cursor:
            violations = ledger_violations(django_cursor)
    else:
        violations = ledger_violations(cursor)
    assert not violations, f"ledger broken (bot, capital, expected): {violations[:10]}"
