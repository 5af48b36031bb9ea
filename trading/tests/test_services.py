"""Write paths: money moves atomically, exactly once, and the running totals follow the ledger."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from trading import services
from trading.errors import InsufficientCapital, InvalidInput, InvalidState
from trading.models import Bot, BotDailyPnl, BotSymbolStats, Position, Trade
from trading.tests.factories import make_bot, make_user

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def ledger_capital(bot: Bot) -> Decimal:
    """initial + sum(realized PnL) - sum(fees) - margin still locked in open positions."""
    trades = Trade.objects.filter(bot=bot)
    pnl = sum((t.realized_pnl for t in trades), Decimal(0))
    fees = sum((t.fee for t in trades), Decimal(0))
    margin = sum((p.margin for p in Position.objects.filter(bot=bot, status="open")), Decimal(0))
    return bot.initial_capital + pnl - fees - margin


def stats_snapshot(bot: Bot) -> tuple[list[tuple], list[tuple]]:
    stats = list(
        BotSymbolStats.objects.filter(bot=bot).order_by("symbol").values_list(
            "symbol", "trade_count", "closed_positions", "wins", "losses", "realized_pnl", "fees",
            "gross_profit", "gross_loss",
        )
    )  # fmt: skip
    daily = list(
        BotDailyPnl.objects.filter(bot=bot)
        .order_by("day")
        .values_list("day", "trade_count", "realized_pnl", "fees")
    )
    return stats, daily


@pytest.mark.django_db
def test_open_and_close_move_cash_exactly() -> None:
    bot = make_bot(initial_capital=Decimal("1000"))
    position = services.position_open(
        bot=bot, symbol="btc/usdt", side="long", quantity="0.01", price="50000", leverage=2,
        fee="0.5", client_order_id="o1", executed_at=T0,
    )  # fmt: skip
    bot.refresh_from_db()
    assert position.symbol == "BTC/USDT"
    assert position.margin == Decimal("250.00000000")
    assert bot.capital == Decimal("1000") - Decimal("250") - Decimal("0.5")

    services.position_close(
        position=position, price="51000", fee="0.51", client_order_id="c1",
        executed_at=T0 + timedelta(hours=2),
    )  # fmt: skip
    position.refresh_from_db()
    bot.refresh_from_db()
    assert position.status == "closed"
    assert position.realized_pnl == Decimal("10.00000000")
    assert position.fees == Decimal("1.01000000")
    assert position.margin == 0
    assert bot.capital == Decimal("1000") + Decimal("10") - Decimal("1.01")
    assert bot.capital == ledger_capital(bot)


@pytest.mark.django_db
def test_partial_closes_release_margin_without_leaking_a_satoshi() -> None:
    bot = make_bot(initial_capital=Decimal("1000"))
    position = services.position_open(
        bot=bot, symbol="ETH/USDT", side="short", quantity="0.3", price="3333.33",
        leverage=3, client_order_id="o", executed_at=T0,
    )  # fmt: skip
    for i, qty in enumerate(["0.1", "0.1", None]):
        services.position_close(
            position=position, price="3000", quantity=qty, client_order_id=f"c{i}",
            executed_at=T0 + timedelta(minutes=i + 1),
        )  # fmt: skip
    position.refresh_from_db()
    bot.refresh_from_db()
    assert position.status == "closed"
    assert position.closed_quantity == position.quantity
    assert position.margin == 0
    assert position.realized_pnl == Decimal("99.99900000")  # short: (3333.33 - 3000) x 0.3
    assert bot.capital == Decimal("1000") + position.realized_pnl
    assert bot.capital == ledger_capital(bot)


@pytest.mark.django_db
def test_recording_the_same_order_twice_moves_money_once() -> None:
    bot = make_bot(initial_capital=Decimal("1000"))
    kwargs = {
        "bot": bot, "symbol": "BTC/USDT", "side": "long", "quantity": "0.001", "price": "50000",
        "client_order_id": "same", "executed_at": T0,
    }  # fmt: skip
    first = services.position_open(**kwargs)
    second = services.position_open(**kwargs)
    bot.refresh_from_db()
    assert first.pk == second.pk
    assert Trade.objects.filter(bot=bot).count() == 1
    assert bot.capital == Decimal("950")
    services.position_close(position=first, price="50000", client_order_id="close")
    services.position_close(position=first, price="50000", client_order_id="close")
    assert Trade.objects.filter(bot=bot).count() == 2


@pytest.mark.django_db
def test_insufficient_cash_is_refused_and_nothing_is_written() -> None:
    bot = make_bot(initial_capital=Decimal("100"))
    # Margin 99 is within max_position_pct (100 % of equity 100); margin + fee 101 is not cash.
    with pytest.raises(InsufficientCapital, match="not enough cash"):
        services.position_open(
            bot=bot, symbol="BTC/USDT", side="long", quantity="1", price="99", fee="2",
            client_order_id="big",
        )  # fmt: skip
    bot.refresh_from_db()
    assert bot.capital == Decimal("100")
    assert not Position.objects.filter(bot=bot).exists()
    assert not BotSymbolStats.objects.filter(bot=bot).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [("quantity", "NaN"), ("quantity", "Infinity"), ("quantity", "-1"), ("price", "0"),
     ("price", "abc"), ("leverage", "0.5"), ("fee", "-0.1"), ("symbol", "BTCUSDT"),
     ("symbol", "SOL/USDT"), ("side", "buy"), ("client_order_id", "")],
)  # fmt: skip
def test_bad_order_input_is_rejected_with_the_field_named(field: str, value: str) -> None:
    bot = make_bot()
    kwargs = {
        "bot": bot, "symbol": "BTC/USDT", "side": "long", "quantity": "0.001", "price": "100",
        "client_order_id": "x",
    }  # fmt: skip
    kwargs[field] = value
    with pytest.raises(InvalidInput) as excinfo:
        services.position_open(**kwargs)
    assert excinfo.value.field == field


@pytest.mark.django_db
def test_closing_twice_is_an_invalid_state() -> None:
    bot = make_bot()
    position = services.position_open(
        bot=bot, symbol="BTC/USDT", side="long", quantity="0.001", price="100",
        client_order_id="o",
    )  # fmt: skip
    services.position_close(position=position, price="100", client_order_id="c1")
    with pytest.raises(InvalidState):
        services.position_close(position=position, price="100", client_order_id="c2")


@pytest.mark.django_db
def test_incremental_totals_equal_a_rebuild_from_the_ledger() -> None:
    bot = make_bot(initial_capital=Decimal("100000"))
    prices = ["100", "104", "97", "120", "80", "101"]
    for i in range(12):
        symbol = "BTC/USDT" if i % 2 else "ETH/USDT"
        position = services.position_open(
            bot=bot, symbol=symbol, side="long" if i % 3 else "short", quantity="1.5",
            price=prices[i % 6], fee="0.1", client_order_id=f"o{i}",
            executed_at=T0 + timedelta(hours=7 * i),
        )  # fmt: skip
        if i % 4 != 3:  # leave a few open
            services.position_close(
                position=position, price=prices[(i + 2) % 6], fee="0.1",
                client_order_id=f"c{i}", executed_at=T0 + timedelta(hours=7 * i + 5),
            )  # fmt: skip
    incremental = stats_snapshot(bot)
    services.stats_rebuild(bot_ids=[bot.pk])
    assert stats_snapshot(bot) == incremental
    assert sum(row[3] for row in incremental[0]) > 0  # some wins
    assert sum(row[4] for row in incremental[0]) > 0  # and some losses
    bot.refresh_from_db()
    assert bot.capital == ledger_capital(bot)


@pytest.mark.django_db
def test_bot_status_transitions() -> None:
    bot = make_bot()
    assert services.bot_set_status(bot=bot, status="active").status == "active"
    assert services.bot_set_status(bot=bot, status="paused").status == "paused"
    assert services.bot_set_status(bot=bot, status="stopped").status == "stopped"
    with pytest.raises(InvalidState):
        services.bot_set_status(bot=bot, status="paused")


@pytest.mark.django_db
def test_bot_create_validates_risk_params_and_names() -> None:
    owner = make_user()
    bot = make_bot(owner=owner, name="alpha", risk_params={"max_position_pct": 5})
    assert bot.risk_params["max_position_pct"] == "5"
    assert bot.risk_params["validated"] is True
    with pytest.raises(InvalidInput, match="already have a bot"):
        make_bot(owner=owner, name="alpha")
    with pytest.raises(InvalidInput, match="max_drawdown_pct"):
        make_bot(owner=owner, risk_params={"max_drawdown_pct": 150})
    with pytest.raises(InvalidInput, match="Unknown risk parameter"):
        make_bot(owner=owner, risk_params={"yolo": 1})
    with pytest.raises(InvalidInput, match="finite"):
        make_bot(owner=owner, risk_params={"stop_loss_pct": "NaN"})
    with pytest.raises(InvalidInput, match="initial_capital"):
        make_bot(owner=owner, initial_capital="Infinity")


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_concurrent_debits_of_one_bot_lose_nothing_and_double_record_nothing() -> None:
    """8 threads x 10 orders, every order sent twice: exactly 80 positions, exact cash."""
    bot = make_bot(initial_capital=Decimal("1000"))
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                for _ in range(2):  # a retry of the same order
                    services.position_open(
                        bot=Bot.objects.get(pk=bot.pk), symbol="BTC/USDT", side="long",
                        quantity="0.0001", price="100", fee="0.001",
                        client_order_id=f"t{n}-{i}",
                    )  # fmt: skip
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    bot.refresh_from_db()
    assert Position.objects.filter(bot=bot).count() == 80
    assert bot.capital == Decimal("1000") - 80 * (Decimal("0.01") + Decimal("0.001"))
    assert bot.capital == ledger_capital(bot)


def account_rows(owner_id: int) -> list[tuple]:
    from trading.models import AccountEquitySnapshot

    return list(
        AccountEquitySnapshot.objects.filter(owner_id=owner_id)
        .order_by("taken_at")
        .values_list("taken_at", "equity", "cash", "unrealized_pnl", "bots")
    )


@pytest.mark.django_db
def test_summed_equity_curve_carries_each_bot_forward_and_matches_a_rebuild() -> None:
    owner = make_user()
    a = make_bot(owner=owner, initial_capital=Decimal("1000"))
    b = make_bot(owner=owner, initial_capital=Decimal("500"))
    services.position_open(
        bot=a, symbol="BTC/USDT", side="long", quantity="1", price="100", client_order_id="o",
        executed_at=T0,
    )  # fmt: skip
    Position.objects.filter(bot=a).update(current_price=Decimal("110"))
    # Interleaved, and b's second snapshot lands between two of a's (out of order across bots).
    services.equity_snapshot_record(bot=a, taken_at=T0 + timedelta(hours=1))
    services.equity_snapshot_record(bot=a, taken_at=T0 + timedelta(hours=3))
    services.equity_snapshot_record(bot=b, taken_at=T0 + timedelta(hours=2))
    Position.objects.filter(bot=a).update(current_price=Decimal("90"))
    services.equity_snapshot_record(bot=a, taken_at=T0 + timedelta(hours=4))
    services.equity_snapshot_record(bot=b, taken_at=T0 + timedelta(hours=4))
    incremental = account_rows(owner.pk)
    assert [row[1] for row in incremental] == [
        Decimal("1010"),
        Decimal("1510"),
        Decimal("1510"),
        Decimal("1490"),
    ]  # a: 900 cash + 100 margin + 10; b joins at 2 h with 500; at 4 h a is 990
    assert [row[4] for row in incremental] == [1, 2, 2, 2]
    services.account_equity_rebuild(owner_id=owner.pk)
    assert account_rows(owner.pk) == incremental

    a.refresh_from_db()
    assert a.peak_equity == Decimal("1010")
    assert a.max_drawdown_pct == Decimal("1.9802")  # (1010 - 990) / 1010
    with pytest.raises(InvalidInput, match="later than the bot's last snapshot"):
        services.equity_snapshot_record(bot=a, taken_at=T0 + timedelta(hours=4))

    services.bot_set_status(bot=b, status="stopped")
    services.bot_delete(bot=b)
    assert [row[1] for row in account_rows(owner.pk)] == [
        Decimal("1010"), Decimal("1010"), Decimal("990"),
    ]  # fmt: skip


@pytest.mark.django_db
def test_a_snapshot_batch_of_several_owners_matches_the_single_service_and_a_rebuild(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trading import events

    sent: list[tuple[int, str, dict]] = []
    monkeypatch.setattr(events, "publish", lambda o, kind, data: sent.append((o, kind, data)))
    first, second = make_user(), make_user()
    a = make_bot(owner=first, initial_capital=Decimal("1000"))
    b = make_bot(owner=first, initial_capital=Decimal("500"))
    c = make_bot(owner=second, initial_capital=Decimal("2000"),
                 risk_params={"max_position_pct": "100", "max_drawdown_pct": "10"})  # fmt: skip
    Bot.objects.filter(pk=c.pk).update(status="active")
    for bot, quantity in ((a, "1"), (c, "10")):
        services.position_open(
            bot=bot, symbol="BTC/USDT", side="long", quantity=quantity, price="100",
            client_order_id=f"o{bot.pk}", executed_at=T0,
        )  # fmt: skip
    Position.objects.filter(bot=a).update(current_price=Decimal("110"))
    services.equity_snapshot_record(bot=b, taken_at=T0 + timedelta(hours=1))  # b's own first
    rows = services.equity_snapshots_record(
        bot_ids=[c.pk, a.pk, b.pk, 10**12], taken_at=T0 + timedelta(hours=2)
    )  # a gone bot is left out
    assert sorted(r.bot_id for r in rows) == [a.pk, b.pk, c.pk]
    Position.objects.filter(bot=c).update(current_price=Decimal("80"))  # c: -200 of ~2,000
    # b already has this instant: left out of the batch, a 400 for the single service.
    again = services.equity_snapshots_record(bot_ids=[b.pk, c.pk], taken_at=T0 + timedelta(hours=2))
    assert again == []
    with pytest.raises(InvalidInput, match="later than the bot's last snapshot"):
        services.equity_snapshot_record(bot=b, taken_at=T0 + timedelta(hours=2))
    services.equity_snapshots_record(bot_ids=[b.pk, c.pk], taken_at=T0 + timedelta(hours=3))
    # One account row per owner and instant, as the single service would have kept them.
    assert [row[1] for row in account_rows(first.pk)] == [Decimal("500"), Decimal("1510"),
                                                          Decimal("1510")]  # fmt: skip
    assert [row[4] for row in account_rows(first.pk)] == [1, 2, 2]
    assert [row[1] for row in account_rows(second.pk)] == [Decimal("2000"), Decimal("1800")]
    incremental = {o.pk: account_rows(o.pk) for o in (first, second)}
    for owner in (first, second):
        services.account_equity_rebuild(owner_id=owner.pk)
        assert account_rows(owner.pk) == incremental[owner.pk]
    c.refresh_from_db()
    assert c.status == "paused" and "max_drawdown_pct" in c.status_reason
    assert c.peak_equity == Decimal("2000") and c.max_drawdown_pct == Decimal("10")
    statuses = [d for o, kind, d in sent if kind == events.BOT_STATUS]
    assert statuses == [{"bot": c.pk, "name": c.name, "status": "paused",
                         "updated_at": c.updated_at}]  # fmt: skip
    assert len([kind for _, kind, _ in sent if kind == events.EQUITY_SNAPSHOT]) == 1 + 3 + 2


@pytest.mark.django_db
def test_retries_answer_before_checks_and_reused_ids_are_refused() -> None:
    bot = make_bot(initial_capital=Decimal("100"))
    order = {"bot": bot, "symbol": "BTC/USDT", "side": "long", "quantity": "0.3", "price": "300",
             "client_order_id": "open-1", "executed_at": T0}  # fmt: skip
    position = services.position_open(**order)  # uses 90 of 100 cash
    assert services.position_open(**order).pk == position.pk  # retry: not "not enough cash"
    services.position_close(position=position, price="300", quantity="0.2",
                            client_order_id="part-1", executed_at=T0 + timedelta(minutes=1))  # fmt: skip
    retry = services.position_close(position=position, price="300", quantity="0.2",
                                    client_order_id="part-1")  # fmt: skip
    assert retry.closed_quantity == Decimal("0.2")  # not "more than the open 0.1"
    with pytest.raises(InvalidInput, match="already used"):
        services.position_close(position=position, price="300", client_order_id="open-1")
    with pytest.raises(InvalidInput, match="already used"):
        services.position_open(**{**order, "client_order_id": "part-1"})
    assert Trade.objects.filter(bot=bot).count() == 2
    bot.refresh_from_db()
    assert bot.capital == ledger_capital(bot)


@pytest.mark.django_db
def test_amounts_that_do_not_fit_are_refused_not_500() -> None:
    bot = make_bot(initial_capital=Decimal("1000000"))
    position = services.position_open(
        bot=bot, symbol="BTC/USDT", side="long", quantity="1000", price="100", client_order_id="o"
    )
    with pytest.raises(InvalidInput, match="does not fit"):
        services.position_close(position=position, price="999999999999999999", client_order_id="c")
    with pytest.raises(InvalidInput):
        services.position_open(
            bot=bot, symbol="BTC/USDT", side="long", quantity="123456789012345678.1",
            price="123456789012345678.123456789012", client_order_id="big",
        )  # fmt: skip


@pytest.mark.django_db
def test_drawdown_is_capped_at_total_loss() -> None:
    bot = make_bot(initial_capital=Decimal("1000"))
    services.position_open(
        bot=bot, symbol="BTC/USDT", side="long", quantity="20", price="100", leverage=125,
        client_order_id="o", executed_at=T0,
    )  # fmt: skip
    services.equity_snapshot_record(bot=bot, taken_at=T0 + timedelta(hours=1))
    # -1,800 unrealized on 16 of margin: equity -800, a 180 % fall from the 1,000 peak.
    Position.objects.filter(bot=bot).update(current_price=Decimal("10"))
    services.equity_snapshot_record(bot=bot, taken_at=T0 + timedelta(hours=2))  # no overflow
    services.equity_snapshot_record(bot=bot, taken_at=T0 + timedelta(hours=3))
    bot.refresh_from_db()
    assert bot.max_drawdown_pct == Decimal("100")


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_the_same_orders_sent_by_8_threads_at_once_are_recorded_once() -> None:
    """Every thread sends the same 10 orders: the unique (bot, client_order_id) lets one insert
    win and every other attempt returns that same position (the IntegrityError path)."""
    bot = make_bot(initial_capital=Decimal("1000"))
    results: dict[str, set[int]] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        try:
            start.wait()
            for i in range(10):
                position = services.position_open(
                    bot=Bot.objects.get(pk=bot.pk), symbol="BTC/USDT", side="long",
                    quantity="0.0001", price="100", fee="0.001", client_order_id=f"same-{i}",
                )  # fmt: skip
                with lock:
                    results.setdefault(f"same-{i}", set()).add(position.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(len(ids) == 1 for ids in results.values()) and len(results) == 10
    bot.refresh_from_db()
    assert Position.objects.filter(bot=bot).count() == 10
    assert bot.capital == Decimal("1000") - 10 * (Decimal("0.01") + Decimal("0.001"))
    assert bot.capital == ledger_capital(bot)


@pytest.mark.django_db
def test_a_bot_trades_only_symbols_the_venue_lists() -> None:
    from trading.errors import InvalidInput
    from trading.tests.factories import make_user

    owner = make_user()
    with pytest.raises(InvalidInput) as refused:
        services.bot_create(
            owner=owner, name="made up", strategy="sma_cross", initial_capital="1000",
            symbols=["BTC/USDT", "NOPE/USDT"],
        )  # fmt: skip
    assert refused.value.field == "symbols" and "NOPE/USDT" in refused.value.message
    bot = services.bot_create(
        owner=owner, name="listed", strategy="sma_cross", initial_capital="1000",
        symbols=["btc/usdt", "ETH/USDT:USDT"],
    )  # fmt: skip
    assert bot.symbols == ["BTC/USDT", "ETH/USDT:USDT"]
    with pytest.raises(InvalidInput):
        services.bot_update(bot=bot, symbols=["FOO/BAR"])
