"""The cache layer against the real Redis: versions, TTLs, counts, single flight, Redis down."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import redis
from django.conf import settings
from django.core.cache import cache as django_cache
from django.core.cache.backends.base import BaseCache
from django.test import override_settings
from django.utils.module_loading import import_string

from marketdata import cache as market_cache
from marketdata.cache import INDICATORS, MARKET, CacheKey, MarketCache, scope_series
from monitoring import context

pytestmark = pytest.mark.redis

SERIES = scope_series("test", "BTC/USDT", "1h")
OHLCV = CacheKey(MARKET, "test:BTC/USDT:1h:ohlcv:limit=200", SERIES)
OHLCV_500 = CacheKey(MARKET, "test:BTC/USDT:1h:ohlcv:limit=500", SERIES)
RSI = CacheKey(INDICATORS, "test:BTC/USDT:1h:rsi:14:limit=200", SERIES)
OTHER = CacheKey(MARKET, "test:ETH/USDT:1h:ohlcv:limit=200", scope_series("test", "ETH/USDT", "1h"))


class Counting:
    """A compute function that counts its calls (thread-safe) and can be slowed down."""

    def __init__(self, value: bytes = b'{"v":1}', delay: float = 0.0) -> None:
        self.value, self.delay, self.calls = value, delay, 0
        self._lock = threading.Lock()

    def __call__(self) -> bytes:
        with self._lock:
            self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return self.value


def concrete_key(cache: MarketCache, key: CacheKey) -> str:
    read = cache._read([key])
    assert read.keys[0] is not None
    return read.keys[0]


def concrete_key_for(key: CacheKey, scope_token: int) -> str:
    versions = {market_cache.EPOCH: market_cache._known[market_cache.EPOCH]}
    return MarketCache._concrete(
        key, {**versions, market_cache._version_key(key.scope): scope_token}
    )


def test_get_and_set_round_trip_under_versioned_keys() -> None:
    cache = MarketCache()
    assert cache.get_cached(OHLCV) is None
    cache.set_cached(OHLCV, b"candles-200", 60)
    cache.set_cached(OHLCV_500, b"candles-500", 60)
    assert cache.get_cached(OHLCV) == b"candles-200"  # 200 and 500 candles never collide
    assert cache.get_cached(OHLCV_500) == b"candles-500"
    stored = concrete_key(cache, OHLCV)
    assert stored.startswith("market:test:BTC/USDT:1h:ohlcv:limit=200:")
    assert django_cache.get(stored) == b"candles-200"


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


def test_ttls_per_namespace_and_expiry() -> None:
    cache = MarketCache()
    cache.get_or_compute(OHLCV, Counting())
    cache.get_or_compute(RSI, Counting())
    assert 299 <= django_cache.ttl(concrete_key(cache, OHLCV)) <= 300  # market data: 5 minutes
    assert 899 <= django_cache.ttl(concrete_key(cache, RSI)) <= 900  # indicators: 15 minutes

    with override_settings(MARKET_DATA_CACHE_TTL=1):
        compute = Counting()
        assert cache.get_or_compute(OTHER, compute)[1] is False
        assert cache.get_or_compute(OTHER, compute)[1] is True
        time.sleep(1.2)  # let Redis expire it: a wait, not a timing assertion
        assert cache.get_or_compute(OTHER, compute)[1] is False
        assert compute.calls == 2


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
    version_key = market_cache._version_key(SERIES)
    remembered = market_cache._known[version_key]
    writer.invalidate([SERIES])  # "another process"
    market_cache._known[version_key] = remembered  # this process still remembers the old one
    assert django_cache.get(concrete_key_for(OHLCV, remembered)) == b"old"  # still stored
    assert reader.get_cached(OHLCV) is None
    assert market_cache._known[version_key] != remembered  # and now it knows


def test_a_lost_version_never_resurrects_old_values() -> None:
    cache = MarketCache()
    cache.set_cached(OHLCV, b"old")
    old = concrete_key(cache, OHLCV)
    django_cache.delete(market_cache._version_key(SERIES))  # evicted, or deleted by hand
    assert cache.get_cached(OHLCV) is None  # a fresh random version, not "0" or "1" again
    assert django_cache.get(old) == b"old"  # the old value still exists, unreachable


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


def _stampede(caches: list[MarketCache], compute: Callable[[], bytes]) -> list[object]:
    barrier = threading.Barrier(len(caches))
    results: list[object] = [None] * len(caches)

    def bot(i: int) -> None:
        barrier.wait()
        try:
            results[i] = caches[i].get_or_compute(OHLCV, compute)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=bot, args=(i,)) for i in range(len(caches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_stampede_in_one_process_computes_once() -> None:
    compute = Counting(delay=0.2)
    shared = MarketCache()
    results = _stampede([shared] * 50, compute)
    assert compute.calls == 1
    assert all(result == (compute.value, False) for result in results)
    assert shared.get_or_compute(OHLCV, compute) == (compute.value, True)


def test_stampede_across_processes_computes_once_through_the_redis_lock() -> None:
    """One MarketCache per thread: no in-process sharing, only Redis coordinates them."""
    compute = Counting(delay=0.2)
    results = _stampede([MarketCache() for _ in range(50)], compute)
    assert compute.calls == 1
    assert all(result == (compute.value, False) for result in results)


def test_a_value_stored_between_the_read_and_the_lock_is_not_recomputed() -> None:
    """The race the stampede tests rarely hit: a miss, then the holder finishes and unlocks,
    then the late reader gets the lock. It must find the value, not compute again."""
    late, holder = MarketCache(), MarketCache()
    read = late._read([OHLCV])
    assert read.values == [None]
    holder.get_or_compute(OHLCV, Counting(b"from the holder"))
    compute = Counting()
    assert late._compute_once(OHLCV, read.keys[0], compute) == b"from the holder"
    assert compute.calls == 0


def test_when_the_lock_holder_fails_a_waiter_takes_over() -> None:
    calls = Counting(delay=0.1)

    def flaky() -> bytes:
        value = calls()
        if calls.calls == 1:
            raise RuntimeError("exchange hiccup")
        return value

    results = _stampede([MarketCache() for _ in range(20)], flaky)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and "hiccup" in str(errors[0])
    assert calls.calls == 2  # the failure, then one waiter's successful computation
    assert all(r == (calls.value, False) for r in results if r not in errors)


def test_in_process_waiters_share_the_leaders_error() -> None:
    calls = Counting(delay=0.1)

    def failing() -> bytes:
        calls()
        raise RuntimeError("down")

    shared = MarketCache()
    results = _stampede([shared] * 10, failing)
    assert calls.calls == 1
    assert all(isinstance(r, RuntimeError) for r in results)


def _dead_redis() -> BaseCache:
    """The production cache options, pointed at a port nothing listens on."""
    config = dict(settings.CACHES["default"])
    return import_string(config["BACKEND"])("redis://127.0.0.1:1/0", config)


def test_redis_down_computes_instead_of_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_waiting(seconds: float) -> None:
        raise AssertionError("waited for a lock although Redis is down")

    monkeypatch.setattr(market_cache.time, "sleep", no_waiting)
    down = MarketCache(backend=_dead_redis())
    compute = Counting()
    assert down.get_or_compute(OHLCV, compute) == (compute.value, False)
    assert down.get_or_compute(OHLCV, compute) == (compute.value, False)  # nothing was stored
    assert compute.calls == 2
    assert down.get_or_compute_many([(RSI, compute), (OTHER, compute)]) == [
        (compute.value, False),
        (compute.value, False),
    ]
    assert down.get_cached(OHLCV) is None
    down.set_cached(OHLCV, b"x")  # no exception
    down.invalidate([SERIES])
    market_cache.flush_stats(down.backend)


def test_a_lock_call_that_raises_is_guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the backend raises on the lock (not only connection errors), the read computes."""
    cache = MarketCache()
    cache._current_versions([SERIES])  # versions exist and are known: only the lock calls add()

    def broken_add(*args: object, **kwargs: object) -> bool:
        raise redis.exceptions.ResponseError("READONLY You can't write against a read only replica")

    monkeypatch.setattr(cache.backend, "add", broken_add)
    compute = Counting()
    assert cache.get_or_compute(OHLCV, compute) == (compute.value, False)
    assert compute.calls == 1
