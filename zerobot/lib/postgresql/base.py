"""Django's PostgreSQL backend, but the pool checks a connection without a round trip.

With ``CONN_HEALTH_CHECKS`` Django gives the pool ``ConnectionPool.check_connection``, which runs
an empty statement on every checkout: one more round trip per request, as many as the token
lookup itself (PERFORMANCE.md, "Fixed cost per request"). An idle pooled connection has nothing
to read; a server that restarts or ends the session sends its FATAL message and closes the
socket, which makes it readable. ``check_idle_connection`` therefore polls the socket without
waiting and makes the full check only when something is there (or libpq already knows the
connection is bad), so a restart still costs no failed request (``tests/faults``).
"""

from __future__ import annotations

import select
from typing import Any

from django.db.backends.postgresql import base
from psycopg import OperationalError, pq
from psycopg_pool import ConnectionPool


def check_idle_connection(conn: Any) -> None:
    """Raise if the pooled connection is unusable; a round trip only if its socket is readable."""
    if conn.closed or conn.pgconn.status != pq.ConnStatus.OK:
        raise OperationalError("the pooled connection is closed")
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN | select.POLLPRI)
    if poller.poll(0):  # data, EOF or an error pending: let a real statement decide
        ConnectionPool.check_connection(conn)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self) -> Any:
        pool = super().pool
        # Django passes ConnectionPool.check_connection when CONN_HEALTH_CHECKS is on; the pool
        # keeps it as ``_check`` (psycopg_pool 3.3, pinned; zerobot/tests/test_db.py checks it).
        if pool is not None and pool._check is ConnectionPool.check_connection:
            pool._check = check_idle_connection
        return pool
