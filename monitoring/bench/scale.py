"""The scale series of ``manage.py bench``: the same user with more and more history, p95 per
endpoint at each level (flat is the goal).

A level is the demo user alone with 10 bots, 10 open positions per bot (100 open in all, at every
level: the open book does not grow with history), 2,000 equity snapshots per bot, and ``trades``
fills in all (closed positions and partial closes make up the rest), seeded by ``seed_demo``
with the profile passed through and these counts as overrides. The data of the previous level is
truncated first: this runs on the benchmark database only (``database.require_marked``).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

from django.core.management import call_command
from django.db import connection

from monitoring.bench.compare import stats, timed
from trading.seed import SEEDED_MODELS, demo_users

BOTS = 10
OPEN_PER_BOT = 10
SNAPSHOTS_PER_BOT = 2000


def overrides(trades_per_user: int) -> dict[str, int]:
    per_bot = max(trades_per_user // BOTS, 2 * OPEN_PER_BOT)
    return {
        "users": 1, "bots_per_user": BOTS, "trades_per_bot": per_bot,
        "open_positions": OPEN_PER_BOT, "closed_positions": (per_bot - OPEN_PER_BOT) // 2,
        "snapshots_per_bot": SNAPSHOTS_PER_BOT,
    }  # fmt: skip


def wipe() -> None:
    """Every seeded row and the demo users (benchmark database only: TRUNCATE)."""
    tables = ", ".join(f'"{model._meta.db_table}"' for model in SEEDED_MODELS)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} CASCADE")
    demo_users().delete()


def seed_level(profile: str, trades_per_user: int) -> float:
    wipe()
    started = time.perf_counter()
    call_command("seed_demo", profile=profile, force=True, verbosity=0, stdout=io.StringIO(),
                 **overrides(trades_per_user))  # fmt: skip
    return time.perf_counter() - started


def run(
    *, profile: str, levels: list[int], urls: list[str], iterations: int,
    client_for: Callable[[], Any], seconds_left: Callable[[], float],
    say: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    """Each level in turn; a level whose seeding would not fit in the time left (estimated from
    the previous level's seeding, in proportion to the fills) is skipped and says so."""
    from django.test.utils import override_settings

    done: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    per_fill: float | None = None
    for level in levels:
        if per_fill is not None and per_fill * level * 1.5 > seconds_left():
            skipped[str(level)] = (
                f"time bound: seeding estimated at {per_fill * level:.0f} s, "
                f"{max(seconds_left(), 0):.0f} s left"
            )
            say(f"    scale {level:,} trades per user: skipped ({skipped[str(level)]})")
            continue
        seconds = seed_level(profile, level)
        per_fill = seconds / level
        client = client_for()
        rows = {}
        with override_settings(DASHBOARD_CACHE_SECONDS=0):
            for url in urls:
                timed(client, url, 3)
                rows[url] = stats(timed(client, url, iterations))
        done.append({"trades_per_user": level, "seed_seconds": round(seconds, 1), "rows": rows})
        say(f"    scale {level:,} trades per user: seeded in {seconds:.0f} s, measured")
    return {"shape": {"bots": BOTS, "open_positions_per_bot": OPEN_PER_BOT,
                      "snapshots_per_bot": SNAPSHOTS_PER_BOT},
            "levels": done, "skipped": skipped}  # fmt: skip
