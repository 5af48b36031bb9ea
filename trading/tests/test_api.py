"""Trading API: behaviour, scoping, validation, pagination, and query budgets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test.utils import override_settings
from rest_framework.test import APIClient

from marketdata.prices import last_prices
from trading import serializers as s
from trading import services
from trading.models import Bot, Position, Trade
from trading.tests.conftest import seed_user
from trading.tests.factories import make_bot, make_user
from zerobot.lib.money import money, quantize

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def first_bot(user: Any) -> Bot:
    return Bot.objects.filter(owner=user).order_by("id").first()


# --- Query budgets ------------------------------------------------------------------------------
# Counts exclude authentication: the client is force-authenticated (token auth adds exactly one
# query, see test_token_auth_adds_one_query). Each budget is the same with 1 bot and with 25.
BUDGETS: list[tuple[str, int, str]] = [
    # url, queries, what they are
    ("/api/dashboard/stats", 1, "one statement: bots, open positions, running totals"),
    ("/api/dashboard/stats?bot={bot}", 1, "same, narrowed to one bot"),
    ("/api/dashboard/equity-curve", 1, "bucketed snapshots"),
    ("/api/dashboard/equity-curve?bot={bot}&period=all", 1, "bucketed, bot row drives (404 check)"),
    ("/api/dashboard/positions", 2, "total (partial-index count) + page"),
    ("/api/dashboard/positions?bot={bot}", 2, "bot check + total, page"),
    ("/api/dashboard/trades", 2, "total from running totals + page"),
    ("/api/dashboard/trades?side=sell&executed_after=2020-01-01", 2, "capped count + page"),
    ("/api/dashboard/performance", 3, "drawdowns, per bot x symbol totals, PnL per day"),
    ("/api/dashboard/performance?bot={bot}&period=7d", 3, "same for one bot"),
    ("/api/bots/", 2, "count + page"),
    ("/api/bots/{bot}/", 1, "detail"),
    ("/api/positions/", 2, "total (running totals + open count) + page"),
    ("/api/positions/?status=closed&symbol=BTC/USDT", 2, "total + page"),
    ("/api/positions/?side=long&bot={bot}", 2, "bot check + capped count, page"),
    ("/api/positions/{position}/", 1, "detail"),
    ("/api/trades/", 2, "total + page"),
    ("/api/trades/?bot={bot}&symbol=BTC/USDT", 2, "bot check + total, page"),
    ("/api/trades/?limit=10&page=3", 2, "total + page"),
    ("/api/trades/{trade}/", 1, "detail"),
]


@pytest.mark.parametrize("bots", [1, 25])
@pytest.mark.parametrize(("url", "queries", "why"), BUDGETS)
def test_query_budget_does_not_grow_with_bots(
    api: APIClient, django_assert_num_queries: Any, bots: int, url: str, queries: int, why: str
) -> None:
    user = seed_user(bots=bots)
    bot = first_bot(user)
    position = Position.objects.filter(owner=user).order_by("-id").first()
    trade = Trade.objects.filter(owner=user).order_by("-id").first()
    api.force_authenticate(user)
    target = url.format(bot=bot.pk, position=position.pk, trade=trade.pk)
    with django_assert_num_queries(queries):
        response = api.get(target)
    assert response.status_code == 200, response.content


def test_token_auth_adds_one_query(
    api: APIClient, demo_user: Any, django_assert_num_queries: Any
) -> None:
    token = api.post("/api/auth/login", {"username": "demo", "password": "zerobot-demo"}).json()[
        "token"
    ]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    with django_assert_num_queries(2):  # token + user (one join), then the stats statement
        assert api.get("/api/dashboard/stats").status_code == 200


# --- Auth ---------------------------------------------------------------------------------------


def test_anonymous_requests_are_refused(api: APIClient) -> None:
    for url in ["/api/bots/", "/api/trades/", "/api/dashboard/stats", "/api/auth/me"]:
        assert api.get(url).status_code in (401, 403)


# --- Scoping ------------------------------------------------------------------------------------


def test_another_users_objects_are_404_everywhere(demo_api: APIClient) -> None:
    other = make_bot(owner=make_user(), initial_capital=Decimal("1000"))
    position = services.position_open(
        bot=other, symbol="BTC/USDT", side="long", quantity="0.001", price="100",
        client_order_id="x",
    )  # fmt: skip
    trade = Trade.objects.get(position=position)
    for url in [
        f"/api/bots/{other.pk}/", f"/api/positions/{position.pk}/", f"/api/trades/{trade.pk}/",
        f"/api/trades/?bot={other.pk}", f"/api/positions/?bot={other.pk}",
        f"/api/dashboard/stats?bot={other.pk}", f"/api/dashboard/equity-curve?bot={other.pk}",
        f"/api/dashboard/performance?bot={other.pk}", f"/api/dashboard/trades?bot={other.pk}",
        f"/api/dashboard/positions?bot={other.pk}", "/api/bots/999999999/",
        "/api/bots/99999999999999999999999/",
    ]:  # fmt: skip
        response = demo_api.get(url)
        assert response.status_code == 404, (url, response.content)
        assert "detail" in response.json()
    for url in [f"/api/bots/{other.pk}/start/", f"/api/positions/{position.pk}/close/"]:
        assert demo_api.post(url, {}, format="json").status_code == 404
    assert (
        demo_api.patch(f"/api/bots/{other.pk}/", {"name": "mine"}, format="json").status_code == 404
    )
    assert demo_api.delete(f"/api/bots/{other.pk}/").status_code == 404
    position.refresh_from_db()
    assert position.status == "open"
    assert Bot.objects.get(pk=other.pk).name != "mine"


def test_lists_only_show_the_users_rows(demo_api: APIClient, demo_user: Any) -> None:
    make_bot(owner=make_user(), name="someone else's")
    names = {row["name"] for row in demo_api.get("/api/bots/").json()["results"]}
    assert names == set(Bot.objects.filter(owner=demo_user).values_list("name", flat=True))
    trades = demo_api.get("/api/trades/?limit=1000").json()
    assert trades["total"] == Trade.objects.filter(owner=demo_user).count()
    assert {row["bot"] for row in trades["results"]} <= set(
        Bot.objects.filter(owner=demo_user).values_list("id", flat=True)
    )


# --- Bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "param"),
    [
        ("/api/trades/?limit=abc", "limit"),
        ("/api/trades/?limit=9", "limit"),
        ("/api/trades/?limit=1001", "limit"),
        ("/api/trades/?page=0", "page"),
        ("/api/trades/?page=-1", "page"),
        ("/api/trades/?page=1.5", "page"),
        ("/api/trades/?page=9999", "page"),
        ("/api/trades/?cursor=garbage!", "cursor"),
        ("/api/trades/?cursor=MjAyNnwx&page=2", "cursor"),
        ("/api/trades/?bot=abc", "bot"),
        ("/api/trades/?bot=0", "bot"),
        ("/api/trades/?symbol=BTCUSDT", "symbol"),
        ("/api/trades/?side=long", "side"),
        ("/api/trades/?executed_after=yesterday", "executed_after"),
        ("/api/trades/?executed_before=2026-13-01", "executed_before"),
        ("/api/trades/?executed_after=2026-02-01&executed_before=2026-01-01", "executed_after"),
        ("/api/positions/?status=pending", "status"),
        ("/api/dashboard/equity-curve?period=1y", "period"),
        ("/api/dashboard/equity-curve?points=1", "points"),
        ("/api/dashboard/equity-curve?points=100000", "points"),
        ("/api/dashboard/performance?period=forever", "period"),
        ("/api/trades/?limit=%C2%B2", "limit"),  # "²": isdigit() but not an int
        ("/api/trades/?bot=%C2%B2", "bot"),
        ("/api/trades/?limit=" + "9" * 5000, "limit"),
        ("/api/trades/?executed_after=0001-01-01T00:00:00%2B01:00", "executed_after"),
        ("/api/trades/?executed_before=9999-12-31T23:00:00-05:00", "executed_before"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    demo_api: APIClient, url: str, param: str
) -> None:
    response = demo_api.get(url)
    assert response.status_code == 400, response.content
    body = response.json()
    # The one error shape: the parameter in "field", a message in "detail".
    assert body["field"] == param and body["detail"] and body["code"], body
    assert body["errors"][0] == {k: body[k] for k in ("detail", "code", "field")}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"initial_capital": "NaN"}, "initial_capital"),
        ({"initial_capital": "Infinity"}, "initial_capital"),
        ({"initial_capital": "-5"}, "initial_capital"),
        ({"initial_capital": "1e400"}, "initial_capital"),
        ({"symbols": ["BTCUSDT"]}, "symbols"),
        ({"symbols": []}, "symbols"),
        ({"timeframe": "2h"}, "timeframe"),
        ({"risk_params": {"max_drawdown_pct": 500}}, "risk_params"),
        ({"risk_params": {"stop_loss_pct": "NaN"}}, "risk_params"),
        ({"risk_params": {"leverage": 100}}, "risk_params"),
        ({"name": ""}, "name"),
        ({"paper_trading": False}, "paper_trading"),
    ],
)
def test_bot_create_rejects_bad_input(demo_api: APIClient, payload: dict, field: str) -> None:
    body = {
        "name": "new bot",
        "strategy": "momentum",
        "initial_capital": "1000",
        "symbols": ["BTC/USDT"],
    }
    body.update(payload)
    before = Bot.objects.count()
    response = demo_api.post("/api/bots/", body, format="json")
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["field"].split(".")[0] == field, data
    assert Bot.objects.count() == before


def test_json_numbers_keep_their_decimals(demo_api: APIClient) -> None:
    response = demo_api.post(
        "/api/bots/",
        data=b'{"name": "exact", "strategy": "momentum", "initial_capital": 1234.12345678, "symbols": ["BTC/USDT"]}',
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["initial_capital"] == "1234.12345678"
    nan = demo_api.post(
        "/api/bots/", data=b'{"initial_capital": NaN}', content_type="application/json"
    )
    assert nan.status_code == 400


# --- Bots ---------------------------------------------------------------------------------------


def test_bot_lifecycle(demo_api: APIClient, demo_user: Any) -> None:
    created = demo_api.post(
        "/api/bots/",
        {"name": "Lifecycle", "strategy": "momentum", "initial_capital": "5000",
         "symbols": ["btc/usdt", "ETH/USDT"], "risk_params": {"max_position_pct": "5"}},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    bot = created.json()
    assert bot["symbols"] == ["BTC/USDT", "ETH/USDT"]
    assert bot["capital"] == "5000.00000000" and bot["status"] == "inactive"
    assert bot["risk_params"]["validated"] is True
    writable = {k: bot[k] for k in ("name", "strategy", "symbols", "timeframe")}
    duplicate = demo_api.post("/api/bots/", {**writable, "initial_capital": "1"}, format="json")
    assert duplicate.status_code == 400 and duplicate.json()["field"] == "name"
    # Read-only and unknown fields are refused by name, not silently dropped.
    echoed = demo_api.post("/api/bots/", {**created.json(), "name": "Echo"}, format="json")
    assert echoed.status_code == 400
    refused = {error["field"] for error in echoed.json()["errors"]}
    assert {"id", "capital", "status", "created_at"} <= refused
    patch = demo_api.patch(f"/api/bots/{bot['id']}/", {"initial_capital": "9", "colour": "red"},
                           format="json")  # fmt: skip
    assert patch.status_code == 400
    assert {e["field"] for e in patch.json()["errors"]} == {"initial_capital", "colour"}

    url = f"/api/bots/{bot['id']}/"
    assert demo_api.patch(url, {"name": "Renamed"}, format="json").json()["name"] == "Renamed"
    assert demo_api.post(url + "start/").json()["bot"]["status"] == "active"
    assert demo_api.delete(url).status_code == 409  # active: stop first
    position = services.position_open(
        bot=Bot.objects.get(pk=bot["id"]), symbol="BTC/USDT", side="long", quantity="0.01",
        price="100", client_order_id="o1",
    )  # fmt: skip
    stopped = demo_api.post(url + "stop/").json()
    assert stopped["bot"]["status"] == "stopped"
    assert stopped["open_positions"] == 1  # stop closes nothing
    position.refresh_from_db()
    assert position.status == "open"
    assert demo_api.post(url + "pause/").status_code == 409  # stopped cannot pause
    assert demo_api.delete(url).status_code == 204
    assert demo_api.get(url).status_code == 404


# --- Positions ----------------------------------------------------------------------------------


def test_close_position_through_the_api_moves_money_once(
    demo_api: APIClient, demo_user: Any
) -> None:
    position = Position.objects.filter(owner=demo_user, status="open").order_by("id").first()
    bot = position.bot
    capital, margin = bot.capital, position.margin
    url = f"/api/positions/{position.pk}/close/"
    # The API marks the position at a fresh market price first; a limit near it fills.
    mark = last_prices([position.symbol])[position.symbol]
    limit = quantize(mark * Decimal("1.05"), 12)
    body = {"price": str(limit), "client_order_id": "close-1"}
    closed = demo_api.post(url, body, format="json")
    assert closed.status_code == 200, closed.content
    assert closed.json()["status"] == "closed"
    assert closed.json()["unrealized_pnl"] == "0.00000000"
    again = demo_api.post(url, body, format="json")  # a retry: same order id
    assert again.status_code == 200
    bot.refresh_from_db()
    position.refresh_from_db()
    trade = Trade.objects.get(bot=bot, client_order_id="close-1")
    assert trade.reason == "manual" and position.close_reason == "manual"
    assert bot.capital == capital + margin + trade.realized_pnl - trade.fee
    assert demo_api.post(url, {"client_order_id": "close-2"}, format="json").status_code == 409


@pytest.mark.django_db
@pytest.mark.redis
def test_close_at_market_fills_at_a_fresh_mark_not_the_entry(api: APIClient) -> None:
    """Finding 1: nothing marked positions, so a close at market filled at the entry price."""
    user = make_user()
    api.force_authenticate(user)
    bot = make_bot(owner=user, initial_capital=Decimal("100000"))
    mark = last_prices(["BTC/USDT"])["BTC/USDT"]
    entry = quantize(mark / Decimal("1.2"), 2)  # the market is ~20 % above the entry
    position = services.position_open(
        bot=bot, symbol="BTC/USDT", side="long", quantity="1", price=entry,
        stop_loss=entry / 2, take_profit=entry * 2, client_order_id="o1",
    )  # fmt: skip
    response = api.post(f"/api/positions/{position.pk}/close/", {}, format="json")
    assert response.status_code == 200, response.content
    trade = Trade.objects.get(position=position, side="sell")
    assert trade.price == quantize(mark, 12)
    assert trade.realized_pnl == money(mark - entry)
    # A limit near the market is accepted (before: refused as far from the stale entry mark).
    other = services.position_open(
        bot=bot, symbol="BTC/USDT", side="long", quantity="1", price=entry,
        stop_loss=entry / 2, take_profit=entry * 2, client_order_id="o2",
    )  # fmt: skip
    near = str(quantize(mark * Decimal("1.01"), 2))
    response = api.post(
        f"/api/positions/{other.pk}/close/", {"price": near, "quantity": "0.5",
        "client_order_id": "c2"}, format="json",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    # A partial close without an id is refused: a retry would close twice.
    response = api.post(f"/api/positions/{other.pk}/close/", {"quantity": "0.1"}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "client_order_id"


def test_close_rejects_bad_numbers(demo_api: APIClient, demo_user: Any) -> None:
    position = Position.objects.filter(owner=demo_user, status="open").order_by("id").first()
    url = f"/api/positions/{position.pk}/close/"
    far = str(position.current_price * 2)  # would mint PnL: only prices near the mark fill
    huge = "999999999999999999"
    for body in [{"price": "NaN"}, {"price": "-1"}, {"quantity": "Infinity"},
                 {"quantity": str(position.quantity * 2)}, {"price": far}, {"price": huge},
                 {"quantity": huge}]:  # fmt: skip
        response = demo_api.post(url, body, format="json")
        assert response.status_code == 400, (body, response.content)
    position.refresh_from_db()
    assert position.status == "open" and position.closed_quantity == 0


# --- Pagination ---------------------------------------------------------------------------------


def test_envelope_and_page_links(demo_api: APIClient, demo_user: Any) -> None:
    total = Trade.objects.filter(owner=demo_user).count()
    first = demo_api.get("/api/trades/?limit=10").json()
    assert set(first) == {"total", "page", "pages", "limit", "next", "previous", "results"}
    assert (first["total"], first["page"], first["limit"]) == (total, 1, 10)
    assert first["pages"] == -(-total // 10)
    assert first["previous"] is None and "page=2" in first["next"]
    second = demo_api.get(first["next"]).json()
    assert second["page"] == 2 and "limit=10" in second["previous"]
    ids = [row["id"] for row in first["results"] + second["results"]]
    assert ids == list(
        Trade.objects.filter(owner=demo_user)
        .order_by("-executed_at", "-id")
        .values_list("id", flat=True)[:20]
    )


def test_cursor_walks_everything_once_in_order(demo_api: APIClient, demo_user: Any) -> None:
    expected = list(
        Trade.objects.filter(owner=demo_user)
        .order_by("-executed_at", "-id")
        .values_list("id", flat=True)
    )
    seen: list[int] = []
    url = "/api/trades/?limit=25&cursor="
    page = demo_api.get("/api/trades/?limit=25").json()
    # Page 1 in page mode, then keyset from a cursor built after its last row.
    seen += [row["id"] for row in page["results"]]
    from django.utils.dateparse import parse_datetime

    from zerobot.lib.pagination import encode_cursor

    last = page["results"][-1]
    url = f"/api/trades/?limit=25&cursor={encode_cursor(parse_datetime(last['executed_at']), last['id'])}"
    while url:
        page = demo_api.get(url).json()
        assert page["page"] is None and page["previous"] is None
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert seen == expected


def test_deep_pages_use_late_lookup_and_return_the_right_rows(api: APIClient) -> None:
    from trading import seed

    seed.seed(
        seed.Profile(users=1, bots_per_user=1, trades_per_bot=1200, open_positions=20,
                     closed_positions=560, snapshots_per_bot=2, symbols=3, days=30),
    )  # fmt: skip
    user = get_user_model().objects.get(username="demo")
    api.force_authenticate(user)
    rows = list(
        Trade.objects.filter(owner=user)
        .order_by("-executed_at", "-id")
        .values_list("id", flat=True)
    )
    # With limit 10, page 101 starts at offset 1000: the late-row-lookup path.
    page = api.get("/api/trades/?limit=10&page=101").json()
    assert [row["id"] for row in page["results"]] == rows[1000:1010]
    last = api.get("/api/trades/?limit=10&page=120").json()
    assert [row["id"] for row in last["results"]] == rows[1190:1200]
    assert last["next"] is None


def test_filtered_totals_are_exact(demo_api: APIClient, demo_user: Any) -> None:
    bot = first_bot(demo_user)
    cases = {
        f"/api/trades/?bot={bot.pk}": Trade.objects.filter(bot=bot).count(),
        "/api/trades/?symbol=BTC/USDT": Trade.objects.filter(
            owner=demo_user, symbol="BTC/USDT"
        ).count(),
        "/api/trades/?side=buy": Trade.objects.filter(owner=demo_user, side="buy").count(),
        "/api/positions/": Position.objects.filter(owner=demo_user).count(),
        "/api/positions/?status=open": Position.objects.filter(
            owner=demo_user, status="open"
        ).count(),
        f"/api/positions/?status=closed&bot={bot.pk}": Position.objects.filter(
            bot=bot, status="closed"
        ).count(),
        "/api/positions/?side=short": Position.objects.filter(
            owner=demo_user, side="short"
        ).count(),
        "/api/dashboard/positions": Position.objects.filter(owner=demo_user, status="open").count(),
    }
    for url, expected in cases.items():
        body = demo_api.get(url).json()
        assert body["total"] == expected, url
        assert "total_is_lower_bound" not in body


# --- Response shapes ----------------------------------------------------------------------------


def test_responses_match_the_declared_schema_shapes(demo_api: APIClient, demo_user: Any) -> None:
    position = Position.objects.filter(owner=demo_user).first()
    checks = [
        ("/api/trades/?limit=10", s.TradeOut),
        ("/api/positions/?limit=10", s.PositionOut),
        ("/api/bots/", s.BotOut),
        ("/api/dashboard/positions?limit=10", s.DashboardPositionOut),
    ]
    for url, serializer in checks:
        row = demo_api.get(url).json()["results"][0]
        assert set(row) == set(serializer().fields), url
    assert set(demo_api.get(f"/api/positions/{position.pk}/").json()) == set(s.PositionOut().fields)
    assert set(demo_api.get("/api/dashboard/stats").json()) == set(s.StatsOut().fields)
    perf = demo_api.get("/api/dashboard/performance").json()
    assert set(perf) == set(s.PerformanceOut().fields)
    assert set(perf["bots"][0]) == set(s.PerformanceBotOut().fields)
    assert set(perf["symbols"][0]) == set(s.PerformanceSymbolOut().fields)
    curve = demo_api.get("/api/dashboard/equity-curve?period=all").json()
    assert set(curve) == set(s.EquityCurveOut().fields)
    assert set(curve["results"][0]) == set(s.EquityPointOut().fields)


def test_money_is_exact_decimal_strings_and_times_utc(demo_api: APIClient) -> None:
    row = demo_api.get("/api/positions/?status=open&limit=10").json()["results"][0]
    assert row["closed_quantity"] == "0.000000000000"
    assert isinstance(row["entry_price"], str) and "E" not in row["entry_price"]
    assert row["opened_at"].endswith("Z")


def test_schema_and_docs_are_served(demo_api: APIClient) -> None:
    schema = demo_api.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ["/api/dashboard/stats", "/api/dashboard/equity-curve", "/api/dashboard/positions",
                 "/api/dashboard/trades", "/api/dashboard/performance", "/api/bots/",
                 "/api/positions/{id}/close/", "/api/trades/"]:  # fmt: skip
        assert path in paths, path
    limit = next(p for p in paths["/api/trades/"]["get"]["parameters"] if p["name"] == "limit")
    assert "10-1000" in limit["description"]
    assert demo_api.get("/api/docs/").status_code == 200


# --- Dashboard numbers --------------------------------------------------------------------------


def test_stats_agree_with_the_ledger(demo_api: APIClient, demo_user: Any) -> None:
    stats = demo_api.get("/api/dashboard/stats").json()
    bots = Bot.objects.filter(owner=demo_user)
    cash = sum((b.capital for b in bots), Decimal(0))
    open_positions = Position.objects.filter(owner=demo_user, status="open")
    margin = sum((p.margin for p in open_positions), Decimal(0))
    unrealized = sum((p.unrealized_pnl for p in open_positions), Decimal(0))
    assert Decimal(stats["cash"]) == cash
    assert Decimal(stats["margin"]) == margin
    assert abs(Decimal(stats["unrealized_pnl"]) - unrealized) < Decimal("0.0001")
    assert Decimal(stats["equity"]) == Decimal(stats["cash"]) + Decimal(stats["margin"]) + Decimal(
        stats["unrealized_pnl"]
    )
    assert stats["trade_count"] == Trade.objects.filter(owner=demo_user).count()
    assert stats["open_positions"] == open_positions.count()
    assert stats["bots"]["total"] == bots.count()
    # every status counted apart (one pass over the bots with FILTERed counts)
    for i, status in enumerate(["paused", "stopped"]):
        bots.filter(pk=bots.order_by("id")[i].pk).update(status=status)
    with override_settings(DASHBOARD_CACHE_SECONDS=0):  # .update() moves no data version
        by_status = demo_api.get("/api/dashboard/stats").json()["bots"]
    for status in ["active", "paused", "stopped", "inactive"]:
        assert by_status[status] == bots.filter(status=status).count(), status
    closed = Position.objects.filter(owner=demo_user, status="closed")
    wins = sum(1 for p in closed if p.realized_pnl - p.fees > 0)
    assert stats["wins"] == wins


def test_equity_curve_is_bounded_and_sums_bots(demo_api: APIClient, demo_user: Any) -> None:
    curve = demo_api.get("/api/dashboard/equity-curve?period=all&points=10").json()
    assert 1 <= len(curve["results"]) <= 10
    times = [p["t"] for p in curve["results"]]
    assert times == sorted(times)
    assert all(p["bots"] == Bot.objects.filter(owner=demo_user).count() for p in curve["results"])
    bot = first_bot(demo_user)
    one = demo_api.get(f"/api/dashboard/equity-curve?period=all&points=10&bot={bot.pk}").json()
    assert one["bot"] == bot.pk and all(p["bots"] == 1 for p in one["results"])
    assert Decimal(one["results"][0]["equity"]) < Decimal(curve["results"][0]["equity"])


def test_performance_totals_add_up(demo_api: APIClient, demo_user: Any) -> None:
    perf = demo_api.get("/api/dashboard/performance?period=all").json()
    assert perf["total"]["trades"] == Trade.objects.filter(owner=demo_user).count()
    assert sum(b["trades"] for b in perf["bots"]) == perf["total"]["trades"]
    assert sum(x["trades"] for x in perf["symbols"]) == perf["total"]["trades"]
    assert sum(d["trades"] for d in perf["daily_pnl"]) == perf["total"]["trades"]
    trades = Trade.objects.filter(owner=demo_user)  # the ledger, not the running totals
    assert Decimal(perf["total"]["realized_pnl"]) == sum(
        (t.realized_pnl for t in trades), Decimal(0)
    )
    assert Decimal(perf["total"]["fees"]) == sum((t.fee for t in trades), Decimal(0))
    assert all(
        b["max_drawdown_pct"] is not None and Decimal(b["max_drawdown_pct"]) >= 0
        for b in perf["bots"]
    )


def test_unknown_user_sees_empty_dashboards(api: APIClient) -> None:
    user = get_user_model().objects.create_user("empty", password="pw-123456-x")
    api.force_authenticate(user)
    stats = api.get("/api/dashboard/stats").json()
    assert stats["bots"]["total"] == 0 and stats["equity"] == "0.00000000"
    assert api.get("/api/dashboard/equity-curve").json()["results"] == []
    assert api.get("/api/trades/").json()["total"] == 0


def test_unknown_api_urls_are_json_404s(demo_api: APIClient) -> None:
    for url in ["/api/bots/null,null/", "/api/nothing-here", "/api/positions/abc/close/"]:
        response = demo_api.get(url)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json()["detail"] == "Not found."


def test_empty_cursor_is_ignored_and_risk_params_read_plainly(demo_api: APIClient) -> None:
    assert demo_api.get("/api/trades/?cursor=&page=2&limit=10").json()["page"] == 2
    bot = demo_api.get("/api/bots/").json()["results"][0]
    assert bot["risk_params"]["max_drawdown_pct"] == "20"  # not "2E+1"


def test_list_schemas_declare_the_envelope_not_an_array(demo_api: APIClient) -> None:
    paths = demo_api.get("/api/schema/?format=json").json()["paths"]
    for path in ["/api/bots/", "/api/positions/", "/api/trades/"]:
        schema = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in schema and schema["$ref"].endswith("Page"), schema
        limit = next(p for p in paths[path]["get"]["parameters"] if p["name"] == "limit")
        assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (10, 1000)
