"""The threaded runner behind ``manage.py run_bots``: a dispatcher (the calling thread) claims due
bots through the lease schedule and hands them, grouped by ``as_of`` (units of at most
``MAX_GROUP`` bots of any owners: one load, one market read and one snapshot batch each), to
``concurrency`` worker threads that share the process's connection pool. A worker holds a pooled connection only
while a cycle talks to the database (the cycle gives it back before its market reads, the worker
after each unit), so 1,000 bots need no more connections than workers.

Stopping (``stop()``, SIGTERM/SIGINT in the command) stops claiming, gives back the leases of
claimed bots not started yet, lets running cycles finish (bounded by ``drain_timeout``) and
returns; the command then closes the pool.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.utils import timezone

from marketdata.cache import release_db_connection
from marketdata.clients.base import MarketDataClient
from trading.engine import schedule
from trading.engine.cycle import CycleResult, cycles_run
from trading.engine.signals import cycle_finished

logger = logging.getLogger("zerobot.engine")
cycle_log = logging.getLogger("zerobot.engine.cycle")

MAX_GROUP = 25  # bots per unit of work (one load, one market read, one snapshot batch)


def runner_name() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class RunnerStats:
    """What the progress line shows; counters since start, samples over the last ``WINDOW``."""

    started: float = field(default_factory=time.monotonic)
    cycles: int = 0
    errors: int = 0
    rejected: int = 0
    opened: int = 0
    closed: int = 0
    durations: deque = field(default_factory=lambda: deque(maxlen=5000))  # seconds per cycle
    lags: deque = field(default_factory=lambda: deque(maxlen=5000))  # start - due, seconds
    finished: deque = field(default_factory=lambda: deque(maxlen=20000))  # monotonic ends
    timings: dict[str, float] = field(default_factory=dict)  # summed per phase
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, result: CycleResult, lag: float) -> None:
        with self.lock:
            self.cycles += 1
            self.errors += bool(result.error)
            self.rejected += len(result.rejected)
            self.opened += result.opened
            self.closed += sum(result.closed.values())
            self.durations.append(result.seconds)
            self.lags.append(lag)
            self.finished.append(time.monotonic())
            for name, seconds in result.timings.items():
                self.timings[name] = self.timings.get(name, 0.0) + seconds

    def add_timing(self, name: str, seconds: float) -> None:
        """Time spent outside the cycles (claims, completions, logging and metrics)."""
        with self.lock:
            self.timings[name] = self.timings.get(name, 0.0) + seconds

    def rate(self, window: float = 10.0) -> float:
        now = time.monotonic()
        with self.lock:
            recent = sum(1 for t in self.finished if t >= now - window)
        span = min(window, max(now - self.started, 1e-9))
        return recent / span

    def summary(self) -> dict[str, float]:
        with self.lock:
            durations, lags = list(self.durations), list(self.lags)
        return {
            "cycles": self.cycles,
            "errors": self.errors,
            "p50_ms": percentile(durations, 50) * 1000,
            "p95_ms": percentile(durations, 95) * 1000,
            "lag_p50_s": percentile(lags, 50),
            "lag_p95_s": percentile(lags, 95),
            "lag_max_s": max(lags, default=0.0),
        }


@dataclass
class _Unit:
    as_of: datetime
    claims: list[schedule.Claim]


def units(
    claims: list[schedule.Claim], *, workers: int = 1
) -> list[tuple[datetime, list[schedule.Claim]]]:
    """Claims grouped by ``as_of`` (the schedule's tick: bots of any owners due in one tick), in
    parts of at most ``MAX_GROUP`` and, when ``workers`` are idle, at least that many parts (a few
    due bots are spread over idle workers instead of run one after the other by one; with every
    worker busy, one large unit). Claims come in due order, and so do the units."""
    groups: dict[datetime, list[schedule.Claim]] = {}
    for claim in claims:
        groups.setdefault(claim.as_of, []).append(claim)
    result = []
    for as_of, members in groups.items():
        size = min(MAX_GROUP, max(1, math.ceil(len(members) / max(1, workers))))
        result.extend(
            (as_of, members[start : start + size]) for start in range(0, len(members), size)
        )
    return result


def pool_stats() -> dict[str, int]:
    """This process's pool: connections in use, requests waiting, errors (0s without a pool)."""
    pool = getattr(connection, "pool", None) if connection.vendor == "postgresql" else None
    if pool is None or pool.closed:
        return {"size": 0, "in_use": 0, "waiting": 0, "errors": 0, "timeouts": 0}
    raw = pool.get_stats()
    size = raw.get("pool_size", 0)
    return {
        "size": size,
        "in_use": size - raw.get("pool_available", 0),
        "waiting": raw.get("requests_waiting", 0),
        "errors": raw.get("requests_errors", 0) + raw.get("connections_errors", 0),
        "timeouts": raw.get("requests_errors", 0),
    }


class Runner:
    def __init__(
        self,
        *,
        interval: float = 60.0,
        concurrency: int = 10,
        bot_ids: list[int] | None = None,
        cycles: int | None = None,
        lease_seconds: float | None = None,
        name: str | None = None,
        client: MarketDataClient | None = None,
        drain_timeout: float = 30.0,
        on_result: Callable[[CycleResult, float], None] | None = None,
    ) -> None:
        self.interval = interval
        self.concurrency = concurrency
        self.bot_ids = bot_ids
        self.cycles = cycles
        # A lease outlives a queued-then-run cycle comfortably; an expired one is taken over.
        self.lease_seconds = lease_seconds or max(30.0, 2 * interval)
        self.name = name or runner_name()
        self.client = client
        self.drain_timeout = drain_timeout
        self.on_result = on_result
        self.stats = RunnerStats()
        self._stop = threading.Event()
        self._queue: queue.Queue[_Unit | None] = queue.Queue()
        self._in_flight = 0  # units of work queued or running (a unit: bots of one owner)
        self._in_flight_lock = threading.Lock()
        self._freed = threading.Event()  # a worker finished a unit: room to claim more
        self._dispatched: dict[int, int] = {}  # bot -> cycles handed to workers
        self._threads: list[threading.Thread] = []

    # --- control ----------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        self._freed.set()  # wake the dispatcher

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _remaining_bots(self) -> list[int] | None:
        """Bots still to run (``cycles`` given): the claim filter. None = no filter."""
        if self.cycles is None:
            return self.bot_ids
        assert self.bot_ids is not None
        with self._in_flight_lock:  # dispatched, not done: a running cycle counts already
            return [b for b in self.bot_ids if self._dispatched.get(b, 0) < self.cycles]

    def run(self, *, duration: float | None = None, until_idle: bool = False) -> RunnerStats:
        """Dispatch until stopped, ``duration`` seconds passed, every bot ran ``cycles``, or
        (``until_idle``) no bot is due and no cycle is running (benchmarks: one round)."""
        if self.cycles is not None and self.bot_ids is None:
            raise ValueError("cycles needs the list of bots (bot_ids)")
        for i in range(self.concurrency):
            thread = threading.Thread(target=self._work, name=f"bot-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        deadline = None if duration is None else time.monotonic() + duration
        # How often an idle dispatcher looks for due bots (one index probe): bounds the lag a
        # bot waits after it becomes due. A finishing unit wakes the dispatcher at once.
        poll = min(0.2, max(0.02, self.interval / 20))
        try:
            while not self.stopping:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                remaining = self._remaining_bots()
                if remaining is not None and not remaining:
                    if self._idle():
                        break
                    self._freed.wait(poll)
                    self._freed.clear()
                    continue
                # Keep every worker busy with one unit queued behind it. A claim takes at most
                # that many bots (its bots due in one tick share one unit), and the loop claims
                # again at once while there is room: a tick's bots end up in a few large units,
                # and a small due set stays small claims that other runners can share.
                room = 2 * self.concurrency - self._in_flight
                claimed = []
                if room <= 0:  # every worker busy and a unit queued each: wait for one to end
                    self._freed.wait(poll)
                    self._freed.clear()
                    continue
                if room > 0:
                    t0 = time.perf_counter()
                    claimed = schedule.claim(
                        runner=self.name, limit=room,
                        lease_seconds=self.lease_seconds, interval=self.interval,
                        bot_ids=remaining,
                    )  # fmt: skip
                    release_db_connection()
                    self.stats.add_timing("claim", time.perf_counter() - t0)
                    self._dispatch(claimed)
                if not claimed:
                    if until_idle and self._idle():
                        break
                    self._freed.wait(poll)
                    self._freed.clear()
        finally:
            self._shutdown()
        return self.stats

    def _idle(self) -> bool:
        with self._in_flight_lock:
            return self._in_flight == 0

    def _dispatch(self, claims: list[schedule.Claim]) -> None:
        with self._in_flight_lock:
            idle = self.concurrency - self._in_flight  # workers with nothing running or queued
        for as_of, part in units(claims, workers=idle):
            with self._in_flight_lock:
                self._in_flight += 1
                for claim in part:
                    self._dispatched[claim.bot_id] = self._dispatched.get(claim.bot_id, 0) + 1
            self._queue.put(_Unit(as_of, part))

    def _shutdown(self) -> None:
        self._stop.set()
        # Claimed but not started: give the leases back so another runner takes them at once.
        unstarted: list[int] = []
        while True:
            try:
                unit = self._queue.get_nowait()
            except queue.Empty:
                break
            if unit is not None:
                unstarted.extend(c.bot_id for c in unit.claims)
                with self._in_flight_lock:
                    self._in_flight -= 1
        if unstarted:
            schedule.release(bot_ids=unstarted, runner=self.name)
            release_db_connection()
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + self.drain_timeout
        for thread in self._threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            logger.warning("runner %s: cycles still running after %ss: %s", self.name,
                           self.drain_timeout, alive)  # fmt: skip

    # --- workers ----------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            unit = self._queue.get()
            if unit is None:
                return
            try:
                self._run_unit(unit)
            except Exception:  # never lose a worker: log, free what can be freed
                logger.exception("runner %s: unit at %s failed", self.name, unit.as_of.isoformat())
            finally:
                with self._in_flight_lock:
                    self._in_flight -= 1
                self._freed.set()
                release_db_connection()  # back to the pool between units

    def _run_unit(self, unit: _Unit) -> None:
        started = timezone.now()
        ids = [c.bot_id for c in unit.claims]
        try:
            results = cycles_run(bot_ids=ids, as_of=unit.as_of, client=self.client)
        except Exception as exc:
            logger.exception("cycles of bots %s at %s failed", ids, unit.as_of.isoformat())
            results = [CycleResult(b, unit.as_of, ran=True, error=f"{type(exc).__name__}: {exc}")
                       for b in ids]  # fmt: skip
        t0 = time.perf_counter()
        schedule.complete(
            results=[(r.bot_id, r.as_of, r.error) for r in results],
            interval=self.interval,
            runner=self.name,
        )
        t1 = time.perf_counter()
        due = {c.bot_id: c.due_at for c in unit.claims}
        for result in results:
            lag = (started - due[result.bot_id]).total_seconds()
            self.stats.add(result, lag)
            _observe(result, lag, self.name)
            if self.on_result is not None:
                self.on_result(result, lag)
        self.stats.add_timing("complete", t1 - t0)
        self.stats.add_timing("observe", time.perf_counter() - t1)


def _observe(result: CycleResult, lag: float, runner: str) -> None:
    """One JSON log line per cycle and the ``cycle_finished`` signal (monitoring listens)."""
    line = {
        "event": "bot_cycle",
        "bot": result.bot_id,
        "as_of": result.as_of.isoformat(),
        "ran": result.ran,
        "queries": result.queries,
        "ms": round(result.seconds * 1000, 2),
        "lag_s": round(lag, 3),
        "opened": result.opened,
        "closed": result.closed,
        "error": result.error or None,
        "runner": runner,
    }
    if result.error:
        cycle_log.warning(line)
    else:
        cycle_log.info(line)
    cycle_finished.send(sender=Runner, result=result, lag=lag)
