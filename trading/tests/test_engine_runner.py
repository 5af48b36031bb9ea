"""The runner: run_bots on a small fleet, two runner processes on one fleet, a crashed runner's
leases taken over, graceful SIGTERM, and the same cycles through a real Celery worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from io import StringIO
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from trading.engine import schedule
from trading.ledger import check_ledger
from trading.models import Bot, EquitySnapshot
from trading.tests.factories import make_bot, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
PROCESS_TIMEOUT = 90  # s: any subprocess of these tests is killed past this


def _fleet(bots: int, *, owners: int = 3, strategy: str = "sma_cross") -> list[int]:
    users = [make_user() for _ in range(owners)]
    ids = []
    for i in range(bots):
        bot = make_bot(
            owner=users[i % owners], strategy=strategy, symbols=["BTC/USDT", "ETH/USDT"],
            timeframe="1m", initial_capital=Decimal("10000"),
        )  # fmt: skip
        ids.append(bot.pk)
    params = {"fast": 2, "slow": 3} if strategy == "sma_cross" else {}
    Bot.objects.filter(pk__in=ids).update(
        status="active", strategy_params=params, next_run_at=timezone.now()
    )
    return ids


def _env(**extra: str) -> dict[str, str]:
    name = connection.settings_dict["NAME"]  # the test database
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + f"/{name}"
    return {
        **os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "zerobot.test_settings",
        "DB_POOL_MIN_SIZE": "1", "DB_POOL_MAX_SIZE": "6", "LOG_LEVEL": "WARNING", **extra,
    }  # fmt: skip


def _runner(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_bots", "--quiet", *args],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _finish(process: subprocess.Popen, timeout: float = PROCESS_TIMEOUT) -> tuple[str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=10)
        pytest.fail(f"runner did not finish in {timeout}s:\n{err[-3000:]}")
    assert process.returncode == 0, err[-3000:]
    return out, err


def _cycles(stderr: str) -> list[dict[str, Any]]:
    lines = []
    for line in stderr.splitlines():
        if line.startswith("{") and '"bot_cycle"' in line:
            lines.append(json.loads(line))
    return lines


def test_run_bots_on_a_small_fleet_runs_k_cycles_and_leaves_a_clean_ledger() -> None:
    ids = _fleet(6)
    out = StringIO()
    call_command(
        "run_bots", "--cycles", "3", "--interval", "0.3", "--concurrency", "3", "--quiet",
        stdout=out, stderr=StringIO(),
    )  # fmt: skip
    assert "done: 18 cycles, 0 with errors" in out.getvalue()
    bots = Bot.objects.filter(pk__in=ids)
    assert sorted(b.cycle_count for b in bots) == [3] * 6
    assert all(b.lease_owner == "" and b.lease_until is None and not b.last_error for b in bots)
    assert EquitySnapshot.objects.filter(bot_id__in=ids).count() == 18
    assert check_ledger() == []


def test_two_runner_processes_on_one_fleet_never_run_a_bot_twice_for_one_as_of() -> None:
    ids = _fleet(12)
    first = _runner("--interval", "1.5", "--duration", "7", "--concurrency", "3")
    second = _runner("--interval", "1.5", "--duration", "7", "--concurrency", "3")
    runs = [_cycles(_finish(p)[1]) for p in (first, second)]
    seen: dict[tuple[int, str], int] = defaultdict(int)
    per_bot: dict[int, list[tuple[datetime, float]]] = defaultdict(list)
    for lines in runs:
        for line in lines:
            seen[line["bot"], line["as_of"]] += 1
            per_bot[line["bot"]].append((datetime.fromisoformat(line["as_of"]), line["lag_s"]))
    assert seen and max(seen.values()) == 1  # no bot twice for one as_of
    assert set(per_bot) == set(ids)  # none left out
    assert all(runs), "both runners ran cycles"
    for bot_id, cycles in per_bot.items():
        cycles.sort()
        for (a, _), (b, lag) in pairwise(cycles):
            # None skipped: every 1.5 s slot ran, except where the cycle started more than an
            # interval after its due time (a loaded machine): then, by design, it runs the
            # current slot instead of trading stale instants (schedule.cycle_as_of).
            assert (b - a).total_seconds() == 1.5 or lag > 1.5, (bot_id, cycles)
    counts = dict(Bot.objects.filter(pk__in=ids).values_list("pk", "cycle_count"))
    assert all(counts[b] == len(per_bot[b]) for b in ids)
    assert check_ledger() == []


def test_a_crashed_runners_bots_are_picked_up_after_their_lease_expires() -> None:
    ids = _fleet(4, strategy="manual")
    due = dict(Bot.objects.filter(pk__in=ids).values_list("pk", "next_run_at"))
    # A runner claimed them and died: its leases (2 s) are all that is left of it.
    claimed = schedule.claim(runner="dead-runner", limit=10, lease_seconds=2, interval=60)
    assert sorted(c.bot_id for c in claimed) == sorted(ids)
    claimed_at = {c.bot_id: c.as_of for c in claimed}
    started = time.monotonic()
    _, err = _finish(_runner("--interval", "60", "--cycles", "1", "--bots",
                             ",".join(map(str, ids))))  # fmt: skip
    lines = _cycles(err)
    assert sorted(line["bot"] for line in lines) == sorted(ids)
    assert all(line["lag_s"] >= 1.5 for line in lines)  # they waited for the lease to expire
    for line in lines:  # the same instants the dead runner had claimed (due, on the tick)
        assert datetime.fromisoformat(line["as_of"]) == schedule.tick_floor(due[line["bot"]], 60)
        assert datetime.fromisoformat(line["as_of"]) == claimed_at[line["bot"]]
    assert time.monotonic() - started < PROCESS_TIMEOUT
    assert all(b.cycle_count == 1 for b in Bot.objects.filter(pk__in=ids))


def test_sigterm_finishes_running_cycles_and_releases_the_leases() -> None:
    ids = _fleet(6, strategy="manual")
    process = _runner("--interval", "0.5", "--concurrency", "2")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if Bot.objects.filter(pk__in=ids, cycle_count__gte=1).count() == len(ids):
            break
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the runner ran no cycle in 60 s")
    process.send_signal(signal.SIGTERM)
    _, err = _finish(process, timeout=60)
    assert "SIGTERM: finishing running cycles" in err
    assert not Bot.objects.filter(pk__in=ids).exclude(lease_owner="").exists()
    assert check_ledger() == []


def test_cycles_through_a_real_celery_worker() -> None:
    from zerobot.celery import app

    ids = _fleet(4)
    queue = f"zb-test-{uuid.uuid4().hex[:8]}"
    broker = app.conf.broker_url
    assert broker.startswith("redis://"), broker
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "zerobot.celery", "worker", "--pool", "threads",
         "--concurrency", "2", "-Q", queue, "--without-heartbeat", "--without-mingle",
         "--without-gossip", "--loglevel", "WARNING"],
        cwd=ROOT, env=_env(CELERY_BROKER_URL=broker, CELERY_TASK_DEFAULT_QUEUE=queue),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        from trading.engine.tasks import dispatch

        app.conf.task_default_queue = queue
        assert dispatch() == len(ids)  # claimed here, run there
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if Bot.objects.filter(pk__in=ids, cycle_count=1, lease_owner="").count() == len(ids):
                break
            time.sleep(0.25)
        else:
            pytest.fail("the Celery worker did not run the cycles in 60 s")
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            output, _ = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate(timeout=10)
    assert EquitySnapshot.objects.filter(bot_id__in=ids).count() == len(ids), output[-3000:]
    assert not any(b.last_error for b in Bot.objects.filter(pk__in=ids))
    assert check_ledger() == []


def _stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate(timeout=10)
    return output


def test_a_real_celery_beat_dispatches_cycles_that_a_real_worker_runs_on_schedule(
    tmp_path: Path,
) -> None:
    from zerobot.celery import app

    ids = _fleet(4)
    queue = f"zb-test-{uuid.uuid4().hex[:8]}"
    broker = app.conf.broker_url
    assert broker.startswith("redis://"), broker
    # Beat claims every 0.5 s; each bot is due every 2 s: two cycles of each take two rounds of
    # the schedule, dispatched by beat alone (nothing here calls dispatch).
    env = _env(CELERY_BROKER_URL=broker, CELERY_TASK_DEFAULT_QUEUE=queue,
               ENGINE_DISPATCH_SECONDS="0.5", ENGINE_INTERVAL_SECONDS="2")  # fmt: skip
    common = {"cwd": ROOT, "env": env, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT,
              "text": True}  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "zerobot.celery", "worker", "--pool", "threads",
         "--concurrency", "2", "-Q", queue, "--without-heartbeat", "--without-mingle",
         "--without-gossip", "--loglevel", "WARNING"], **common,
    )  # fmt: skip
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "zerobot.celery", "beat", "--loglevel", "INFO",
         "--max-interval", "1", "-s", str(tmp_path / "beat-schedule")], **common,
    )  # fmt: skip
    beat_output = ""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if Bot.objects.filter(pk__in=ids, cycle_count__gte=2).count() == len(ids):
                break
            if beat.poll() is not None or worker.poll() is not None:
                break
            time.sleep(0.25)
    finally:
        beat_output = _stop(beat)
        worker_output = _stop(worker)
    bots = list(Bot.objects.filter(pk__in=ids))
    assert all(b.cycle_count >= 2 for b in bots), (beat_output[-2000:], worker_output[-2000:])
    assert "trading.engine.tasks.dispatch" in beat_output  # beat sent the dispatches
    assert not any(b.last_error for b in bots)
    # Each cycle at its own instant, 2 s apart on the schedule's tick, none recorded twice.
    for bot in bots:
        taken = sorted(EquitySnapshot.objects.filter(bot=bot).values_list("taken_at", flat=True))
        assert len(taken) == bot.cycle_count
        assert all((b - a).total_seconds() >= 2 for a, b in pairwise(taken))
    assert check_ledger() == []
