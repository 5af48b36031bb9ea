"""ETags, 304s and the per-user response cache of the dashboard (trading/conditional.py), and the
data version that every write moves (trading/dataversion.py). Real PostgreSQL and Redis; real
commits (a write's bump happens after commit)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import token_create, token_revoke
from trading import dataversion, services
from trading.engine import schedule
from trading.models import Bot, Position
from trading.tests.factories import make_bot, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _cache_on(settings: Any) -> None:
    settings.DASHBOARD_CACHE_SECONDS = 30


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def with_token(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user).key}")
    return client


CLIENTS = {"session": logged_in, "token": with_token}


def test_etag_then_304_then_the_cached_body(django_assert_num_queries: Any) -> None:
    user = make_user()
    make_bot(owner=user)
    client = logged_in(user)
    first = client.get("/api/dashboard/stats")
    assert first.status_code == 200
    etag = first["ETag"]
    assert etag.startswith('"') and first["Cache-Control"] == "private, no-cache"
    assert "Cookie" in first["Vary"] and "Authorization" in first["Vary"]

    again = client.get("/api/dashboard/stats", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    # "*" matches any current body; a list matches when one of its tags does.
    star = client.get("/api/dashboard/stats", headers={"If-None-Match": "*"})
    assert star.status_code == 304 and star["ETag"] == etag
    listed = client.get("/api/dashboard/stats", headers={"If-None-Match": f'"stale", {etag}'})
    assert listed.status_code == 304

    # A repeat without the tag: the cached body, no dashboard query (1. session, 2. user).
    with django_assert_num_queries(2):
        repeat = client.get("/api/dashboard/stats")
    assert repeat.status_code == 200 and repeat.content == first.content
    assert repeat["ETag"] == etag
    # Another query string is another body and another tag.
    other = client.get("/api/dashboard/stats", {"bot": Bot.objects.get(owner=user).pk})
    assert other.status_code == 200 and other["ETag"] != etag


def _open(bot: Bot, order: str = "o1") -> Position:
    return services.position_open(
        bot=bot, symbol="BTC/USDT", side="long", quantity="0.01", price="50000",
        client_order_id=order,
    )  # fmt: skip


def _create(user: Any, bot: Bot, client: Client) -> None:
    services.bot_create(owner=user, name="second", strategy="momentum",
                        initial_capital=Decimal("500"), symbols=["ETH/USDT"])  # fmt: skip


def _update(user: Any, bot: Bot, client: Client) -> None:
    services.bot_update(bot=bot, name="renamed")


def _start(user: Any, bot: Bot, client: Client) -> None:
    assert client.post(f"/api/bots/{bot.pk}/start").status_code == 200


def _position_open(user: Any, bot: Bot, client: Client) -> None:
    _open(bot)


def _position_close(user: Any, bot: Bot, client: Client) -> None:
    services.position_close(position=Position.objects.get(bot=bot), price="51000",
                            client_order_id="c1")  # fmt: skip


def _snapshot(user: Any, bot: Bot, client: Client) -> None:
    services.equity_snapshot_record(bot=bot)


def _delete(user: Any, bot: Bot, client: Client) -> None:
    services.bot_delete(bot=bot)


def _cycle(user: Any, bot: Bot, client: Client) -> None:
    # The engine's completion: raw SQL on the bot row (cycle count, last cycle, next run).
    assert schedule.complete(results=[(bot.pk, timezone.now(), "")], interval=60) == 1


def _names(body: dict) -> list[str]:
    return [row["name"] for row in body["results"]]


# (write, endpoint, what the body says after it)
WRITES: list[tuple[Callable[..., None], str, Callable[[dict], Any]]] = [
    (_create, "/api/dashboard/stats", lambda body: body["bots"]["total"] == 2),
    (_update, "/api/dashboard/performance",
     lambda body: [b["bot_name"] for b in body["bots"]] == ["renamed"]),
    (_start, "/api/dashboard/stats", lambda body: body["bots"]["active"] == 1),
    (_position_open, "/api/dashboard/positions", lambda body: body["total"] == 1),
    (_position_close, "/api/dashboard/trades", lambda body: body["total"] == 2),
    (_snapshot, "/api/dashboard/equity-curve", lambda body: len(body["results"]) == 1),
    (_delete, "/api/dashboard/stats", lambda body: body["bots"]["total"] == 0),
    # The two lists of the dashboard refresh, cached the same way.
    (_create, "/api/bots/", lambda body: body["total"] == 2),
    (_update, "/api/bots/", lambda body: _names(body) == ["renamed"]),
    (_start, "/api/bots/", lambda body: body["results"][0]["status"] == "active"),
    (_position_open, "/api/bots/", lambda body: body["results"][0]["capital"] != "10000.00000000"),
    (_cycle, "/api/bots/", lambda body: body["results"][0]["cycle_count"] == 1),
    (_delete, "/api/bots/", lambda body: body["total"] == 0),
    (_position_open, "/api/trades/?limit=50", lambda body: body["total"] == 1),
    (_position_close, "/api/trades/?limit=50", lambda body: body["total"] == 2),
]  # fmt: skip


@pytest.mark.parametrize("auth", sorted(CLIENTS))  # token: the one-round-trip prefetch
@pytest.mark.parametrize(
    ("write", "path", "changed"), WRITES, ids=[f"{w[0].__name__}-{w[1]}" for w in WRITES]
)
def test_each_write_invalidates_what_it_changes(
    write: Callable[..., None],
    path: str,
    changed: Callable[[dict], Any],
    auth: str,
    settings: Any,
) -> None:
    user = make_user()
    # Only an active bot opens; starting or deleting one needs it inactive.
    bot = make_bot(owner=user, status="inactive" if write in (_start, _delete) else "active")
    if write is _position_close:
        _open(bot)
    settings.API_TOKEN_CACHE_SECONDS = 30
    client = CLIENTS[auth](user)
    before = client.get(path)
    assert before.status_code == 200 and not changed(before.json())
    assert client.get(path).content == before.content  # cached
    write(user, bot, client)
    after = client.get(path, headers={"If-None-Match": before["ETag"]})
    assert after.status_code == 200, "the write did not move the tag"
    assert after["ETag"] != before["ETag"]
    assert changed(after.json()), after.json()


def test_another_users_write_changes_nothing_of_mine() -> None:
    alice, bob = make_user(), make_user()
    make_bot(owner=alice)
    bobs = make_bot(owner=bob)
    client = logged_in(alice)
    etag = client.get("/api/dashboard/stats")["ETag"]
    _open(bobs)
    services.bot_update(bot=bobs, name="bob's")
    assert client.get("/api/dashboard/stats", headers={"If-None-Match": etag}).status_code == 304


def test_a_rolled_back_write_moves_nothing() -> None:
    user = make_user()
    bot = make_bot(owner=user)
    version = dataversion.current(user.pk)

    class RolledBack(Exception):
        pass

    with pytest.raises(RolledBack), transaction.atomic():
        bot.name = "never"
        bot.save(update_fields=["name"])  # post_save: a bump asked for, after commit
        raise RolledBack
    assert dataversion.current(user.pk) == version
    bot.save(update_fields=["name"])  # the same write, committed
    assert dataversion.current(user.pk) == version + 1


def test_one_transaction_moves_the_version_once() -> None:
    user = make_user()
    bot = make_bot(owner=user)
    version = dataversion.current(user.pk)
    _open(bot)  # one transaction: a position row, a fill row, the bot's cash
    assert dataversion.current(user.pk) == version + 1
    with transaction.atomic():
        for _ in range(3):
            dataversion.bump_on_commit(user.pk)
        assert dataversion.current(user.pk) == version + 1  # nothing before commit
    assert dataversion.current(user.pk) == version + 2


def test_without_a_version_every_answer_is_full_and_untagged(monkeypatch: Any) -> None:
    user = make_user()
    make_bot(owner=user)
    client = logged_in(user)
    tagged = client.get("/api/dashboard/stats")

    def down() -> Any:
        raise ConnectionError("redis down")

    monkeypatch.setattr(dataversion, "shared_redis", down)
    response = client.get("/api/dashboard/stats", headers={"If-None-Match": tagged["ETag"]})
    assert response.status_code == 200 and "ETag" not in response
    assert response.json() == tagged.json()


def test_the_browsable_api_and_errors_are_not_cached() -> None:
    user = make_user()
    make_bot(owner=user)
    client = logged_in(user)
    html = client.get("/api/dashboard/stats", headers={"Accept": "text/html"})
    assert html.status_code == 200 and "ETag" not in html
    missing = client.get("/api/dashboard/stats", {"bot": 10**9})
    assert missing.status_code == 404 and "ETag" not in missing


def test_the_rebuilds_move_the_version() -> None:
    """stats_rebuild and account_equity_rebuild rewrite what /performance, /stats and the
    equity curve read with DELETE + INSERT ... SELECT (no post_save, no event): they must move
    the owners' versions themselves, or a cached body and its tag outlive them."""
    user, other = make_user(), make_user()
    bot = make_bot(owner=user)
    others = make_bot(owner=other)
    _open(bot)
    services.equity_snapshot_record(bot=bot)
    version, other_version = dataversion.current(user.pk), dataversion.current(other.pk)
    services.stats_rebuild(bot_ids=[bot.pk])
    assert dataversion.current(user.pk) == version + 1
    assert dataversion.current(other.pk) == other_version  # not one of its bots
    services.stats_rebuild()  # every bot: every owner
    assert dataversion.current(user.pk) == version + 2
    assert dataversion.current(other.pk) == other_version + 1
    services.account_equity_rebuild(owner_id=user.pk)
    assert dataversion.current(user.pk) == version + 3
    assert others.owner_id == other.pk


def test_a_rebuild_is_not_served_from_the_cache() -> None:
    user = make_user()
    bot = make_bot(owner=user)
    client = logged_in(user)
    _open(bot)
    services.position_close(position=Position.objects.get(bot=bot), price="51000",
                            client_order_id="c1")  # fmt: skip
    from trading.models import BotSymbolStats

    BotSymbolStats.objects.filter(bot=bot).update(trade_count=99)  # a drifted total, served,
    dataversion.bump(user.pk)
    before = client.get("/api/dashboard/performance")
    assert before.status_code == 200 and before.json()["bots"][0]["trades"] == 99
    services.stats_rebuild(bot_ids=[bot.pk])  # then repaired
    after = client.get("/api/dashboard/performance", headers={"If-None-Match": before["ETag"]})
    assert after.status_code == 200 and after.json()["bots"][0]["trades"] == 2


@pytest.fixture
def round_trips(monkeypatch: Any) -> list[int]:
    """Redis round trips of this process (commands written to a connection)."""
    from zerobot.lib import redis_breaker

    sent = [0]
    original = redis_breaker.BreakerConnection.send_packed_command

    def counted(self: Any, *args: Any, **kwargs: Any) -> None:
        sent[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(redis_breaker.BreakerConnection, "send_packed_command", counted)
    return sent


def test_a_token_repeat_is_one_redis_round_trip_and_no_query(
    round_trips: list[int], django_assert_num_queries: Any, settings: Any
) -> None:
    settings.API_TOKEN_CACHE_SECONDS = 30
    user = make_user()
    make_bot(owner=user)
    client = with_token(user)
    first = client.get("/api/dashboard/stats")  # fills the token cache and the body
    assert first.status_code == 200
    for headers, status in (({}, 200), ({"If-None-Match": first["ETag"]}, 304)):
        round_trips[0] = 0
        with django_assert_num_queries(0):
            again = client.get("/api/dashboard/stats", headers=headers)
        assert again.status_code == status and again["ETag"] == first["ETag"]
        # token, data version and body in one script (it was three GETs)
        assert round_trips[0] == 1
    assert again.status_code == 304 or again.content == first.content


@pytest.mark.parametrize("path", ["/api/dashboard/stats", "/api/bots/", "/api/trades/?limit=50"])
@pytest.mark.parametrize("change", ["revoke", "deactivate"])
def test_a_cached_body_is_refused_to_a_token_revoked_at_once(
    change: str, path: str, settings: Any
) -> None:
    settings.API_TOKEN_CACHE_SECONDS = 30  # the token cached too: the prefetch's case
    user = make_user()
    make_bot(owner=user)
    client = with_token(user)
    first = client.get(path)
    assert client.get(path).content == first.content  # from the cache
    if change == "revoke":
        token_revoke(token=ApiToken.objects.get(user=user))
    else:
        user.is_active = False
        user.save()
    assert client.get(path).status_code == 401
    refused = client.get(path, headers={"If-None-Match": first["ETag"]})
    assert refused.status_code == 401


def test_two_users_tokens_never_share_a_body_or_a_tag(settings: Any) -> None:
    settings.API_TOKEN_CACHE_SECONDS = 30
    alice, bob = make_user(), make_user()
    make_bot(owner=alice)
    for _ in range(2):
        make_bot(owner=bob)
    a, b = with_token(alice), with_token(bob)
    for _ in range(2):  # the second round from the cache
        mine, theirs = a.get("/api/dashboard/stats"), b.get("/api/dashboard/stats")
        assert mine.json()["bots"]["total"] == 1 and theirs.json()["bots"]["total"] == 2
        assert mine["ETag"] != theirs["ETag"]
    assert b.get("/api/dashboard/stats", headers={"If-None-Match": mine["ETag"]}).status_code == 200


@pytest.mark.parametrize("auth", sorted(CLIENTS))
def test_two_users_never_share_a_cached_list(auth: str, settings: Any) -> None:
    settings.API_TOKEN_CACHE_SECONDS = 30
    alice, bob = make_user(), make_user()
    _open(make_bot(owner=alice))
    for _ in range(2):
        make_bot(owner=bob)
    a, b = CLIENTS[auth](alice), CLIENTS[auth](bob)
    for _ in range(2):  # the second round from the cache
        bots, theirs = a.get("/api/bots/"), b.get("/api/bots/")
        assert bots.json()["total"] == 1 and theirs.json()["total"] == 2
        assert bots["ETag"] != theirs["ETag"]
        trades, none = a.get("/api/trades/?limit=50"), b.get("/api/trades/?limit=50")
        assert trades.json()["total"] == 1 and none.json()["total"] == 0
    assert b.get("/api/bots/", headers={"If-None-Match": bots["ETag"]}).status_code == 200


def test_a_token_list_repeat_is_one_redis_round_trip_and_no_query(
    round_trips: list[int], django_assert_num_queries: Any, settings: Any
) -> None:
    settings.API_TOKEN_CACHE_SECONDS = 30
    user = make_user()
    _open(make_bot(owner=user))
    client = with_token(user)
    for path in ("/api/bots/", "/api/trades/?limit=50"):
        first = client.get(path)  # fills the token cache and the body
        assert first.status_code == 200
        round_trips[0] = 0
        with django_assert_num_queries(0):
            again = client.get(path)
        assert again.status_code == 200 and again.content == first.content
        assert round_trips[0] == 1  # token, data version and body in one script


def test_a_write_on_a_cached_list_answers_the_write(settings: Any) -> None:
    # The viewset prefetches for its list only: a POST is the create, never a cached body.
    settings.API_TOKEN_CACHE_SECONDS = 30
    user = make_user()
    make_bot(owner=user)
    client = with_token(user)
    listed = client.get("/api/bots/")
    assert client.get("/api/bots/").content == listed.content
    body = {"name": "new", "strategy": "momentum", "initial_capital": "100",
            "symbols": ["BTC/USDT"]}  # fmt: skip
    created = client.post("/api/bots/", body, format="json")
    assert created.status_code == 201 and created.json()["name"] == "new"
    assert client.get("/api/bots/").json()["total"] == 2


def test_a_list_cached_through_one_host_is_not_served_through_another(settings: Any) -> None:
    # The page's links are absolute: the host is part of the cache key and the tag.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "other.example"]
    user = make_user()
    for _ in range(11):
        make_bot(owner=user)
    client = logged_in(user)
    first = client.get("/api/bots/?limit=10")
    assert first.json()["next"].startswith("http://testserver/")
    assert client.get("/api/bots/?limit=10").content == first.content  # from the cache
    other = client.get("/api/bots/?limit=10", headers={"Host": "other.example"})
    assert other.json()["next"].startswith("http://other.example/")
    assert other["ETag"] != first["ETag"]
