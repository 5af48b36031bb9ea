"""Read-through cache for market data and indicators, over Django's cache API (django-redis).

Values are pre-rendered JSON bytes (cheaper to store and serve than pickled objects, FACTS.md).
Two namespaces with their own TTL: ``market`` (OHLCV, tickers, funding rates:
``MARKET_DATA_CACHE_TTL``, 5 min) and ``indicators`` (``INDICATOR_CACHE_TTL``, 15 min).

**Versioned keys.** A key names what it holds, ``{namespace}:{exchange}:{symbol}:{timeframe}:
{indicator}:{params}`` (``limit`` is a parameter, so 200 and 500 candles never collide), followed by
two version tokens: the global epoch (``md:ver:all``) and its scope's version (one per series
``exchange:symbol:timeframe``, one per symbol's ticker, one per symbol's funding rate).
Invalidating a scope writes a new random token; the old keys are never read again and expire by
TTL. A new token (not an incremented counter) cannot collide with keys left from before a lost
version key. Each process remembers the tokens it last saw, so a read is **one MGET** of the
epoch, the scope version and the value keys built from the remembered tokens; only when a token
has moved does it take a second round trip.

**Single flight**, on two levels. In a process, the threads that miss the same key wait on one
``threading.Event`` while one of them goes on (no polling; they share its value or its error).
Across processes, that thread takes a Redis lock (``SET NX PX`` via ``cache.add``, TTL
``MARKET_CACHE_LOCK_TIMEOUT``), checks the value once more (another holder may have stored it
since our read) and computes and stores it; the other processes poll the value and the lock in
one MGET with exponential back-off (2 to 25 ms). If the lock disappears without a value (the
computation failed), the next waiter takes over; after a whole lock timeout a waiter computes
itself. Every lock call is guarded: with Redis down, ``cache.add`` returns ``None``
(IGNORE_EXCEPTIONS) and the caller computes directly, without storing. An invalidation made
while Redis is unreachable is lost: what was cached before the outage lives out its TTL.

A computation that itself stores new candles (a read-through fill) moves its series' version;
its value is then stored under the new version too, so the fill does not cost a second one.

**Counts.** Every read goes to ``monitoring.context.note_cache`` (in-process, per request) and to
process-local counters (hit, miss, compute per namespace) that are flushed to Redis with one
pipelined INCRBY every 5 s or 1,000 reads, whichever comes first, and at exit: no round trip on
the hot path; ``manage.py cache_stats`` sums them over all processes (up to 5 s behind).
"""

from __future__ import annotations

import atexit
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.dispatch import Signal

from monitoring.context import note_cache

logger = logging.getLogger(__name__)

MARKET = "market"
INDICATORS = "indicators"
NAMESPACES = (MARKET, INDICATORS)
EPOCH = "md:ver:all"
FLUSH_EVERY_SECONDS = 5.0
FLUSH_EVERY_READS = 1_000
_POLL_FIRST, _POLL_MAX = 0.002, 0.025

# Sent after each computation (a miss this process computed): namespace=, name= (the key
# without versions), key= (the versioned key, or the name when Redis was unreachable).
computed = Signal()

Compute = Callable[[], bytes]


@dataclass(frozen=True, slots=True)
class CacheKey:
    """``name`` identifies the value; ``scope`` is the version that invalidates it."""

    namespace: str
    name: str
    scope: str


def ttl_for(namespace: str) -> int:
    if namespace == INDICATORS:
        return settings.INDICATOR_CACHE_TTL
    return settings.MARKET_DATA_CACHE_TTL


def _version_key(scope: str) -> str:
    return f"md:ver:{scope}"


def _new_token() -> int:
    return secrets.randbits(48)


# Version tokens this process last saw (version key -> token). Only a guess: every read checks it.
_known: dict[str, int] = {}
# Version tokens this thread wrote, so a computation can tell that it moved its own scope.
_local = threading.local()


def _bumped_here() -> dict[str, int]:
    bumped = getattr(_local, "bumped", None)
    if bumped is None:
        bumped = _local.bumped = {}
    return bumped


class _Counters:
    """Process-local hit/miss/compute counts per namespace, flushed to Redis in batches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Counter[tuple[str, str]] = Counter()
        self._reads = 0
        self._flushed_at = time.monotonic()

    def add(self, namespace: str, field: str) -> bool:
        """Count one event; True when it is time to flush."""
        with self._lock:
            self._pending[namespace, field] += 1
            if field != "compute":
                self._reads += 1
            return (
                self._reads >= FLUSH_EVERY_READS
                or time.monotonic() - self._flushed_at >= FLUSH_EVERY_SECONDS
            )

    def take(self) -> Counter[tuple[str, str]]:
        with self._lock:
            pending, self._pending = self._pending, Counter()
            self._reads = 0
            self._flushed_at = time.monotonic()
            return pending


_counters = _Counters()


def _stats_key(namespace: str, field: str) -> str:
    return f"md:stats:{namespace}:{field}"


def redis_client(backend: BaseCache) -> Any | None:
    """The raw redis-py client behind a django-redis backend, else None (local memory)."""
    client = getattr(backend, "client", None)
    get_client = getattr(client, "get_client", None)
    return get_client(write=True) if get_client else None


def flush_stats(backend: BaseCache | None = None) -> None:
    """Add this process's pending counts to the shared ones: one pipelined round trip."""
    pending = _counters.take()
    if not pending:
        return
    backend = backend if backend is not None else caches["default"]
    try:
        client = redis_client(backend)
        if client is not None:
            pipe = client.pipeline(transaction=False)
            for (namespace, field), n in pending.items():
                pipe.incrby(backend.make_key(_stats_key(namespace, field)), n)
            pipe.execute()
        else:
            for (namespace, field), n in pending.items():
                key = _stats_key(namespace, field)
                backend.add(key, 0, timeout=None)
                backend.incr(key, n)
    except Exception as exc:  # the counts are advisory: never fail a read for them
        logger.warning("market cache stats not flushed (%s): %s", type(exc).__name__, exc)


def read_stats(backend: BaseCache | None = None) -> dict[str, dict[str, int]]:
    """Shared counts: ``{namespace: {"hit": n, "miss": n, "compute": n}}``."""
    backend = backend if backend is not None else caches["default"]
    keys = {(ns, f): _stats_key(ns, f) for ns in NAMESPACES for f in ("hit", "miss", "compute")}
    found = backend.get_many(list(keys.values()))
    result: dict[str, dict[str, int]] = {ns: {} for ns in NAMESPACES}
    for (namespace, field), key in keys.items():
        result[namespace][field] = int(found.get(key) or 0)
    return result


def reset_stats(backend: BaseCache | None = None) -> None:
    _counters.take()
    backend = backend if backend is not None else caches["default"]
    backend.delete_many(
        [_stats_key(ns, f) for ns in NAMESPACES for f in ("hit", "miss", "compute")]
    )


atexit.register(flush_stats)


def _count(namespace: str, field: str, backend: BaseCache) -> None:
    if _counters.add(namespace, field):
        flush_stats(backend)


class _Flight:
    """One in-process computation that other threads of the process wait for."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: bytes | None = None
        self.error: BaseException | None = None


@dataclass(slots=True)
class _Read:
    values: list[bytes | None]
    keys: list[str | None]  # the concrete keys read (None: Redis unreachable)


class MarketCache:
    """The market data cache over a Django cache backend (the default one unless given)."""

    def __init__(self, backend: BaseCache | None = None) -> None:
        self._backend = backend
        self._flights: dict[str, _Flight] = {}
        self._flights_lock = threading.Lock()

    @property
    def backend(self) -> BaseCache:
        return self._backend if self._backend is not None else caches["default"]

    # --- reads ------------------------------------------------------------------------------

    def get_cached(self, key: CacheKey) -> bytes | None:
        return self._read([key]).values[0]

    def get_or_compute(self, key: CacheKey, compute: Compute) -> tuple[bytes, bool]:
        """``(value, hit)``: the cached value, or ``compute()``'s, computed once across processes."""
        return self.get_or_compute_many([(key, compute)])[0]

    def get_or_compute_many(
        self, items: Sequence[tuple[CacheKey, Compute]]
    ) -> list[tuple[bytes, bool]]:
        """Like ``get_or_compute`` for several keys, read in one round trip."""
        read = self._read([key for key, _ in items])
        results = []
        for (key, compute), value, concrete in zip(items, read.values, read.keys, strict=True):
            if value is not None:
                results.append((value, True))
            else:
                results.append((self._compute_once(key, concrete, compute), False))
        return results

    def _read(self, keys: Sequence[CacheKey]) -> _Read:
        backend = self.backend
        version_keys = [EPOCH, *dict.fromkeys(_version_key(k.scope) for k in keys)]
        guessed = {v: _known.get(v) for v in version_keys}
        concrete = [self._concrete(k, guessed) for k in keys]
        found = backend.get_many(version_keys + [c for c in concrete if c is not None])
        current = {v: found.get(v) for v in version_keys}
        if current != guessed or None in current.values():
            resolved = self._resolve(current)
            if resolved is None:  # Redis unreachable: every key is a miss, nothing is stored
                self._note(keys, [None] * len(keys))
                return _Read([None] * len(keys), [None] * len(keys))
            _known.update(resolved)
            concrete = [self._concrete(k, resolved) for k in keys]
            found = backend.get_many(concrete)  # type: ignore[arg-type]
        values = [found.get(c) for c in concrete]
        self._note(keys, values)
        return _Read(values, concrete)  # type: ignore[arg-type]

    def _resolve(self, current: dict[str, Any]) -> dict[str, int] | None:
        """Fill in missing version keys (first use, or lost): a fresh token, unless another
        process set one first. None when Redis does not answer."""
        resolved = {}
        backend = self.backend
        for key, token in current.items():
            if token is None:
                token = _new_token()
                added = backend.add(key, token, timeout=None)
                if added is None:
                    return None
                if not added:
                    token = backend.get(key)
                    if token is None:
                        return None
            resolved[key] = int(token)
        return resolved

    @staticmethod
    def _concrete(key: CacheKey, versions: dict[str, int | None]) -> str | None:
        epoch, scope = versions.get(EPOCH), versions.get(_version_key(key.scope))
        if epoch is None or scope is None:
            return None
        return f"{key.namespace}:{key.name}:{epoch:x}.{scope:x}"

    def _note(self, keys: Sequence[CacheKey], values: Sequence[bytes | None]) -> None:
        backend = self.backend
        for key, value in zip(keys, values, strict=True):
            hit = value is not None
            note_cache(key.namespace, hit)
            _count(key.namespace, "hit" if hit else "miss", backend)

    # --- misses: single flight --------------------------------------------------------------

    def _compute_once(self, key: CacheKey, concrete: str | None, compute: Compute) -> bytes:
        """In-process first: one thread per key computes or waits on Redis, the others of this
        process wait on an Event (no polling) and share its value or its exception."""
        if concrete is None:
            return self._compute(key, None, compute)
        with self._flights_lock:
            flight = self._flights.get(concrete)
            leader = flight is None
            if leader:
                flight = self._flights[concrete] = _Flight()
        if not leader:
            if flight.done.wait(timeout=2 * settings.MARKET_CACHE_LOCK_TIMEOUT):
                if flight.error is not None:
                    raise flight.error
                return flight.value  # type: ignore[return-value]
            return self._compute_shared(key, concrete, compute)
        try:
            flight.value = self._compute_shared(key, concrete, compute)
            return flight.value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._flights_lock:
                del self._flights[concrete]
            flight.done.set()

    def _compute_shared(self, key: CacheKey, concrete: str, compute: Compute) -> bytes:
        """Across processes: the Redis lock holder computes, the others poll with back-off."""
        lock = f"md:lock:{concrete}"
        acquired = self._acquire(lock)
        if acquired is None:
            return self._compute(key, None, compute)
        if acquired:
            return self._compute_locked(key, concrete, lock, compute)
        timeout = settings.MARKET_CACHE_LOCK_TIMEOUT
        deadline = time.monotonic() + timeout
        delay = _POLL_FIRST
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)
            found = self.backend.get_many([concrete, lock])
            if concrete in found:
                return found[concrete]
            if lock not in found:  # the holder failed (or its lock expired): take over
                acquired = self._acquire(lock)
                if acquired is None:
                    return self._compute(key, None, compute)
                if acquired:
                    return self._compute_locked(key, concrete, lock, compute)
        logger.warning("waited %.1f s for %s to be computed; computing it here", timeout, concrete)
        return self._compute(key, concrete, compute)

    def _acquire(self, lock: str) -> bool | None:
        """True: ours; False: someone else's; None: Redis did not answer (compute directly)."""
        try:
            return self.backend.add(lock, 1, timeout=settings.MARKET_CACHE_LOCK_TIMEOUT)
        except Exception as exc:  # IGNORE_EXCEPTIONS covers connection errors; anything else too
            logger.warning("market cache lock %s failed (%s): %s", lock, type(exc).__name__, exc)
            return None

    def _compute_locked(self, key: CacheKey, concrete: str, lock: str, compute: Compute) -> bytes:
        started = time.monotonic()
        try:
            # Stored by the previous holder between our read and our lock: do not redo it.
            stored = self.backend.get(concrete)
            if stored is not None:
                return stored
            return self._compute(key, concrete, compute)
        finally:
            # Past its TTL the lock may already be another caller's: leave it to expire.
            if time.monotonic() - started < settings.MARKET_CACHE_LOCK_TIMEOUT:
                try:
                    self.backend.delete(lock)
                except Exception as exc:
                    logger.warning("market cache unlock %s failed: %s", lock, exc)

    def _compute(self, key: CacheKey, concrete: str | None, compute: Compute) -> bytes:
        version_key = _version_key(key.scope)
        bumped_before = _bumped_here().get(version_key)
        value = compute()
        if not isinstance(value, bytes):
            raise TypeError(f"cache values are bytes, got {type(value).__name__} for {key}")
        _count(key.namespace, "compute", self.backend)
        computed.send(
            sender=MarketCache, namespace=key.namespace, name=key.name, key=concrete or key.name
        )
        if concrete is None:
            return value
        targets = [concrete]
        # The computation itself stored new data and moved the scope's version (a read-through
        # fill of new candles). What it read after that is current for the new version too:
        # store it there as well, or the next reader would compute the same thing again.
        bumped_after = _bumped_here().get(version_key)
        if bumped_after is not None and bumped_after != bumped_before:
            fresh = self._concrete(key, {**_known, version_key: bumped_after})
            if fresh is not None:
                targets.append(fresh)
        ttl = ttl_for(key.namespace)
        try:
            self.backend.set_many(dict.fromkeys(targets, value), timeout=ttl)
        except Exception as exc:
            logger.warning("market cache set %s failed: %s", concrete, exc)
        return value

    # --- writes -----------------------------------------------------------------------------

    def set_cached(self, key: CacheKey, value: bytes, ttl: int | None = None) -> None:
        """Store ``value`` under the current versions of ``key``'s scope."""
        versions = self._current_versions([key.scope])
        if versions is None:
            return
        concrete = self._concrete(key, versions)
        if concrete is not None:
            self.backend.set(
                concrete, value, timeout=ttl if ttl is not None else ttl_for(key.namespace)
            )

    def _current_versions(self, scopes: Iterable[str]) -> dict[str, int] | None:
        version_keys = [EPOCH, *(_version_key(s) for s in scopes)]
        found = self.backend.get_many(version_keys)
        resolved = self._resolve({v: found.get(v) for v in version_keys})
        if resolved is not None:
            _known.update(resolved)
        return resolved

    # --- invalidation -----------------------------------------------------------------------

    def invalidate(self, scopes: Iterable[str]) -> None:
        """New versions for these scopes (one round trip): their cached values are unreachable."""
        tokens = {_version_key(scope): _new_token() for scope in scopes}
        if tokens:
            self.backend.set_many(tokens, timeout=None)
            _known.update(tokens)
            _bumped_here().update(tokens)

    def invalidate_all(self) -> None:
        """A new epoch: every market data and indicator value is unreachable."""
        token = _new_token()
        self.backend.set(EPOCH, token, timeout=None)
        _known[EPOCH] = token


def scope_series(exchange: str, symbol: str, timeframe: str) -> str:
    return f"{exchange}:{symbol}:{timeframe}"


def scope_ticker(exchange: str, symbol: str) -> str:
    return f"{exchange}:{symbol}:ticker"


def scope_funding(exchange: str, symbol: str) -> str:
    return f"{exchange}:{symbol}:funding"
