"""Lease scheduling in PostgreSQL: claims skip each other, leases expire, completion moves on."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from trading.engine import schedule
from trading.models import Bot
from trading.tests.factories import make_bot, make_user

pytestmark = [pytest.mark.postgres]
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _fleet(n: int, *, status: str = "active", due: datetime = T0) -> list[int]:
    owner = make_user()
    ids = [make_bot(owner=owner, strategy="manual").pk for _ in range(n)]
    Bot.objects.filter(pk__in=ids).update(status=status, next_run_at=due)
    return ids


@pytest.mark.django_db
def test_claim_takes_due_active_bots_once_until_the_lease_expires() -> None:
    due = _fleet(3)
    _fleet(2, status="paused")  # never claimed
    later = _fleet(1, due=T0 + timedelta(minutes=5))
    now = T0 + timedelta(seconds=1)
    first = schedule.claim(runner="a", limit=10, lease_seconds=30, interval=60, now=now)
    assert sorted(c.bot_id for c in first) == due
    assert all(c.as_of == T0 for c in first)
    assert schedule.claim(runner="b", limit=10, lease_seconds=30, interval=60, now=now) == []
    # Runner a crashed: 31 s later its leases have expired and b takes the same as_of.
    again = schedule.claim(
        runner="b", limit=10, lease_seconds=30, interval=60, now=now + timedelta(seconds=31)
    )
    assert sorted(c.bot_id for c in again) == due and {c.as_of for c in again} == {T0}
    # a finishing late frees nothing that is b's now.
    assert schedule.complete(results=[(due[0], T0, "")], interval=60, runner="a") == 0
    assert schedule.complete(results=[(b, T0, "") for b in due], interval=60, runner="b") == 3
    bot = Bot.objects.get(pk=due[0])
    assert (bot.next_run_at, bot.lease_until, bot.last_cycle_at, bot.cycle_count) == (
        T0 + timedelta(seconds=60), None, T0, 1,
    )  # fmt: skip
    assert later[0] not in [c.bot_id for c in again]


@pytest.mark.django_db
def test_a_retried_as_of_counts_once_and_never_moves_the_schedule_back() -> None:
    (bot_id,) = _fleet(1)
    schedule.complete(results=[(bot_id, T0, "")], interval=60)
    schedule.complete(results=[(bot_id, T0, "boom")], interval=60)
    bot = Bot.objects.get(pk=bot_id)
    assert bot.cycle_count == 1 and bot.last_error == "boom"
    assert bot.next_run_at == T0 + timedelta(seconds=60)


def test_a_bot_late_by_more_than_an_interval_runs_the_current_slot() -> None:
    due = T0 - timedelta(hours=3)
    now = T0 + timedelta(seconds=7)
    assert schedule.cycle_as_of(due, now, 60) == T0
    assert schedule.cycle_as_of(T0, now, 60) == T0  # on time: its own instant


def test_due_times_round_down_to_the_tick_and_stay_on_it() -> None:
    assert [schedule.tick_seconds(i) for i in (60, 1.5, 0.2, 2.5)] == [1.0, 0.75, 0.2, 0.625]
    for interval in (60, 1.5, 0.2, 2.5):
        tick = timedelta(seconds=schedule.tick_seconds(interval))
        for ms in (0, 1, 249, 250, 749, 999, 61_234, 3_599_999):
            due = T0 + timedelta(milliseconds=ms, microseconds=ms % 7)
            at = schedule.cycle_as_of(due, due, interval)
            assert at <= due < at + tick  # never ahead of time, at most one tick early
            following = at + timedelta(seconds=interval)  # what complete() sets next
            assert schedule.cycle_as_of(following, following, interval) == following


def test_bots_due_within_one_tick_share_one_as_of_and_one_unit_whatever_their_owner() -> None:
    from trading.engine.runner import MAX_GROUP, units

    now = T0 + timedelta(seconds=2)
    claims = [
        schedule.Claim(i, owner, schedule.cycle_as_of(due, now, 60), due)
        for i, (owner, due) in enumerate(
            [(o, T0 + timedelta(milliseconds=37 * i)) for i, o in enumerate([1, 2, 3, 1, 2])]
            + [(4, T0 + timedelta(seconds=1, milliseconds=5))]
        )
    ]
    assert [(at, [c.bot_id for c in part]) for at, part in units(claims)] == [
        (T0, [0, 1, 2, 3, 4]), (T0 + timedelta(seconds=1), [5]),
    ]  # fmt: skip
    # Idle workers get a few due bots each; with none idle, units fill up to MAX_GROUP.
    assert [len(p) for _, p in units(claims[:5], workers=3)] == [2, 2, 1]
    many = [schedule.Claim(i, i, T0, T0) for i in range(2 * MAX_GROUP + 3)]
    assert [len(p) for _, p in units(many, workers=0)] == [MAX_GROUP, MAX_GROUP, 3]


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_never_take_the_same_bot() -> None:
    ids = set(_fleet(60))
    now = T0 + timedelta(seconds=1)
    got: dict[str, list[int]] = {}
    barrier = threading.Barrier(4, timeout=10)

    def claimer(name: str) -> None:
        try:
            barrier.wait()
            mine: list[int] = []
            while True:
                batch = schedule.claim(runner=name, limit=5, lease_seconds=60, interval=60, now=now)
                if not batch:
                    break
                mine.extend(c.bot_id for c in batch)
            got[name] = mine
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer, args=(f"r{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    claimed = [b for mine in got.values() for b in mine]
    assert sorted(claimed) == sorted(ids)  # each exactly once, none left


@pytest.mark.django_db
def test_the_claim_query_uses_the_partial_due_index(django_assert_num_queries: Any) -> None:
    _fleet(5)
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(
            "EXPLAIN " + schedule.CLAIM_SQL.format(only=""),
            {"now": T0, "limit": 5, "until": T0, "runner": "x", "ids": None},
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")
    assert "bot_due_idx" in plan
    with django_assert_num_queries(1):
        schedule.claim(runner="x", limit=5, lease_seconds=5, interval=60, now=T0)


def test_grid_slots_of_fractional_intervals_stay_on_the_grid() -> None:
    at = datetime(2026, 1, 1, 0, 0, 19, 600_000, tzinfo=UTC)
    assert schedule.grid_slot(at, 1.5) == datetime(2026, 1, 1, 0, 0, 19, 500_000, tzinfo=UTC)
    assert schedule.grid_slot(at, 60) == datetime(2026, 1, 1, tzinfo=UTC)
    assert schedule.grid_slot(at, 0.25) == at.replace(microsecond=500_000)
