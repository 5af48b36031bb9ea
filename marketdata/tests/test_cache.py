"""The cache layer against the real Redis: versions, expiry by the market clock, compression,
counts, single flight (threads and real processes), Redis down or hung, the circuit breaker."""

from __future__ import annotations

import logging
import multiprocessing
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from django.conf import settings
from django.core.cache.backends.base import BaseCache
from django.test import override_settings
from django.utils.module_loading import import_string

from marketdata import cache as market_cache
from marketdata.cache import (
    INDICATORS,
    MARKET,
    CacheKey,
    Computed,
    MarketCache,
    scope_series,
    series_expiry,
)
from marketdata.tests.conftest import Clock
from monitoring import context

pytestmark = pytest.mark.redis

SERIES = scope_series("test", "BTC/USDT", "1h")
OHLCV = CacheKey(MARKET, "test:BTC/USDT:1h:ohlcv:limit=200", SERIES)
OHLCV_500 = CacheKey(MARKET, "test:BTC/USDT:1h:ohlcv:limit=500", SERIES)
RSI = CacheKey(INDICATORS, "test:BTC/USDT:1h:rsi:14", SERIES)
OTHER = CacheKey(MARKET, "test:ETH/USDT:1h:ohlcv:limit=200", scope_series("test", "ETH/USDT", "1h"))


class Counting:
    """A compute function that counts its calls (thread-safe), can be slowed down, and says its
    value is good for ``seconds`` of the market clock."""

    def __init__(self, value: bytes = b'{"v":1}', delay: float = 0.0, seconds: float = 300) -> None:
        self.value, self.delay, self.seconds, self.calls = value, delay, seconds, 0
        self._lock = threading.Lock()

    def __call__(self) -> Computed:
        with self._lock:
            self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return Computed(self.value, market_cache.now() + self.seconds)


def concrete_key(cache: MarketCache, key: CacheKey) -> str:
    read = cache._read([key])
    assert read.keys[0] is not None
    return read.keys[0]


def raw(key: str) -> bytes | None:
    return market_cache.store_for(MarketCache().backend).get(key)


def test_get_and_set_round_trip_under_versioned_keys() -> None:
    cache = MarketCache()
    assert cache.get_cached(OHLCV) is None
    cache.set_cached(OHLCV, b"candles-200")
    cache.set_cached(OHLCV_500, b"candles-500")
    assert cache.get_cached(OHLCV) == b"candles-200"  # 200 and 500 candles never collide
    assert cache.get_cached(OHLCV_500) == b"candles-500"
    stored = concrete_key(cache, OHLCV)
    assert stored.startswith("market:test:BTC/USDT:1h:ohlcv:limit=200:")
    assert market_cache.decode(raw(stored)) == b"candles-200"


def test_a_warm_read_is_one_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = MarketCache()
    cache.get_or_compute_many([(OHLCV, Counting()), (RSI, Counting())])
    commands: list[str] = []
    real = redis.Redis.execute_command

    def counting(self: redis.Redis, *args: object, **kwargs: object) -> object:
        commands.append(str(args[0]))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "execute_command", counting)
    results = cache.get_or_compute_many([(OHLCV, Counting()), (RSI, Counting())])
    assert [hit for _, hit in results] == [True, True]
    assert commands == ["MGET"]  # epoch + series version + both values, one command


def test_values_expire_by_the_market_clock_not_only_by_redis(clock: Clock) -> None:
    cache = MarketCache()
    compute = Counting(seconds=60)
    assert cache.get_or_compute(OHLCV, compute)[1] is False
    ttl_ms = market_cache.store_for(cache.backend).redis.pttl(
        market_cache.store_for(cache.backend).key(concrete_key(cache, OHLCV))
    )
    assert 50_000 < ttl_ms <= 60_000  # Redis frees it at the same instant
    clock.advance(seconds=59)
    assert cache.get_or_compute(OHLCV, compute)[1] is True
    clock.advance(seconds=1)  # Redis still holds it; our clock says it is over
    assert cache.get_or_compute(OHLCV, compute)[1] is False
    assert compute.calls == 2


def test_series_expiry_is_the_next_close_plus_lag_capped_by_the_ttl(clock: Clock) -> None:
    at = clock.at.timestamp()  # 12:34:56
    assert series_expiry("1m", MARKET) == (at // 60 + 1) * 60 + settings.MARKET_DATA_CLOSE_LAG
    assert series_expiry("1h", MARKET) == at + 300  # 13:00 is further than 5 minutes away
    assert series_expiry("1h", INDICATORS) == at + 900  # 15-minute cap
    clock.advance(minutes=20)  # 12:54:56: the close (13:00) comes first
    assert series_expiry("1h", INDICATORS) == (at // 3600 + 1) * 3600 + 3
    # A venue whose daily candles open (and close) at 16:00 UTC: its close, not midnight.
    clock.at = clock.at.replace(hour=15, minute=50, second=0)
    sixteen = clock.at.replace(hour=16, minute=0).timestamp()
    assert series_expiry("1d", INDICATORS, offset=16 * 3600) == sixteen + 3


def test_large_values_are_stored_lz4_compressed() -> None:
    cache = MarketCache()
    body = b'["2026-03-02T11:00:00Z","60000.12","60010.5","59990","60001.7","12.3456"],' * 200
    cache.get_or_compute(OHLCV, Counting(body))
    stored = raw(concrete_key(cache, OHLCV))
    assert stored[1] == market_cache._LZ4
    assert len(stored) < len(body) / 2
    assert cache.get_or_compute(OHLCV, Counting())[0] == body
    small = market_cache.encode(b'{"v":1}', 0)
    assert small[1] == market_cache._RAW  # below 1 kB: not worth it


def test_invalidating_a_scope_misses_its_keys_only() -> None:
    cache = MarketCache()
    for key in (OHLCV, RSI, OTHER):
        cache.set_cached(key, b"x")
    cache.invalidate([SERIES])
    assert cache.get_cached(OHLCV) is None
    assert cache.get_cached(RSI) is None
    assert cache.get_cached(OTHER) == b"x"
    cache.set_cached(OTHER, b"y")
    cache.invalidate_all()
    assert cache.get_cached(OTHER) is None


def test_another_process_invalidation_is_seen_at_once() -> None:
    """A process that has not seen a version move still reads the old value's key in its MGET;
    the version read in the same MGET must stop it from serving that value."""
    reader, writer = MarketCache(), MarketCache()
    reader.set_cached(OHLCV, b"old")
    assert reader.get_cached(OHLCV) == b"old"
    old_key = concrete_key(reader, OHLCV)
    version_key = market_cache._version_key(SERIES)
    remembered = market_cache._known[version_key]
    writer.invalidate([SERIES])  # "another process"
    market_cache._known[version_key] = remembered  # this process still remembers the old one
    assert raw(old_key) is not None  # still stored
    assert reader.get_cached(OHLCV) is None
    assert market_cache._known[version_key] != remembered  # and now it knows


def test_a_lost_version_never_resurrects_old_values() -> None:
    cache = MarketCache()
    cache.set_cached(OHLCV, b"old")
    old = concrete_key(cache, OHLCV)
    cache.backend.delete(market_cache._version_key(SERIES))  # evicted, or deleted by hand
    assert cache.get_cached(OHLCV) is None  # a fresh random version, not "0" or "1" again
    assert raw(old) is not None  # the old value still exists, unreachable


def test_decoded_values_are_memoised_and_not_transferred_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = MarketCache()
    decoded: list[bytes] = []

    def decode(value: bytes, expires_at: float) -> str:
        decoded.append(value)
        return value.decode()

    assert cache.get_or_compute_many([(OHLCV, Counting())], decode) == [('{"v":1}', False)]
    mgets: list[tuple] = []
    real = redis.Redis.mget
    monkeypatch.setattr(
        redis.Redis, "mget", lambda self, keys: mgets.append(tuple(keys)) or real(self, keys)
    )
    assert cache.get_or_compute_many([(OHLCV, Counting())], decode) == [('{"v":1}', True)]
    assert len(decoded) == 1  # decoded once per process
    assert len(mgets[0]) == 2  # the epoch and the series version only: not the value


def test_counts_go_to_the_request_and_to_the_shared_stats() -> None:
    cache = MarketCache()
    market_cache.reset_stats()
    token = context.begin_request()
    cache.get_or_compute(OHLCV, Counting())  # miss, computed
    cache.get_or_compute(OHLCV, Counting())  # hit
    cache.get_or_compute_many([(RSI, Counting()), (OTHER, Counting())])  # 2 misses
    counts = context.end_request(token)
    assert counts[MARKET, "hit"] == 1
    assert counts[MARKET, "miss"] == 2
    assert counts[INDICATORS, "miss"] == 1
    market_cache.flush_stats()  # one pipelined INCRBY round trip
    stats = market_cache.read_stats()
    assert stats[MARKET] == {"hit": 1, "miss": 2, "compute": 2}
    assert stats[INDICATORS] == {"hit": 0, "miss": 1, "compute": 1}


class _MissGate:
    """Holds a stampede's computations until every thread has missed its read. A fixed sleep in
    the computation was a bet that all threads reach their read within it: on a loaded machine a
    late thread read the stored value (a hit) or, after a failure, computed again."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.missed: set[int] = set()
        self.changed = threading.Condition()

    def note(self, hits: object) -> None:
        if not all(hits):  # type: ignore[call-overload]
            with self.changed:
                self.missed.add(threading.get_ident())
                self.changed.notify_all()

    def wait(self) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.missed) >= self.threads, timeout=60):
                raise AssertionError(f"only {len(self.missed)} of {self.threads} threads missed")


def _stampede(
    caches: list[MarketCache],
    compute: Callable[[], Computed],
    monkeypatch: pytest.MonkeyPatch,
) -> list[object]:
    """Every cache's ``get_or_compute`` at once, from one thread each; the computation starts
    only when all of them have missed (see ``_MissGate``)."""
    barrier = threading.Barrier(len(caches))
    results: list[object] = [None] * len(caches)
    gate = _MissGate(len(caches))
    note = MarketCache._note

    def noting(self: MarketCache, keys: object, hits: object) -> None:
        note(self, keys, hits)  # type: ignore[arg-type]
        gate.note(hits)

    def gated() -> Computed:
        gate.wait()
        return compute()

    def bot(i: int) -> None:
        barrier.wait()
        try:
            results[i] = caches[i].get_or_compute(OHLCV, gated)
        except Exception as exc:
            results[i] = exc

    with monkeypatch.context() as patch:
        patch.setattr(MarketCache, "_note", noting)
        threads = [threading.Thread(target=bot, args=(i,)) for i in range(len(caches))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return results


def test_stampede_in_one_process_computes_once(monkeypatch: pytest.MonkeyPatch) -> None:
    compute = Counting(delay=0.05)
    shared = MarketCache()
    results = _stampede([shared] * 50, compute, monkeypatch)
    assert compute.calls == 1
    assert all(result == (compute.value, False) for result in results)
    assert shared.get_or_compute(OHLCV, compute) == (compute.value, True)


def test_stampede_across_caches_computes_once_through_the_redis_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One MarketCache per thread: no in-process sharing, only Redis coordinates them."""
    compute = Counting(delay=0.05)
    results = _stampede([MarketCache() for _ in range(50)], compute, monkeypatch)
    assert compute.calls == 1
    assert all(result == (compute.value, False) for result in results)


def _process_reader(barrier: object, lock_timeout: float) -> None:
    """A separate process (forked): waits for the others, then reads OHLCV with a computation
    that counts itself in Redis and outlives the lock timeout by half of it."""
    from django_redis import get_redis_connection

    connection = get_redis_connection("default")

    def compute() -> Computed:
        connection.incr("test:computations")
        time.sleep(1.5 * lock_timeout)
        return Computed(b"slow", market_cache.now() + 300)

    barrier.wait()  # type: ignore[attr-defined]
    MarketCache().get_or_compute(OHLCV, compute)


def test_a_computation_that_outlives_the_lock_keeps_it_in_real_processes() -> None:
    """4 processes, one computation lasting 1.5 lock timeouts: the keeper thread extends the lock
    every third of the timeout, so the others keep waiting instead of computing again (it used to
    be 5 computations). A 2 s lock leaves the keeper 1.3 s of slack on a loaded machine."""
    from django_redis import get_redis_connection

    get_redis_connection("default").delete("test:computations")
    fork = multiprocessing.get_context("fork")
    barrier = fork.Barrier(4)
    with override_settings(MARKET_CACHE_LOCK_TIMEOUT=2.0):
        processes = [fork.Process(target=_process_reader, args=(barrier, 2.0)) for _ in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    assert int(get_redis_connection("default").get("test:computations")) == 1
    assert MarketCache().get_cached(OHLCV) == b"slow"


def test_the_lock_keeper_extends_only_its_own_locks() -> None:
    store = market_cache.store_for(MarketCache().backend)
    store.add("md:lock:a", "mine", 200)
    store.add("md:lock:b", "theirs", 200)
    market_cache.keeper.hold(store, "md:lock:a", "mine")
    market_cache.keeper.hold(store, "md:lock:b", "stale-token")  # the lock passed to another
    try:
        assert market_cache.keeper.tick() == 1
        assert store.redis.pttl(store.key("md:lock:a")) > 5_000  # back to the full timeout
        assert store.redis.pttl(store.key("md:lock:b")) <= 200
    finally:
        market_cache.keeper.drop(store, "md:lock:a")
        market_cache.keeper.drop(store, "md:lock:b")


def test_a_value_stored_between_the_read_and_the_lock_is_not_recomputed() -> None:
    """The race the stampede tests rarely hit: a miss, then the holder finishes and unlocks,
    then the late reader gets the lock. It must find the value, not compute again."""
    late, holder = MarketCache(), MarketCache()
    read = late._read([OHLCV])
    assert read.values == [None]
    holder.get_or_compute(OHLCV, Counting(b"from the holder"))
    compute = Counting()
    stored = late._compute_once(OHLCV, read.keys[0], compute)
    assert market_cache.decode(stored) == b"from the holder"
    assert compute.calls == 0


def test_when_the_lock_holder_fails_a_waiter_takes_over(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Counting(delay=0.05)

    def flaky() -> Computed:
        value = calls()
        if calls.calls == 1:
            raise RuntimeError("exchange hiccup")
        return value

    results = _stampede([MarketCache() for _ in range(20)], flaky, monkeypatch)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and "hiccup" in str(errors[0])
    assert calls.calls == 2  # the failure, then one waiter's successful computation
    assert all(r == (calls.value, False) for r in results if r not in errors)


def test_in_process_waiters_share_the_leaders_error(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Counting(delay=0.05)

    def failing() -> Computed:
        calls()
        raise RuntimeError("down")

    shared = MarketCache()
    results = _stampede([shared] * 10, failing, monkeypatch)
    assert calls.calls == 1
    assert all(isinstance(r, RuntimeError) for r in results)


def _redis_at(url: str) -> BaseCache:
    """The production cache options, pointed at ``url``."""
    config = dict(settings.CACHES["default"])
    return import_string(config["BACKEND"])(url, config)


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A TCP server that accepts connections and never answers (a hung Redis)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(100)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_redis_down_still_computes_each_key_once_per_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_lock(*args: object) -> None:
        raise AssertionError("tried the Redis lock although Redis is down")

    monkeypatch.setattr(MarketCache, "_compute_shared", no_lock)
    down = MarketCache(backend=_redis_at("redis://127.0.0.1:1/0"))
    compute = Counting(delay=0.2)
    with caplog.at_level(logging.WARNING, logger="marketdata.cache"):
        results = _stampede([down] * 30, compute, monkeypatch)  # single flight without Redis
        assert down.get_or_compute(OHLCV, compute) == (compute.value, True)  # kept in memory
        for _ in range(20):
            down.get_or_compute_many([(RSI, compute), (OTHER, compute)])
        down.set_cached(OHLCV, b"x")  # no exception
        down.invalidate([SERIES])
        assert down.get_or_compute(OHLCV, compute)[1] is False  # the local invalidation holds
    assert all(result == (compute.value, False) for result in results)
    assert compute.calls == 4  # OHLCV, RSI, OTHER once each, OHLCV again after invalidating
    # One warning for the whole outage, no traceback per call.
    warnings = [r for r in caplog.records if r.name == "marketdata.cache"]
    assert len(warnings) == 1 and "unavailable" in warnings[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)


@override_settings(MARKET_CACHE_BREAKER_SECONDS=600)
def test_a_hung_redis_costs_a_few_timeouts_then_the_breaker_skips_it(blackhole: str) -> None:
    hung = MarketCache(backend=_redis_at(blackhole))
    store = hung.store
    compute = Counting()
    for _ in range(20):
        assert hung.get_or_compute_many([(OHLCV, compute), (RSI, compute)])[0][0] == compute.value
    assert store.health.errors == market_cache.BREAKER_FAILURES  # 3 timeouts, then no I/O
    assert store.health.skipped == 20 - market_cache.BREAKER_FAILURES  # one MGET per read
    assert compute.calls == 2  # once per key, from process memory afterwards


def test_after_the_breaker_one_call_probes_and_success_closes_it() -> None:
    store = market_cache.store_for(MarketCache().backend)
    for _ in range(market_cache.BREAKER_FAILURES):
        store.health.failure(redis.exceptions.TimeoutError("hung"))
    assert not store.health.allow()
    store.health.open_until = 0  # the breaker's time is over
    assert store.health.allow()  # this caller probes...
    assert not store.health.allow()  # ...the others still skip
    store.health.success()
    assert store.health.allow() and not store.health.down


def test_a_lock_call_that_raises_is_guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever Redis raises on the lock (not only connection errors), the read computes."""
    cache = MarketCache()
    cache._current_versions([SERIES])  # versions exist and are known: only the lock calls SET NX

    def broken_set(*args: object, **kwargs: object) -> bool:
        raise redis.exceptions.ResponseError("READONLY You can't write against a read only replica")

    monkeypatch.setattr(redis.Redis, "set", broken_set)
    compute = Counting()
    assert cache.get_or_compute(OHLCV, compute) == (compute.value, False)
    assert compute.calls == 1
