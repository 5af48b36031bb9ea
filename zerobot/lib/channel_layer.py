"""The channel layer of the websockets: channels_redis's pub/sub layer with a bounded backlog.

``channels_redis.pubsub.RedisPubSubChannelLayer`` sends a group message as one Redis ``PUBLISH``
to the group's Redis channel; each server process subscribed to it (one subscription per group
that has a socket in that process) copies the message into the in-process queue of each of its
member sockets. The list layer (``channels_redis.core.RedisChannelLayer``) instead stores one
copy per member socket in Redis and each process pops them back one by one (four round trips per
message): a fill of a user with 100 open sockets was 100 turns of that loop (PERFORMANCE.md,
"Dashboard page").

What the pub/sub layer does not do, and this subclass adds: **a bound on each socket's backlog**
(its in-process queues are unbounded ``asyncio.Queue``). Here each socket's queue holds at most
``capacity`` messages and a full one loses its oldest, with channels_redis's own ``BoundedQueue``
(the list layer's local queue): a client that stopped reading costs at most ``capacity``
messages of memory, and no publisher ever waits for it (the consumer drops it when a send times
out, web/consumers.py). And **a socket that is behind takes what waits for it in one frame**:
with ``merge_type`` set (the settings: ``event.push``, trading/events.py), a ``receive`` that
finds more such messages already queued for its channel returns them as one, whose ``text`` is
the JSON list of all their events (each text is one event or a list of them), in order, at most
``merge_max`` messages; a message of another type stops the merge and is the next ``receive``'s.
A socket that keeps up gets each message as it was sent; one that fell behind (a burst of its
user's events, a busy server) sends one websocket frame for its whole backlog instead of one per
message, so its backlog shrinks at the rate of frames, not of events. Nothing is dropped or
reordered by it; the capacity bound is unchanged (it counts queued messages).

What it guarantees, from its source (channels_redis 4.3): delivery at most once, to the
processes subscribed when the message is published (a message published while Redis is away,
or while a process is reconnecting, is lost: clients find the gap through the events' sequence
numbers and refetch over REST); group membership lives in the process and never expires (no
``group_expiry``: a socket is in its groups until it leaves them); after Redis comes back the
subscriber connection reconnects and subscribes again to every group it had (redis-py's
``PubSub.on_connect``; tested in web/tests/test_channel_layer.py). ``send`` to one channel
reaches it only if its process is subscribed (this project sends to groups only).
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels_redis.core import BoundedQueue
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer
from channels_redis.utils import _wrap_close


class _BoundedLoopLayer(RedisPubSubLoopLayer):
    def __init__(
        self, *args: Any, capacity: int, merge_type: str | None, merge_max: int, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.capacity = capacity
        self.merge_type = merge_type
        self.merge_max = merge_max
        # A message taken off a queue while merging that could not join the merge (another
        # type): what the channel's next receive returns, before its queue.
        self._held: dict[str, dict[str, Any]] = {}

    async def _subscribe_to_channel(self, channel: str) -> None:
        # The parent's, with a bounded queue instead of asyncio.Queue().
        self.channels[channel] = BoundedQueue(self.capacity)
        await self._get_shard(channel).subscribe(channel)

    async def receive(self, channel: str) -> dict[str, Any]:
        held = self._held.pop(channel, None)
        if held is not None:
            return held
        message = await super().receive(channel)
        queue = self.channels.get(channel)
        if not _mergeable(message, self.merge_type) or queue is None or queue.empty():
            return message
        texts = [message["text"]]
        while len(texts) < self.merge_max and not queue.empty():
            following = self.channel_layer.deserialize(queue.get_nowait())
            if not _mergeable(following, self.merge_type):
                self._held[channel] = following
                break
            texts.append(following["text"])
        parts = [text[1:-1] if text.startswith("[") else text for text in texts]
        return {**message, "text": "[" + ",".join(parts) + "]"}


def _mergeable(message: dict[str, Any], merge_type: str | None) -> bool:
    return (
        merge_type is not None
        and message.get("type") == merge_type
        and isinstance(message.get("text"), str)
    )


class BoundedPubSubChannelLayer(RedisPubSubChannelLayer):
    """``RedisPubSubChannelLayer`` whose per-socket queues hold at most ``capacity`` messages,
    and whose ``receive`` merges the ``merge_type`` messages waiting for one channel (at most
    ``merge_max``) into one."""

    def __init__(
        self, *args: Any, capacity: int = 100, expiry: Any = None, merge_type: str | None = None,
        merge_max: int = 50, **kwargs: Any,
    ) -> None:  # fmt: skip
        # ``expiry`` (the list layer's message lifetime) has no meaning here: nothing is stored.
        super().__init__(*args, **kwargs)
        self.capacity = int(capacity)
        self.merge_type = merge_type
        self.merge_max = int(merge_max)

    def _get_layer(self) -> RedisPubSubLoopLayer:
        # The parent's, making the bounded loop layer (one per event loop, as there).
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = _BoundedLoopLayer(
                *self._args, capacity=self.capacity, merge_type=self.merge_type,
                merge_max=self.merge_max, **self._kwargs, channel_layer=self,
            )  # fmt: skip
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer
