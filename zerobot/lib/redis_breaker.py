"""A circuit breaker for Redis connections: an unreachable or hung Redis costs one socket
timeout per ``REDIS_BREAKER_SECONDS`` per process, not one per cache call.

Without it a hung Redis (accepting connections, never answering) costs every cache call its full
``REDIS_SOCKET_TIMEOUT``, and a request making five calls waits five times. The first failure
opens the circuit: for ``REDIS_BREAKER_SECONDS`` new connections fail at once (a cache miss, as
every Redis error is with ``IGNORE_EXCEPTIONS``); then one connection is tried again.
Installed as the connection class of the django-redis pool (``settings.CACHES``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from redis.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

_FAILURES = (RedisConnectionError, RedisTimeoutError, OSError)


class Breaker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open_until = 0.0
        self.trips = 0

    def is_open(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) < self.open_until

    def trip(self) -> None:
        seconds = settings.REDIS_BREAKER_SECONDS
        if seconds <= 0:
            return
        with self._lock:
            if not self.is_open():
                self.trips += 1
            self.open_until = time.monotonic() + seconds

    def reset(self) -> None:
        with self._lock:
            self.open_until = 0.0


breaker = Breaker()


class BreakerConnection(Connection):
    def connect(self) -> None:
        if breaker.is_open():
            raise RedisConnectionError("Redis circuit open after a recent failure")
        try:
            super().connect()
        except _FAILURES:
            breaker.trip()
            raise

    def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        if breaker.is_open():  # a connection opened before the failure: do not wait on it
            self.disconnect()
            raise RedisConnectionError("Redis circuit open after a recent failure")
        try:
            super().send_packed_command(*args, **kwargs)
        except _FAILURES:
            breaker.trip()
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except _FAILURES:
            breaker.trip()
            raise
