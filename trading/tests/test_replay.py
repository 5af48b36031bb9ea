"""Finding 7: seed_demo writes its rows directly (integer money, COPY) and says they are exactly what
the services would have written. Here the seeded fills are replayed through ``position_open`` /
``position_close`` (and the snapshots through ``positions_mark`` + ``equity_snapshot_record``) for
a second user, and every row is compared: bots, positions, trades, running totals, snapshots and
the summed curve.

The default suite replays a small profile (a few seconds); ``-m exhaustive`` replays the whole
``small`` demo profile (``make exhaustive``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from django.db import connection

from tests.ledger import assert_ledger_holds
from trading import seed, services
from trading.models import (
    AccountEquitySnapshot,
    Bot,
    BotDailyPnl,
    BotSymbolStats,
    EquitySnapshot,
    Position,
    Trade,
)
from trading.tests.factories import make_user

END = datetime(2026, 3, 1, 12, tzinfo=UTC)
POSITION_COLUMNS = (
    "symbol", "side", "quantity", "closed_quantity", "leverage", "entry_price", "current_price",
    "stop_loss", "take_profit", "liquidation_price", "status", "opened_at", "closed_at", "margin",
    "realized_pnl", "fees", "close_reason",
)  # fmt: skip
TRADE_COLUMNS = (
    "symbol", "side", "quantity", "price", "fee", "realized_pnl", "executed_at",
    "client_order_id", "reason",
)  # fmt: skip


def _price(units: int) -> Decimal:
    return Decimal(int(units)).scaleb(-12)


def _marks(symbols: list[int], names: list[str], paths: np.ndarray, minute: int) -> dict:
    """Each symbol's price at ``minute`` as the seed's snapshots read it."""
    marks = {}
    for sym in symbols:
        tick = seed._tick_units(float(paths[sym][0]))
        marks[names[sym]] = _price(int(np.rint(paths[sym][minute] * seed.UNIT / tick)) * tick)
    return marks


def _replay_user(sources: list[Bot], *, owner: Any, profile: seed.Profile, paths: np.ndarray,
                 names: list[str], start: datetime) -> list[Bot]:  # fmt: skip
    """Replay every bot of one seeded user on one timeline (the summed curve then grows at its
    end, as in production), snapshots before the fills of the same instant (the seed's rule: a
    snapshot at minute m counts the fills of minutes < m)."""
    bots, positions, symbols = [], {}, {}
    events: list[tuple[datetime, int, int, int, Any]] = []  # time, kind, bot, order, item
    minutes = paths.shape[1] - 1
    snapshot_minutes = np.linspace(0, minutes, profile.snapshots_per_bot).round().astype(np.int64)
    for index, source in enumerate(sources):
        bot = services.bot_create(
            owner=owner, name=source.name, strategy=source.strategy,
            initial_capital=source.initial_capital, symbols=source.symbols,
            timeframe=source.timeframe, risk_params=source.risk_params,
        )  # fmt: skip
        services.bot_set_status(bot=bot, status="active")
        bots.append(bot)
        symbols[index] = [names.index(s) for s in source.symbols]
        positions.update({p.pk: p for p in Position.objects.filter(bot=source)})
        for trade in Trade.objects.filter(bot=source).order_by("id"):
            events.append((trade.executed_at, 1, index, trade.pk, trade))
        for minute in snapshot_minutes:
            events.append((start + timedelta(minutes=int(minute)), 0, index, 0, int(minute)))
    events.sort(key=lambda e: e[:4])

    replayed: dict[int, Position] = {}
    for moment, kind, index, _, item in events:
        bot = bots[index]
        if kind == 0:  # a snapshot: mark every symbol at that minute's price, then record
            marks = _marks(symbols[index], names, paths, item)
            services.positions_mark(prices=marks, bot_id=bot.pk)
            services.equity_snapshot_record(bot=bot, taken_at=moment)
            continue
        trade: Trade = item
        origin = positions[trade.position_id]
        if trade.reason == "open":
            replayed[origin.pk] = services.position_open(
                bot=bot, symbol=trade.symbol, side=origin.side, quantity=trade.quantity,
                price=trade.price, fee=trade.fee, leverage=origin.leverage,
                executed_at=trade.executed_at, client_order_id=trade.client_order_id,
            )  # fmt: skip
        else:
            services.position_close(
                position=replayed[origin.pk], price=trade.price, quantity=trade.quantity,
                fee=trade.fee, executed_at=trade.executed_at, reason=trade.reason,
                client_order_id=trade.client_order_id,
            )  # fmt: skip
    for index, (source, bot) in enumerate(zip(sources, bots, strict=True)):
        final = {}
        for sym in symbols[index]:
            tick = seed._tick_units(float(paths[sym][0]))
            price = max(tick, round(paths[sym][minutes] * seed.UNIT / tick) * tick)
            final[names[sym]] = _price(price)
        services.positions_mark(prices=final, bot_id=bot.pk)
        if source.status != "active":
            services.bot_set_status(bot=bot, status=source.status)
    return bots


def _rows(bot: Bot) -> dict[str, Any]:
    return {
        "bot": Bot.objects.filter(pk=bot.pk)
        .values(
            "capital",
            "initial_capital",
            "peak_equity",
            "max_drawdown_pct",
            "status",
            "symbols",
            "risk_params",
        )
        .get(),
        "positions": list(
            Position.objects.filter(bot=bot)
            .order_by("opened_at", "id")
            .values_list(*POSITION_COLUMNS)
        ),
        "trades": list(
            Trade.objects.filter(bot=bot)
            .order_by("executed_at", "client_order_id")
            .values_list(*TRADE_COLUMNS)
        ),
        "stats": list(
            BotSymbolStats.objects.filter(bot=bot)
            .order_by("symbol")
            .values_list(
                "symbol",
                "trade_count",
                "closed_positions",
                "wins",
                "losses",
                "realized_pnl",
                "fees",
                "gross_profit",
                "gross_loss",
            )
        ),
        "daily": list(
            BotDailyPnl.objects.filter(bot=bot)
            .order_by("day")
            .values_list("day", "trade_count", "realized_pnl", "fees")
        ),
        "snapshots": list(
            EquitySnapshot.objects.filter(bot=bot)
            .order_by("taken_at")
            .values_list("taken_at", "equity", "cash", "unrealized_pnl")
        ),
    }


def _account(owner_id: int) -> list[tuple]:
    return list(
        AccountEquitySnapshot.objects.filter(owner_id=owner_id)
        .order_by("taken_at")
        .values_list("taken_at", "equity", "cash", "unrealized_pnl", "bots")
    )


def _replay_and_compare(profile: seed.Profile, seed_value: int) -> dict[str, int]:
    seed.seed(profile, seed_value=seed_value, end=END)
    names, paths = seed.price_paths(profile, np.random.default_rng(seed_value))
    start = END - timedelta(days=profile.days)
    counts = {"positions": 0, "trades": 0, "snapshots": 0, "liquidations": 0}
    for username in seed.usernames(profile):
        owner = make_user()
        sources = list(Bot.objects.filter(owner__username=username).order_by("id"))
        bots = _replay_user(sources, owner=owner, profile=profile, paths=paths, names=names,
                            start=start)  # fmt: skip
        for source, bot in zip(sources, bots, strict=True):
            expected, got = _rows(source), _rows(bot)
            for key in expected:
                assert got[key] == expected[key], f"{source.name}: {key} differ"
            counts["positions"] += len(got["positions"])
            counts["trades"] += len(got["trades"])
            counts["snapshots"] += len(got["snapshots"])
            counts["liquidations"] += sum(1 for t in got["trades"] if t[-1] == "liquidation")
        assert _account(owner.pk) == _account(sources[0].owner_id)
    assert_ledger_holds()
    return counts


@pytest.mark.django_db
@pytest.mark.slow
def test_finding_7_seeded_rows_equal_what_the_services_write() -> None:
    profile = seed.Profile(users=1, bots_per_user=2, trades_per_bot=70, open_positions=6,
                           closed_positions=28, snapshots_per_bot=30, symbols=4, days=20)  # fmt: skip
    counts = _replay_and_compare(profile, seed_value=7)
    print(f"\nreplayed: {counts}")
    assert counts["positions"] == 2 * (6 + 28) and counts["snapshots"] == 2 * 30
    assert counts["trades"] > counts["positions"]


@pytest.mark.django_db
@pytest.mark.slow
def test_seeded_liquidations_equal_the_services_liquidations(monkeypatch: Any) -> None:
    """Markets that gap down 40 % and up 3x every few hours: the seed liquidates the leveraged longs, then the
    shorts, as position_close does (same price, fee, reason, cash)."""
    original = seed.price_paths

    def crash_and_squeeze(profile: seed.Profile, rng: np.random.Generator) -> Any:
        names, paths = original(profile, rng)
        n = paths.shape[1]
        # Every 2 hours a gap: down 40 %, then up 3x, then back: most holds span one.
        shape = np.array([1.0, 0.6, 1.8])[(np.arange(n) // 120) % 3]
        for i in range(len(paths)):
            tick = seed._tick_units(float(paths[i][0])) / seed.UNIT
            paths[i] = np.maximum(tick, np.round(paths[i] * shape / tick) * tick)
        return names, paths

    monkeypatch.setattr(seed, "price_paths", crash_and_squeeze)
    profile = seed.Profile(users=1, bots_per_user=2, trades_per_bot=50, open_positions=4,
                           closed_positions=22, snapshots_per_bot=20, symbols=3, days=30)  # fmt: skip
    counts = _replay_and_compare(profile, seed_value=11)
    print(f"\nreplayed: {counts}")
    assert counts["liquidations"] >= 2


@pytest.mark.django_db
@pytest.mark.exhaustive
@pytest.mark.timeout(1800)
def test_the_whole_small_demo_replays_through_the_services() -> None:
    with connection.cursor() as cursor:  # one long transaction: its deferred checks at the end too
        cursor.execute("SET LOCAL statement_timeout = 0")
    counts = _replay_and_compare(seed.PROFILES["small"], seed_value=42)
    print(f"\nreplayed the small demo: {counts}")
    assert counts["snapshots"] == 6 * seed.PROFILES["small"].snapshots_per_bot
