"""The scale series of ``manage.py bench``: the same user with more and more history, p95 per
endpoint at each level (flat is the goal).

A level is the demo user alone with 10 bots, 10 open positions per bot (100 open in all, at every
level: the open book does not grow with history), 2,000 equity snapshots per bot, and ``trades``
fills in all (closed positions and partial closes make up the rest), seeded by ``seed_demo``
with the profile passed through and these counts as overrides. Each level is seeded as the
demo user, then renamed ``scale-<trades>`` so the next can be seeded; once all are there, every
endpoint is timed for every level in alternating blocks, so the machine's noise falls on each
level alike and the last / first ratio reads as the growth with history. The profile's own data
is truncated first: this runs on the benchmark database only (``database.require_marked``).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

from django.core.management import call_command
from django.db import connection

from monitoring.bench.compare import stats, timed
from trading.seed import DEMO_EMAIL_DOMAIN, DEMO_USERNAME, SEEDED_MODELS, demo_users

BOTS = 10
OPEN_PER_BOT = 10
SNAPSHOTS_PER_BOT = 2000
PREFIX = "scale-"
# The time bound's estimate of a level (``level_fits``): its seeding in proportion to the fills
# of the previous level, with this margin (seeding grew 0.93x-1.4x of linear from 100k to 1M
# fills on the 2-core machine), plus this many seconds per timed request and seeded level (the
# series measured ~9 ms a request at load ~6: 3x that, for a loaded machine).
SEED_MARGIN = 1.25
SECONDS_PER_REQUEST = 0.03


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
    started = time.perf_counter()
    call_command("seed_demo", profile=profile, force=True, verbosity=0, stdout=io.StringIO(),
                 **overrides(trades_per_user))  # fmt: skip
    # Out of the way of the next level's seeding (still a demo user by its e-mail).
    name = f"{PREFIX}{trades_per_user}"
    demo_users().filter(username=DEMO_USERNAME).update(
        username=name, email=f"{name}@{DEMO_EMAIL_DOMAIN}"
    )
    return time.perf_counter() - started


def level_fits(
    *, per_fill: float | None, level: int, levels_seeded: int, requests_per_level: int,
    seconds_left: float,
) -> tuple[bool, float]:  # fmt: skip
    """(whether seeding ``level`` and then timing every seeded level still fits in
    ``seconds_left``, the estimated seeding seconds). The first level always fits."""
    if per_fill is None:
        return True, 0.0
    seeding = per_fill * level
    reserve = SECONDS_PER_REQUEST * requests_per_level * (levels_seeded + 1)
    return seeding * SEED_MARGIN + reserve <= seconds_left, seeding


def run(
    *, profile: str, levels: list[int], urls: list[str], iterations: int,
    client_for: Callable[[str], Any], seconds_left: Callable[[], float],
    say: Callable[[str], None], block: int = 5,
) -> dict[str, Any]:  # fmt: skip
    """Seed each level in turn (a level whose seeding would not fit in the time left, estimated
    from the previous level's in proportion to the fills, is skipped and says so), then time
    every endpoint at every level, interleaved."""
    from django.test.utils import override_settings

    wipe()
    seeded: dict[int, float] = {}
    skipped: dict[str, str] = {}
    per_fill: float | None = None
    for level in levels:
        left = seconds_left()
        fits, seeding = level_fits(
            per_fill=per_fill, level=level, levels_seeded=len(seeded),
            requests_per_level=iterations * len(urls), seconds_left=left,
        )  # fmt: skip
        if not fits:
            skipped[str(level)] = (
                f"time bound: seeding estimated at {seeding:.0f} s, {max(left, 0):.0f} s left"
            )
            say(f"    scale {level:,} trades per user: skipped ({skipped[str(level)]})")
            continue
        seeded[level] = seed_level(profile, level)
        per_fill = seeded[level] / level
        say(f"    scale {level:,} trades per user: seeded in {seeded[level]:.0f} s")
    clients = {level: client_for(f"{PREFIX}{level}") for level in seeded}
    timings: dict[int, dict[str, list[float]]] = {level: {} for level in seeded}
    with override_settings(DASHBOARD_CACHE_SECONDS=0):
        for url in urls:
            order = list(seeded)
            for level in order:
                timed(clients[level], url, 2)  # warm-up: plans, caches
                timings[level][url] = []
            for round_ in range((iterations + block - 1) // block):
                for level in order if round_ % 2 == 0 else reversed(order):
                    n = min(block, iterations - len(timings[level][url]))
                    timings[level][url] += timed(clients[level], url, n)
    done = [
        {"trades_per_user": level, "seed_seconds": round(seeded[level], 1),
         "rows": {url: stats(values) for url, values in timings[level].items()}}
        for level in seeded
    ]  # fmt: skip
    say(f"    scale: measured {len(done)} level(s), interleaved")
    return {"shape": {"bots": BOTS, "open_positions_per_bot": OPEN_PER_BOT,
                      "snapshots_per_bot": SNAPSHOTS_PER_BOT},
            "levels": done, "skipped": skipped}  # fmt: skip
