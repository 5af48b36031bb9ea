"""/ws/events with Channels' WebsocketCommunicator against the real channel layer (Redis pub/sub).

Each test runs its async body with asgiref's async_to_sync; the database is transactional because
the consumer reads it from other threads.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from trading import events
from web.consumers import CLOSE_REVOKED, CLOSE_TOO_SLOW, EventsConsumer
from web.routing import websocket_application
from web.tests.conftest import PASSWORD, api_token, session_headers, session_key_of

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _user(name: str) -> Any:
    return get_user_model().objects.create_user(name, password=PASSWORD)


def _socket(headers: list, app: Any = None) -> WebsocketCommunicator:
    return WebsocketCommunicator(app or websocket_application(), "/ws/events", headers=headers)


async def _json(communicator: WebsocketCommunicator) -> dict[str, Any]:
    """The next message: a frame is one, or a list of the user's events sent together."""
    pending = communicator.__dict__.setdefault("pending", [])
    if not pending:
        body = orjson.loads(await communicator.receive_from(timeout=5))
        pending.extend(body if isinstance(body, list) else [body])
    return pending.pop(0)


def _deliver_in_one_turn(items: list[Any]) -> None:
    """What the sender thread does with what it took off its queue in one turn."""
    asyncio.run(events._Outbox()._deliver(items))


async def _publish(owner_id: int, event_type: str, payload: dict[str, Any]) -> None:
    await sync_to_async(events.publish)(owner_id, event_type, payload)


def test_channel_layer_is_redis_pubsub() -> None:
    from channels.layers import get_channel_layer

    assert type(get_channel_layer()).__name__ == "BoundedPubSubChannelLayer"


def test_a_user_receives_only_their_own_events() -> None:
    alice, bob = _user("alice"), _user("bob")

    async def body() -> None:
        a = _socket(await sync_to_async(session_headers)(alice))
        b = _socket(await sync_to_async(session_headers)(bob))
        assert (await a.connect())[0] and (await b.connect())[0]
        hello_a, hello_b = await _json(a), await _json(b)
        assert (hello_a["type"], hello_a["user"]) == ("hello", alice.pk)
        assert (hello_b["type"], hello_b["user"]) == ("hello", bob.pk)
        for i in range(5):
            await _publish(alice.pk, events.FILL, {"id": i, "symbol": "BTC/USDT"})
        # Sent after Alice's five by the same sender, so Bob's first message would be one of
        # hers if he were subscribed to them.
        await _publish(bob.pk, events.BOT_STATUS, {"bot": 7, "status": "active"})
        got_a = [await _json(a) for _ in range(5)]
        assert [m["data"]["id"] for m in got_a] == [0, 1, 2, 3, 4]
        assert all(m["type"] == "fill" for m in got_a)
        got_b = await _json(b)
        assert (got_b["type"], got_b["data"]) == ("bot_status", {"bot": 7, "status": "active"})
        assert await b.receive_nothing(timeout=0.2)
        await a.disconnect()
        await b.disconnect()

    async_to_sync(body)()


def test_a_users_events_of_one_turn_arrive_in_one_frame_each_numbered() -> None:
    """The events of one user the sender took in one turn are one message, a JSON list (one
    websocket frame per socket instead of one per event), in order, each with its own ``seq``;
    another user's event of the same turn reaches only them, alone (the event itself)."""
    alice, bob = _user("alice"), _user("bob")

    async def body() -> None:
        a = _socket(await sync_to_async(session_headers)(alice))
        b = _socket(await sync_to_async(session_headers)(bob))
        assert (await a.connect())[0] and (await b.connect())[0]
        start_a, start_b = (await _json(a))["seq"], (await _json(b))["seq"]
        items = [
            events._Item(owner_id=alice.pk, kind=events.EQUITY_SNAPSHOT, data=b'{"id":%d}' % i)
            for i in range(3)
        ]
        items.insert(1, events._Item(owner_id=bob.pk, kind=events.FILL, data=b'{"id":9}'))
        await sync_to_async(_deliver_in_one_turn, thread_sensitive=False)(items)
        frame = orjson.loads(await a.receive_from(timeout=5))
        assert isinstance(frame, list)
        assert [(m["type"], m["data"]["id"]) for m in frame] == [("equity_snapshot", i)
                                                                 for i in range(3)]  # fmt: skip
        assert [m["seq"] for m in frame] == [start_a + 1, start_a + 2, start_a + 3]
        alone = orjson.loads(await b.receive_from(timeout=5))
        assert (alone["type"], alone["seq"], alone["data"]) == ("fill", start_b + 1, {"id": 9})
        assert await a.receive_nothing(timeout=0.2)
        assert await b.receive_nothing(timeout=0.2)
        await a.disconnect()
        await b.disconnect()

    async_to_sync(body)()


def test_events_carry_a_per_user_sequence_and_hello_says_the_last_one() -> None:
    alice = _user("alice")

    async def body() -> None:
        headers = await sync_to_async(session_headers)(alice)
        first = _socket(headers)
        await first.connect()
        start = (await _json(first))["seq"]
        for i in range(3):
            await _publish(alice.pk, events.CYCLE_ERROR, {"bot": 1, "message": f"e{i}"})
        seqs = [(await _json(first))["seq"] for _ in range(3)]
        assert seqs == [start + 1, start + 2, start + 3]
        await first.disconnect()
        # A reconnecting client compares this with the last number it saw: nothing missed.
        again = _socket(headers)
        await again.connect()
        assert (await _json(again))["seq"] == start + 3
        await again.disconnect()

    async_to_sync(body)()


def test_a_token_authenticates_the_socket_like_the_api() -> None:
    alice = _user("alice")
    token = api_token(alice)

    async def body() -> None:
        ok = _socket([(b"authorization", f"Token {token}".encode())])
        assert (await ok.connect())[0]
        assert (await _json(ok))["user"] == alice.pk
        await ok.disconnect()
        bad = _socket([(b"authorization", b"Token not-a-real-token")])
        assert not (await bad.connect())[0]

    async_to_sync(body)()


def test_no_credentials_or_a_cross_site_origin_is_refused() -> None:
    alice = _user("alice")

    async def body() -> None:
        anonymous = _socket([(b"host", b"testserver"), (b"origin", b"http://testserver")])
        assert not (await anonymous.connect())[0]
        # The browser sends the session cookie from another site's page too: refused.
        evil = _socket(await sync_to_async(session_headers)(alice, origin="https://evil.example"))
        assert not (await evil.connect())[0]
        no_origin = _socket(await sync_to_async(session_headers)(alice, origin=None))
        assert not (await no_origin.connect())[0]

    async_to_sync(body)()


def test_logout_closes_that_sessions_socket_at_once_and_not_the_others() -> None:
    alice = _user("alice")
    headers = session_headers(alice)

    async def body() -> None:
        other = _socket(await sync_to_async(session_headers)(alice))  # another browser
        mine = _socket(headers)
        await mine.connect()
        await other.connect()
        await _json(mine)
        await _json(other)

        def logout() -> None:
            client = Client()
            client.cookies.load(dict(headers)[b"cookie"].decode())
            assert client.post("/logout/").status_code == 302

        await sync_to_async(logout)()
        assert (await _json(mine)) == {"type": "revoked"}
        closed = await mine.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": CLOSE_REVOKED}
        await _publish(alice.pk, events.BOT_STATUS, {"bot": 1, "status": "paused"})
        assert (await _json(other))["type"] == "bot_status"
        await other.disconnect()

    async_to_sync(body)()
    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=session_key_of(headers)).exists()


def test_revoked_credentials_close_the_socket_at_the_next_check(settings: Any) -> None:
    settings.WS_REAUTH_SECONDS = 0.2
    alice = _user("alice")
    token = api_token(alice)

    async def body() -> None:
        by_token = _socket([(b"authorization", f"Token {token}".encode())])
        by_session = _socket(await sync_to_async(session_headers)(alice))
        for socket in (by_token, by_session):
            await socket.connect()
            await _json(socket)
        # Disabling the user revokes both kinds (the token classes refuse inactive users, and so
        # does the session check).
        await sync_to_async(get_user_model().objects.filter(pk=alice.pk).update)(is_active=False)
        for socket in (by_token, by_session):
            assert (await _json(socket)) == {"type": "revoked"}
            assert (await socket.receive_output(timeout=5))["code"] == CLOSE_REVOKED

    async_to_sync(body)()


class _StuckConsumer(EventsConsumer):
    """A client that stopped reading: every push hangs (as a full TCP window would)."""

    async def event_push(self, message: dict[str, Any]) -> None:
        async def never() -> None:
            await asyncio.Event().wait()

        self.send = lambda **kwargs: never()  # type: ignore[method-assign]
        await super().event_push(message)


def test_a_stuck_client_is_dropped_and_publishers_never_wait(settings: Any) -> None:
    settings.WS_SEND_TIMEOUT_SECONDS = 0.1
    from channels.routing import URLRouter
    from django.urls import path

    from web.auth import websocket_auth

    alice = _user("alice")
    app = websocket_auth(URLRouter([path("ws/events", _StuckConsumer.as_asgi())]))

    async def body() -> None:
        stuck = _socket(await sync_to_async(session_headers)(alice), app)
        healthy = _socket(await sync_to_async(session_headers)(alice))
        await stuck.connect()
        await healthy.connect()
        await _json(stuck)
        await _json(healthy)
        for i in range(50):
            await _publish(alice.pk, events.FILL, {"id": i})
        assert await sync_to_async(events.outbox.flush)(10)  # all handed over, none waited for
        received = [(await _json(healthy))["data"]["id"] for _ in range(50)]
        assert received == list(range(50))
        # The stuck one was closed by the server and its consumer ended.
        assert (await stuck.receive_output(timeout=5))["code"] == CLOSE_TOO_SLOW
        await asyncio.wait_for(stuck.future, 5)
        await healthy.disconnect()

    async_to_sync(body)()


def test_a_push_costs_no_hop_to_the_sync_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Channels' dispatch closes stale database connections through the process's one sync
    thread before each message; a push touches no database and skips it (it was most of the
    cost of fanning an event out to many sockets). The client's own frames still take it."""
    import channels.consumer

    hops = []
    original = channels.consumer.aclose_old_connections

    async def counted() -> None:
        hops.append(1)
        await original()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)
    alice = _user("alice")

    async def body() -> None:
        socket = _socket(await sync_to_async(session_headers)(alice))
        await socket.connect()
        await _json(socket)
        assert hops == [1]  # the handshake (websocket.connect) went through Channels' dispatch
        hops.clear()
        for i in range(5):
            await _publish(alice.pk, events.FILL, {"id": i})
        assert [(await _json(socket))["data"]["id"] for _ in range(5)] == [0, 1, 2, 3, 4]
        assert hops == []
        await socket.send_to(text_data="ignored")  # a client frame: Channels' dispatch, as before
        assert await socket.receive_nothing(timeout=0.2)
        assert hops == [1]
        await socket.disconnect()

    async_to_sync(body)()
