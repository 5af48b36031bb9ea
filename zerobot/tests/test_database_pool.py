"""The psycopg pool is really used: many request cycles share a bounded set of server backends."""

from __future__ import annotations

import threading

import pytest
from django.core.signals import request_finished, request_started
from django.db import connection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

THREADS = 8
REQUESTS_PER_THREAD = 50
QUERIES_PER_REQUEST = 3


def _request_cycle(pids: set[int], lock: threading.Lock) -> None:
    """What Django does for each HTTP request: the signals around it close (= return) the
    connection, which with CONN_MAX_AGE=0 and the pool means 'put it back in the pool'."""
    for _ in range(REQUESTS_PER_THREAD):
        request_started.send(sender=None)
        for _ in range(QUERIES_PER_REQUEST):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            with lock:
                pids.add(pid)
        request_finished.send(sender=None)
    connection.close()


def test_requests_reuse_a_bounded_set_of_pooled_connections() -> None:
    pool = connection.pool
    assert pool is not None, "DATABASES['default']['OPTIONS']['pool'] is not set"
    connection.close()
    pool.get_stats()  # reset the pool's counters (get_stats() resets, pop_stats() too)
    pool.pop_stats()
    pids: set[int] = set()
    lock = threading.Lock()
    threads = [threading.Thread(target=_request_cycle, args=(pids, lock)) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stats = pool.get_stats()
    requests = THREADS * REQUESTS_PER_THREAD
    queries = requests * QUERIES_PER_REQUEST
    print(  # reported by `pytest -s`; the figure quoted in PERFORMANCE.md
        f"\n{requests} request cycles, {queries} queries -> {len(pids)} distinct server backends; "
        f"pool stats: {stats}"
    )
    # Every query ran on one of at most max_size backends, and every request borrowed from the
    # pool instead of connecting: far fewer backends than requests (a connection per request
    # would give ~400 pids, one per query ~1,200).
    assert len(pids) <= pool.max_size
    assert len(pids) <= THREADS + pool.min_size
    assert stats["requests_num"] >= requests
    assert stats.get("connections_num", 0) <= pool.max_size


def test_each_request_sees_one_backend_for_all_its_queries() -> None:
    """Within a request the connection is held: its queries share one backend (and transaction)."""
    request_started.send(sender=None)
    seen = set()
    for _ in range(5):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            seen.add(cursor.fetchone()[0])
    request_finished.send(sender=None)
    assert len(seen) == 1
