"""The page's HTTP side: login, logout, the page itself, the admin link, the API hooks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from rest_framework.test import APIClient

from trading import events, services
from trading.tests.factories import make_bot
from web.tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _user(name: str = "alice", **extra: Any) -> Any:
    return get_user_model().objects.create_user(name, password=PASSWORD, **extra)


def test_anonymous_visitors_get_the_login_form() -> None:
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"
    page = Client().get("/login/")
    assert page.status_code == 200
    assert b'<label for="id_username">' in page.content


def test_login_then_the_page_then_logout_deletes_the_session() -> None:
    _user()
    client = Client()
    response = client.post("/login/", {"username": "alice", "password": PASSWORD, "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    key = client.cookies["sessionid"].value
    assert Session.objects.filter(session_key=key).exists()
    page = client.get("/")
    assert page.status_code == 200
    for panel in ("stats", "bots", "equity", "positions", "trades", "performance", "candles"):
        assert f'id="panel-{panel}"'.encode() in page.content
    assert client.get("/logout/").status_code == 405  # a link cannot log anyone out
    assert client.post("/logout/")["Location"] == "/login/"
    assert not Session.objects.filter(session_key=key).exists()
    assert client.get("/").status_code == 302


def test_a_wrong_password_is_refused_with_a_message() -> None:
    _user()
    response = Client().post("/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert b"Wrong username or password." in response.content


def test_login_attempts_are_throttled(settings: Any) -> None:
    settings.AUTH_THROTTLE_RATE = "3/minute"
    client = Client()
    codes = [
        client.post("/login/", {"username": "x", "password": "y"}).status_code for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]


def test_staff_get_a_link_to_the_admin_and_the_admin_links_back() -> None:
    client = Client()
    client.force_login(_user("ops", is_staff=True))
    assert b'href="/admin/"' in client.get("/").content
    assert b'href="/"' in client.get("/admin/").content  # the admin's "View site"
    plain = Client()
    plain.force_login(_user("bob"))
    assert b'href="/admin/"' not in plain.get("/").content


def test_the_page_runs_no_inline_script() -> None:
    """A CSP without 'unsafe-inline' for scripts must not break it: every script is a file,
    except the JSON config block and the first data (web/initial.py), which are data (never
    executed)."""
    client = Client()
    client.force_login(_user())
    html = client.get("/").content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert len(scripts) == 4
    assert sum('type="application/json"' in attributes for attributes, _ in scripts) == 2
    for attributes, body in scripts:
        if 'type="application/json"' in attributes:
            continue
        assert "src=" in attributes and not body.strip()
    assert not re.search(r"<[^>]+\son[a-z]+=", html)  # no inline event handlers


@pytest.mark.parametrize("bots", [1, 6])
def test_the_page_costs_the_same_queries_with_few_or_many_bots(
    bots: int, django_assert_num_queries: Any
) -> None:
    user = _user()
    for _ in range(bots):
        make_bot(owner=user)
    client = Client()
    client.force_login(user)
    client.get("/")  # the candle panel's market data is then cached (no query)
    # 1. the session row, 2. the user; then the API views' own queries for the page's first data
    # (web/initial.py): 3. stats, 4-5. bots (total, rows), 6. equity curve, 7-8. open positions
    # (total, rows), 9-10. trades (total, rows), 11-13. performance (totals and per bot, per
    # symbol, daily PnL + drawdown), 14-15. the candle panel's fills (total, rows).
    with django_assert_num_queries(15):
        assert client.get("/").status_code == 200
    # Without the first data: the session and the user only (the browser reads the API).
    with django_assert_num_queries(2):
        assert client.get("/?initial=0").status_code == 200


def test_start_pause_stop_through_the_api_publish_the_status(monkeypatch: Any) -> None:
    published: list[tuple[int, str, dict[str, Any]]] = []
    monkeypatch.setattr(events, "publish", lambda *args: published.append(args))
    bot = make_bot(status="inactive")
    api = APIClient()
    api.force_authenticate(bot.owner)
    assert api.post(f"/api/bots/{bot.pk}/start/").status_code == 200
    assert api.post(f"/api/bots/{bot.pk}/start/").status_code == 200  # no change: no event
    assert api.post(f"/api/bots/{bot.pk}/pause/").status_code == 200
    assert [(owner, kind, body["status"]) for owner, kind, body in published] == [
        (bot.owner_id, "bot_status", "active"),
        (bot.owner_id, "bot_status", "paused"),
    ]
    assert published[0][2]["bot"] == bot.pk and published[0][2]["name"] == bot.name


def test_a_close_through_the_api_publishes_its_fill_and_the_close(monkeypatch: Any) -> None:
    published: list[tuple[int, str, dict[str, Any]]] = []
    monkeypatch.setattr(events, "publish", lambda *args: published.append(args))
    bot = make_bot()
    position = services.position_open(
        bot=bot, symbol="BTC/USDT", side="long", quantity="0.2", price="50000",
        client_order_id="open-1",
    )  # fmt: skip
    assert [kind for _, kind, _ in published] == ["fill", "position_opened"]  # the services'
    published.clear()
    api = APIClient()
    api.force_authenticate(bot.owner)
    partial = api.post(
        f"/api/positions/{position.pk}/close/",
        {"quantity": "0.05", "client_order_id": "part-1"},
        format="json",
    )
    assert partial.status_code == 200
    assert [kind for _, kind, _ in published] == ["fill"]
    rest = api.post(f"/api/positions/{position.pk}/close/", {}, format="json")
    assert rest.status_code == 200
    assert [kind for _, kind, _ in published] == ["fill", "fill", "position_closed"]
    fills = [body for _, kind, body in published if kind == "fill"]
    trades = list(position.trades.order_by("id").values_list("id", "quantity"))
    assert [(f["id"], f["quantity"]) for f in fills] == trades[1:]  # the two closing fills
    closed = published[-1][2]
    assert (closed["id"], closed["reason"], closed["status"]) == (position.pk, "manual", "closed")
    assert {owner for owner, _, _ in published} == {bot.owner_id}
