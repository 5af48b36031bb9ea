"""One request budget per exchange and host, shared by the host's processes through Redis.

Venues limit requests per IP, so the budget belongs to the host, not to a process: every process
of the host reserves its next request slot from one Redis key (``md:budget:{exchange}:{host}``)
with an atomic script (GCRA: the key holds the next free slot, in Redis server time, so the
processes' clocks do not matter). A reservation is one round trip and returns how long to wait;
the caller sleeps that long holding no lock. ``pause(seconds)`` (a ``Retry-After``, a ban) moves
the next slot for every process of the host.

Without Redis (local memory cache, or Redis unavailable) each process keeps its own budget with
``WEB_CONCURRENCY`` times the interval, so the processes together stay within the venue's rate.
"""

from __future__ import annotations

import math
import socket
import threading
import time

from django.conf import settings
from django.core.cache import caches

# KEYS[1] the budget; ARGV: interval ms, max wait ms. Returns {slot, now} in ms, or {-1, now}
# when the next slot is further away than the caller may wait (then nothing is reserved).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
if slot - now > tonumber(ARGV[2]) then return {-1, now} end
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[1], slot + interval, 'PX', slot - now + interval + 60000)
return {slot, now}
"""
# KEYS[1] the budget; ARGV[1] pause ms: no slot before now + pause.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
local until_ms = now + tonumber(ARGV[1])
if slot < until_ms then redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]) + 60000) end
return until_ms
"""


class RequestBudget:
    def __init__(self, exchange_id: str, interval_ms: float, *, shared: bool = True) -> None:
        self.exchange_id = exchange_id
        self.interval_ms = max(float(interval_ms), 0.0)
        self.shared = shared
        self.name = f"md:budget:{exchange_id}:{socket.gethostname()}"
        self._lock = threading.Lock()
        self._local_next = 0.0  # monotonic seconds

    def _store(self):
        if not self.shared:
            return None
        from marketdata.cache import store_for

        store = store_for(caches["default"])
        return store if store.redis is not None else None

    def reserve(self, max_wait: float) -> float | None:
        """Seconds to wait before the request may go, or None if that is more than
        ``max_wait`` (nothing reserved then)."""
        from marketdata.cache import StoreUnavailable

        try:
            reserved = self.reserve_shared(max_wait)
        except StoreUnavailable:
            reserved = False  # the local budget below (the outage is logged once by the store)
        if reserved is None:
            return None
        if reserved:
            slot, now = reserved
            return (slot - now) / 1000
        interval = self.interval_ms / 1000 * settings.WEB_CONCURRENCY
        with self._lock:
            now = time.monotonic()
            slot = max(self._local_next, now)
            if slot - now > max_wait:
                return None
            self._local_next = slot + interval
            return slot - now

    def reserve_shared(self, max_wait: float) -> tuple[int, int] | None | bool:
        """The host-wide slot: ``(slot, now)`` in Redis milliseconds, None if further than
        ``max_wait``, False when there is no Redis to share through."""
        store = self._store()
        if store is None:
            return False
        slot, now = store._call(
            lambda: store.redis.eval(
                _RESERVE, 1, store.key(self.name), self.interval_ms, int(max_wait * 1000)
            )
        )
        return None if int(slot) < 0 else (int(slot), int(now))

    def pause(self, seconds: float) -> None:
        """No request from this host before ``seconds`` from now (the venue asked us to wait)."""
        from marketdata.cache import StoreUnavailable

        with self._lock:
            self._local_next = max(self._local_next, time.monotonic() + seconds)
        store = self._store()
        if store is not None:
            try:
                store._call(
                    lambda: store.redis.eval(
                        _PAUSE, 1, store.key(self.name), math.ceil(seconds * 1000)
                    )
                )
            except StoreUnavailable:
                pass
