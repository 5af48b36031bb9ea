"""Fault tests: a real gunicorn on private PostgreSQL and Redis servers that the tests exhaust,
restart, stop and hang. Run with ``make faults`` (``.ci/run`` does); figures are printed (-s)
and quoted in PERFORMANCE.md, "Reliability". Every test ends with the ledger check.

No wall-clock asserts: latencies and recovery times are printed, the asserts are about answers
(never a 500, 503 + Retry-After while the database is unavailable, no acknowledged write lost,
the login throttle holding without Redis) and about the data.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.faults.servers import PrivatePostgres, PrivateRedis, Server, django_env, manage
from tests.ledger import assert_ledger_holds

pytestmark = [pytest.mark.faults]

SETUP = """
import json
from decimal import Decimal
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from accounts.services import token_create
from trading import services
user = get_user_model().objects.create_user(
    "alice", email="alice@example.com", password="alice-pass-123", is_staff=True,
    is_superuser=True)
bot = services.bot_create(owner=user, name="faults", strategy="momentum",
                          initial_capital=Decimal("1000000"), symbols=["BTC/USDT"])
bot = services.bot_set_status(bot=bot, status="active")  # only an active bot opens positions
position = services.position_open(bot=bot, symbol="BTC/USDT", side="long", quantity="100000",
                                  price="1", client_order_id="open-1")
session = SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
print(json.dumps({"token": token_create(user=user).key, "position": position.pk,
                  "session": session.session_key}))
"""


class Stack:
    def __init__(self, pg: PrivatePostgres, redis: PrivateRedis, data: dict[str, Any]) -> None:
        self.pg, self.redis, self.data = pg, redis, data

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.data['token']}"}

    def ledger_check(self) -> None:
        with self.pg.connect() as conn, conn.cursor() as cursor:
            assert_ledger_holds(cursor)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    pg, redis = PrivatePostgres(), PrivateRedis()
    try:
        pg.start()
        redis.start()
        env = django_env(pg, redis)
        manage(env, "migrate", "--noinput", "-v", "0")
        data = json.loads(manage(env, "shell", "-c", SETUP).strip().splitlines()[-1])
        yield Stack(pg, redis, data)
    finally:  # restore: both private servers stopped and deleted, whatever happened
        redis.stop()
        pg.stop()


@pytest.fixture
def server_log(tmp_path: Path) -> Path:
    return tmp_path / "gunicorn.log"


def test_exhausted_pool_answers_503_never_500(stack: Stack, server_log: Path) -> None:
    """Pool of 1, four API requests stuck behind a lock, then two admin pages: 503s."""
    env = django_env(
        stack.pg, stack.redis, DB_POOL_MIN_SIZE="1", DB_POOL_MAX_SIZE="1", DB_POOL_TIMEOUT="1",
        DB_STATEMENT_TIMEOUT_MS="2000", GUNICORN_THREADS="6",
    )  # fmt: skip
    server = Server(env, server_log).start()
    lock = stack.pg.connect()
    try:
        lock.autocommit = False
        lock.execute("LOCK TABLE trading_bot IN ACCESS EXCLUSIVE MODE")
        admin = {"Cookie": f"sessionid={stack.data['session']}"}
        with ThreadPoolExecutor(6) as pool:
            api = [pool.submit(server.request, "GET", "/api/bots/", None, stack.headers())
                   for _ in range(4)]  # fmt: skip
            time.sleep(0.3)  # the API requests hold or wait for the only connection
            pages = [pool.submit(server.request, "GET", path, None, admin)
                     for path in ("/admin/", "/admin/monitoring/")]  # fmt: skip
            answers = [f.result() for f in api + pages]
        lock.rollback()
        statuses = [status for status, _, _ in answers]
        print(f"\npool of 1, 4 slow API requests + 2 admin pages: {Counter(statuses)}")
        assert all(status in (200, 503) for status in statuses), statuses
        assert statuses[4:] == [503, 503]  # the admin too
        assert statuses[:4].count(503) >= 3
        for status, headers, _ in answers:
            if status == 503:
                assert headers.get("Retry-After") == "1"
        assert json.loads(answers[0][2])["code"] == "unavailable"
        assert server.request("GET", "/api/bots/", None, stack.headers())[0] == 200  # recovered
    finally:
        lock.close()
        server.stop()
    assert "Traceback" not in server_log.read_text()
    stack.ledger_check()


def test_postgres_fast_restart_during_a_write_loop(stack: Stack, server_log: Path) -> None:
    """Closes with client_order_ids, retried on 503 or a dropped connection, while PostgreSQL
    restarts: every acknowledged write is there once, the worker process is the same."""
    env = django_env(stack.pg, stack.redis, DB_POOL_TIMEOUT="2", GUNICORN_THREADS="2")
    server = Server(env, server_log).start()
    path = f"/api/positions/{stack.data['position']}/close/"
    try:
        pid_before = json.loads(server.request("GET", "/healthz")[2])["pid"]
        restarted = threading.Event()
        restart_seconds: list[float] = []

        def restart() -> None:
            time.sleep(0.5)
            started = time.monotonic()
            stack.pg.restart_fast()
            restart_seconds.append(time.monotonic() - started)
            restarted.set()

        thread = threading.Thread(target=restart)
        thread.start()
        acked: list[str] = []
        statuses: Counter = Counter()
        outage_started: float | None = None
        outages: list[float] = []
        i = 0
        deadline = time.monotonic() + 60
        while (not restarted.is_set() or len(acked) < 40 or i < 40) and time.monotonic() < deadline:
            order = f"w{i}"
            while time.monotonic() < deadline:
                try:
                    status, _, body = server.request(
                        "POST", path, {"quantity": "1", "client_order_id": order}, stack.headers(),
                        timeout=10,
                    )  # fmt: skip
                except OSError:
                    status = 0  # connection dropped: retry the same order
                statuses[status] += 1
                if status == 200:
                    acked.append(order)
                    if outage_started is not None:
                        outages.append(time.monotonic() - outage_started)
                        outage_started = None
                    break
                assert status in (0, 503), (status, body[:300])
                if outage_started is None:
                    outage_started = time.monotonic()
                time.sleep(0.05)
            i += 1
            if restarted.is_set() and len(acked) >= 40 and i >= 40:
                break
        thread.join(timeout=60)
        pid_after = json.loads(server.request("GET", "/healthz")[2])["pid"]
    finally:
        server.stop()
    print(
        f"\nPostgreSQL fast restart ({restart_seconds[0]:.2f} s) during {len(acked)} closes: "
        f"answers {dict(statuses)}, unavailable for {', '.join(f'{s:.2f} s' for s in outages)}"
    )
    assert restarted.is_set() and len(acked) == i
    assert pid_after == pid_before  # recovered without a process restart
    with stack.pg.connect() as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT client_order_id, COUNT(*) FROM trading_trade WHERE client_order_id LIKE 'w%%' "
            "GROUP BY client_order_id"
        )
        stored = dict(cursor.fetchall())
        cursor.execute(
            "SELECT closed_quantity FROM trading_position WHERE id = %s", [stack.data["position"]]
        )
        (closed,) = cursor.fetchone()
    assert set(stored) == set(acked) and set(stored.values()) == {1}  # none lost, none twice
    assert closed == len(acked)
    stack.ledger_check()


def test_redis_stopped_then_hung_during_a_request_loop(stack: Stack, server_log: Path) -> None:
    env = django_env(
        stack.pg, stack.redis, REDIS_SOCKET_TIMEOUT="0.25", REDIS_CONNECT_TIMEOUT="0.25",
        AUTH_THROTTLE_RATE="5/minute", GUNICORN_THREADS="2", REDIS_BREAKER_SECONDS="2",
    )  # fmt: skip
    server = Server(env, server_log).start()
    paths = ["/api/dashboard/stats", "/api/bots/", "/api/market/ticker?symbol=BTC/USDT", "/readyz"]
    latencies: dict[str, list[float]] = {}
    readiness: dict[str, set[str]] = {}

    def loop(phase: str, rounds: int) -> None:
        for _ in range(rounds):
            for path in paths:
                started = time.monotonic()
                status, _, body = server.request("GET", path, None, stack.headers())
                latencies.setdefault(phase, []).append(time.monotonic() - started)
                assert 200 <= status < 300, (phase, path, status, body[:300])
                if path == "/readyz":
                    readiness.setdefault(phase, set()).add(json.loads(body)["status"])

    def logins() -> list[int]:
        return [
            server.request("POST", "/api/auth/login",
                           {"username": "alice", "password": "wrong-guess"})[0]
            for _ in range(7)
        ]  # fmt: skip

    try:
        loop("up", 5)
        stack.redis.stop()
        loop("stopped", 10)
        stopped_logins = logins()
        stack.redis.start()  # the same object and port: the fixture's teardown stops this one too
        time.sleep(2.2)  # the circuit closes: the next calls meet the hung server itself
        stack.redis.pause()
        loop("hung", 10)
        hung_logins = logins()
        stack.redis.resume()
        time.sleep(2.2)  # one REDIS_BREAKER_SECONDS: the circuit tries Redis again
        loop("back", 5)
    finally:
        if stack.redis.proc is not None and stack.redis.proc.poll() is None:
            stack.redis.resume()  # never leave it hung, whatever failed
        server.stop()
    for phase, values in latencies.items():
        values.sort()
        print(
            f"\nRedis {phase}: {len(values)} requests, median {values[len(values) // 2] * 1000:.1f}"
            f" ms, max {values[-1] * 1000:.1f} ms, /readyz {sorted(readiness[phase])}"
        )
    print(f"logins (5/minute) with Redis stopped: {stopped_logins}, hung: {hung_logins}")
    assert readiness["up"] == {"ready"} and readiness["back"] == {"ready"}
    assert readiness["stopped"] == {"degraded"} and readiness["hung"] == {"degraded"}
    # Counted in process memory while Redis is unavailable: still 5 guesses, then 429.
    assert stopped_logins == [400] * 5 + [429] * 2
    assert hung_logins[-2:] == [429, 429] and 400 not in hung_logins[5:]
    stack.ledger_check()
