"""``/ws/events``: one socket per open dashboard, receiving only its user's events.

Protocol (server to client, JSON text frames; the client sends nothing):

- ``{"type": "hello", "seq": N, "user": id}`` once accepted: ``N`` is the user's last event
  number (null if unknown). A client that saw a different number before it reconnected missed
  events: it refetches over REST.
- ``{"seq": N, "type": "<event type>", "at": <commit time, epoch s>, "data": {...}}`` for each
  event (types and payloads: ``trading/events.py``), or a JSON list of such events: the events of
  the user that the sender took together (a burst: one batch's equity snapshots, a cycle's
  fills), in order, each with its own ``seq``; a socket that fell behind also gets the pushes
  waiting for it as one such list (the channel layer merges them, zerobot/lib/channel_layer.py).
- ``{"type": "revoked"}`` then close code 4401: the login behind the socket is gone.

A handshake without valid credentials is refused (HTTP 403). A socket that cannot take a message
within ``WS_SEND_TIMEOUT_SECONDS`` is closed (code 4408) and leaves its group; messages waiting
for a slow socket are bounded by the channel layer's capacity (oldest dropped), so no publisher
ever waits for a client. Dead peers are found by the server's pings (uvicorn: every 20 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from trading import events
from web.auth import Credentials, still_authorized

logger = logging.getLogger("zerobot.websocket")

CLOSE_REVOKED = 4401
CLOSE_TOO_SLOW = 4408


class EventsConsumer(AsyncWebsocketConsumer):
    user_id: int | None = None
    credentials: Credentials | None = None
    _recheck: asyncio.Task | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        credentials = self.scope.get("credentials")
        if user is None or not user.is_authenticated or credentials is None:
            await self.close()  # before accept: the handshake is refused with HTTP 403
            return
        self.user_id = user.pk
        self.credentials = credentials
        events.bind_loop(asyncio.get_running_loop())
        self.group = events.user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        seq = await sync_to_async(events.current_seq, thread_sensitive=False)(user.pk)
        await self._send_json({"type": "hello", "seq": seq, "user": user.pk})
        self._recheck = asyncio.create_task(self._recheck_credentials())

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Clients have nothing to say; anything they send is ignored."""

    # Channel-layer handlers ("type" with the dot replaced) ---------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        """A pushed event goes straight to its handler. Channels' own dispatch first closes stale
        database connections, through a hop to the process's one sync thread
        (``aclose_old_connections``), before every message: for a push, which touches no
        database, that hop was most of the cost of a message, paid once per socket per event,
        one socket after another (PERFORMANCE.md, "Dashboard page"). Everything else (the
        client's frames, session.revoked) goes through Channels' dispatch as before."""
        if message["type"] == events.PUSH:
            await self.event_push(message)
        else:
            await super().dispatch(message)

    async def event_push(self, message: dict[str, Any]) -> None:
        await self._send_text(message["text"])

    async def session_revoked(self, message: dict[str, Any]) -> None:
        if self.credentials is not None and message.get("session") == (
            self.credentials.session_digest
        ):
            await self._revoke()

    # -------------------------------------------------------------------------------------------

    async def _send_json(self, body: dict[str, Any]) -> None:
        await self._send_text(orjson.dumps(body).decode())

    async def _send_text(self, text: str) -> None:
        try:
            # asyncio.timeout, not wait_for: no task of its own per message.
            async with asyncio.timeout(settings.WS_SEND_TIMEOUT_SECONDS):
                await self.send(text_data=text)
        except TimeoutError:
            logger.warning("websocket of user %s too slow: dropped", self.user_id)
            await self._drop(CLOSE_TOO_SLOW)

    async def _recheck_credentials(self) -> None:
        while True:
            await asyncio.sleep(settings.WS_REAUTH_SECONDS)
            try:
                ok = await still_authorized(self.credentials, self.user_id)
            except Exception:  # the database is away: keep the socket, check again later
                logger.warning("websocket re-check of user %s failed", self.user_id, exc_info=True)
                continue
            if not ok:
                await self._revoke()
                return
            # The list layer's group membership expires (group_expiry, a day): renew it (the
            # pub/sub layer's never does; there this finds the group already subscribed).
            await self.channel_layer.group_add(self.group, self.channel_name)

    async def _revoke(self) -> None:
        """Tell the client why, then close; the client's close ends the consumer as usual."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.send(text_data='{"type":"revoked"}'), settings.WS_SEND_TIMEOUT_SECONDS
            )
        await self._leave()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.close(code=CLOSE_REVOKED), 1.0)

    async def _drop(self, code: int) -> None:
        """Leave the group and end the consumer now: the server closes the connection (a client
        that reads nothing would never finish a close handshake)."""
        await self._leave()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.close(code=code), 1.0)
        raise StopConsumer

    async def _leave(self) -> None:
        if self._recheck is not None and self._recheck is not asyncio.current_task():
            self._recheck.cancel()
        self._recheck = None
        if self.user_id is not None:
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(self.group, self.channel_name)
            self.user_id = None
