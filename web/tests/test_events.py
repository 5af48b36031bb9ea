"""The publisher (trading/events.py): after commit only, never failing or blocking its caller."""

from __future__ import annotations

import socket
import threading
import time
from decimal import Decimal
from typing import Any

import orjson
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from rest_framework.test import APIClient

from trading import events, services
from trading.errors import InvalidState
from trading.tests.factories import make_bot

BTC = "BTC/USDT"
# Both Redis channel layers the settings offer (WS_CHANNEL_LAYER): pub/sub, the default, and lists.
REDIS_LAYERS = pytest.mark.parametrize(
    "backend",
    [
        "zerobot.lib.channel_layer.BoundedPubSubChannelLayer",
        "channels_redis.core.RedisChannelLayer",
    ],
)


@pytest.fixture
def fresh_outbox(monkeypatch: pytest.MonkeyPatch) -> events._Outbox:
    """An outbox of its own (own queue, own sender thread), so counters start at zero."""
    box = events._Outbox()
    monkeypatch.setattr(events, "outbox", box)
    return box


def _open(bot: Any, price: str = "50000") -> Any:
    return services.position_open(
        bot=bot, symbol=BTC, side="long", quantity="0.1", price=price,
        client_order_id=f"open-{time.monotonic_ns()}",
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_an_event_leaves_only_after_commit_and_never_after_rollback(fresh_outbox: Any) -> None:
    with transaction.atomic():
        events.publish(1, events.FILL, {"id": 1})
        assert fresh_outbox.queued == 0  # still inside the transaction
    assert fresh_outbox.queued == 1
    with pytest.raises(RuntimeError), transaction.atomic():
        events.publish(1, events.FILL, {"id": 2})
        raise RuntimeError("the trade failed")
    assert fresh_outbox.queued == 1
    events.publish(1, events.FILL, {"id": 3})  # outside a transaction: at once
    assert fresh_outbox.queued == 2


@pytest.mark.django_db(transaction=True)
def test_a_bad_call_is_logged_not_raised(fresh_outbox: Any, caplog: Any) -> None:
    events.publish(1, "no_such_event", {"id": 1})
    events.publish(1, events.FILL, {"id": object()})
    events.publish(1, events.PRICE_MARK, {"price": "1"})  # a mark names its symbol
    assert fresh_outbox.queued == 0
    assert caplog.text.count("event not published") == 3


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_fill_payload_is_the_api_row() -> None:
    """Same keys and the same exact strings as GET /api/trades/{id}: the page shows either."""
    bot = make_bot()
    position = _open(bot)
    trade = position.trades.get()
    assert events.outbox.flush(10)  # the opening's own events went out before we listen
    layer = get_channel_layer()

    async def listen() -> dict[str, Any]:
        channel = await layer.new_channel()
        await layer.group_add(events.user_group(bot.owner_id), channel)
        from asgiref.sync import sync_to_async

        await sync_to_async(events.publish_fill)(trade=trade)
        return orjson.loads((await layer.receive(channel))["text"])

    message = async_to_sync(listen)()
    api = APIClient()
    api.force_authenticate(bot.owner)
    assert message["type"] == "fill"
    assert message["data"] == api.get(f"/api/trades/{trade.pk}/").json()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@REDIS_LAYERS
def test_with_redis_down_a_close_through_the_api_still_succeeds(
    fresh_outbox: Any, settings: Any, backend: str
) -> None:
    dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": backend,
                    "CONFIG": {"hosts": [{"address": dead, "socket_connect_timeout": 0.2}]}},
    }  # fmt: skip
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache", "LOCATION": dead,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2,
                        "IGNORE_EXCEPTIONS": True},
        }
    }  # fmt: skip
    bot = make_bot()
    position = _open(bot)
    api = APIClient()
    api.force_authenticate(bot.owner)
    response = api.post(f"/api/positions/{position.pk}/close/", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "closed"
    assert fresh_outbox.flush(10)
    assert fresh_outbox.queued == 4  # the opening fill and the opened position, then the close's
    assert fresh_outbox.sent == 0
    assert fresh_outbox.failed >= 2  # sequence numbers and sends, logged, not raised


def _silent_server() -> tuple[socket.socket, int]:
    """A TCP server that accepts and never answers: a hung Redis."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server, server.getsockname()[1]


@pytest.mark.django_db(transaction=True)
@REDIS_LAYERS
def test_a_hung_redis_never_blocks_publishers_the_queue_drops(
    monkeypatch: pytest.MonkeyPatch, settings: Any, backend: str
) -> None:
    server, port = _silent_server()
    hung = f"redis://127.0.0.1:{port}/0"
    settings.EVENTS_QUEUE_SIZE = 20
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": backend,
                    "CONFIG": {"hosts": [{"address": hung}]}},
    }  # fmt: skip
    box = events._Outbox()
    monkeypatch.setattr(events, "outbox", box)
    try:
        for i in range(200):
            events.publish(1, events.FILL, {"id": i})  # returns at once every time
        # The sender is stuck on its first batch; the queue holds 20; the rest were dropped.
        assert box.queued + box.dropped == 200
        assert box.dropped > 0
        assert box.sent == 0
    finally:
        server.close()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_price_marks_are_coalesced_to_one_per_second_latest_price_wins(
    fresh_outbox: Any,
) -> None:
    layer = get_channel_layer()
    prices = [Decimal(60_000 + i) for i in range(30)]

    async def listen() -> tuple[list[dict[str, Any]], float]:
        from asgiref.sync import sync_to_async

        channel = await layer.new_channel()
        await layer.group_add(events.user_group(5), channel)
        started = time.monotonic()

        def publish_all() -> None:
            for price in prices:
                events.publish_price_mark(owner_id=5, symbol=BTC, price=price, at=None)

        await sync_to_async(publish_all)()
        elapsed = time.monotonic() - started
        import asyncio

        # The first mark at once, then the latest when its second ends; then nothing.
        got = [orjson.loads((await asyncio.wait_for(layer.receive(channel), 3))["text"])]
        got.append(orjson.loads((await asyncio.wait_for(layer.receive(channel), 3))["text"]))
        try:
            extra = await asyncio.wait_for(layer.receive(channel), 1.2)
            got.append(orjson.loads(extra["text"]))
        except TimeoutError:
            pass
        return got, elapsed

    got, elapsed = async_to_sync(listen)()
    assert [m["type"] for m in got] == ["price_mark"] * len(got)
    # The first mark at once; the others coalesced into the latest, sent when the second ends.
    assert got[0]["data"]["price"] == str(prices[0])
    assert got[-1]["data"]["price"] == str(prices[-1])
    assert len(got) <= 2 + int(elapsed)  # at most one per started second
    assert fresh_outbox.coalesced >= len(prices) - len(got) - 1


@pytest.mark.django_db(transaction=True)
def test_without_redis_sequences_are_per_process_and_per_user(settings: Any) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    before = events.current_seq(41)
    assert events._next_seqs([41, 41, 42]) == [before + 1, before + 2, events.current_seq(42)]
    assert events.current_seq(41) == before + 2


def test_user_groups_are_per_user() -> None:
    assert events.user_group(7) == "user.7"
    assert events.user_group(7) != events.user_group(77)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_services_publish_every_fill_once_after_commit(
    fresh_outbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whoever trades (the API, the admin, the engine), the services publish: a fill and the
    position opened; on a partial close a fill; on the last fill a fill and the close with its
    reason. A replayed order and a refused one publish nothing."""
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        fresh_outbox, "put", lambda item: sent.append((item.kind, orjson.loads(item.data)))
    )
    bot = make_bot()
    position = services.position_open(
        bot=bot, symbol=BTC, side="long", quantity="0.1", price="50000", client_order_id="o-1"
    )
    assert [kind for kind, _ in sent] == [events.FILL, events.POSITION_OPENED]
    assert sent[1][1]["id"] == position.pk
    services.position_open(
        bot=bot, symbol=BTC, side="long", quantity="0.1", price="50000", client_order_id="o-1"
    )  # a retry of the same order
    assert len(sent) == 2
    services.position_close(
        position=position, client_order_id="c-1", price="51000", quantity=Decimal("0.05")
    )
    assert [kind for kind, _ in sent[2:]] == [events.FILL]
    services.position_close(position=position, client_order_id="c-2", price="52000")
    assert [kind for kind, _ in sent[3:]] == [events.FILL, events.POSITION_CLOSED]
    assert sent[4][1]["reason"] == "manual" and sent[4][1]["status"] == "closed"
    bot.refresh_from_db()
    services.bot_set_status(bot=bot, status="paused")
    sent.clear()
    with pytest.raises(InvalidState):  # a paused bot opens nothing
        services.position_open(
            bot=bot, symbol=BTC, side="long", quantity="0.1", price="50000", client_order_id="o-2"
        )
    assert [kind for kind, _ in sent if kind == events.FILL] == []
    snapshot = services.equity_snapshot_record(bot=bot)
    assert (events.EQUITY_SNAPSHOT, snapshot.pk) in [(k, d.get("id")) for k, d in sent]


def _item(owner_id: int, kind: str = events.FILL, n: int = 0) -> events._Item:
    if kind == events.SESSION_REVOKED:
        return events._Item(owner_id=owner_id, kind=kind, data=b"digest")
    return events._Item(owner_id=owner_id, kind=kind, data=b'{"id":%d}' % n)


def test_a_turns_events_go_as_one_message_per_user_in_order() -> None:
    """One channel-layer message per user per turn of the sender (a JSON list; one event alone
    is the event itself); a session revocation is its own message, after the user's events
    before it and before those after it; seqs are given in the queue's order."""
    items = [_item(1, n=1), _item(2, n=2), _item(1, n=3), _item(1, events.SESSION_REVOKED),
             _item(1, n=5)]  # fmt: skip
    out = events._frames(items, iter([11, 21, 12, 13]))
    assert [(owner, message["type"]) for owner, message, _ in out] == [
        (1, events.PUSH), (2, events.PUSH), (1, events.SESSION_REVOKED), (1, events.PUSH)
    ]  # fmt: skip
    first = orjson.loads(out[0][1]["text"])
    assert [(m["seq"], m["data"]["id"]) for m in first] == [(11, 1), (12, 3)]
    assert orjson.loads(out[1][1]["text"])["seq"] == 21  # alone: not a list
    assert out[2][1] == {"type": events.SESSION_REVOKED, "session": "digest"}
    assert orjson.loads(out[3][1]["text"])["data"] == {"id": 5}
    assert [len(sent) for _, _, sent in out] == [2, 1, 1, 1]


def test_a_message_holds_at_most_max_frame_events() -> None:
    count = events._MAX_FRAME + 5
    out = events._frames([_item(1, n=i) for i in range(count)], iter(range(count)))
    sizes = [len(orjson.loads(message["text"])) for _, message, _ in out]
    assert sizes == [events._MAX_FRAME, 5]
