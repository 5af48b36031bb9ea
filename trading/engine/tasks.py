"""Celery tasks: the same cycle as ``run_bots``, fed by the same lease schedule.

- ``dispatch`` (Celery beat, every ``ENGINE_DISPATCH_SECONDS``): claims the due bots (leases in
  PostgreSQL, ``trading.engine.schedule``) and queues one ``run_cycles`` task per ``as_of``
  (the schedule's tick; at most ``MAX_GROUP`` bots of any owners each). Several beats or dispatch calls at once cannot
  claim one bot twice.
- ``run_cycles(bot_ids, as_of, runner)``: runs the cycles (``trading.engine.cycle.cycles_run``),
  then completes them (moves ``next_run_at``, frees the leases the dispatcher took). Late acks:
  a worker that dies mid-task leaves it to another, and the cycle's deterministic order ids make
  that rerun record nothing twice; if it never runs, the lease expires and the next dispatch
  claims the bots again.
"""

from __future__ import annotations

import time
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from marketdata.cache import release_db_connection
from trading.engine import schedule
from trading.engine.cycle import CycleResult, cycles_run
from trading.engine.runner import _observe, runner_name, units


@shared_task(name="trading.engine.tasks.dispatch", ignore_result=True)
def dispatch(limit: int = 1000, bot_ids: list[int] | None = None) -> int:
    """Claim due bots and queue their cycles; returns how many bots were queued."""
    interval = settings.ENGINE_INTERVAL_SECONDS
    runner = f"celery:{runner_name()}"
    claims = schedule.claim(
        runner=runner, limit=limit, lease_seconds=max(30.0, 2 * interval), interval=interval,
        bot_ids=bot_ids,
    )  # fmt: skip
    release_db_connection()
    for as_of, part in units(claims):
        run_cycles.delay(
            [c.bot_id for c in part], as_of.isoformat(), runner,
            {str(c.bot_id): c.due_at.isoformat() for c in part},
        )  # fmt: skip
    return len(claims)


@shared_task(name="trading.engine.tasks.run_cycles", ignore_result=True, acks_late=True)
def run_cycles(
    bot_ids: list[int], as_of: str, runner: str, due: dict[str, str] | None = None
) -> int:
    """Run and complete one group's cycles; returns how many had an error."""
    at = datetime.fromisoformat(as_of)
    started = timezone.now()
    t0 = time.perf_counter()
    try:
        results = cycles_run(bot_ids=bot_ids, as_of=at)
    except Exception as exc:  # recorded on the bots, like the runner does
        results = [CycleResult(b, at, ran=True, error=f"{type(exc).__name__}: {exc}",
                               seconds=time.perf_counter() - t0) for b in bot_ids]  # fmt: skip
    try:
        schedule.complete(
            results=[(r.bot_id, r.as_of, r.error) for r in results],
            interval=settings.ENGINE_INTERVAL_SECONDS,
            runner=runner,
        )
    finally:
        release_db_connection()
    due = due or {}
    for result in results:
        due_at = (
            datetime.fromisoformat(due[str(result.bot_id)]) if str(result.bot_id) in due else at
        )
        _observe(result, (started - due_at).total_seconds(), runner)
    return sum(1 for r in results if r.error)
