"""Read-through cache for market data and indicators over Redis (or any Django cache backend).

Two namespaces: ``market`` (OHLCV, candle windows, tickers, funding rates) and ``indicators``.

**Values expire by the candle clock.** A computation returns its bytes *and* the instant they stop
being current (``Computed.expires_at``): for a series, the next candle close plus
``MARKET_DATA_CLOSE_LAG`` seconds, capped by the namespace TTL (``MARKET_DATA_CACHE_TTL``, 5 min;
``INDICATOR_CACHE_TTL``, 15 min); an indicator's expiry is also capped by the candle window it was
computed from. The instant is stored in the value's header and checked against the market data
clock (``timeframes.utcnow``) on every read, so no value is served past it even if Redis still
holds it (the Redis TTL is set to the same instant, to free the memory).

**Stored compressed where that pays.** Values of 1 kB or more are LZ4-compressed when that saves at
least 10% (PERFORMANCE.md, "Value sizes": LZ4 halves a candle window for ~15 us per write and ~3 us
per read; zlib saves 30% more but reads 10x slower).

**Versioned keys.** A key names what it holds (``{namespace}:{exchange}:{symbol}:{timeframe}:
{what}``) followed by two version tokens: the global epoch (``md:ver:all``) and its scope's version
(one per series ``exchange:symbol:timeframe``, one per symbol's ticker, one per funding rate).
Invalidating a scope writes a new random token; old keys are never read again and expire. Each
process remembers the tokens it last saw, so a read is **one MGET** of the epoch, the scope
versions and the values; only when a token moved does it take a second round trip.

**Single flight.** In a process, the threads that miss one key wait on one ``threading.Event``
while one of them goes on (also while Redis is down: then the key's name is the flight). Across
processes that thread takes a Redis lock (``SET NX PX`` with a random token,
``MARKET_CACHE_LOCK_TIMEOUT``) that a keeper thread extends while the computation runs, so a slow
computation never loses its lock to a second one; it checks the value once more, computes, stores
and releases the lock (compare-and-delete). The others poll value and lock in one MGET with back-off
(2 to 25 ms); if the lock disappears without a value (the holder failed or died) the next waiter
takes over; after ``3 x MARKET_CACHE_LOCK_TIMEOUT`` a waiter computes itself.

**Redis down or hung.** Every Redis call goes through ``RedisStore``: an error or timeout becomes
``StoreUnavailable``, is counted, and is logged once per outage (a warning when it starts, a count
every minute while it lasts and when it ends; no traceback per call). After 3 failures in a row a
circuit breaker skips Redis for ``MARKET_CACHE_BREAKER_SECONDS`` (then one call probes it), so a
Redis that accepts connections but never answers costs a few socket timeouts, not one per read.
While Redis is unavailable, values are kept in process memory (bounded, same expiry), so each key
is computed once per process per candle, not once per read. Invalidations made in another process
during the outage are not seen: what this process cached lives out its expiry.

**Decoded values.** ``get_or_compute_many(..., decode=f)`` keeps ``f(value)`` in a bounded
process-wide memo keyed by the versioned key; a read whose versions are unchanged and whose memo
entry has not expired does not transfer the value again (the MGET carries only the versions). The
typed reads (``marketdata.prices``) use it for numpy arrays shared by every bot of the process.

**Counts.** Every read goes to ``monitoring.context.note_cache`` and to process-local counters
(hit, miss, compute per namespace) flushed to Redis with one pipelined INCRBY every 5 s or 1,000
reads and at exit; ``manage.py cache_stats`` sums them over all processes (up to 5 s behind).
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import secrets
import struct
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import lz4.block
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.db import connection
from django.dispatch import Signal

from marketdata import timeframes
from monitoring.context import note_cache

logger = logging.getLogger(__name__)

MARKET = "market"
INDICATORS = "indicators"
NAMESPACES = (MARKET, INDICATORS)
EPOCH = "md:ver:all"
FLUSH_EVERY_SECONDS = 5.0
FLUSH_EVERY_READS = 1_000
_POLL_FIRST, _POLL_MAX = 0.002, 0.025
BREAKER_FAILURES = 3  # consecutive Redis failures that open the circuit breaker
OUTAGE_REPORT_SECONDS = 60.0  # while Redis stays down, one log line per minute with the count
COMPRESS_MIN_BYTES = 1024
MEMO_MAX_BYTES = 64 * 1024 * 1024  # decoded values and outage fallback, per process

# Sent after each computation (a miss this process computed): namespace=, name= (the key without
# versions), key= (the versioned key, or the name when Redis was unavailable), expires_at=.
computed = Signal()


class Computed(NamedTuple):
    """What a computation returns: the value and the instant (Unix seconds, market clock) it
    stops being current."""

    value: bytes
    expires_at: float


Compute = Callable[[], Computed]


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


def now() -> float:
    """The market data clock in Unix seconds (``timeframes.utcnow``, which tests pin)."""
    return timeframes.utcnow().timestamp()


def series_expiry(
    timeframe: str, namespace: str, *, at: float | None = None, offset: int = 0
) -> float:
    """Next candle close after ``at`` plus the close lag, capped by the namespace's TTL
    (``offset``: the series' alignment, e.g. 16 h for daily candles opening at 16:00 UTC)."""
    at = now() if at is None else at
    step = timeframes.timeframe_seconds(timeframe)
    next_close = ((math.floor(at) - offset) // step + 1) * step + offset
    return min(next_close + settings.MARKET_DATA_CLOSE_LAG, at + ttl_for(namespace))


# --- value envelope: codec, expiry --------------------------------------------------------------

_HEADER = struct.Struct(">BBq")  # magic, codec, expires_at in ms
_MAGIC = 0xCD
_RAW, _LZ4 = 0, 1


def encode(value: bytes, expires_at: float) -> bytes:
    codec, body = _RAW, value
    if len(value) >= COMPRESS_MIN_BYTES:
        packed = lz4.block.compress(value)
        if len(packed) <= 0.9 * len(value):
            codec, body = _LZ4, packed
    return _HEADER.pack(_MAGIC, codec, int(expires_at * 1000)) + body


def expiry_of(stored: bytes) -> float | None:
    """The stored value's expiry, or None if it is not one of ours (then it is a miss)."""
    if len(stored) < _HEADER.size:
        return None
    magic, _, expires_ms = _HEADER.unpack_from(stored)
    return expires_ms / 1000 if magic == _MAGIC else None


def decode(stored: bytes) -> bytes:
    _, codec, _ = _HEADER.unpack_from(stored)
    body = memoryview(stored)[_HEADER.size :]
    return lz4.block.decompress(body) if codec == _LZ4 else bytes(body)


def _fresh(stored: bytes | None, at: float) -> bool:
    if stored is None:
        return False
    expires_at = expiry_of(stored)
    return expires_at is not None and at < expires_at


# --- versions ------------------------------------------------------------------------------------


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


def release_db_connection() -> None:
    """Hand this thread's pooled database connection back before waiting on the cache or an
    exchange (not inside a transaction: there the connection must stay)."""
    if connection.connection is not None and not connection.in_atomic_block:
        connection.close()


# --- counters -----------------------------------------------------------------------------------


class _Counters:
    """Process-local hit/miss/compute counts per namespace, flushed to Redis in batches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Counter[tuple[str, str]] = Counter()
        self._reads = 0
        self._flushed_at = time.monotonic()

    def add(self, namespace: str, field: str, n: int = 1) -> bool:
        """Count events; True when it is time to flush."""
        with self._lock:
            self._pending[namespace, field] += n
            if field != "compute":
                self._reads += n
            return (
                self._reads >= FLUSH_EVERY_READS
                or time.monotonic() - self._flushed_at >= FLUSH_EVERY_SECONDS
            )

    def restore(self, pending: Counter[tuple[str, str]]) -> None:
        """Put back counts that could not be flushed (the next try waits for the usual trigger)."""
        with self._lock:
            self._pending.update(pending)

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
    store = store_for(backend)
    if store.health.down:  # keep them for when Redis answers again (no call, no log line)
        _counters.restore(pending)
        return
    try:
        store.incr_many({_stats_key(ns, field): n for (ns, field), n in pending.items()})
    except StoreUnavailable:
        pass  # the counts are advisory; the outage is logged by the store


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


def _count(namespace: str, field: str, backend: BaseCache, n: int = 1) -> None:
    if _counters.add(namespace, field, n):
        flush_stats(backend)


# --- the store: Redis calls, errors, circuit breaker ----------------------------------------------


class StoreUnavailable(Exception):
    """Redis did not answer (error, timeout, or the circuit breaker is open)."""


class _Health:
    """Failure accounting for one store: the circuit breaker and the once-per-outage log."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._lock = threading.Lock()
        self.consecutive = 0
        self.open_until = 0.0
        self.outage_started: float | None = None
        self.errors = 0  # in the current outage
        self.reported_at = 0.0
        self.skipped = 0  # calls the open breaker answered without I/O

    def allow(self) -> bool:
        with self._lock:
            at = time.monotonic()
            if at < self.open_until:
                self.skipped += 1
                return False
            if self.consecutive >= BREAKER_FAILURES:
                # Half-open: this caller probes; the others keep skipping until it answers.
                self.open_until = at + settings.MARKET_CACHE_BREAKER_SECONDS
            return True

    @property
    def down(self) -> bool:
        return self.outage_started is not None

    def success(self) -> None:
        if self.outage_started is None and not self.consecutive:
            return
        with self._lock:
            if self.outage_started is not None:
                logger.warning(
                    "market cache: Redis (%s) answers again after %.1f s; %d failed call(s) "
                    "and %d skipped by the circuit breaker meanwhile",
                    self.label, time.monotonic() - self.outage_started, self.errors, self.skipped,
                )  # fmt: skip
            self.consecutive = 0
            self.open_until = 0.0
            self.outage_started = None
            self.errors = self.skipped = 0

    def failure(self, exc: BaseException) -> None:
        with self._lock:
            at = time.monotonic()
            self.consecutive += 1
            self.errors += 1
            if self.consecutive >= BREAKER_FAILURES:
                self.open_until = at + settings.MARKET_CACHE_BREAKER_SECONDS
            if self.outage_started is None:
                self.outage_started = self.reported_at = at
                logger.warning(
                    "market cache: Redis (%s) unavailable (%s: %s); serving without it, "
                    "errors are counted and reported once a minute",
                    self.label, type(exc).__name__, exc,
                )  # fmt: skip
            elif at - self.reported_at >= OUTAGE_REPORT_SECONDS:
                self.reported_at = at
                logger.warning(
                    "market cache: Redis (%s) still unavailable after %.0f s: %d failed call(s), "
                    "%d skipped by the circuit breaker (last: %s)",
                    self.label, at - self.outage_started, self.errors, self.skipped,
                    type(exc).__name__,
                )  # fmt: skip


# Atomic compare-and-extend / compare-and-delete of a lock holding our token.
_EXTEND = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_UNLOCK = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


class Store:
    """Raw bytes in Redis (through django-redis's connection pool, without pickling), or in any
    other Django cache backend (local memory for ``make run``). Every failure is StoreUnavailable."""

    def __init__(self, backend: BaseCache) -> None:
        self.backend = backend
        client = redis_client(backend)
        self.redis = client
        location = getattr(backend, "_server", None) or getattr(backend, "_servers", None)
        self.health = _Health(str(location))

    def _call(self, call: Callable[[], Any]) -> Any:
        if not self.health.allow():
            raise StoreUnavailable("circuit breaker open")
        try:
            result = call()
        except Exception as exc:  # redis-py errors, timeouts, anything from the backend
            self.health.failure(exc)
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from None
        self.health.success()
        return result

    def incr_many(self, amounts: dict[str, int]) -> None:
        if self.redis is not None:

            def run() -> None:
                pipe = self.redis.pipeline(transaction=False)
                for name, n in amounts.items():
                    pipe.incrby(self.key(name), n)
                pipe.execute()

            self._call(run)
            return
        for name, n in amounts.items():
            self._call(lambda name=name: self.backend.add(name, 0, timeout=None))
            self._call(lambda name=name, n=n: self.backend.incr(name, n))

    def key(self, name: str) -> str:
        return str(self.backend.make_key(name))

    def mget(self, names: Sequence[str]) -> list[Any]:
        if not names:
            return []
        keys = [self.key(n) for n in names]
        if self.redis is not None:
            return self._call(lambda: self.redis.mget(keys))
        found = self._call(lambda: self.backend.get_many(list(names)))
        return [found.get(n) for n in names]

    def set_many(self, values: dict[str, bytes], ttl_ms: int) -> None:
        ttl_ms = max(ttl_ms, 1)
        if self.redis is not None:

            def run() -> None:
                pipe = self.redis.pipeline(transaction=False)
                for name, value in values.items():
                    pipe.set(self.key(name), value, px=ttl_ms)
                pipe.execute()

            self._call(run)
        else:
            self._call(lambda: self.backend.set_many(values, timeout=math.ceil(ttl_ms / 1000)))

    def set_forever(self, values: dict[str, int]) -> None:
        if self.redis is not None:
            mapping = {self.key(n): str(v) for n, v in values.items()}
            self._call(lambda: self.redis.mset(mapping))
        else:
            self._call(lambda: self.backend.set_many(values, timeout=None))

    def add(self, name: str, value: Any, ttl_ms: int | None) -> bool:
        if self.redis is not None:
            return bool(
                self._call(lambda: self.redis.set(self.key(name), value, nx=True, px=ttl_ms))
            )
        timeout = None if ttl_ms is None else ttl_ms / 1000
        return bool(self._call(lambda: self.backend.add(name, value, timeout=timeout)))

    def get(self, name: str) -> Any:
        return self.mget([name])[0]

    def extend(self, name: str, token: str, ttl_ms: int) -> bool:
        if self.redis is not None:
            return bool(
                self._call(lambda: self.redis.eval(_EXTEND, 1, self.key(name), token, ttl_ms))
            )
        if self.get(name) == token:
            return bool(self._call(lambda: self.backend.touch(name, ttl_ms / 1000)))
        return False

    def unlock(self, name: str, token: str) -> None:
        if self.redis is not None:
            self._call(lambda: self.redis.eval(_UNLOCK, 1, self.key(name), token))
        elif self.get(name) == token:
            self._call(lambda: self.backend.delete(name))


_stores: dict[int, Store] = {}
_stores_lock = threading.Lock()


def store_for(backend: BaseCache) -> Store:
    """The Store (and circuit breaker) of a backend's location: one per connection pool, as
    ``caches["default"]`` is a new object in every thread while its pool is shared."""
    client = redis_client(backend)
    ident = id(client.connection_pool) if client is not None else id(type(backend))
    store = _stores.get(ident)
    if store is None:
        with _stores_lock:
            store = _stores.setdefault(ident, Store(backend))
    return store


class _LockKeeper:
    """One daemon thread per process that extends the locks of running computations every third
    of the lock timeout, so a slow computation keeps its lock (the holder dying lets it expire)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[int, str], tuple[Store, str]] = {}
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def hold(self, store: Store, name: str, token: str) -> None:
        with self._lock:
            self._held[id(store), name] = (store, token)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="market-cache-lock-keeper", daemon=True
                )
                self._thread.start()

    def drop(self, store: Store, name: str) -> None:
        with self._lock:
            self._held.pop((id(store), name), None)

    def tick(self) -> int:
        """Extend every held lock now; returns how many were still ours."""
        with self._lock:
            held = list(self._held.items())
        ttl_ms = int(settings.MARKET_CACHE_LOCK_TIMEOUT * 1000)
        kept = 0
        for (_, name), (store, token) in held:
            try:
                kept += store.extend(name, token, ttl_ms)
            except StoreUnavailable:
                pass
        return kept

    def _run(self) -> None:
        while True:
            self._wake.wait(settings.MARKET_CACHE_LOCK_TIMEOUT / 3)
            with self._lock:
                if not self._held:
                    self._thread = None
                    return
            self.tick()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._held = {}
        self._thread = None


keeper = _LockKeeper()
os.register_at_fork(after_in_child=keeper._after_fork)


# --- process memory: decoded values, and the store while Redis is unavailable ----------------------


class _Memo:
    """A byte-bounded LRU of ``key -> (expires_at, size, value)``."""

    def __init__(self, max_bytes: int = MEMO_MAX_BYTES) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[float, int, Any]] = OrderedDict()
        self._bytes = 0
        self.max_bytes = max_bytes

    def get(self, key: str, at: float) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if at >= item[0]:
                self._pop(key)
                return None
            self._items.move_to_end(key)
            return item[2]

    def put(self, key: str, expires_at: float, size: int, value: Any) -> None:
        with self._lock:
            self._pop(key)
            self._items[key] = (expires_at, size, value)
            self._bytes += size
            while self._bytes > self.max_bytes and len(self._items) > 1:
                self._pop(next(iter(self._items)))

    def _pop(self, key: str) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._bytes -= item[1]

    def discard(self, match: Callable[[str], bool]) -> None:
        with self._lock:
            for key in [k for k in self._items if match(k)]:
                self._pop(key)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


class _Flight:
    """One in-process computation that other threads of the process wait for."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: bytes | None = None
        self.error: BaseException | None = None


@dataclass(slots=True)
class _Read:
    values: list[bytes | None]  # stored envelopes, fresh ones only
    keys: list[str | None]  # the versioned keys read (None: Redis unavailable)
    memo: list[Any]  # decoded values found in the memo (None where not)


class MarketCache:
    """The market data cache over a Django cache backend (the default one unless given)."""

    def __init__(self, backend: BaseCache | None = None) -> None:
        self._backend = backend
        self._flights: dict[str, _Flight] = {}
        self._flights_lock = threading.Lock()
        self.memo = _Memo()  # decoded values (versioned keys) and fallback values ("local:" names)

    @property
    def backend(self) -> BaseCache:
        return self._backend if self._backend is not None else caches["default"]

    @property
    def store(self) -> Store:
        return store_for(self.backend)

    # --- reads ------------------------------------------------------------------------------

    def get_cached(self, key: CacheKey) -> bytes | None:
        read = self._read([key])
        stored = read.values[0]
        return decode(stored) if stored is not None else None

    def get_or_compute(self, key: CacheKey, compute: Compute) -> tuple[bytes, bool]:
        """``(value, hit)``: the cached value, or ``compute()``'s, computed once across processes."""
        return self.get_or_compute_many([(key, compute)])[0]

    def get_or_compute_many(
        self,
        items: Sequence[tuple[CacheKey, Compute]],
        decode_with: Callable[[bytes, float], Any] | None = None,
    ) -> list[tuple[Any, bool]]:
        """Like ``get_or_compute`` for several keys, read in one round trip. With
        ``decode_with``, returns ``decode_with(value, expires_at)``, memoised per process."""
        keys = [key for key, _ in items]
        read = self._read(keys, memoised=decode_with is not None)
        results: list[tuple[Any, bool]] = []
        for i, (key, compute) in enumerate(items):
            if read.memo[i] is not None:
                results.append((read.memo[i], True))
                continue
            stored = read.values[i]
            hit = stored is not None
            if stored is None:
                stored = self._compute_once(key, read.keys[i], compute)
            if decode_with is None:
                results.append((decode(stored), hit))
            else:
                results.append((self._decoded(key, read.keys[i], stored, decode_with), hit))
        return results

    def _decoded(
        self,
        key: CacheKey,
        concrete: str | None,
        stored: bytes,
        decode_with: Callable[[bytes, float], Any],
    ) -> Any:
        expires_at = expiry_of(stored) or 0.0
        value = decode_with(decode(stored), expires_at)
        if concrete is not None and expires_at is not None:
            self.memo.put(f"decoded:{concrete}", expires_at, len(stored), value)
        return value

    def _read(self, keys: Sequence[CacheKey], *, memoised: bool = False) -> _Read:
        store = self.store
        at = now()
        version_keys = [EPOCH, *dict.fromkeys(_version_key(k.scope) for k in keys)]
        guessed = {v: _known.get(v) for v in version_keys}
        concrete = [self._concrete(k, guessed) for k in keys]
        memo = [
            self.memo.get(f"decoded:{c}", at) if memoised and c is not None else None
            for c in concrete
        ]
        wanted = [c for c, m in zip(concrete, memo, strict=True) if c is not None and m is None]
        try:
            found = dict(zip(version_keys + wanted, store.mget(version_keys + wanted), strict=True))
            current = {v: _token(found.get(v)) for v in version_keys}
            if current != guessed or None in current.values():
                resolved = self._resolve(store, current)
                _known.update(resolved)
                concrete = [self._concrete(k, resolved) for k in keys]
                memo = [
                    self.memo.get(f"decoded:{c}", at) if memoised and c is not None else None
                    for c in concrete
                ]
                wanted = [c for c, m in zip(concrete, memo, strict=True) if m is None]
                found = dict(zip(wanted, store.mget(wanted), strict=True))  # type: ignore[arg-type]
        except StoreUnavailable:
            return self._read_local(keys, at)
        values = [
            None if m is not None or not _fresh(found.get(c), at) else found[c]  # type: ignore[index]
            for c, m in zip(concrete, memo, strict=True)
        ]
        self._note(
            keys, [v is not None or m is not None for v, m in zip(values, memo, strict=True)]
        )
        return _Read(values, concrete, memo)  # type: ignore[arg-type]

    def _read_local(self, keys: Sequence[CacheKey], at: float) -> _Read:
        """Redis unavailable: this process's own copies (kept while Redis was unavailable)."""
        values = [self.memo.get(f"local:{k.namespace}:{k.name}", at) for k in keys]
        self._note(keys, [v is not None for v in values])
        return _Read(values, [None] * len(keys), [None] * len(keys))

    @staticmethod
    def _resolve(store: Store, current: dict[str, int | None]) -> dict[str, int]:
        """Fill in missing version keys (first use, or lost): a fresh token, unless another
        process set one first."""
        resolved = {}
        for key, token in current.items():
            if token is None:
                token = _new_token()
                if not store.add(key, str(token), None):
                    token = _token(store.get(key))
                    if token is None:
                        raise StoreUnavailable(f"version {key} vanished")
            resolved[key] = token
        return resolved

    @staticmethod
    def _concrete(key: CacheKey, versions: dict[str, int | None]) -> str | None:
        epoch, scope = versions.get(EPOCH), versions.get(_version_key(key.scope))
        if epoch is None or scope is None:
            return None
        return f"{key.namespace}:{key.name}:{epoch:x}.{scope:x}"

    def _note(self, keys: Sequence[CacheKey], hits: Sequence[bool]) -> None:
        backend = self.backend
        for key, hit in zip(keys, hits, strict=True):
            note_cache(key.namespace, hit)
            _count(key.namespace, "hit" if hit else "miss", backend)

    # --- misses: single flight --------------------------------------------------------------

    def _compute_once(self, key: CacheKey, concrete: str | None, compute: Compute) -> bytes:
        """In-process first: one thread per key computes (or waits on Redis); the others of this
        process wait on an Event (no polling) and share its stored value or its exception."""
        flight_key = concrete if concrete is not None else f"local:{key.namespace}:{key.name}"
        with self._flights_lock:
            flight = self._flights.get(flight_key)
            leader = flight is None
            if leader:
                flight = self._flights[flight_key] = _Flight()
        assert flight is not None
        if not leader:
            release_db_connection()
            if flight.done.wait(timeout=3 * settings.MARKET_CACHE_LOCK_TIMEOUT):
                if flight.error is not None:
                    raise flight.error
                return flight.value  # type: ignore[return-value]
            return self._compute(key, concrete, compute)
        try:
            if concrete is None:
                # Another leader may have finished between our read and our flight: its value
                # is in process memory now.
                kept = self.memo.get(flight_key, now())
                flight.value = kept if kept is not None else self._compute(key, None, compute)
            else:
                flight.value = self._compute_shared(key, concrete, compute)
            return flight.value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._flights_lock:
                del self._flights[flight_key]
            flight.done.set()

    def _compute_shared(self, key: CacheKey, concrete: str, compute: Compute) -> bytes:
        """Across processes: the Redis lock holder computes, the others poll with back-off."""
        store = self.store
        lock = f"md:lock:{concrete}"
        token = secrets.token_hex(8)
        ttl_ms = int(settings.MARKET_CACHE_LOCK_TIMEOUT * 1000)
        try:
            if store.add(lock, token, ttl_ms):
                return self._compute_locked(store, key, concrete, lock, token, compute)
        except StoreUnavailable:
            return self._compute(key, None, compute)
        release_db_connection()
        deadline = time.monotonic() + 3 * settings.MARKET_CACHE_LOCK_TIMEOUT
        delay = _POLL_FIRST
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)
            try:
                stored, holder = store.mget([concrete, lock])
                if _fresh(stored, now()):
                    return stored
                if holder is None and store.add(lock, token, ttl_ms):
                    # The holder failed, or died and its lock expired: take over.
                    return self._compute_locked(store, key, concrete, lock, token, compute)
            except StoreUnavailable:
                return self._compute(key, None, compute)
        logger.warning(
            "waited %.0f s for %s to be computed; computing it here",
            3 * settings.MARKET_CACHE_LOCK_TIMEOUT, concrete,
        )  # fmt: skip
        return self._compute(key, concrete, compute)

    def _compute_locked(
        self, store: Store, key: CacheKey, concrete: str, lock: str, token: str, compute: Compute
    ) -> bytes:
        keeper.hold(store, lock, token)
        try:
            # Stored by the previous holder between our read and our lock: do not redo it.
            stored = store.get(concrete)
            if _fresh(stored, now()):
                return stored
            return self._compute(key, concrete, compute)
        except StoreUnavailable:
            return self._compute(key, None, compute)
        finally:
            keeper.drop(store, lock)
            try:
                store.unlock(lock, token)
            except StoreUnavailable:
                pass  # it expires

    def _compute(self, key: CacheKey, concrete: str | None, compute: Compute) -> bytes:
        """Run the computation and store its value; returns the stored envelope."""
        version_key = _version_key(key.scope)
        bumped_before = _bumped_here().get(version_key)
        result = compute()
        if not isinstance(result, Computed) or not isinstance(result.value, bytes):
            raise TypeError(f"a computation returns Computed(bytes, expires_at), got {result!r}")
        stored = encode(result.value, result.expires_at)
        _count(key.namespace, "compute", self.backend)
        computed.send(
            sender=MarketCache,
            namespace=key.namespace,
            name=key.name,
            key=concrete or key.name,
            expires_at=result.expires_at,
        )
        ttl_ms = math.ceil((result.expires_at - now()) * 1000)
        if ttl_ms <= 0:
            return stored  # already stale (a computation that outlived its candle): serve once
        if concrete is None:
            self.memo.put(
                f"local:{key.namespace}:{key.name}", result.expires_at, len(stored), stored
            )
            return stored
        targets = [concrete]
        # The computation itself stored new data and moved the scope's version (a read-through
        # fill of new candles). What it read after that is current for the new version too:
        # store it there as well, or the next reader would compute the same thing again.
        bumped_after = _bumped_here().get(version_key)
        if bumped_after is not None and bumped_after != bumped_before:
            fresh = self._concrete(key, {**_known, version_key: bumped_after})
            if fresh is not None:
                targets.append(fresh)
        try:
            self.store.set_many(dict.fromkeys(targets, stored), ttl_ms)
        except StoreUnavailable:
            self.memo.put(
                f"local:{key.namespace}:{key.name}", result.expires_at, len(stored), stored
            )
        return stored

    # --- writes -----------------------------------------------------------------------------

    def set_cached(self, key: CacheKey, value: bytes, expires_at: float | None = None) -> None:
        """Store ``value`` under the current versions of ``key``'s scope."""
        expires_at = expires_at if expires_at is not None else now() + ttl_for(key.namespace)
        try:
            versions = self._current_versions([key.scope])
            concrete = self._concrete(key, versions)
            if concrete is not None:
                ttl_ms = math.ceil((expires_at - now()) * 1000)
                self.store.set_many({concrete: encode(value, expires_at)}, ttl_ms)
        except StoreUnavailable:
            pass

    def _current_versions(self, scopes: Iterable[str]) -> dict[str, int]:
        version_keys = [EPOCH, *(_version_key(s) for s in scopes)]
        store = self.store
        found = store.mget(version_keys)
        resolved = self._resolve(
            store, {v: _token(f) for v, f in zip(version_keys, found, strict=True)}
        )
        _known.update(resolved)
        return resolved

    # --- invalidation -----------------------------------------------------------------------

    def invalidate(self, scopes: Iterable[str]) -> None:
        """New versions for these scopes (one round trip): their cached values are unreachable."""
        scopes = list(scopes)
        tokens = {_version_key(scope): _new_token() for scope in scopes}
        if not tokens:
            return
        _known.update(tokens)
        _bumped_here().update(tokens)

        def local_of_scope(memo_key: str) -> bool:
            if not memo_key.startswith("local:"):
                return False
            name = memo_key.split(":", 2)[2]
            return any(name == s or name.startswith(f"{s}:") for s in scopes)

        self.memo.discard(local_of_scope)
        try:
            self.store.set_forever(tokens)
        except StoreUnavailable:
            logger.debug("market cache: invalidation of %d scope(s) not stored", len(tokens))

    def invalidate_all(self) -> None:
        """A new epoch: every market data and indicator value is unreachable."""
        token = _new_token()
        _known[EPOCH] = token
        self.memo.clear()
        try:
            self.store.set_forever({EPOCH: token})
        except StoreUnavailable:
            logger.debug("market cache: new epoch not stored")


def _token(raw: Any) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def scope_series(exchange: str, symbol: str, timeframe: str) -> str:
    return f"{exchange}:{symbol}:{timeframe}"


def scope_ticker(exchange: str, symbol: str) -> str:
    return f"{exchange}:{symbol}:ticker"


def scope_funding(exchange: str, symbol: str) -> str:
    return f"{exchange}:{symbol}:funding"
