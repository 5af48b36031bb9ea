"""One bot cycle on crafted candles: exits with reasons and prices, sizing after fees, the
drawdown pause, idempotent retries, the query budget, concurrent cycles of one bot."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
from django.db import connection

from tests.ledger import assert_ledger_holds
from trading import services
from trading.engine import schedule
from trading.engine.cycle import client_order_id, count_queries, cycle_run, cycles_run
from trading.models import AccountEquitySnapshot, Bot, EquitySnapshot, Position, Trade
from trading.tests.engine_fakes import ScriptedClient
from trading.tests.factories import make_bot, make_user
from zerobot.lib.money import money

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

FEE = Decimal("0.001")
SLIP = Decimal("0.0005")  # ENGINE_SLIPPAGE_PCT 0.05 %
# sma:2 goes from below sma:3 to above it on the newest candle: a bullish cross.
BULLISH = ["100", "100", "100", "99", "103"]


def _bot(**kwargs: Any) -> Bot:
    params = {
        "strategy": "sma_cross", "symbols": ["BTC/USDT"], "initial_capital": Decimal("10000"),
    }  # fmt: skip
    params.update(kwargs)
    strategy_params = params.pop("strategy_params", None)
    bot = make_bot(**params)
    Bot.objects.filter(pk=bot.pk).update(
        status="active",
        strategy_params=strategy_params
        if strategy_params is not None
        else ({"fast": 2, "slow": 3} if bot.strategy == "sma_cross" else {}),
    )
    bot.refresh_from_db()
    return bot


def _open(
    bot: Bot, *, price: str = "100", quantity: str = "1", at: datetime, **kw: Any
) -> Position:
    return services.position_open(
        bot=bot, symbol="BTC/USDT", side=kw.pop("side", "long"), quantity=quantity, price=price,
        client_order_id=f"manual-{Position.objects.count()}", executed_at=at, **kw,
    )  # fmt: skip


@pytest.mark.django_db
def test_a_signal_opens_the_right_size_after_fees_and_slippage(
    scripted: ScriptedClient, market_clock: datetime
) -> None:
    scripted.script("BTC/USDT", BULLISH)
    scripted.set_price("BTC/USDT", "100")
    bot = _bot(risk_params={"max_position_pct": "10"})
    result = cycle_run(bot_id=bot.pk, as_of=market_clock, client=scripted)
    assert (result.error, result.opened, result.rejected) == ("", 1, [])
    position = Position.objects.get(bot=bot)
    fill = Decimal("100") * (1 + SLIP)  # a buy pays the slippage
    # 10 % of equity (10,000) buys margin + fee: qty = 1000 / (fill x (1 + fee)), 8 places down.
    quantity = (Decimal(1000) / (fill * (1 + FEE))).quantize(Decimal("1e-8"), ROUND_DOWN)
    assert (position.side, position.entry_price, position.quantity) == ("long", fill, quantity)
    fee = money(quantity * fill * FEE)
    assert position.fees == fee and position.margin == money(quantity * fill)
    assert position.margin + fee <= Decimal(1000)
    bot.refresh_from_db()
    assert bot.capital == Decimal(10000) - position.margin - fee
    trade = Trade.objects.get(bot=bot)
    assert trade.client_order_id == client_order_id(bot.pk, market_clock, "BTC/USDT", "open_long")
    assert trade.executed_at == market_clock
    # Exit levels from the risk parameters (defaults: stop 5 %, take profit 10 %).
    assert position.stop_loss == (fill * Decimal("0.95")).quantize(Decimal("1e-12"))
    assert position.take_profit == (fill * Decimal("1.10")).quantize(Decimal("1e-12"))
    snapshot = EquitySnapshot.objects.get(bot=bot)
    assert snapshot.taken_at == market_clock and snapshot.cash == bot.capital
    assert_ledger_holds()


@pytest.mark.django_db
def test_a_stop_loss_closes_at_the_mark_with_its_reason_and_pnl(
    scripted: ScriptedClient, market_clock: datetime
) -> None:
    bot = _bot(strategy="manual")
    opened = _open(bot, at=market_clock - timedelta(hours=2), stop_loss="95", take_profit="120")
    scripted.set_price("BTC/USDT", "94")
    result = cycle_run(bot_id=bot.pk, as_of=market_clock, client=scripted)
    assert result.closed == {"stop_loss": 1} and not result.error
    position = Position.objects.get(pk=opened.pk)
    fill = Decimal(94) * (1 - SLIP)  # a sell gets less
    close = Trade.objects.get(position=position, reason="stop_loss")
    assert (position.status, position.close_reason, close.price) == ("closed", "stop_loss", fill)
    assert close.realized_pnl == money(fill - Decimal(100)) == position.realized_pnl
    assert close.fee == money(fill * FEE)
    bot.refresh_from_db()
    assert bot.capital == Decimal(10000) + close.realized_pnl - close.fee - opened.fees
    assert_ledger_holds()


@pytest.mark.django_db
def test_an_exit_of_a_position_opened_after_the_cycles_instant_closes_when_it_opened(
    scripted: ScriptedClient, market_clock: datetime
) -> None:
    """A cycle's as_of is its due time rounded down to the tick: a position opened through the
    API a moment later is still closed (at its opening instant), not refused as 'before the
    position opened'."""
    bot = _bot(strategy="manual")
    opened = _open(bot, at=market_clock + timedelta(milliseconds=700), stop_loss="95")
    scripted.set_price("BTC/USDT", "94")
    result = cycle_run(bot_id=bot.pk, as_of=market_clock, client=scripted)
    assert result.closed == {"stop_loss": 1} and not result.rejected, result
    close = Trade.objects.get(position_id=opened.pk, reason="stop_loss")
    assert close.executed_at == opened.opened_at
    assert_ledger_holds()


@pytest.mark.django_db
def test_a_take_profit_on_a_short(scripted: ScriptedClient, market_clock: datetime) -> None:
    bot = _bot(strategy="manual")
    opened = _open(bot, side="short", at=market_clock - timedelta(hours=2), stop_loss="110",
                   take_profit="90")  # fmt: skip
    scripted.set_price("BTC/USDT", "89")
    assert cycle_run(bot_id=bot.pk, as_of=market_clock, client=scripted).closed == {
        "take_profit": 1
    }
    close = Trade.objects.get(position_id=opened.pk, reason="take_profit")
    assert close.price == Decimal(89) * (1 + SLIP) and close.side == "buy"
    assert close.realized_pnl == money(Decimal(100) - close.price)


@pytest.mark.django_db
def test_a_liquidation_closes_at_the_liquidation_price(
    scripted: ScriptedClient, market_clock: datetime
) -> None:
    bot = _bot(strategy="manual", initial_capital=Decimal("1000"))
    opened = _open(
        bot, quantity="50", leverage=10, at=market_clock - timedelta(hours=2), stop_loss="50"
    )  # fmt: skip  (a stop beyond the liquidation price)
    assert opened.liquidation_price is not None and opened.liquidation_price > 50
    scripted.set_price("BTC/USDT", "80")
    result = cycle_run(bot_id=bot.pk, as_of=market_clock, client=scripted)
    assert result.closed == {"liquidation": 1}
    position = Position.objects.get(pk=opened.pk)
    close = Trade.objects.get(position=position, reason="liquidation")
    assert close.price == opened.liquidation_price and position.close_reason == "liquidation"
    bot.refresh_from_db()
    assert bot.capital >= 0
    assert_ledger_holds()


@pytest.mark.django_db
def test_a_drawdown_breach_pauses_the_bot_and_says_why(
    scripted: ScriptedClient, market_clock: datetime
) -> None:
    bot = _bot(strategy="manual", risk_params={"max_drawdown_pct": "10", "stop_loss_pct": "50",
                                               "max_position_pct": "100"})  # fmt: skip
    _open(bot, quantity="50", at=market_clock - timedelta(hours=3), stop_loss="10")
    scripted.set_price("BTC/USDT", "100")
    cycle_run(bot_id=bot.pk, as_of=market_clock - timedelta(minutes=1), client=scripted)
    bot.refresh_from_db()
    assert bot.status == "active" and bot.peak_equity > 0
    scripted.set_price("BTC/USDT", "75")  # -1,250 on ~10,000: 12.5 % below the peak
    cycle_run(bot_id=bot.pk, as_of=market_clock, client=scripted)
    bot.refresh_from_db()
    assert bot.status == "paused"
    assert "max_drawdown_pct" in bot.status_reason and "10" in bot.status_reason
    # Paused: the next cycle does nothing (status changes take effect at the next cycle).
    later = cycle_run(bot_id=bot.pk, as_of=market_clock + timedelta(seconds=1), client=scripted)
    assert not later.ran


@pytest.mark.django_db
def test_a_retried_cycle_records_nothing_twice(
    scripted: ScriptedClient, market_clock: datetime
) -> None:
    scripted.script("BTC/USDT", BULLISH)
    bot = _bot()

    def ledger() -> tuple:
        bot.refresh_from_db()
        return (
            bot.capital, Trade.objects.count(), Position.objects.count(),
            EquitySnapshot.objects.count(),
            list(AccountEquitySnapshot.objects.values_list("equity", "bots")),
        )  # fmt: skip

    first = cycle_run(bot_id=bot.pk, as_of=market_clock, client=scripted)
    schedule.complete(results=[(bot.pk, market_clock, "")], interval=60)
    after_first = ledger()
    assert first.opened == 1
    for _ in range(2):
        again = cycle_run(bot_id=bot.pk, as_of=market_clock, client=scripted)
        schedule.complete(results=[(bot.pk, market_clock, "")], interval=60)
        assert again.opened == 0 and not again.error
    assert ledger() == after_first
    bot.refresh_from_db()
    assert bot.cycle_count == 1
    assert_ledger_holds()


def _positions(bot: Bot, n: int, at: datetime) -> None:
    for i in range(n):
        services.position_open(
            bot=bot, symbol=bot.symbols[i % len(bot.symbols)], side="long", quantity="0.1",
            price="100", client_order_id=f"p{bot.pk}-{i}", executed_at=at,
        )  # fmt: skip


@pytest.mark.django_db
def test_query_budget_is_the_same_for_1_and_50_positions_plus_a_fixed_number_per_order(
    scripted: ScriptedClient, market_clock: datetime, settings: Any
) -> None:
    # Bots are checked against the configured venue: list the scripted symbols there too.
    settings.MARKET_SYMBOLS = ("BTC/USDT", "ETH/USDT", "S0/USDT", "S1/USDT")
    owner = make_user()
    symbols = ["BTC/USDT", "ETH/USDT"]
    at = market_clock - timedelta(hours=5)
    few = _bot(owner=owner, symbols=symbols, strategy="manual", name="few")
    many = _bot(owner=owner, symbols=symbols, strategy="manual", name="many")
    Bot.objects.filter(pk__in=[few.pk, many.pk]).update(risk_params={"max_position_pct": "100"})
    _positions(few, 1, at)
    _positions(many, 50, at)
    for s in symbols:
        scripted.set_price(s, "101")
    # Warm the cache (windows and tickers), as every cycle but a process's first finds it.
    cycle_run(bot_id=few.pk, as_of=market_clock - timedelta(seconds=2), client=scripted)
    cycle_run(bot_id=many.pk, as_of=market_clock - timedelta(seconds=2), client=scripted)
    for s in symbols:
        scripted.set_price(s, "102")  # marks move: positions_mark runs in both
        scripted.fetch_ticker(symbol=s)
    from marketdata import prices

    prices.last_prices(symbols, as_of=market_clock, client=scripted)  # warm the new tickers

    counts = []
    for bot in (few, many):
        with count_queries() as queries:
            result = cycle_run(bot_id=bot.pk, as_of=market_clock, client=scripted)
        assert not result.error and result.ran
        counts.append(queries.count)
    # load: bot, open positions, fills at as_of (3); mark: one UPDATE in a savepoint-free
    # transaction (1, plus BEGIN/COMMIT are not statements); snapshot batch: owner lock, bots
    # lock, position totals, previous snapshots, INSERT, 2 account-row statements, 2 rollup
    # statements (read the changed buckets' inputs, upsert them), peaks (10).
    # Inside the test's transaction each atomic block adds SAVEPOINT + RELEASE (2 statements
    # that a production cycle, in autocommit, does not send). Expected, whatever the positions:
    #   load (3): the bots, their open positions, their fills at as_of
    #   mark (1 + 2): positions_mark's one statement (locks, updates, answers the owners)
    #   snapshot batch (10 + 2): owner lock, bots lock, open-position totals per bot, previous
    #     snapshot per bot, INSERT of the snapshots, 2 for the account row, 2 for the rollups,
    #     peaks/drawdowns
    assert counts == [18, 18]

    # Orders: each costs the same fixed number of statements.
    per_order = []
    for n_symbols in (1, 2):
        names = [f"S{i}/USDT" for i in range(n_symbols)]
        for name in names:
            scripted.script(name, BULLISH)
            scripted.set_price(name, "100")
        bot = _bot(owner=owner, symbols=names, name=f"orders{n_symbols}")
        Bot.objects.filter(pk=bot.pk).update(risk_params={"max_position_pct": "10"})
        cycle_run(bot_id=bot.pk, as_of=market_clock - timedelta(seconds=5), client=scripted)
        Position.objects.filter(bot=bot).delete()  # the warm-up's positions: not the ledger
        Trade.objects.filter(bot=bot).delete()
        Bot.objects.filter(pk=bot.pk).update(capital=Decimal(10000))
        with count_queries() as queries:
            result = cycle_run(bot_id=bot.pk, as_of=market_clock, client=scripted)
        assert result.opened == n_symbols, result
        per_order.append(queries.count)
    # A new bot has no position to mark: load (3) + snapshot batch (12) + K per order, with K =
    # position_open's statements (bot lock, client order id check, risk totals, trades today,
    # debit, position and trade INSERTs, 2 running-total upserts, capital refresh, + 2).
    per_order_cost = per_order[1] - per_order[0]
    assert per_order[0] == 15 + per_order_cost and per_order_cost == 12


@pytest.mark.django_db(transaction=True)
def test_16_threads_driving_cycles_of_one_bot_lose_no_update(
    scripted: ScriptedClient, market_clock: datetime
) -> None:
    scripted.script("BTC/USDT", BULLISH)
    scripted.set_price("BTC/USDT", "100")
    bot = _bot(risk_params={"max_position_pct": "5"})
    instants = [market_clock - timedelta(seconds=i) for i in range(16)]
    barrier = threading.Barrier(16, timeout=20)
    results: list[Any] = []
    errors: list[BaseException] = []

    def drive(as_of: datetime) -> None:
        try:
            barrier.wait()
            result = cycle_run(bot_id=bot.pk, as_of=as_of, client=scripted)
            schedule.complete(results=[(bot.pk, as_of, result.error)], interval=60)
            results.append(result)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=drive, args=(at,)) for at in instants]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads) and not errors
    bot.refresh_from_db()
    assert bot.cycle_count == 16 and bot.last_cycle_at == market_clock
    opened = sum(r.opened for r in results)
    positions = Position.objects.filter(bot=bot).count()
    assert opened == positions == Trade.objects.filter(bot=bot).count() >= 1
    assert all(not r.error for r in results)
    # Each instant has at most one snapshot; an instant older than one already recorded is
    # skipped (a bot's snapshots only move forward), never recorded twice.
    taken = list(EquitySnapshot.objects.filter(bot=bot).values_list("taken_at", flat=True))
    assert len(taken) == len(set(taken)) >= 1
    assert_ledger_holds()


@pytest.mark.django_db
def test_a_group_of_bots_of_one_owner_writes_one_account_row(
    scripted: ScriptedClient, market_clock: datetime
) -> None:
    owner = make_user()
    bots = [_bot(owner=owner, strategy="manual", name=f"g{i}") for i in range(5)]
    results = cycles_run(bot_ids=[b.pk for b in bots], as_of=market_clock, client=scripted)
    assert all(r.ran and not r.error for r in results)
    assert EquitySnapshot.objects.filter(taken_at=market_clock).count() == 5
    account = AccountEquitySnapshot.objects.get(owner=owner)
    assert account.bots == 5 and account.equity == Decimal(50000)
    assert_ledger_holds()


@pytest.mark.django_db
def test_one_bots_failure_is_recorded_and_never_stops_the_others(
    scripted: ScriptedClient, market_clock: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trading import events

    sent: list[tuple[int, str, dict]] = []
    monkeypatch.setattr(
        events, "publish", lambda owner, kind, payload: sent.append((owner, kind, payload))
    )
    scripted.script("BTC/USDT", BULLISH)
    owner = make_user()
    broken = _bot(owner=owner, name="broken")
    Bot.objects.filter(pk=broken.pk).update(strategy_params={"fast": "ten"})  # bypassing the API
    fine = _bot(owner=owner, name="fine")
    _open(fine, at=market_clock - timedelta(hours=1))
    scripted.set_price("BTC/USDT", "101")
    results = cycles_run(bot_ids=[broken.pk, fine.pk], as_of=market_clock, client=scripted)
    assert "fast must be a number" in results[0].error
    assert not results[1].error and results[1].ran
    assert (owner.pk, events.CYCLE_ERROR) in [(o, k) for o, k, _ in sent]
    marks = [p for o, k, p in sent if k == events.PRICE_MARK]
    assert marks and marks[0]["symbol"] == "BTC/USDT" and marks[0]["price"] == Decimal(101)
    # The broken bot still gets its snapshot (exits apply without a strategy); both are recorded.
    assert EquitySnapshot.objects.filter(taken_at=market_clock).count() == 2
