"""The websockets' pub/sub channel layer (zerobot/lib/channel_layer.py) across a restart of a
private Redis: a subscribed process takes its groups back by itself, and a publisher whose Redis
is away fails fast instead of hanging. Two layer instances stand for the server process and the
publishing one (trading/events.py's sender thread has its own instance)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.servers import PrivateRedis
from zerobot.lib.channel_layer import BoundedPubSubChannelLayer

pytestmark = [pytest.mark.faults]


def _layer(redis: PrivateRedis) -> BoundedPubSubChannelLayer:
    return BoundedPubSubChannelLayer(
        hosts=[{"address": redis.url, "socket_connect_timeout": 0.25}], prefix="t", capacity=10
    )


async def _collect(layer: BoundedPubSubChannelLayer, channel: str, into: list[int]) -> None:
    # One receive after another, as a consumer does (a cancelled receive would unsubscribe).
    while True:
        into.append((await layer.receive(channel))["n"])


async def _wait_for(got: list[int], last: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while last not in got and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return last in got


def test_a_subscriber_takes_its_groups_back_after_a_redis_restart() -> None:
    redis = PrivateRedis()
    redis.start()
    try:

        async def body() -> None:
            server, publisher = _layer(redis), _layer(redis)
            channel = await server.new_channel()
            await server.group_add("user.1", channel)
            got: list[int] = []
            reader = asyncio.create_task(_collect(server, channel, got))
            await publisher.group_send("user.1", {"type": "event.push", "n": 0})
            assert await _wait_for(got, 0, 5)

            redis.stop()
            # Redis away: a publish fails (the sender counts it and goes on), it does not hang.
            started = time.monotonic()
            with pytest.raises(Exception):  # noqa: B017 - redis-py's ConnectionError or a timeout
                await asyncio.wait_for(
                    publisher.group_send("user.1", {"type": "event.push", "n": -1}), 10
                )
            print(f"\npublish with Redis stopped failed after {time.monotonic() - started:.2f} s")
            redis.start()  # same port
            # Back: publish until the server's subscription is there again (it re-subscribes by
            # itself; what was published before that is lost, which the sequence numbers show).
            started = time.monotonic()
            n = 0
            while time.monotonic() - started < 30:
                n += 1
                try:
                    await publisher.group_send("user.1", {"type": "event.push", "n": n})
                except Exception:  # the publisher's own reconnect
                    await asyncio.sleep(0.2)
                    continue
                if await _wait_for(got, n, 0.3):
                    break
            print(f"delivery again {time.monotonic() - started:.2f} s after the restart")
            assert n in got, f"the subscriber never received again after the restart: {got}"
            assert -1 not in got  # the message of the outage is lost, not delivered late
            # And it keeps working: the next message arrives, once.
            await publisher.group_send("user.1", {"type": "event.push", "n": 1000})
            assert await _wait_for(got, 1000, 5)
            await asyncio.sleep(0.3)
            assert got.count(1000) == 1
            reader.cancel()
            await server.flush()
            await publisher.flush()

        asyncio.run(body())
    finally:
        redis.stop()
