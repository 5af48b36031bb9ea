"""The websockets' channel layer (zerobot/lib/channel_layer.py) on the real Redis: one PUBLISH per
group message reaches every member in the process, each member's backlog is bounded (oldest
lost), and groups stay apart. A Redis restart: tests/faults/test_channel_layer_restart.py."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from django.conf import settings

from zerobot.lib.channel_layer import BoundedPubSubChannelLayer

pytestmark = [pytest.mark.redis]


def _layer(capacity: int = 100, **overrides: Any) -> BoundedPubSubChannelLayer:
    config = {**settings.CHANNEL_LAYERS["default"]["CONFIG"], "capacity": capacity, **overrides}
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

    from trading import events

    layer = get_channel_layer()
    assert isinstance(layer, BoundedPubSubChannelLayer)
    assert layer.capacity == settings.WS_CHANNEL_CAPACITY
    assert layer.merge_type == events.PUSH  # the pushes of the consumers are what merges


def _push(text: str) -> dict[str, Any]:
    return {"type": "event.push", "text": text}


async def _queued(layer: BoundedPubSubChannelLayer, channel: str, count: int) -> None:
    """Until ``count`` messages wait in the channel's queue (the layer's reader put them)."""
    queue = layer._get_layer().channels[channel]
    for _ in range(500):
        if queue.qsize() == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{queue.qsize()} queued, not {count}")


def test_pushes_waiting_for_a_channel_are_received_as_one_in_order() -> None:
    """A socket that fell behind takes what waits for it in one receive (one frame): the events
    of the waiting pushes as one JSON list, in order; a message of another type ends the merge
    and is the next receive's; a push that waits alone is received as it was sent."""

    async def body() -> None:
        layer = _layer()
        channel = await layer.new_channel()
        await layer.group_add("user.1", channel)
        sent = [_push('{"n":0}'), _push('[{"n":1},{"n":2}]'), _push('{"n":3}'),
                {"type": "session.revoked", "session": "x"}, _push('{"n":4}')]  # fmt: skip
        for message in sent:
            await layer.group_send("user.1", message)
        await _queued(layer, channel, len(sent))
        first = await layer.receive(channel)
        assert first["type"] == "event.push"
        assert [event["n"] for event in orjson.loads(first["text"])] == [0, 1, 2, 3]
        assert await layer.receive(channel) == {"type": "session.revoked", "session": "x"}
        assert await layer.receive(channel) == _push('{"n":4}')
        await layer.flush()

    asyncio.run(body())


def test_a_merge_takes_at_most_merge_max_messages() -> None:
    async def body() -> None:
        layer = _layer(merge_max=3)
        channel = await layer.new_channel()
        await layer.group_add("user.1", channel)
        for n in range(5):
            await layer.group_send("user.1", _push(orjson.dumps({"n": n}).decode()))
        await _queued(layer, channel, 5)
        first = orjson.loads((await layer.receive(channel))["text"])
        second = orjson.loads((await layer.receive(channel))["text"])
        assert [e["n"] for e in first] == [0, 1, 2] and [e["n"] for e in second] == [3, 4]
        await layer.flush()

    asyncio.run(body())
