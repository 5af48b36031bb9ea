"""Lease scheduling in PostgreSQL: any number of runner processes, on any number of machines,
share one fleet; each bot runs at most once per ``as_of`` and a crashed runner's bots are picked
up once their lease expires.

A bot is *due* when it is active, ``next_run_at <= now`` and its lease is free (none, or expired).
``claim`` takes up to ``limit`` due bots in one statement (``CLAIM_SQL``): ``FOR UPDATE SKIP
LOCKED`` makes concurrent claimers skip each other's rows instead of waiting, and the UPDATE sets
the lease, so a bot claimed by one runner is not due for any other until ``lease_until``.
``next_run_at`` does not move at claim: the cycle runs at ``as_of`` = the bot's ``next_run_at``
rounded down to the schedule's tick (``tick_seconds``: at most 1 s, a divisor of the interval; or
the current interval slot when it is more than one interval late), and ``complete`` moves it one
interval on (so it stays on the tick grid) and frees the lease in the same UPDATE, only if this
runner still holds the lease. The tick is what lets a fleet share work: bots started at arbitrary
instants all run on whole ticks, so the bots due in one tick (of any owners) share one ``as_of``
and the runner runs them as one unit (one load, one read of the market, one snapshot batch)
instead of one unit per bot, while their due times stay spread over the interval. A
runner that dies mid-cycle leaves ``next_run_at`` where it was: the next claimer runs the same
``as_of`` again, and the cycle's deterministic client order ids make that retry record nothing
twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.utils import timezone

from trading import dataversion
from trading.models import Bot

# uses bot_due_idx (partial index on (next_run_at, id) WHERE status = 'active'): an index range
# scan up to now, in due order; rows another claimer has locked are skipped, not waited for.
CLAIM_SQL = f"""
WITH due AS (
    SELECT id FROM {Bot._meta.db_table}
    WHERE status = 'active' AND next_run_at <= %(now)s
      AND (lease_until IS NULL OR lease_until < %(now)s)
      {{only}}
    ORDER BY next_run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE {Bot._meta.db_table} AS b
SET lease_until = %(until)s, lease_owner = %(runner)s
FROM due WHERE b.id = due.id
RETURNING b.id, b.owner_id, b.next_run_at
"""


@dataclass(frozen=True, slots=True)
class Claim:
    bot_id: int
    owner_id: int
    as_of: datetime  # the instant this cycle reads the market at and records under
    due_at: datetime  # next_run_at when claimed (lag = start - due_at)


TICK_SECONDS = 1.0  # the longest tick: due bots within one second share their cycle's as_of
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def grid_slot(at: datetime, interval: float) -> datetime:
    """The start of the ``interval``-second slot (on the Unix epoch grid) containing ``at``, in
    whole microseconds (seconds truncated to an int put a 1.5 s interval's x.5 slots off grid)."""
    slot = max(1, round(interval * 1_000_000))
    micros = (at - _EPOCH) // _MICROSECOND
    return _EPOCH + timedelta(microseconds=micros // slot * slot)


def _tick_micros(interval: float) -> int:
    interval_us = max(1, round(interval * 1_000_000))
    parts = max(1, math.ceil(interval_us / (TICK_SECONDS * 1_000_000)))
    while interval_us % parts:  # whole microseconds: k ticks are exactly one interval
        parts += 1
    return interval_us // parts


def tick_seconds(interval: float) -> float:
    """The schedule's tick for ``interval``: the longest ``interval / k`` (k a whole number,
    in whole microseconds) of at most ``TICK_SECONDS``, so ``as_of + interval`` of an on-tick
    ``as_of`` is on the tick grid too (60 s: 1 s; 1.5 s: 0.75 s; 2.5 s: 0.625 s; 0.2 s: 0.2 s)."""
    return _tick_micros(interval) / 1_000_000


def tick_floor(at: datetime, interval: float) -> datetime:
    """``at`` rounded down to the tick grid of ``interval`` (whole microseconds since the epoch,
    exact: no float rounding moves an instant to another tick)."""
    tick = _tick_micros(interval)
    micros = (at - _EPOCH) // _MICROSECOND
    return _EPOCH + timedelta(microseconds=micros - micros % tick)


def cycle_as_of(due_at: datetime, now: datetime, interval: float) -> datetime:
    """A bot's next cycle instant: its ``next_run_at`` rounded down to the tick (at most 1 s
    before it is due: it never reads the market ahead of time), unless it is more than an
    interval late (paused for a while, a backlog): then the current slot, so it never trades
    stale instants."""
    if (now - due_at).total_seconds() > interval:
        return tick_floor(max(grid_slot(now, interval), due_at), interval)
    return tick_floor(due_at, interval)


def claim(
    *,
    runner: str,
    limit: int,
    lease_seconds: float,
    interval: float,
    bot_ids: list[int] | None = None,
    now: datetime | None = None,
) -> list[Claim]:
    """Lease up to ``limit`` due bots (of ``bot_ids`` when given) to ``runner``. One statement."""
    now = now or timezone.now()
    only = "AND id = ANY(%(ids)s)" if bot_ids is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            CLAIM_SQL.format(only=only),
            {
                "now": now,
                "limit": limit,
                "until": now + timedelta(seconds=lease_seconds),
                "runner": runner,
                "ids": bot_ids,
            },
        )
        rows = cursor.fetchall()
    rows.sort(key=lambda row: (row[2], row[0]))
    return [
        Claim(bot_id, owner_id, cycle_as_of(due, now, interval), due)
        for bot_id, owner_id, due in rows
    ]


COMPLETE_SQL = f"""
UPDATE {Bot._meta.db_table} AS b
SET next_run_at = GREATEST(b.next_run_at, v.as_of + %(interval)s * INTERVAL '1 second'),
    lease_until = NULL, lease_owner = '',
    last_cycle_at = GREATEST(b.last_cycle_at, v.as_of),
    last_error = v.error,
    cycle_count = b.cycle_count + CASE WHEN b.last_cycle_at = v.as_of THEN 0 ELSE 1 END
FROM (SELECT unnest(%(ids)s::bigint[]) AS id, unnest(%(as_of)s::timestamptz[]) AS as_of,
             unnest(%(errors)s::text[]) AS error) AS v
WHERE b.id = v.id {{owned}}
RETURNING b.owner_id
"""


def complete(
    *,
    results: list[tuple[int, datetime, str]],
    interval: float,
    runner: str | None = None,
) -> int:
    """Record finished cycles ``(bot_id, as_of, error)`` and free their leases: one UPDATE.

    ``next_run_at`` moves to ``as_of + interval`` (never backwards); ``cycle_count`` does not
    count a retry of the bot's last ``as_of`` again (concurrent completions of one instant are
    serialised by the row lock, and the second sees the first's ``last_cycle_at``). With ``runner``, only the bots whose
    lease it still holds are updated (an expired lease taken over by another runner is theirs).
    Returns the rows updated. Those fields are in ``GET /api/bots/``: each owner's data version
    moves (after commit), or that cached list would show the cycle before."""
    if not results:
        return 0
    owned = "AND b.lease_owner = %(runner)s" if runner is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            COMPLETE_SQL.format(owned=owned),
            {
                "ids": [r[0] for r in results],
                "as_of": [r[1] for r in results],
                "errors": [r[2][:2000] for r in results],
                "interval": interval,
                "runner": runner,
            },
        )
        rows = cursor.fetchall()
    for owner_id in sorted({owner_id for (owner_id,) in rows}):
        dataversion.bump_on_commit(owner_id)  # raw SQL: no post_save
    return len(rows)


def release(*, bot_ids: list[int], runner: str) -> int:
    """Give leases back without running (a runner shutting down before it started them)."""
    if not bot_ids:
        return 0
    return Bot.objects.filter(pk__in=bot_ids, lease_owner=runner).update(
        lease_until=None, lease_owner=""
    )
