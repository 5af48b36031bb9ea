"""The ledger invariant, checked in SQL after fault and concurrency tests: the checks of
``manage.py check_ledger`` (``trading.ledger``), so tests and operators apply one definition."""

from __future__ import annotations

from typing import Any

from trading.ledger import Violation
from trading.ledger import ledger_violations as _violations


def ledger_violations(cursor: Any) -> list[Violation]:
    return _violations(cursor)


def assert_ledger_holds(cursor: Any = None) -> None:
    """Against Django's connection, or a raw DB-API cursor (a private server in fault tests)."""
    if cursor is None:
        from django.db import connection

        with connection.cursor() as django_cursor:
            violations = _violations(django_cursor)
    else:
        violations = _violations(cursor)
    assert not violations, "ledger broken:\n" + "\n".join(map(str, violations[:10]))
