"""Cost of the query-profiling middleware on a cached request (no database query).

    make benchmarks PYTEST_ARGS="-k monitoring"

Both variants run the same request (a Redis GET served by a view, through the test Client) with
the same middleware stack but for QueryProfilingMiddleware; Silk is off in both (its production
default). The difference of the medians is the middleware's cost: JSON log line, Prometheus
observations, the in-memory aggregate, Server-Timing. The JSON lines go to a file, as a server's
stderr goes to a pipe or file: under pytest's output capture each write would cost ~10x more.
Numbers go to PERFORMANCE.md.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.test.utils import override_settings

# Benchmarks print numbers and cannot fail on speed: out of the default run (make benchmarks).
pytestmark = [
    pytest.mark.exhaustive,
    pytest.mark.urls("monitoring.tests.urls"),
    pytest.mark.redis,
    pytest.mark.django_db,
]

MONITORING = "monitoring.middleware.QueryProfilingMiddleware"
BASE = [m for m in settings.MIDDLEWARE if m not in (MONITORING, "silk.middleware.SilkyMiddleware")]


@pytest.fixture(autouse=True)
def _json_lines_to_a_file(tmp_path: Path) -> Iterator[None]:
    handlers = {
        handler
        for name in settings.MONITORING_JSON_LOGGERS
        for handler in logging.getLogger(name).handlers
        if isinstance(handler, logging.StreamHandler)
    }
    with (tmp_path / "requests.log").open("a") as log_file:
        previous = {handler: handler.setStream(log_file) for handler in handlers}
        try:
            yield
        finally:
            for handler, stream in previous.items():
                handler.setStream(stream)


def _cached_request(middleware: list[str]) -> Callable[[], None]:
    client = Client()
    # The client's handler builds its middleware chain on its first request and keeps it.
    with override_settings(MIDDLEWARE=middleware):
        client.get("/t/cached/")  # also warms the cache: the measured requests are hits
    assert ("Server-Timing" in client.get("/t/cached/")) is (MONITORING in middleware)

    def run() -> None:
        response = client.get("/t/cached/")
        assert response.status_code == 200

    return run


@pytest.mark.benchmark(group="monitoring-overhead", min_rounds=2000, warmup=True)
def test_cached_request_without_monitoring(benchmark) -> None:
    benchmark(_cached_request(BASE))


@pytest.mark.benchmark(group="monitoring-overhead", min_rounds=2000, warmup=True)
def test_cached_request_with_monitoring(benchmark) -> None:
    benchmark(_cached_request([MONITORING, *BASE]))


@pytest.mark.benchmark(group="monitoring-overhead", min_rounds=2000, warmup=True)
def test_cached_request_with_monitoring_request_log_off(benchmark) -> None:
    """The same, with the per-request JSON line off (its logger at WARNING): what the line costs."""
    logger = logging.getLogger("zerobot.requests")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        benchmark(_cached_request([MONITORING, *BASE]))
    finally:
        logger.setLevel(level)


def _enabled(request: pytest.FixtureRequest) -> bool:
    config = request.config
    return config.getoption("benchmark_enable") or not config.getoption("benchmark_disable")


def test_middleware_alone(request: pytest.FixtureRequest) -> None:
    """The middleware around a view that returns at once, called directly (no handler, no test
    client): the purest figure of what it adds per request. Interleaved like the test below."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from monitoring.middleware import QueryProfilingMiddleware

    rounds = 20000 if _enabled(request) else 100
    bare = lambda request: HttpResponse(b"{}")  # noqa: E731
    wrapped = QueryProfilingMiddleware(bare)
    factory = RequestFactory()
    times: dict[str, list[float]] = {"bare": [], "wrapped": []}
    for i in range(rounds):
        for name, call in (
            (("bare", bare), ("wrapped", wrapped))
            if i % 2
            else (
                ("wrapped", wrapped),
                ("bare", bare),
            )
        ):
            req = factory.get("/t/cached/")
            start = time.perf_counter()
            call(req)
            times[name].append((time.perf_counter() - start) * 1e6)
    bare_us, wrapped_us = (statistics.median(times[n]) for n in ("bare", "wrapped"))
    print(
        f"\nmiddleware alone, {rounds} interleaved calls: median {wrapped_us:.1f} us with it, "
        f"{bare_us:.1f} us without, difference {wrapped_us - bare_us:.1f} us"
    )


def test_overhead_interleaved(request: pytest.FixtureRequest) -> None:
    """Both variants timed alternately, request by request, so that load from other processes on
    this shared machine hits them equally; prints the medians and their difference."""
    rounds = 5000 if _enabled(request) else 50
    variants = {
        "without": _cached_request(BASE),
        "with": _cached_request([MONITORING, *BASE]),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(rounds):
        order = list(variants) if i % 2 == 0 else list(reversed(variants))
        for name in order:
            start = time.perf_counter()
            variants[name]()
            times[name].append((time.perf_counter() - start) * 1000)
    without, with_ = (statistics.median(times[name]) for name in ("without", "with"))
    print(
        f"\ncached request, {rounds} interleaved rounds: median without monitoring "
        f"{without:.3f} ms, with {with_:.3f} ms, difference {with_ - without:.3f} ms"
    )
