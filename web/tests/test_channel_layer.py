"""The websockets' channel layer (zerobot/lib/channel_layer.py) on the real Redis: one PUBLISH per
group message reaches every member in the process, each member's backlog is bounded (oldest
lost), and groups stay apart. A Redis restart: tests/faults/test_channel_layer_restart.py."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from django.conf import settings

from zerobot.lib.channel_layer import BoundedPubSubChannelLayer

pytestmark = [pytest.mark.redis]


def _layer(capacity: int = 100) -> BoundedPubSubChannelLayer:
    config = {**settings.CHANNEL_LAYERS["default"]["CONFIG"], "capacity": capacity}
    # A prefix of its own: nothing else on this Redis publishes to these groups.
    return BoundedPubSubChannelLayer(**{**config, "prefix": f"test-{uuid.uuid4().hex}"})


class _Collector:
    """Reads one channel as a consumer does: one receive after another in a task of its own.
    (Never ``wait_for(layer.receive(...))``: the pub/sub layer takes a cancelled receive for the
    consumer's exit and unsubscribes the channel.)"""

    def __init__(self, layer: Any, channel: str) -> None:
        self.got: list[int] = []
        self._task = asyncio.create_task(self._read(layer, channel))

    async def _read(self, layer: Any, channel: str) -> None:
        while True:
            self.got.append((await layer.receive(channel))["n"])

    async def until(self, last: int) -> list[int]:
        """What it received up to and including message ``last`` (within 5 s)."""
        for _ in range(500):
            if last in self.got:
                return self.got
            await asyncio.sleep(0.01)
        raise AssertionError(f"message {last} never arrived; got {self.got}")

    def stop(self) -> None:
        self._task.cancel()


def test_a_group_message_reaches_every_member_once_and_no_other_group() -> None:
    async def body() -> None:
        layer = _layer()
        a1, a2, b = [await layer.new_channel() for _ in range(3)]
        for channel in (a1, a2):
            await layer.group_add("user.1", channel)
        await layer.group_add("user.12", b)  # a prefix of the other's name: still apart
        readers = {name: _Collector(layer, name) for name in (a1, a2, b)}
        for n in range(3):
            await layer.group_send("user.1", {"type": "event.push", "n": n})
        # Published after user 1's three on the same connection, so it arrives after them: if
        # b were getting user 1's messages, they would be in its list before this one.
        await layer.group_send("user.12", {"type": "event.push", "n": 99})
        assert await readers[b].until(99) == [99]
        assert await readers[a1].until(2) == [0, 1, 2]
        assert await readers[a2].until(2) == [0, 1, 2]
        await layer.group_discard("user.1", a2)
        await layer.group_send("user.1", {"type": "event.push", "n": 3})
        await layer.group_send("user.12", {"type": "event.push", "n": 100})
        await readers[b].until(100)
        assert await readers[a1].until(3) == [0, 1, 2, 3]
        assert readers[a2].got == [0, 1, 2]  # left the group: nothing more
        for reader in readers.values():
            reader.stop()
        await layer.flush()

    asyncio.run(body())


def test_a_member_that_stops_reading_keeps_only_its_last_capacity_messages() -> None:
    async def body() -> None:
        layer = _layer(capacity=5)
        stuck, fast = await layer.new_channel(), await layer.new_channel()
        for channel in (stuck, fast):
            await layer.group_add("user.1", channel)
        reader = _Collector(layer, fast)
        for n in range(50):
            await layer.group_send("user.1", {"type": "event.push", "n": n})
            # One at a time: a burst of more than ``capacity`` read from Redis in one turn of
            # the layer's loop would overflow even a queue that is read as fast as it fills.
            await reader.until(n)
        # The reader missed nothing ...
        assert reader.got == list(range(50))
        # ... and by the time it had the last one, so had the stuck member's queue (one loop
        # turn puts a message in every member's queue), which kept only the newest five.
        late = _Collector(layer, stuck)
        assert await late.until(49) == [45, 46, 47, 48, 49]
        reader.stop()
        late.stop()
        await layer.flush()

    asyncio.run(body())


def test_the_settings_bound_each_socket_by_ws_channel_capacity() -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    assert isinstance(layer, BoundedPubSubChannelLayer)
    assert layer.capacity == settings.WS_CHANNEL_CAPACITY
