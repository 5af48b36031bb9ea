"""Admin change lists: the same queries with few and many rows (no N+1), no COUNT(*) of a big table."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from trading import services
from trading.admin import EstimatedCountPaginator
from trading.tests.conftest import seed_user
from trading.tests.factories import make_bot

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
PAGES = ["trade", "position", "bot", "equitysnapshot", "botsymbolstats", "botdailypnl"]


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(
        get_user_model().objects.create_superuser("root", "root@example.com", "pw-admin-123")
    )
    return client


def changelist(client: Client, model: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/admin/trading/{model}/")
    assert response.status_code == 200
    return [q["sql"] for q in queries.captured_queries]


@pytest.mark.parametrize("model", PAGES)
def test_changelist_query_count_does_not_grow_with_rows(admin_client: Client, model: str) -> None:
    bot = make_bot(initial_capital=Decimal("1000"))
    position = services.position_open(
        bot=bot, symbol="BTC/USDT", side="long", quantity="0.01", price="100", client_order_id="a",
    )  # fmt: skip
    services.position_close(position=position, price="101", client_order_id="b")
    services.equity_snapshot_record(bot=bot)
    few = changelist(admin_client, model)
    seed_user(bots=25)  # 25 more bots, 1,100 fills, 1,000 snapshots, several owners' rows
    many = changelist(admin_client, model)
    assert len(few) == len(many), (few, many)


def count_queries(queries: list[str]) -> list[str]:
    return [q for q in queries if "COUNT(" in q.upper() and "trading_trade" in q]


def test_big_lists_show_an_estimate_instead_of_counting(
    admin_client: Client, monkeypatch: Any
) -> None:
    seed_user(bots=3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE trading_trade")
    assert count_queries(changelist(admin_client, "trade"))  # small: counted exactly
    monkeypatch.setattr(EstimatedCountPaginator, "threshold", 10)  # now "big"
    assert not count_queries(changelist(admin_client, "trade"))
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get("/admin/trading/trade/?side__exact=buy")
    assert response.status_code == 200
    assert not count_queries([q["sql"] for q in queries.captured_queries])


def test_symbol_search_is_an_exact_indexable_match(admin_client: Client) -> None:
    seed_user(bots=3)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get("/admin/trading/trade/?q=btc/usdt")
    assert response.status_code == 200
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert '"trading_trade"."symbol" = \'BTC/USDT\'' in sql
    assert "UPPER(" not in sql
    assert admin_client.get("/admin/trading/trade/?q=not a symbol").status_code == 200


def test_ledger_is_read_only_and_bots_change_through_services(admin_client: Client) -> None:
    from trading.models import AccountEquitySnapshot, Bot, Trade

    user = seed_user(bots=2)
    trade = Trade.objects.filter(owner=user).first()
    assert admin_client.get("/admin/trading/trade/add/").status_code == 403
    assert admin_client.get(f"/admin/trading/trade/{trade.pk}/delete/").status_code == 403
    page = admin_client.get(f"/admin/trading/trade/{trade.pk}/change/")
    assert page.status_code == 200 and b'name="price"' not in page.content  # view only

    bot = Bot.objects.filter(owner=user).order_by("id").first()
    form = admin_client.get(f"/admin/trading/bot/{bot.pk}/change/").content
    assert b'name="owner"' not in form and b'name="capital"' not in form
    bad = admin_client.post(
        f"/admin/trading/bot/{bot.pk}/change/",
        {"name": bot.name, "strategy": bot.strategy, "symbols": '["not a symbol"]',
         "timeframe": bot.timeframe, "risk_params": '{"max_position_pct": "5"}'},
    )  # fmt: skip
    assert bad.status_code == 200 and b"not a symbol" in bad.content  # the service's message
    Bot.objects.filter(pk=bot.pk).update(status="stopped")
    assert AccountEquitySnapshot.objects.filter(owner=user).first().bots == 2
    admin_client.post(f"/admin/trading/bot/{bot.pk}/delete/", {"post": "yes"})
    assert not Bot.objects.filter(pk=bot.pk).exists()
    assert {row.bots for row in AccountEquitySnapshot.objects.filter(owner=user)} == {1}
