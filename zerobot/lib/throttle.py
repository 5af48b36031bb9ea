"""Rate limits that hold when the cache does not: client identity, Redis counters, local fallback.

- **Who is the client**: ``REMOTE_ADDR``, or with ``TRUSTED_PROXIES=N`` (N proxies of ours in
  front) the address the outermost of them saw: the N-th ``X-Forwarded-For`` entry from the
  right. Entries to the left of it are written by the client and never trusted, so rotating the
  header gives no fresh identity.
- **Counters**: one Redis key per scope, client and fixed window, ``INCR`` + ``EXPIRE`` in one
  pipeline (atomic: concurrent attempts cannot both read "19"), expiring with its window, so the
  keys cannot accumulate.
- **Fail closed**: when Redis is down, hung or its circuit is open, the same limit is counted in
  process memory (``LocalLimiter``): per process instead of global, but never unlimited.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from zerobot.lib.redis_client import shared_redis

logger = logging.getLogger("zerobot.throttle")
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def client_ip(request: HttpRequest) -> str:
    """The client's address as our outermost trusted proxy saw it (module docstring)."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = settings.TRUSTED_PROXIES
    if proxies <= 0:
        return remote
    forwarded = [item.strip() for item in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [item for item in forwarded if item]
    if not forwarded:
        return remote
    candidate = forwarded[-min(proxies, len(forwarded))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote  # a proxy of ours never writes garbage: do not trust this header


def parse_rate(rate: str) -> tuple[int, int]:
    """``"20/minute"`` -> (20, 60); DRF's syntax (the unit's first letter counts)."""
    try:
        count, period = rate.split("/")
        number, seconds = int(count), PERIODS[period.strip()[0].lower()]
    except (ValueError, KeyError, IndexError):
        raise ValueError(f"{rate!r} is not a rate such as 20/minute.") from None
    if number < 1:
        raise ValueError(f"{rate!r}: the count must be at least 1.")
    return number, seconds


class LocalLimiter:
    """Fixed-window counters in process memory, for when the shared store is unavailable.

    Bounded: at most ``max_keys`` clients per window; past that, new clients are refused (the
    limiter fails closed rather than growing), and each new window starts empty.
    """

    def __init__(self, max_keys: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._window: dict[tuple[str, int], int] = {}
        self._max_keys = max_keys

    def hit(self, key: str, limit: int, period: int, now: float) -> int:
        """The number of hits in this window, this one included."""
        window = int(now // period)
        with self._lock:
            stale = [k for k in self._window if k[1] != window and k[0].endswith(f"|{period}")]
            for k in stale:
                del self._window[k]
            slot = (f"{key}|{period}", window)
            if slot not in self._window and len(self._window) >= self._max_keys:
                return limit + 1
            self._window[slot] = count = self._window.get(slot, 0) + 1
            return count

    def undo(self, key: str, period: int, window: int) -> None:
        """Take back one hit of ``window`` (never below zero; nothing once the window is gone)."""
        slot = (f"{key}|{period}", window)
        with self._lock:
            if self._window.get(slot, 0) > 0:
                self._window[slot] -= 1

    def clear(self) -> None:
        with self._lock:
            self._window.clear()


local_limiter = LocalLimiter()


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int
    limit: int
    retry_after: int  # seconds until the window ends
    fallback: bool  # counted in process memory: the shared store was unavailable
    window: int = 0  # the window counted in (for ``undo``)


def hit(scope: str, ident: str, rate: str, *, now: float | None = None) -> Verdict:
    """Count one attempt of ``ident`` in ``scope`` against ``rate``."""
    limit, period = parse_rate(rate)
    now = time.time() if now is None else now
    window = int(now // period)
    retry_after = max(1, int((window + 1) * period - now))
    key = f"throttle:{scope}:{ident}:{period}:{window}"
    fallback = False
    count: int | None = None
    try:
        client = shared_redis()
        if client is not None:
            pipe = client.pipeline(transaction=True)
            pipe.incr(f"{settings.CACHE_KEY_PREFIX}:{key}")
            pipe.expire(f"{settings.CACHE_KEY_PREFIX}:{key}", period + 1)
            count = int(pipe.execute()[0])
        else:  # local-memory cache (development): in-process anyway
            cache.add(key, 0, period + 1)
            count = cache.incr(key)
    except Exception as exc:  # Redis down, hung (socket timeout) or its circuit open
        logger.warning("throttle store unavailable, counting locally: %s", exc)
        count = None
    if count is None:
        fallback = True
        count = local_limiter.hit(f"{scope}:{ident}", limit, period, now)
    return Verdict(count <= limit, count, limit, retry_after, fallback, window)


_DECR_IF_EXISTS = (
    "if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end"
)


def undo(scope: str, ident: str, rate: str, verdict: Verdict) -> None:
    """Take back the attempt ``hit`` counted as ``verdict``, in the store and window it was
    counted in: for limits on failures that count every attempt first (so a concurrent burst
    cannot slip past the limit) and give back the ones that succeeded."""
    _, period = parse_rate(rate)
    key = f"throttle:{scope}:{ident}:{period}:{verdict.window}"
    if not verdict.fallback:
        try:
            client = shared_redis()
            if client is not None:  # only while the window's key lives: no stray -1 without TTL
                client.eval(_DECR_IF_EXISTS, 1, f"{settings.CACHE_KEY_PREFIX}:{key}")
            else:
                cache.decr(key)
            return
        except ValueError:  # local memory: the window's key expired meanwhile
            return
        except Exception as exc:  # Redis went away since the hit: the count stays (fails closed)
            logger.warning("throttle store unavailable, attempt not taken back: %s", exc)
            return
    local_limiter.undo(f"{scope}:{ident}", period, verdict.window)
