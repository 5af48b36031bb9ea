"""seed_demo: the small profile's counts, and a ledger that adds up to the cent."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, F, Sum

from trading import seed, services
from trading.models import Bot, BotDailyPnl, BotSymbolStats, EquitySnapshot, Position, Trade
from trading.tests.factories import make_bot
from zerobot.lib.money import money

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
END = "2026-11-01T00:00:00"


def run_seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", "--force", "--end", END, *args, stdout=out, verbosity=0)
    return out.getvalue()


def test_small_profile_counts_and_demo_login() -> None:
    output = run_seed()
    p = seed.PROFILES["small"]
    assert Bot.objects.count() == p.bots == 6
    assert Position.objects.count() == p.bots * (p.open_positions + p.closed_positions)
    assert Position.objects.filter(status="open").count() == p.bots * p.open_positions
    assert Trade.objects.count() == p.bots * p.trades_per_bot
    assert 4_000 <= Trade.objects.count() <= 6_000
    assert EquitySnapshot.objects.count() == p.bots * p.snapshots_per_bot
    demo = get_user_model().objects.get(username=seed.DEMO_USERNAME)
    assert demo.is_staff and demo.is_superuser and demo.check_password(seed.DEMO_PASSWORD)
    assert f"password {seed.DEMO_PASSWORD!r}" in output
    assert "Seeded 2 users, 6 bots" in output
    # Denormalised owners agree with their bots everywhere.
    for model in (Position, Trade, EquitySnapshot, BotSymbolStats, BotDailyPnl):
        assert not model.objects.exclude(owner_id=F("bot__owner_id")).exists()


@pytest.mark.parametrize(
    "args",
    [
        (),
        # A coarse price grid (deep100's way of seeding 9,000 days cheaply).
        ("--step-minutes", "30", "--days", "200"),
        # Beyond 10,000 fills a bot's positions shrink: its cash stays >= 0.
        ("--users", "1", "--bots-per-user", "2", "--trades-per-bot", "12000",
         "--closed-positions", "5900", "--snapshots-per-bot", "300"),
    ],
)  # fmt: skip
def test_small_profile_ledger_is_consistent(args: tuple[str, ...]) -> None:
    run_seed(*args)
    if "--step-minutes" in args:  # every snapshot on the 30-minute grid, fills within a step
        assert not EquitySnapshot.objects.exclude(taken_at__minute__in=(0, 30)).exists()
        assert not EquitySnapshot.objects.exclude(taken_at__second=0).exists()
    for bot in Bot.objects.all():
        trades = Trade.objects.filter(bot=bot).aggregate(pnl=Sum("realized_pnl"), fees=Sum("fee"))
        margin = Position.objects.filter(bot=bot, status="open").aggregate(m=Sum("margin"))["m"]
        # capital = initial + realized PnL - fees - margin locked in open positions
        assert bot.capital == bot.initial_capital + trades["pnl"] - trades["fees"] - margin
        assert bot.capital >= 0

        last = EquitySnapshot.objects.filter(bot=bot).order_by("-taken_at").first()
        assert last.cash == bot.capital
        unrealized = sum(
            (p.unrealized_pnl for p in Position.objects.filter(bot=bot, status="open")), Decimal(0)
        )
        # The last snapshot is at the end instant, valued at the positions' current prices.
        assert last.equity == last.cash + margin + last.unrealized_pnl
        assert last.unrealized_pnl == money(unrealized)  # exact: integer arithmetic

    for position in Position.objects.annotate(n=Count("trades")).filter(status="closed")[:500]:
        fills = position.trades.aggregate(
            pnl=Sum("realized_pnl"), fees=Sum("fee"), q=Sum("quantity")
        )
        assert position.realized_pnl == fills["pnl"]
        assert position.fees == fills["fees"]
        assert position.closed_quantity == position.quantity
        assert fills["q"] == 2 * position.quantity  # opened once, closed in full
        assert position.margin == 0
    for position in Position.objects.filter(status="open")[:100]:
        assert position.margin == money(
            position.quantity * position.entry_price / position.leverage
        )


def test_running_totals_match_the_ledger() -> None:
    """BotSymbolStats/BotDailyPnl against aggregates of the trades and positions themselves."""
    run_seed()
    for stats in BotSymbolStats.objects.all():
        trades = Trade.objects.filter(bot_id=stats.bot_id, symbol=stats.symbol)
        fills = trades.aggregate(n=Count("id"), pnl=Sum("realized_pnl"), fees=Sum("fee"))
        closed = Position.objects.filter(bot_id=stats.bot_id, symbol=stats.symbol, status="closed")
        nets = [p.realized_pnl - p.fees for p in closed]
        assert (stats.trade_count, stats.realized_pnl, stats.fees) == (
            fills["n"], fills["pnl"], fills["fees"],
        )  # fmt: skip
        assert stats.closed_positions == len(nets)
        assert stats.wins == sum(1 for net in nets if net > 0)
        assert stats.losses == sum(1 for net in nets if net < 0)
        assert stats.gross_profit == sum((net for net in nets if net > 0), Decimal(0))
        assert stats.gross_loss == -sum((net for net in nets if net < 0), Decimal(0))
    daily = BotDailyPnl.objects.aggregate(n=Sum("trade_count"), pnl=Sum("realized_pnl"))
    assert daily["n"] == Trade.objects.count()
    assert daily["pnl"] == Trade.objects.aggregate(s=Sum("realized_pnl"))["s"]


def test_seeding_needs_debug_or_force_and_spares_real_users() -> None:
    out = StringIO()
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo", stdout=out, verbosity=0)
    get_user_model().objects.create_user("trader02", email="t@real.example", password="pw-real-123")
    with pytest.raises(CommandError, match="not demo users"):
        run_seed()
    get_user_model().objects.filter(username="trader02").delete()
    run_seed()
    real = get_user_model().objects.create_user(
        "trader99", email="x@real.example", password="pw-x-123456"
    )
    mine = make_bot(owner=real)
    services.bot_set_status(bot=mine, status="active")
    seeded_ids = set(Bot.objects.exclude(owner=real).values_list("id", flat=True))
    with pytest.raises(CommandError, match="allow-real-users"):
        run_seed("--reset")
    run_seed("--reset", "--allow-real-users")
    assert get_user_model().objects.filter(pk=real.pk).exists()
    kept = Bot.objects.get(pk=mine.pk)  # same id, same status: untouched
    assert (kept.owner_id, kept.status, kept.name) == (real.pk, "active", mine.name)
    # The demo bots were recreated with new ids: none reused, sequences not restarted.
    assert min(Bot.objects.exclude(owner=real).values_list("id", flat=True)) > max(seeded_ids)


def _digest() -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT symbol, side, quantity::text, price::text, fee::text, realized_pnl::text, "
            "executed_at::text FROM trading_trade ORDER BY bot_id, client_order_id"
        )
        rows = cursor.fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_same_seed_same_data_and_reset_starts_over() -> None:
    run_seed("--seed", "3")
    first = _digest()
    with pytest.raises(CommandError, match="--reset"):
        run_seed("--seed", "3")
    run_seed("--seed", "3", "--reset")
    assert _digest() == first
    run_seed("--seed", "4", "--reset")
    assert _digest() != first
    assert Bot.objects.count() == 6


def test_overrides_and_if_empty() -> None:
    run_seed("--users", "1", "--bots-per-user", "2", "--trades-per-bot", "30",
             "--open-positions", "2", "--closed-positions", "10", "--snapshots-per-bot", "5")  # fmt: skip
    assert Bot.objects.count() == 2
    assert Trade.objects.count() == 60
    assert Position.objects.filter(status="open").count() == 4
    out = run_seed("--if-empty")
    assert "not seeding" in out
    assert Bot.objects.count() == 2


def test_impossible_counts_are_a_clear_error() -> None:
    with pytest.raises(CommandError, match="too few"):
        run_seed("--trades-per-bot", "10")


def test_end_must_be_a_time() -> None:
    with pytest.raises(CommandError, match="ISO 8601"):
        run_seed("--reset", "--end", "yesterday")


def test_vectorised_formatting_equals_the_scalar_one() -> None:
    import random
    from datetime import UTC, datetime, timedelta

    import numpy as np

    rng = random.Random(1)
    values = [rng.randrange(-(10**15), 10**15) for _ in range(2000)] + [0, -1, 1, 10**8, -(10**8)]
    assert seed._fmt_array(np.array(values, dtype=np.int64), 8) == [seed._fmt(v, 8) for v in values]
    start = datetime(2026, 3, 1, 12, 7, tzinfo=UTC)
    minutes = np.array([0, 1, 59, 60 * 24 * 400, 12345], dtype=np.int64)
    fmt = "%Y-%m-%d %H:%M:%S+00"
    assert seed._fmt_times(start, minutes) == [
        (start + timedelta(minutes=int(m))).strftime(fmt) for m in minutes
    ]
