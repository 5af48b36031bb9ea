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
out, web/consumers.py).

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
    def __init__(self, *args: Any, capacity: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.capacity = capacity

    async def _subscribe_to_channel(self, channel: str) -> None:
        # The parent's, with a bounded queue instead of asyncio.Queue().
        self.channels[channel] = BoundedQueue(self.capacity)
        await self._get_shard(channel).subscribe(channel)


class BoundedPubSubChannelLayer(RedisPubSubChannelLayer):
    """``RedisPubSubChannelLayer`` whose per-socket queues hold at most ``capacity`` messages."""

    def __init__(self, *args: Any, capacity: int = 100, expiry: Any = None, **kwargs: Any) -> None:
        # ``expiry`` (the list layer's message lifetime) has no meaning here: nothing is stored.
        super().__init__(*args, **kwargs)
        self.capacity = int(capacity)

    def _get_layer(self) -> RedisPubSubLoopLayer:
        # The parent's, making the bounded loop layer (one per event loop, as there).
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = _BoundedLoopLayer(
                *self._args, capacity=self.capacity, **self._kwargs, channel_layer=self
            )
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer
