"""The trading core an engine relies on (issue 9): marks, liquidation, exits, enforced risk,
strict idempotency and one lock order. Each numbered finding of the issue has a test here that
failed before the change (named ``test_finding_N_...``)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.utils import OperationalError
from rest_framework.test import APIClient

from tests.ledger import assert_ledger_holds
from trading import risk, services
from trading.errors import InvalidInput, InvalidState, RiskRefused, TradingError
from trading.models import Bot, BotDailyPnl, Position, Trade
from trading.tests.factories import make_bot, make_user
from zerobot.lib.money import money

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
JOIN_TIMEOUT = 60  # seconds: a deadlocked or hung thread fails the test instead of hanging CI


def _open(bot: Bot, **overrides: Any) -> Position:
    order: dict[str, Any] = {
        "bot": bot, "symbol": "BTC/USDT", "side": "long", "quantity": "1", "price": "100",
        "client_order_id": f"o-{Position.objects.count()}-{overrides.get('price', '100')}",
        "executed_at": T0,
    }  # fmt: skip
    order.update(overrides)
    return services.position_open(**order)


# --- positions_mark -----------------------------------------------------------------------------


def _many_positions(bot: Bot, n: int) -> None:
    """n open positions in two symbols, written directly (fast): marks move no money."""
    Position.objects.bulk_create(
        Position(
            owner_id=bot.owner_id, bot=bot, symbol="BTC/USDT" if i % 2 else "ETH/USDT",
            side="long", quantity=Decimal("0.001"), entry_price=Decimal("100"),
            current_price=Decimal("100"), opened_at=T0, margin=Decimal("0.1"),
        )
        for i in range(n)
    )  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("n", [1, 500])
def test_positions_mark_is_a_fixed_number_of_statements(
    n: int, django_assert_num_queries: Any
) -> None:
    """Finding 1: nothing wrote current_price. Same count at 1 and 500 positions: SAVEPOINT,
    the one statement (locks the rows in pk order, updates them, answers whose they are),
    RELEASE SAVEPOINT."""
    bot = make_bot(
        initial_capital=Decimal("1000000"),
        risk_params={"max_open_positions": 1000, "max_trades_per_day": 1000},
    )
    _many_positions(bot, n)
    other = make_bot(initial_capital=Decimal("1000"))
    untouched = _open(other, symbol="BTC/USDT", quantity="0.01", client_order_id="x")
    prices = {"BTC/USDT": Decimal("120.5"), "ETH/USDT": Decimal("99.25")}
    with django_assert_num_queries(3):
        updated = services.positions_mark(prices=prices, bot_id=bot.pk)
    assert updated == n
    marks = dict(Position.objects.filter(bot=bot).values_list("symbol", "current_price").distinct())
    assert marks == {s: p for s, p in prices.items() if s in marks}
    untouched.refresh_from_db()
    assert untouched.current_price == Decimal("100")  # another bot: not in bot_id's scope
    # All bots at once (position_open_symbol_idx): the other bot's position too.
    assert services.positions_mark(prices=prices) == n + 1


@pytest.mark.django_db
def test_positions_mark_skips_closed_positions_and_refuses_bad_prices() -> None:
    bot = make_bot()
    position = _open(bot, client_order_id="a")
    services.position_close(position=position, price="110", client_order_id="c", executed_at=T0)
    assert services.positions_mark(prices={"BTC/USDT": Decimal("130")}, bot_id=bot.pk) == 0
    position.refresh_from_db()
    assert position.current_price == Decimal("110")
    for bad in ({"BTC/USDT": Decimal("0")}, {"BTC/USDT": "NaN"}, {"BTCUSDT": Decimal("1")}):
        with pytest.raises(InvalidInput):
            services.positions_mark(prices=bad)


# --- Finding 2: liquidation ---------------------------------------------------------------------


@pytest.mark.django_db
def test_finding_2_a_leveraged_loser_is_liquidated_not_stuck_open() -> None:
    """Capital 1,000, 1,000 @ 100 at 125x (margin 800, cash 200), close at 90: before, an
    InsufficientCapital and a position open forever. Now: liquidated at its liquidation price."""
    bot = make_bot(initial_capital=Decimal("1000"))
    position = _open(bot, quantity="1000", price="100", leverage="125", stop_loss="50",
                     client_order_id="big")  # fmt: skip
    assert position.margin == Decimal("800")
    liq = position.liquidation_price
    assert liq == risk.liquidation_price(
        side="long", entry=Decimal("100"), margin=Decimal("800"), open_quantity=Decimal("1000")
    )
    assert Decimal("99.2") < liq < Decimal("99.3")
    closed = services.position_close(
        position=position, price="90", client_order_id="c", executed_at=T0 + timedelta(hours=1),
        reason="stop_loss",
    )  # fmt: skip
    assert closed.status == "closed" and closed.close_reason == "liquidation"
    fill = Trade.objects.get(client_order_id="c")
    assert (fill.reason, fill.price, fill.quantity) == ("liquidation", liq, Decimal("1000"))
    # The position lost its margin (less the fee that was left), nothing more.
    assert fill.realized_pnl + fill.fee <= Decimal("800")
    assert money(Decimal("800") + fill.realized_pnl - fill.fee) >= 0
    bot.refresh_from_db()
    assert bot.capital >= Decimal("200") and bot.capital >= 0
    assert_ledger_holds()


@pytest.mark.django_db
@pytest.mark.parametrize("side", ["long", "short"])
@pytest.mark.parametrize("leverage", ["2", "10", "125"])
def test_liquidation_credits_nothing_below_zero_for_any_side_and_leverage(
    side: str, leverage: str
) -> None:
    bot = make_bot(initial_capital=Decimal("10000"))
    position = _open(bot, side=side, quantity="3.33", price="123.456", leverage=leverage,
                     stop_loss=None, client_order_id="p")  # fmt: skip
    cash_before = Bot.objects.get(pk=bot.pk).capital
    far = Decimal("1") if side == "long" else Decimal("100000")
    services.position_close(position=position, price=far, client_order_id="c", executed_at=T0)
    position.refresh_from_db()
    assert position.close_reason == "liquidation"
    bot.refresh_from_db()
    assert bot.capital >= cash_before  # liquidation takes nothing from the rest of the cash
    assert bot.capital - cash_before < Decimal("0.00000002")  # and returns ~nothing
    assert_ledger_holds()


@pytest.mark.django_db
def test_a_1x_long_has_no_liquidation_price_and_closes_at_any_price() -> None:
    bot = make_bot()
    position = _open(bot, quantity="1", price="100", client_order_id="p")
    assert position.liquidation_price is None
    services.position_close(position=position, price="0.01", client_order_id="c", executed_at=T0)
    position.refresh_from_db()
    assert position.close_reason == "manual" and position.realized_pnl == Decimal("-99.99")
    assert_ledger_holds()


@pytest.mark.django_db
def test_partial_closes_then_liquidation_keep_the_ledger() -> None:
    bot = make_bot(initial_capital=Decimal("1000"))
    position = _open(bot, quantity="9", price="100", leverage="10", stop_loss="95",
                     client_order_id="p")  # fmt: skip
    for i in range(2):
        services.position_close(
            position=position, quantity="2", price="99", client_order_id=f"part-{i}",
            executed_at=T0, reason="signal",
        )  # fmt: skip
        assert_ledger_holds()
    position.refresh_from_db()
    assert position.liquidation_price == risk.liquidation_price(
        side="long", entry=position.entry_price, margin=position.margin,
        open_quantity=position.open_quantity,
    )  # fmt: skip
    services.position_close(position=position, price="80", client_order_id="last", executed_at=T0)
    position.refresh_from_db()
    assert position.status == "closed" and position.close_reason == "liquidation"
    reasons = list(
        Trade.objects.filter(position=position).order_by("id").values_list("reason", flat=True)
    )
    assert reasons == ["open", "signal", "signal", "liquidation"]
    assert_ledger_holds()


@pytest.mark.django_db
def test_apply_exits_closes_on_stop_take_and_liquidation_with_their_reasons() -> None:
    bot = make_bot(initial_capital=Decimal("100000"), symbols=["BTC/USDT", "ETH/USDT", "SOL/USDT"])
    stop = _open(bot, symbol="BTC/USDT", price="100", stop_loss="95", take_profit="120",
                 client_order_id="s")  # fmt: skip
    take = _open(bot, symbol="ETH/USDT", side="short", price="100", stop_loss="105",
                 take_profit="90", client_order_id="t")  # fmt: skip
    liq = _open(bot, symbol="SOL/USDT", price="100", leverage="20", stop_loss="90",
                client_order_id="l")  # fmt: skip
    calm = _open(bot, symbol="BTC/USDT", price="90", stop_loss="80", take_profit="200",
                 client_order_id="k")  # fmt: skip
    prices = {"BTC/USDT": Decimal("94"), "ETH/USDT": Decimal("89"), "SOL/USDT": Decimal("92")}
    closed = services.positions_apply_exits(bot=bot, prices=prices, as_of=T0 + timedelta(minutes=5))
    assert {p.pk: p.close_reason for p in closed} == {
        stop.pk: "stop_loss", take.pk: "take_profit", liq.pk: "liquidation",
    }  # fmt: skip
    calm.refresh_from_db()
    assert calm.status == "open" and calm.current_price == Decimal("94")
    fills = dict(
        Trade.objects.filter(client_order_id__startswith="exit-").values_list("position", "price")
    )
    assert fills[stop.pk] == Decimal("94") and fills[take.pk] == Decimal("89")
    assert fills[liq.pk] == Position.objects.get(pk=liq.pk).liquidation_price
    # A retried cycle closes nothing twice.
    assert services.positions_apply_exits(bot=bot, prices=prices, as_of=T0) == []
    assert Trade.objects.filter(bot=bot).count() == 4 + 3
    assert_ledger_holds()


def test_exit_reason_is_a_pure_function() -> None:
    d = Decimal
    args = {"stop_loss": d(95), "take_profit": d(120), "liquidation": d(90)}
    assert risk.exit_reason(side="long", price=d(100), **args) is None
    assert risk.exit_reason(side="long", price=d(95), **args) == "stop_loss"
    assert risk.exit_reason(side="long", price=d(89), **args) == "liquidation"
    assert risk.exit_reason(side="long", price=d(121), **args) == "take_profit"
    short = {"stop_loss": d(105), "take_profit": d(80), "liquidation": d(110)}
    assert risk.exit_reason(side="short", price=d(106), **short) == "stop_loss"
    assert risk.exit_reason(side="short", price=d(111), **short) == "liquidation"
    assert risk.exit_reason(side="short", price=d(79), **short) == "take_profit"


# --- Finding 3: risk enforced -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["inactive", "paused", "stopped"])
def test_finding_3_only_an_active_bot_opens(status: str) -> None:
    bot = make_bot(status=status)
    with pytest.raises(InvalidState, match="Only an active bot"):
        _open(bot)
    assert not Position.objects.filter(bot=bot).exists()


@pytest.mark.django_db
def test_max_position_size_open_positions_and_trades_per_day_are_enforced() -> None:
    bot = make_bot(
        initial_capital=Decimal("1000"),
        risk_params={"max_position_pct": "10", "max_open_positions": 2, "max_trades_per_day": 3},
    )
    with pytest.raises(RiskRefused, match="max_position_pct"):
        _open(bot, quantity="1.01", price="100", client_order_id="big")  # margin 101 > 10 %
    _open(bot, quantity="0.5", price="100", client_order_id="a")
    _open(bot, quantity="0.5", price="100", client_order_id="b")
    with pytest.raises(RiskRefused, match="max_open_positions"):
        _open(bot, quantity="0.5", price="100", client_order_id="c")
    first = Position.objects.filter(bot=bot).order_by("id").first()
    services.position_close(position=first, price="100", client_order_id="x", executed_at=T0)
    # 3 fills today (2 opens, 1 close): a further open is refused, a close never is.
    with pytest.raises(RiskRefused, match="max_trades_per_day"):
        _open(bot, quantity="0.5", price="100", client_order_id="d")
    second = Position.objects.filter(bot=bot, status="open").get()
    services.position_close(position=second, price="100", client_order_id="y", executed_at=T0)
    assert BotDailyPnl.objects.get(bot=bot).trade_count == 4
    _open(bot, quantity="0.5", price="100", client_order_id="e", executed_at=T0 + timedelta(days=1))
    assert_ledger_holds()


@pytest.mark.django_db
def test_stop_loss_and_take_profit_default_from_risk_params_and_are_checked() -> None:
    bot = make_bot(risk_params={"max_position_pct": "100", "stop_loss_pct": "5",
                                "take_profit_pct": "12.5"})  # fmt: skip
    long = _open(bot, price="200", client_order_id="l")
    assert (long.stop_loss, long.take_profit) == (Decimal("190"), Decimal("225"))
    short = _open(bot, side="short", price="200", client_order_id="s")
    assert (short.stop_loss, short.take_profit) == (Decimal("210"), Decimal("175"))
    own = _open(bot, price="200", stop_loss="150", client_order_id="o")
    assert (own.stop_loss, own.take_profit) == (Decimal("150"), Decimal("225"))
    with pytest.raises(InvalidInput) as wrong:
        _open(bot, price="200", stop_loss="210", client_order_id="w")
    assert wrong.value.field == "stop_loss"
    with pytest.raises(InvalidInput):
        _open(bot, side="short", price="200", take_profit="250", client_order_id="w2")


@pytest.mark.django_db
def test_a_drawdown_breach_pauses_the_bot_with_a_reason() -> None:
    bot = make_bot(initial_capital=Decimal("1000"), risk_params={"max_position_pct": "100",
                                                                  "max_drawdown_pct": "10"})  # fmt: skip
    services.equity_snapshot_record(bot=bot, taken_at=T0)  # peak 1,000
    position = _open(bot, quantity="5", price="100", stop_loss="1", client_order_id="p")
    services.positions_mark(prices={"BTC/USDT": Decimal("70")}, bot_id=bot.pk)  # equity 850
    services.equity_snapshot_record(bot=bot, taken_at=T0 + timedelta(minutes=1))
    bot.refresh_from_db()
    assert bot.status == "paused"
    assert "max_drawdown_pct" in bot.status_reason and "15" in bot.status_reason
    with pytest.raises(InvalidState):
        _open(bot, quantity="0.1", client_order_id="q")
    assert Position.objects.filter(bot=bot).count() == 1 and position.status == "open"


@pytest.mark.django_db
def test_an_open_past_the_drawdown_limit_pauses_the_bot_and_is_refused() -> None:
    bot = make_bot(initial_capital=Decimal("1000"), risk_params={"max_position_pct": "100",
                                                                  "max_drawdown_pct": "10"})  # fmt: skip
    services.equity_snapshot_record(bot=bot, taken_at=T0)
    _open(bot, quantity="5", price="100", stop_loss="1", client_order_id="p")
    services.positions_mark(prices={"BTC/USDT": Decimal("70")}, bot_id=bot.pk)
    with pytest.raises(RiskRefused, match="drawdown"):
        _open(bot, quantity="0.1", client_order_id="q")
    bot.refresh_from_db()
    assert bot.status == "paused" and "max_drawdown_pct" in bot.status_reason


@pytest.mark.django_db
def test_risk_params_have_one_validation_used_by_the_api(api: APIClient) -> None:
    user = make_user()
    api.force_authenticate(user)
    body = {"name": "r", "strategy": "momentum", "initial_capital": "100",
            "symbols": ["BTC/USDT"], "risk_params": {"max_open_positions": 7}}  # fmt: skip
    created = api.post("/api/bots/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["risk_params"]["max_open_positions"] == 7
    for bad in ({"max_open_positions": 0}, {"max_open_positions": "7"}, {"nope": 1}):
        response = api.post("/api/bots/", {**body, "name": str(bad), "risk_params": bad},
                            format="json")  # fmt: skip
        assert response.status_code == 400, response.content
        assert response.json()["field"].startswith("risk_params")
        with pytest.raises(InvalidInput):
            risk.validate_risk_params(bad)


# --- Finding 4: idempotency ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [{"symbol": "ETH/USDT"}, {"side": "short"}, {"quantity": "7"}, {"price": "55"}],
)
def test_finding_4_a_reused_order_id_for_another_order_is_an_error(change: dict) -> None:
    bot = make_bot(initial_capital=Decimal("100000"))
    first = _open(bot, symbol="BTC/USDT", quantity="1", price="100", stop_loss="50",
                  take_profit="200", client_order_id="same")  # fmt: skip
    again = _open(bot, symbol="BTC/USDT", quantity="1", price="100", stop_loss="50",
                  take_profit="200", client_order_id="same")  # fmt: skip
    assert again.pk == first.pk
    order = {"symbol": "BTC/USDT", "quantity": "1", "price": "100", **change}
    with pytest.raises(InvalidInput, match="already used") as error:
        _open(bot, stop_loss=None, take_profit=None, client_order_id="same", **order)
    assert error.value.field == "client_order_id"
    assert Position.objects.filter(bot=bot).count() == 1


@pytest.mark.django_db
def test_a_reused_close_id_with_another_quantity_is_an_error_and_a_retry_is_not() -> None:
    bot = make_bot()
    position = _open(bot, quantity="4", client_order_id="o")
    services.position_close(position=position, quantity="1", price="101", client_order_id="c",
                            executed_at=T0)  # fmt: skip
    services.position_close(position=position, quantity="1", price="101", client_order_id="c",
                            executed_at=T0)  # a retry  # fmt: skip
    position.refresh_from_db()
    assert position.closed_quantity == Decimal("1")
    with pytest.raises(InvalidInput, match="already used"):
        services.position_close(position=position, quantity="2", client_order_id="c")
    with pytest.raises(InvalidInput, match="already used"):
        services.position_close(position=position, quantity="1", price="102", client_order_id="c")


@pytest.mark.django_db
@pytest.mark.redis
def test_finding_4_the_api_answers_a_reused_close_id_with_400(api: APIClient) -> None:
    from marketdata.prices import last_prices

    user = make_user()
    api.force_authenticate(user)
    bot = make_bot(owner=user, initial_capital=Decimal("1000000"))
    mark = last_prices(["BTC/USDT"])["BTC/USDT"]
    position = _open(bot, quantity="2", price=mark, stop_loss=mark / 2, take_profit=mark * 2,
                     client_order_id="o")  # fmt: skip
    url = f"/api/positions/{position.pk}/close/"
    first = api.post(url, {"quantity": "0.5", "client_order_id": "k"}, format="json")
    assert first.status_code == 200, first.content
    retry = api.post(url, {"quantity": "0.5", "client_order_id": "k"}, format="json")
    assert (
        retry.status_code == 200
        and retry.json()["closed_quantity"] == first.json()["closed_quantity"]
    )
    other = api.post(url, {"quantity": "0.7", "client_order_id": "k"}, format="json")
    assert other.status_code == 400 and other.json()["field"] == "client_order_id"
    position.refresh_from_db()
    assert position.closed_quantity == Decimal("0.5")


# --- Finding 5: one lock order ------------------------------------------------------------------


def _run_threads(targets: list[Any]) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets), timeout=JOIN_TIMEOUT)

    def wrap(target: Any) -> None:
        try:
            barrier.wait()
            target()
        except TradingError:
            pass  # a clear refusal (already closed, bot gone): what the API answers 4xx with
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=wrap, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"
    return errors


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_finding_5_close_against_delete_never_deadlocks() -> None:
    """Before: close locked position then bot, delete user, bot, then positions: PostgreSQL
    raised "deadlock detected" (a 500). Now both follow owner -> bot -> positions."""
    for round_ in range(6):
        bot = make_bot(initial_capital=Decimal("100000"))
        positions = [_open(bot, quantity="0.1", client_order_id=f"r{round_}-{i}") for i in range(4)]
        services.bot_set_status(bot=bot, status="paused")

        def close(position: Position = positions[round_ % 4]) -> None:
            services.position_close(position=position, price="101", client_order_id="c",
                                    executed_at=T0)  # fmt: skip

        def mark() -> None:
            services.positions_mark(prices={"BTC/USDT": Decimal("102")})

        def delete(bot: Bot = bot) -> None:
            services.bot_delete(bot=Bot.objects.get(pk=bot.pk))

        errors = _run_threads([close, delete, mark])
        assert not [e for e in errors if isinstance(e, OperationalError)], errors
        assert errors == []
        assert not Bot.objects.filter(pk=bot.pk).exists()
    assert_ledger_holds()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_finding_5_open_against_close_and_concurrent_closes_keep_the_ledger() -> None:
    bot = make_bot(initial_capital=Decimal("100000"), risk_params={"max_position_pct": "100",
                                                                    "max_open_positions": 1000})  # fmt: skip
    positions = [_open(bot, quantity="0.5", client_order_id=f"p{i}") for i in range(8)]

    def opener(n: int) -> Any:
        def run() -> None:
            for i in range(5):
                _open(Bot.objects.get(pk=bot.pk), quantity="0.1", client_order_id=f"n{n}-{i}")

        return run

    def closer(position: Position) -> Any:
        def run() -> None:
            services.position_close(position=position, quantity="0.25", price="99",
                                    client_order_id=f"half-{position.pk}", executed_at=T0)  # fmt: skip
            services.position_close(position=position, price="98",
                                    client_order_id=f"rest-{position.pk}", executed_at=T0)  # fmt: skip

        return run

    def marker() -> None:
        for price in ("97", "103", "101"):
            services.positions_mark(prices={"BTC/USDT": Decimal(price)}, bot_id=bot.pk)

    errors = _run_threads([opener(0), opener(1), *(closer(p) for p in positions[:5]), marker])
    assert errors == []
    assert Position.objects.filter(bot=bot, status="closed").count() == 5
    assert Position.objects.filter(bot=bot).count() == 8 + 10
    assert_ledger_holds()


# --- Finding 6: one unrealized PnL, one rounding, ratios in the money context --------------------


@pytest.mark.django_db
def test_finding_6_snapshot_dashboard_and_rows_agree_on_unrealized_pnl() -> None:
    """Two positions of exactly 0.000000005 each: the dashboard rounded each (half away from
    zero: 2E-8) where the snapshot rounded the sum (1E-8)."""
    from trading import dashboard

    bot = make_bot()
    for i in range(2):
        _open(bot, quantity="0.001", price="100", client_order_id=f"h{i}")
    services.positions_mark(prices={"BTC/USDT": Decimal("100.000005")}, bot_id=bot.pk)
    snapshot = services.equity_snapshot_record(bot=bot, taken_at=T0)
    stats = dashboard.stats(dashboard.Scope(owner_id=bot.owner_id))
    assert snapshot.unrealized_pnl == stats["unrealized_pnl"] == Decimal("0.00000001")
    assert stats["equity"] == snapshot.equity
    # One position: 5E-9 is a tie, half-even to 0 in SQL rows and in Python alike.
    rows = list(
        Position.objects.filter(bot=bot).api_rows().values_list("unrealized_pnl", flat=True)
    )
    assert rows == [Decimal("0E-8"), Decimal("0E-8")]
    assert [p.unrealized_pnl for p in Position.objects.filter(bot=bot)] == rows


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("diff", "expected"),
    [("0.000015", "0.00000002"), ("0.000025", "0.00000002"), ("-0.000015", "-0.00000002"),
     ("-0.000025", "-0.00000002"), ("0.0000151", "0.00000002"), ("0.000013", "0.00000001")],
)  # fmt: skip
def test_sql_rounding_is_half_even_like_money(diff: str, expected: str) -> None:
    bot = make_bot()
    position = _open(bot, quantity="0.001", price="100", client_order_id="r")
    services.positions_mark(prices={"BTC/USDT": Decimal("100") + Decimal(diff)}, bot_id=bot.pk)
    position.refresh_from_db()
    (row,) = (
        Position.objects.filter(pk=position.pk).api_rows().values_list("unrealized_pnl", flat=True)
    )
    assert row == position.unrealized_pnl == Decimal(expected)


@pytest.mark.django_db
def test_finding_6_a_huge_profit_factor_is_a_number_not_a_500(api: APIClient) -> None:
    from trading.models import BotSymbolStats

    bot = make_bot()
    position = _open(bot, quantity="0.001", client_order_id="p")
    services.position_close(position=position, price="110", client_order_id="c", executed_at=T0)
    BotSymbolStats.objects.filter(bot=bot).update(
        gross_profit=Decimal("100000000000000000"), gross_loss=Decimal("0.00000001"),
        wins=1, losses=1,
    )  # fmt: skip
    api.force_authenticate(bot.owner)
    response = api.get("/api/dashboard/performance?period=all")
    assert response.status_code == 200, response.content
    assert Decimal(response.json()["total"]["profit_factor"]) == Decimal("1E25")


@pytest.mark.django_db
def test_put_is_not_offered_patch_is(api: APIClient) -> None:
    bot = make_bot()
    api.force_authenticate(bot.owner)
    url = f"/api/bots/{bot.pk}/"
    assert api.put(url, {"name": "x"}, format="json").status_code == 405
    assert api.patch(url, {"name": "x"}, format="json").status_code == 200
    assert "PUT" not in api.options(url)["Allow"]


def test_close_reasons_are_one_set() -> None:
    from trading import events
    from trading.models import CLOSE_REASONS

    assert events.CLOSE_REASONS == CLOSE_REASONS


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
def test_marks_and_a_rule_pause_move_the_dashboard_data_version() -> None:
    """Bulk .update()s send no post_save: the services move the owner's version themselves
    (after commit: real commits here)."""
    from trading import dataversion

    bot = make_bot()
    _open(bot, client_order_id="p")
    before = dataversion.current(bot.owner_id)
    services.positions_mark(prices={"BTC/USDT": Decimal("101")}, bot_id=bot.pk)
    marked = dataversion.current(bot.owner_id)
    assert marked is not None and before is not None and marked > before
    services.bot_set_status(bot=bot, status="paused", reason="test")
    assert dataversion.current(bot.owner_id) > marked


@pytest.mark.django_db
@pytest.mark.redis
def test_a_close_at_market_without_a_market_price_is_a_503_not_a_fill(
    api: APIClient, monkeypatch: Any
) -> None:
    """The exchange is down (the ccxt client over a fake exchange that times out): the API close
    never falls back to a stale mark."""
    import ccxt

    from marketdata import services as market
    from marketdata.clients.ccxt_client import CcxtClient
    from marketdata.tests.conftest import no_budget
    from marketdata.tests.fakes import FakeExchange

    fake = FakeExchange(now=datetime.now(UTC))
    client = CcxtClient(
        exchange_id="fakex", exchange=fake, sleep=lambda s: None, budget=no_budget()
    )
    monkeypatch.setattr(market, "get_client", lambda: client)
    bot = make_bot()
    position = _open(bot, quantity="0.1", client_order_id="p")
    api.force_authenticate(bot.owner)
    fake.failures += [ccxt.RequestTimeout("timed out")] * 10
    response = api.post(f"/api/positions/{position.pk}/close/", {}, format="json")
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "price_unavailable"
    assert response["Retry-After"] == "5"
    position.refresh_from_db()
    assert position.status == "open" and position.current_price == Decimal("100")


@pytest.mark.django_db
def test_trades_per_day_counts_the_utc_day_whatever_the_offset_of_executed_at() -> None:
    """executed_at may carry any offset: the limit reads the count of its UTC day, the day the
    fill is added to (before: the refusal read the offset's local date, so 22:00Z written as
    03:00+05:00 read the next day's empty count and a third trade passed a limit of 2)."""
    from datetime import timezone as dt_timezone

    bot = make_bot(risk_params={"max_position_pct": "100", "max_trades_per_day": 2})
    plus5 = dt_timezone(timedelta(hours=5))
    for i, at in enumerate([
        datetime(2026, 12, 1, 20, tzinfo=UTC).astimezone(plus5),
        datetime(2026, 12, 1, 21, tzinfo=UTC),
    ]):  # fmt: skip
        services.position_open(bot=bot, symbol="BTC/USDT", side="long", quantity="0.001",
                               price="100", client_order_id=f"d{i}", executed_at=at)  # fmt: skip
    assert BotDailyPnl.objects.get(bot=bot).trade_count == 2
    with pytest.raises(RiskRefused, match="max_trades_per_day"):
        services.position_open(
            bot=bot, symbol="BTC/USDT", side="long", quantity="0.001", price="100",
            client_order_id="d2", executed_at=datetime(2026, 12, 1, 22, tzinfo=UTC).astimezone(plus5),
        )  # fmt: skip


@pytest.mark.django_db
def test_migration_0004_gives_positions_opened_before_0002_their_liquidation_price() -> None:
    """0002 added liquidation_price as null for every existing position: an open leveraged one
    could never be liquidated. 0004 computes it with the one formula (a 1x long has none)."""
    import importlib

    from django.apps import apps

    backfill = importlib.import_module(
        "trading.migrations.0004_backfill_liquidation_price"
    ).backfill
    bot = make_bot(initial_capital=Decimal("100000"))
    long_ = _open(bot, quantity="2", price="100", leverage="10", client_order_id="m1")
    short = _open(bot, side="short", quantity="1", price="100", leverage="5", client_order_id="m2")
    spot = _open(bot, quantity="1", price="100", client_order_id="m3")
    expected = {p.pk: p.liquidation_price for p in (long_, short, spot)}
    assert expected[long_.pk] is not None and expected[short.pk] is not None
    assert expected[spot.pk] is None
    Position.objects.update(liquidation_price=None)  # as 0002 left them
    backfill(apps, None)
    got = dict(Position.objects.values_list("pk", "liquidation_price"))
    assert got == expected
