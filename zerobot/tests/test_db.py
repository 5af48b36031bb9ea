"""The pool's checkout check (zerobot/lib/postgresql): no round trip for a healthy idle
connection, and a connection the server ended is replaced, never handed to a request."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.core.signals import request_finished, request_started
from django.db import connection
from psycopg_pool import ConnectionPool

from zerobot.lib.postgresql import base

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _backend_pid() -> int:
    """One request cycle (the pool lends a connection and takes it back): its backend's pid."""
    request_started.send(sender=None)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]
    finally:
        request_finished.send(sender=None)


def _server_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def test_the_pool_uses_the_idle_check() -> None:
    assert connection.pool is not None
    # psycopg_pool keeps the check as _check (zerobot/lib/postgresql/base.py relies on it).
    assert connection.pool._check is base.check_idle_connection


def test_a_healthy_idle_connection_is_checked_without_a_statement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _backend_pid()
    statements: list[object] = []
    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(statements.append))
    _backend_pid()
    assert statements == []


def test_a_connection_the_server_ended_fails_the_check() -> None:
    """What a restart does to an idle pooled connection: the server sends FATAL and closes the
    socket. (The pool then discards it and lends another: ``make faults``, fast restart.)"""
    with _server_connection() as idle, _server_connection() as admin:
        pid = idle.info.backend_pid
        base.check_idle_connection(idle)  # healthy: passes
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        # pg_terminate_backend only signals: wait until the backend is gone (pg_ctl restart
        # waits the same way), so its FATAL message and EOF are on the socket.
        for _ in range(500):
            gone = not admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]
            ).fetchone()[0]
            if gone:
                break
            time.sleep(0.01)
        with pytest.raises(psycopg.OperationalError):
            base.check_idle_connection(idle)


def test_connections_run_without_jit() -> None:
    """The server's default is jit=on; the dashboard's short statements pay tens of ms of
    compilation for it when a branch that never runs is costed at the whole history."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
