"""Equity rollups (trading.services.rollups) against a scan of the raw snapshots, and the dashboard
reads built on them against the scans they replace."""

from __future__ import annotations

import importlib
import math
import random
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

import pytest
from django.db import connection

from trading import dashboard, services
from trading.models import (
    ROLLUP_ORIGIN,
    ROLLUP_WIDTHS,
    AccountEquityRollup,
    AccountEquitySnapshot,
    Bot,
    EquityRollup,
    EquitySnapshot,
)
from trading.services.rollups import equity_rollups_rebuild
from trading.tests.conftest import seed_user
from trading.tests.factories import make_bot, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

T0 = datetime(2026, 3, 1, 22, 17, tzinfo=UTC)  # a Sunday evening: the series crosses a week
ORIGIN = datetime.fromisoformat(ROLLUP_ORIGIN)
TOLERANCE = Decimal("1e-20")  # PostgreSQL rounds each division at ~20 digits, Python at 60


# --- The reference: a scan of the raw rows in Python ---------------------------------------------


def _bucket(moment: datetime, width: int) -> datetime:
    step = timedelta(seconds=width)
    return ORIGIN + ((moment - ORIGIN) // step) * step


def _fold(values: list[Decimal]) -> Decimal | None:
    """Max of (running peak - equity) / running peak over ``values`` in order, as the scan:
    equity below 0 counts as 0, no drawdown without a positive peak."""
    best: Decimal | None = None
    peak: Decimal | None = None
    with localcontext() as ctx:
        ctx.prec = 60
        for value in values:
            peak = value if peak is None else max(peak, value)
            if peak > 0:
                dd = (peak - max(value, Decimal(0))) / peak
                best = dd if best is None else max(best, dd)
    return best


def expected_rollups(rows: list[tuple]) -> dict[tuple[int, datetime], dict[str, Any]]:
    """rows: (taken_at, equity, cash, unrealized, bots) in time order -> {(width, bucket): row}."""
    out: dict[tuple[int, datetime], dict[str, Any]] = {}
    for width in ROLLUP_WIDTHS:
        groups: dict[datetime, list[tuple]] = {}
        for row in rows:
            groups.setdefault(_bucket(row[0], width), []).append(row)
        seen: list[Decimal] = []
        for bucket in sorted(groups):
            members = groups[bucket]
            equities = [m[1] for m in members]
            seen += equities
            out[(width, bucket)] = {
                "n": len(members), "open": equities[0], "high": max(equities),
                "low": min(equities), "close": equities[-1], "equity_sum": sum(equities),
                "cash_sum": sum(m[2] for m in members),
                "unrealized_sum": sum(m[3] for m in members), "bots": max(m[4] for m in members),
                "drawdown": _fold(equities), "peak": max(seen), "run_drawdown": _fold(seen),
            }  # fmt: skip
    return out


FIELDS = ("n", "open", "high", "low", "close", "equity_sum", "cash_sum", "unrealized_sum", "peak")
RATIOS = ("drawdown", "run_drawdown")


def _close(a: Decimal | None, b: Decimal | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) < TOLERANCE


def assert_rollups_match(stored: Any, rows: list[tuple], *, bots: bool) -> None:
    expected = expected_rollups(rows)
    got = {(r.width, r.bucket): r for r in stored}
    assert set(got) == set(expected)
    for key, want in expected.items():
        row = got[key]
        for field in FIELDS:
            assert getattr(row, field) == want[field], (key, field)
        for field in RATIOS:
            assert _close(getattr(row, field), want[field]), (key, field)
        if bots:
            assert row.bots == want["bots"], key


def account_series(owner_id: int) -> list[tuple]:
    return list(
        AccountEquitySnapshot.objects.filter(owner_id=owner_id)
        .order_by("taken_at")
        .values_list("taken_at", "equity", "cash", "unrealized_pnl", "bots")
    )


def bot_series(bot_id: int) -> list[tuple]:
    return [
        (*row, 1)
        for row in EquitySnapshot.objects.filter(bot_id=bot_id)
        .order_by("taken_at")
        .values_list("taken_at", "equity", "cash", "unrealized_pnl")
    ]


def assert_owner_consistent(owner_id: int) -> None:
    assert_rollups_match(
        AccountEquityRollup.objects.filter(owner_id=owner_id), account_series(owner_id), bots=True
    )
    for bot_id in Bot.objects.filter(owner_id=owner_id).values_list("pk", flat=True):
        assert_rollups_match(EquityRollup.objects.filter(bot_id=bot_id), bot_series(bot_id),
                             bots=False)  # fmt: skip
    assert (
        not EquityRollup.objects.filter(owner_id=owner_id).exclude(bot__owner_id=owner_id).exists()
    )


def record_random_history(owner: Any, *, bots: int, snapshots: int, seed: int) -> list[Bot]:
    """Snapshots through the service, bots interleaved; each bot's cash jumps at random before
    each (its equity: no positions). Some instants are shared, some land before another bot's
    newest (the account series is then rewritten after them), gaps span hours to days."""
    rng = random.Random(seed)
    fleet = [make_bot(owner=owner, status="inactive") for _ in range(bots)]
    clocks = {bot.pk: T0 for bot in fleet}
    for _ in range(snapshots):
        bot = rng.choice(fleet)
        step = rng.choice([timedelta(minutes=rng.randrange(1, 50)), timedelta(hours=rng.randrange(1, 30)),
                           timedelta(0)])  # fmt: skip
        shared = rng.random() < 0.2 and max(clocks.values()) > clocks[bot.pk]
        at = max(clocks.values()) if shared else clocks[bot.pk] + step + timedelta(seconds=1)
        cash = Decimal(rng.randrange(1, 5_000_000_000_000)).scaleb(-8)
        Bot.objects.filter(pk=bot.pk).update(capital=cash)
        services.equity_snapshot_record(bot=bot, taken_at=at)
        clocks[bot.pk] = at
    return fleet


# --- Write path -------------------------------------------------------------------------------


def test_rollups_equal_a_scan_after_random_appends_late_rows_and_a_rebuild() -> None:
    owner = make_user()
    record_random_history(owner, bots=3, snapshots=120, seed=7)
    assert AccountEquitySnapshot.objects.filter(owner=owner).count() > 60
    assert_owner_consistent(owner.pk)
    # Every level is populated, the week level with more than one bucket.
    assert AccountEquityRollup.objects.filter(owner=owner, width=604800).count() > 1

    columns = ("width", "bucket", "n", "equity_sum", "high", "low", "peak", "run_drawdown")
    before = sorted(AccountEquityRollup.objects.filter(owner=owner).values_list(*columns))
    equity_rollups_rebuild(owner_ids=[owner.pk])
    assert_owner_consistent(owner.pk)
    after = sorted(AccountEquityRollup.objects.filter(owner=owner).values_list(*columns))
    # The same rows; the ratios agree to ~20 digits (the rebuild divides in PostgreSQL, the
    # incremental path in Python).
    assert [row[:-1] for row in after] == [row[:-1] for row in before]
    assert all(_close(a[-1], b[-1]) for a, b in zip(after, before, strict=True))


def test_a_late_snapshot_rewrites_the_later_buckets_of_the_summed_curve() -> None:
    owner = make_user()
    a = make_bot(owner=owner, status="inactive", initial_capital=Decimal("1000"))
    b = make_bot(owner=owner, status="inactive", initial_capital=Decimal("500"))
    for day in range(10):
        services.equity_snapshot_record(bot=a, taken_at=T0 + timedelta(days=day))
    Bot.objects.filter(pk=a.pk).update(capital=Decimal("2000"))
    services.equity_snapshot_record(bot=a, taken_at=T0 + timedelta(days=10))  # a new peak
    # b's first snapshot lands on day 1: every account row from then on gains 500.
    services.equity_snapshot_record(bot=b, taken_at=T0 + timedelta(days=1, hours=5))
    assert_owner_consistent(owner.pk)
    week = AccountEquityRollup.objects.filter(owner=owner, width=604800).order_by("bucket").last()
    assert week.peak == Decimal("2500") and week.bots == 2


def test_bot_deletion_leaves_the_owner_rollups_equal_to_a_scan() -> None:
    owner = make_user()
    fleet = record_random_history(owner, bots=3, snapshots=60, seed=11)
    gone = fleet[1]
    services.bot_delete(bot=gone)
    assert not EquityRollup.objects.filter(bot_id=gone.pk).exists()
    assert_owner_consistent(owner.pk)


def test_seeded_rollups_equal_a_scan_and_the_migration_backfill() -> None:
    user = seed_user(bots=3)
    assert_owner_consistent(user.pk)
    stored = sorted(AccountEquityRollup.objects.values_list("owner_id", "width", "bucket", "n",
                                                            "equity_sum", "run_drawdown"))  # fmt: skip
    bots = sorted(EquityRollup.objects.values_list("bot_id", "width", "bucket", "n", "drawdown"))
    AccountEquityRollup.objects.all().delete()
    EquityRollup.objects.all().delete()
    migration = importlib.import_module("trading.migrations.0005_equity_rollups")
    with connection.cursor() as cursor:
        cursor.execute(migration.BACKFILL)
    assert sorted(AccountEquityRollup.objects.values_list("owner_id", "width", "bucket", "n",
                                                          "equity_sum", "run_drawdown")) == stored  # fmt: skip
    assert sorted(EquityRollup.objects.values_list("bot_id", "width", "bucket", "n",
                                                   "drawdown")) == bots  # fmt: skip


def test_a_snapshot_costs_the_same_statements_whatever_the_history(
    django_assert_num_queries: Any,
) -> None:
    owner = make_user()
    bot = make_bot(owner=owner, status="inactive")
    services.equity_snapshot_record(bot=bot, taken_at=T0)
    # atomic (savepoint + release in the test transaction), owner lock, bot lock, previous
    # snapshot, open-position totals, INSERT, 2 account-row statements, the rollups (2: read
    # what the changed buckets need, upsert them), the bot's peak
    with django_assert_num_queries(12):
        services.equity_snapshot_record(bot=bot, taken_at=T0 + timedelta(minutes=1))
    for i in range(2, 300):
        services.equity_snapshot_record(bot=bot, taken_at=T0 + timedelta(minutes=37 * i))
    with django_assert_num_queries(12):
        services.equity_snapshot_record(bot=bot, taken_at=T0 + timedelta(days=30))


@pytest.mark.django_db(transaction=True)
def test_snapshots_of_one_owner_from_threads_leave_consistent_rollups() -> None:
    owner = make_user()
    fleet = [make_bot(owner=owner, status="inactive") for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(fleet))

    def worker(index: int, bot: Bot) -> None:
        rng = random.Random(index)
        try:
            start.wait()
            at = T0
            for _ in range(25):
                at += timedelta(minutes=rng.randrange(1, 200))
                Bot.objects.filter(pk=bot.pk).update(
                    capital=Decimal(rng.randrange(1, 10**12)).scaleb(-8)
                )
                services.equity_snapshot_record(bot=bot, taken_at=at)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, bot)) for i, bot in enumerate(fleet)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert EquitySnapshot.objects.filter(owner=owner).count() == 100
    assert_owner_consistent(owner.pk)


def test_the_engine_batch_keeps_the_rollups() -> None:
    from trading.services import equity_snapshots_record

    owners = [make_user(), make_user()]
    fleet = [make_bot(owner=owner, status="inactive") for owner in owners for _ in range(3)]
    for hour in range(5):
        equity_snapshots_record(bot_ids=[b.pk for b in fleet], taken_at=T0 + timedelta(hours=hour))
    for owner in owners:
        assert_owner_consistent(owner.pk)


# --- Read path --------------------------------------------------------------------------------

STARTS = [None, timedelta(hours=1), timedelta(hours=24), timedelta(days=7), timedelta(days=30),
          timedelta(days=2, hours=3, minutes=7, seconds=5), timedelta(days=12, minutes=1)]  # fmt: skip


def _drawdowns(scope: dashboard.Scope, start: datetime | None) -> tuple[Any, Any]:
    new = dashboard._fetch(*dashboard.drawdown_sql(scope, start=start))[0][0]
    old = dashboard._fetch(*dashboard.drawdown_scan_sql(scope, start=start))[0][0]
    return new, old


def _pct(value: Any) -> Decimal | None:
    return None if value is None else (Decimal(value) * 100).quantize(Decimal("0.0001"))


@pytest.mark.parametrize("source", ["services", "seed"])
def test_period_drawdown_from_rollups_equals_the_scan(source: str) -> None:
    if source == "seed":
        owner = seed_user(bots=3)
    else:
        owner = make_user()
        record_random_history(owner, bots=3, snapshots=150, seed=3)
    newest = AccountEquitySnapshot.objects.filter(owner=owner).order_by("-taken_at").first()
    end = newest.taken_at
    scopes = [dashboard.Scope(owner.pk)] + [
        dashboard.Scope(owner.pk, bot_id) for bot_id in
        Bot.objects.filter(owner=owner).values_list("pk", flat=True)
    ]  # fmt: skip
    rng = random.Random(5)
    starts = [None if s is None else end - s for s in STARTS]
    starts += [end - timedelta(seconds=rng.randrange(1, 40 * 86400)) for _ in range(20)]
    starts.append(_bucket(end - timedelta(days=9), 604800))  # exactly on a week boundary
    compared = 0
    for scope in scopes:
        for start in starts:
            new, old = _drawdowns(scope, start)
            assert _pct(new) == _pct(old), (scope, start)
            assert _close(None if new is None else Decimal(new),
                          None if old is None else Decimal(old)), (scope, start)  # fmt: skip
            compared += old is not None and Decimal(old) > 0
    assert compared > 20  # most comparisons saw a real drawdown


def test_drawdown_with_equity_below_zero_is_capped_and_folds_like_the_scan() -> None:
    """Leverage can take equity below 0 (a mark past the liquidation price before the exit runs).
    Unclamped, the fold of buckets is not the scan: after a peak of 1,000, an hour going 100 ->
    -800 has its own drawdown (100 + 800) / 100 = 900 %, the scan (1,000 + 800) / 1,000 = 180 %.
    Both clamp equity at 0 now: 100 %, as trading.risk.drawdown_pct caps the bot's own."""
    from trading.models import Position

    owner = make_user()
    fleet = [make_bot(owner=owner, initial_capital=Decimal("1000")) for _ in range(2)]
    opened = {"symbol": "BTC/USDT", "side": "long", "quantity": "0.09", "price": "50000",
              "leverage": 5, "executed_at": T0 - timedelta(minutes=1)}  # fmt: skip
    positions = [
        services.position_open(bot=bot, client_order_id=f"o{bot.pk}", **opened) for bot in fleet
    ]

    def snapshot(bot: Bot, price: str, at: datetime) -> None:
        # The mark written directly: the engine would liquidate first (cash 100 + margin 900
        # + (price - 50,000) x 0.09, below 0 under 38,888.89).
        Position.objects.filter(pk=positions[fleet.index(bot)].pk).update(current_price=price)
        services.equity_snapshot_record(bot=bot, taken_at=at)

    snapshot(fleet[0], "50000", T0)  # 1,000
    snapshot(fleet[0], "40000", T0 + timedelta(hours=1))  # 100
    snapshot(fleet[0], "30000", T0 + timedelta(hours=1, minutes=20))  # -800
    assert EquitySnapshot.objects.filter(bot=fleet[0]).order_by("taken_at").last().equity == -800
    scope = dashboard.Scope(owner.pk, fleet[0].pk)
    new, old = _drawdowns(scope, None)
    assert Decimal(new) == Decimal(old) == 1
    rng = random.Random(9)
    at = T0 + timedelta(hours=2)
    for _ in range(120):  # both bots wander across 0, their sum too
        at += rng.choice(
            [timedelta(minutes=rng.randrange(1, 50)), timedelta(hours=rng.randrange(1, 30))]
        )
        snapshot(rng.choice(fleet), str(rng.randrange(20000, 70000)), at)
    assert EquitySnapshot.objects.filter(owner=owner, equity__lt=0).count() > 10
    assert AccountEquitySnapshot.objects.filter(owner=owner, equity__lt=0).exists()
    assert_owner_consistent(owner.pk)  # the kept rollups are the clamped reference's
    equity_rollups_rebuild(owner_ids=[owner.pk])
    assert_owner_consistent(owner.pk)  # and so are the rebuilt ones
    capped = 0
    for scope in [dashboard.Scope(owner.pk)] + [dashboard.Scope(owner.pk, b.pk) for b in fleet]:
        for start in [None] + [
            at - timedelta(seconds=rng.randrange(1, 12 * 86400)) for _ in range(15)
        ]:
            new, old = _drawdowns(scope, start)
            assert _pct(new) == _pct(old), (scope, start)
            assert old is None or 0 <= Decimal(old) <= 1
            capped += old is not None and Decimal(old) == 1
    assert capped > 5


def _expected_curve(rows: list[tuple], t0: float, width: float, end: datetime) -> list[tuple]:
    groups: dict[int, list[tuple]] = {}
    for row in rows:
        at = row[0].timestamp()
        if t0 <= at and row[0] <= end:
            groups.setdefault(math.floor((at - t0) / width), []).append(row)  # as SQL does
    out = []
    with localcontext() as ctx:
        ctx.prec = 60
        for bucket in sorted(groups):
            members = groups[bucket]
            avg = [
                str((sum(m[i] for m in members) / len(members)).quantize(Decimal("1e-8")))
                for i in (1, 2, 3)
            ]
            out.append((bucket, *avg, max(m[4] for m in members)))
    return out


@pytest.mark.parametrize("points", [2, 10, 500])
def test_curve_from_rollups_is_the_exact_average_of_the_snapshots_in_each_bucket(
    points: int,
) -> None:
    owner = make_user()
    fleet = record_random_history(owner, bots=2, snapshots=150, seed=9)
    end = AccountEquitySnapshot.objects.filter(owner=owner).order_by("-taken_at")[0].taken_at
    levels_seen = set()
    for scope, rows in [(dashboard.Scope(owner.pk), account_series(owner.pk)),
                        (dashboard.Scope(owner.pk, fleet[0].pk), bot_series(fleet[0].pk))]:  # fmt: skip
        for span in STARTS:
            start = None if span is None else end - span
            got = dashboard._fetch(*dashboard.equity_curve_sql(scope, start=start, end=end,
                                                                points=points))  # fmt: skip
            got = [row for row in got if row[0] is not None]
            assert len(got) <= points + 1  # + the point at `end` itself, as before
            if not got:
                continue
            t0, width = float(got[0][5]), float(got[0][6])
            levels_seen.add(width)
            # ROUND(x, 8) in PostgreSQL is half away from zero, quantize half-even: compare as
            # numbers within half a unit of the 8th place.
            want = _expected_curve(rows, t0, width, end)
            assert [r[0] for r in got] == [w[0] for w in want], (scope, span)
            for g, w in zip(got, want, strict=True):
                for i in (1, 2, 3):
                    assert abs(Decimal(g[i]) - Decimal(w[i])) <= Decimal("1e-8"), (scope, span)
                assert g[4] == w[4]
    # Both a rollup level (widths that are multiples of an hour) and the scan were used.
    assert any(width % 3600 == 0 for width in levels_seen)


def test_the_curve_reads_rollups_at_one_statement_for_every_period(
    django_assert_num_queries: Any,
) -> None:
    owner = make_user()
    fleet = record_random_history(owner, bots=2, snapshots=80, seed=2)
    end = datetime.now(UTC)
    for scope in (dashboard.Scope(owner.pk), dashboard.Scope(owner.pk, fleet[0].pk)):
        for span in STARTS:
            start = None if span is None else end - span
            with django_assert_num_queries(1):
                dashboard.equity_curve(scope, start=start, end=end, points=50)
            with django_assert_num_queries(1):
                dashboard._fetch(*dashboard.drawdown_sql(scope, start=start))


def test_the_curve_picks_the_coarsest_level_with_enough_points() -> None:
    owner = make_user()
    bot = make_bot(owner=owner, status="inactive")
    for hour in range(24 * 60):  # 60 days, one snapshot an hour
        EquitySnapshot.objects.create(owner=owner, bot=bot, taken_at=T0 + timedelta(hours=hour),
                                      equity=Decimal(10000 + hour), cash=Decimal(0))  # fmt: skip
    equity_rollups_rebuild(owner_ids=[owner.pk])
    scope = dashboard.Scope(owner.pk, bot.pk)
    end = T0 + timedelta(days=60)

    def width(points: int, start: datetime | None = None) -> float:
        sql, params = dashboard.equity_curve_sql(scope, start=start, end=end, points=points)
        return float(dashboard._fetch(sql, params)[0][6])

    # From the first row's week (Mon 23 Feb) to the end's (Mon 27 Apr): 10 weeks; 61 days; 1,441 h.
    assert width(10) == 604800  # 10 weeks >= 10 points: weeks
    assert width(61) == 86400  # 10 weeks < 61 <= 61 days: days
    assert width(20) == 86400 * 4  # days merged ceil(61 / 20) = 4 at a time
    assert width(500) == 3600 * 3  # hours, merged ceil(1,441 / 500) = 3 at a time
    assert width(500, end - timedelta(days=7)) < 3600  # 168 hours < 500 points: the scan


# --- Daily PnL, bucketed for long periods -------------------------------------------------------


def _daily(scope: dashboard.Scope, start: datetime | None) -> tuple[list[tuple], list[tuple]]:
    """(rollups, scan): the rows of daily_pnl_sql and of the scan of every day row it replaces."""
    new = dashboard._fetch(*dashboard.daily_pnl_sql(scope, start=start))
    old = dashboard._fetch(*dashboard.daily_pnl_scan_sql(scope, start=start))
    return new, old


def _bulk_days(owner: Any, fleet: list[Bot], days: int) -> None:
    from trading.models import BotDailyPnl

    today = datetime.now(UTC).date()
    BotDailyPnl.objects.bulk_create(
        BotDailyPnl(owner=owner, bot=bot, day=today - timedelta(days=i), trade_count=1 + i % 3,
                    realized_pnl=Decimal(i % 7 - 3) + Decimal("0.00000001") * i,
                    fees=Decimal("0.01"))
        for bot in fleet for i in range(days)
    )  # fmt: skip
    services.pnl_rollups_rebuild(bot_ids=[bot.pk for bot in fleet])


@pytest.mark.parametrize(
    ("days", "unit", "rows"),
    [(60, "day", 60), (400, "week", 58), (1000, "month", 34), (5000, "year", 14)],
)
def test_daily_pnl_is_bucketed_per_week_month_then_year_for_long_histories(
    days: int, unit: str, rows: int, django_assert_num_queries: Any
) -> None:
    from trading.models import BotDailyPnl

    owner = make_user()
    fleet = [make_bot(owner=owner, status="inactive") for _ in range(2)]
    _bulk_days(owner, fleet, days)
    with django_assert_num_queries(3):
        body = dashboard.performance(dashboard.Scope(owner.pk), start=None)
    assert body["daily_pnl_unit"] == unit
    daily = body["daily_pnl"]
    assert len(daily) == rows
    stored = BotDailyPnl.objects.filter(owner=owner)
    assert sum(d["trades"] for d in daily) == sum(r.trade_count for r in stored)
    assert sum(Decimal(d["realized_pnl"]) for d in daily) == sum(r.realized_pnl for r in stored)
    assert [d["day"] for d in daily] == sorted(d["day"] for d in daily)
    if unit == "week":
        assert all(d["day"].isoweekday() == 1 for d in daily)
    if unit in ("month", "year"):
        assert all(d["day"].day == 1 for d in daily)
    if unit == "year":
        assert all(d["day"].month == 1 for d in daily)
    # The same rows as the scan of every day row, for the user and for each bot.
    for scope in [dashboard.Scope(owner.pk)] + [dashboard.Scope(owner.pk, b.pk) for b in fleet]:
        new, old = _daily(scope, None)
        assert new == old and len(new) == rows
    # A bounded period is bucketed by its own length: 30 days stay days.
    recent = dashboard.performance(
        dashboard.Scope(owner.pk), start=datetime.now(UTC) - timedelta(days=30)
    )
    assert recent["daily_pnl_unit"] == "day" and len(recent["daily_pnl"]) == 31


def test_daily_pnl_from_a_start_inside_a_bucket_equals_the_scan() -> None:
    """A period from a start inside a week, month or year: its first bucket holds only the days
    from the start (day rows), the rest come from the rollups; as the scan, at many starts."""
    owner = make_user()
    fleet = [make_bot(owner=owner, status="inactive") for _ in range(3)]
    _bulk_days(owner, fleet, 4000)
    now = datetime.now(UTC)
    rng = random.Random(11)
    starts = [now - timedelta(days=d) for d in (93, 100, 400, 731, 732, 800, 3653, 3654, 3999)]
    starts += [now - timedelta(days=rng.randrange(93, 4100), hours=rng.randrange(24))
               for _ in range(15)]  # fmt: skip
    units = set()
    for scope in [dashboard.Scope(owner.pk), dashboard.Scope(owner.pk, fleet[1].pk)]:
        for start in starts:
            new, old = _daily(scope, start)
            assert new == old, (scope, start)
            units.add(new[0][4])
    assert units == {"week", "month", "year"}


def test_fills_keep_the_pnl_rollups_equal_to_a_rebuild_from_the_trades() -> None:
    """Fills through the services over 14 months: the rollups kept per fill are the rebuild's,
    and daily_pnl_sql equals the scan of the day rows."""
    from trading.models import BotPnlRollup

    owner = make_user()
    bot = make_bot(owner=owner, initial_capital=Decimal("100000"))
    rng = random.Random(2)
    t = datetime.now(UTC) - timedelta(days=430)
    for i in range(40):
        position = services.position_open(
            bot=bot, symbol="BTC/USDT", side=rng.choice(["long", "short"]), quantity="0.01",
            price=str(rng.randrange(40000, 60000)), fee="0.3", client_order_id=f"o{i}",
            executed_at=t,
        )  # fmt: skip
        t += timedelta(days=rng.randrange(1, 12), hours=rng.randrange(24))
        services.position_close(
            position=position, price=str(rng.randrange(40000, 60000)), fee="0.3",
            client_order_id=f"c{i}", executed_at=t,
        )  # fmt: skip

    def stored() -> list[tuple]:
        return list(
            BotPnlRollup.objects.filter(bot=bot).order_by("unit", "day")
            .values_list("unit", "day", "trade_count", "realized_pnl", "fees")
        )  # fmt: skip

    kept = stored()
    assert {row[0] for row in kept} == {"week", "month", "year"}
    assert sum(row[2] for row in kept if row[0] == "year") == 80
    services.stats_rebuild(bot_ids=[bot.pk])
    assert stored() == kept
    for scope in (dashboard.Scope(owner.pk), dashboard.Scope(owner.pk, bot.pk)):
        new, old = _daily(scope, None)
        assert new == old and new[0][4] == "week"
    # The migration's backfill (frozen SQL) gives the same rows.
    BotPnlRollup.objects.all().delete()
    migration = importlib.import_module("trading.migrations.0006_pnl_rollups")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO trading_botpnlrollup "
            f"(owner_id, bot_id, unit, day, trade_count, realized_pnl, fees) {migration.BACKFILL}"
        )
    assert stored() == kept


@pytest.mark.parametrize("days", [1, 5000])
def test_performance_reads_the_same_statements_at_one_day_and_years_of_history(
    days: int, demo_api: Any, demo_user: Any, django_assert_num_queries: Any
) -> None:
    # 1 bots and stats, 2 daily PnL (day rows of the period or the unit's rollups), 3 drawdown.
    _bulk_days(demo_user, [make_bot(owner=demo_user, status="inactive")], days)
    for period in ("24h", "30d", "all"):
        with django_assert_num_queries(3):
            response = demo_api.get(f"/api/dashboard/performance?period={period}")
        assert response.status_code == 200
    assert response.json()["daily_pnl_unit"] == ("year" if days == 5000 else "day")


def test_the_rebuild_command_repairs_broken_rollups() -> None:
    from io import StringIO

    from django.core.management import call_command

    owner = make_user()
    record_random_history(owner, bots=2, snapshots=40, seed=4)
    AccountEquityRollup.objects.filter(owner=owner, width=86400).update(high=0, run_drawdown=None)
    EquityRollup.objects.filter(owner=owner).order_by("bucket").first().delete()
    out = StringIO()
    call_command("equity_rollups_rebuild", "--user", owner.username, stdout=out)
    assert "1 user(s)" in out.getvalue()
    assert_owner_consistent(owner.pk)
