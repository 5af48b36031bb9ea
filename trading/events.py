"""Live events for the dashboard: ``publish(owner_id, event_type, payload)``, after commit.

Services and the bot engine call ``publish`` (or one of the ``publish_*`` helpers below, which
build the payload from a row) **inside** their transaction; the event leaves only once that
transaction commits (``transaction.on_commit``), so a rolled-back fill is never shown. Outside a
transaction it leaves at once.

Delivery never slows or fails the caller:

- ``publish`` renders the payload to JSON and puts it on an in-process queue (bounded by
  ``EVENTS_QUEUE_SIZE``; when it is full the event is dropped and counted, never waited for).
- One sender thread per process takes events off the queue, gives each a per-user sequence number
  (Redis ``INCR``; a process-local counter without Redis) and sends it to the user's group on the
  channel layer (``CHANNEL_LAYERS``): the events of one user taken in one turn go as one
  message, a JSON list of them (``_frames``; one websocket frame). A Redis outage costs that
  thread its timeouts; the caller never sees it (errors are logged on ``zerobot.events`` and
  counted in ``stats()``).
- The channel layer bounds each socket's backlog (``capacity``): a slow or dead client loses its
  oldest messages instead of blocking a publisher (and the socket is then dropped, web/consumers).

Sequence numbers let a client notice what it missed: the websocket greets with the user's current
``seq``, and every event carries its own; a gap (or a different ``seq`` after a reconnect) means
"refetch over REST". Every payload also carries the id of the row it is about.

Price marks (``price_mark``) are coalesced per user and symbol: at most one per second leaves
each publishing process (the latest price wins; a mark held back is sent when its second ends).

The web layer (``web/``) subscribes to ``user_group(owner_id)``; this module does not import it.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from django.conf import settings
from django.db import transaction

from zerobot.lib.redis_client import shared_redis

if TYPE_CHECKING:
    from trading.models import Bot, EquitySnapshot, Position, Trade

logger = logging.getLogger("zerobot.events")

FILL = "fill"
POSITION_OPENED = "position_opened"
POSITION_CLOSED = "position_closed"
EQUITY_SNAPSHOT = "equity_snapshot"
BOT_STATUS = "bot_status"
CYCLE_ERROR = "cycle_error"
PRICE_MARK = "price_mark"
EVENT_TYPES = frozenset(
    {FILL, POSITION_OPENED, POSITION_CLOSED, EQUITY_SNAPSHOT, BOT_STATUS, CYCLE_ERROR, PRICE_MARK}
)
# Why a position closed (position_closed's ``reason``).
CLOSE_REASONS = frozenset({"manual", "stop_loss", "take_profit", "signal", "risk", "liquidation"})
PRICE_MARK_INTERVAL = 1.0  # seconds between two marks of one symbol for one user
# The consumer's handler for a pushed event (channels maps "event.push" to event_push).
PUSH = "event.push"
SESSION_REVOKED = "session.revoked"
_MAX_BATCH = 500  # events sent per turn of the sender loop
_MAX_FRAME = 100  # events of one user in one channel-layer message (one websocket frame)
_SEND_TIMEOUT = 2.0  # seconds one group_send may take before it counts as failed


def user_group(owner_id: int) -> str:
    """The channel-layer group every socket of ``owner_id`` joins (and nobody else's)."""
    return f"user.{int(owner_id)}"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # exact and positional, like the API
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


@dataclass(slots=True)
class _Item:
    owner_id: int
    kind: str  # an event type, or a control message (SESSION_REVOKED)
    data: bytes  # rendered JSON
    at: float = field(default_factory=time.time)
    key: str | None = None  # price_mark: the symbol it is coalesced by


def publish(owner_id: int, event_type: str, payload: Mapping[str, Any]) -> None:
    """Send ``payload`` to ``owner_id``'s open dashboards once the current transaction commits.

    Never raises: a bad call (unknown type, unserialisable payload) is logged, not allowed to
    roll back the caller's trade. Decimals travel as exact strings, datetimes as ISO 8601 UTC.
    """
    try:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
        data = orjson.dumps(dict(payload), default=_default, option=_JSON_OPTIONS)
        key = str(payload["symbol"]) if event_type == PRICE_MARK else None
        item = _Item(owner_id=int(owner_id), kind=event_type, data=data, key=key)
    except Exception:
        logger.exception("event not published: %s for user %s", event_type, owner_id)
        return
    _after_commit(item)


def publish_session_revoked(*, owner_id: int, session_key: str) -> None:
    """Close the sockets of one logged-out session (they check the key's digest themselves)."""
    import hashlib

    digest = hashlib.sha256(session_key.encode()).hexdigest()
    _after_commit(_Item(owner_id=int(owner_id), kind=SESSION_REVOKED, data=digest.encode()))


# Events that say the user's data changed: each moves the data version (trading/dataversion.py).
_DATA_EVENTS = frozenset({FILL, POSITION_OPENED, POSITION_CLOSED, EQUITY_SNAPSHOT, BOT_STATUS,
                          PRICE_MARK})  # fmt: skip


def _after_commit(item: _Item) -> None:
    if item.kind in _DATA_EVENTS:
        from trading import dataversion

        dataversion.bump_on_commit(item.owner_id)
    try:
        transaction.on_commit(lambda: outbox.put(item), robust=True)
    except Exception:  # e.g. a broken connection: the event is lost, the caller is not
        logger.exception("event not queued: %s for user %s", item.kind, item.owner_id)


# --- Payload builders: what the services and the engine call -------------------------------------


def _trade_row(trade: Trade) -> dict[str, Any]:
    return {
        "id": trade.pk, "bot": trade.bot_id, "position": trade.position_id,
        "symbol": trade.symbol, "side": trade.side, "quantity": trade.quantity,
        "price": trade.price, "fee": trade.fee, "realized_pnl": trade.realized_pnl,
        "executed_at": trade.executed_at, "client_order_id": trade.client_order_id,
    }  # fmt: skip


def publish_fill(*, trade: Trade) -> None:
    """A fill (one ``Trade``): the row of ``/api/trades/``."""
    publish(trade.owner_id, FILL, _trade_row(trade))


def _position_row(position: Position) -> dict[str, Any]:
    return {
        "id": position.pk, "bot": position.bot_id, "symbol": position.symbol,
        "side": position.side, "quantity": position.quantity,
        "closed_quantity": position.closed_quantity, "leverage": position.leverage,
        "entry_price": position.entry_price, "current_price": position.current_price,
        "stop_loss": position.stop_loss, "take_profit": position.take_profit,
        "status": position.status, "opened_at": position.opened_at,
        "closed_at": position.closed_at, "margin": position.margin,
        "realized_pnl": position.realized_pnl, "fees": position.fees,
    }  # fmt: skip


def publish_position_opened(*, position: Position) -> None:
    """A new open position: the row of ``/api/positions/`` (unrealized PnL 0 at entry)."""
    publish(position.owner_id, POSITION_OPENED, _position_row(position))


def publish_position_closed(*, position: Position, reason: str) -> None:
    """A position fully closed, and why (``CLOSE_REASONS``)."""
    if reason not in CLOSE_REASONS:
        logger.error("unknown close reason %r for position %s", reason, position.pk)
    publish(position.owner_id, POSITION_CLOSED, {**_position_row(position), "reason": reason})


def publish_bot_status(*, bot: Bot) -> None:
    publish(
        bot.owner_id,
        BOT_STATUS,
        {"bot": bot.pk, "name": bot.name, "status": bot.status, "updated_at": bot.updated_at},
    )


def publish_equity_snapshot(*, snapshot: EquitySnapshot) -> None:
    publish(
        snapshot.owner_id,
        EQUITY_SNAPSHOT,
        {
            "id": snapshot.pk, "bot": snapshot.bot_id, "taken_at": snapshot.taken_at,
            "equity": snapshot.equity, "cash": snapshot.cash,
            "unrealized_pnl": snapshot.unrealized_pnl,
        },
    )  # fmt: skip


def publish_cycle_error(*, owner_id: int, bot_id: int, message: str, at: datetime) -> None:
    """A bot's cycle failed (the engine logs the traceback; the user sees ``message``)."""
    publish(owner_id, CYCLE_ERROR, {"bot": bot_id, "message": message[:500], "at": at})


def publish_price_mark(*, owner_id: int, symbol: str, price: Decimal, at: datetime) -> None:
    """The mark price of a symbol the user holds (coalesced: at most one per second)."""
    publish(owner_id, PRICE_MARK, {"symbol": symbol, "price": price, "at": at})


# --- Sequence numbers ---------------------------------------------------------------------------


def _seq_key(owner_id: int) -> str:
    return f"{settings.CACHE_KEY_PREFIX}:events:seq:{owner_id}"


_local_seq: dict[int, int] = {}  # without Redis: the last number given, per user
_local_seq_lock = threading.Lock()


def _next_seqs(owner_ids: list[int]) -> list[int | None]:
    """One sequence number per entry (same user twice: two numbers), one round trip to Redis.

    None when Redis failed: the event still goes out, without a number (the client refetches).
    """
    client = shared_redis()
    if client is None:
        numbers: list[int | None] = []
        with _local_seq_lock:
            for owner in owner_ids:
                _local_seq[owner] = _local_seq.get(owner, 0) + 1
                numbers.append(_local_seq[owner])
        return numbers
    try:
        pipe = client.pipeline(transaction=False)
        for owner in owner_ids:
            pipe.incr(_seq_key(owner))
        return [int(value) for value in pipe.execute()]
    except Exception as exc:
        outbox.note_failure("sequence", exc)
        return [None] * len(owner_ids)


def current_seq(owner_id: int) -> int | None:
    """The last sequence number given to ``owner_id``'s events (0 if none; None if unknown)."""
    client = shared_redis()
    if client is None:
        with _local_seq_lock:
            return _local_seq.get(owner_id, 0)
    try:
        return int(client.get(_seq_key(owner_id)) or 0)
    except Exception as exc:
        outbox.note_failure("sequence", exc)
        return None


# --- The sender ---------------------------------------------------------------------------------


class _Outbox:
    """The bounded queue and the one sender thread of this process (restarted after a fork)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._thread: threading.Thread | None = None
        # Counters since start (stats()); each is written by one thread, read anywhere.
        self.queued = 0
        self.sent = 0
        self.dropped = 0
        self.coalesced = 0
        self.failed = 0
        # Seconds from commit to the channel layer's acknowledgement, of the last sends (the
        # sender's share of an event's latency; bench_page prints it).
        self.handover: collections.deque[float] = collections.deque(maxlen=1000)
        self._last_failure_log = 0.0
        # In-memory channel layer: consumers live on the ASGI server's loop, and only that loop
        # may touch the layer's queues; consumers register it (bind_loop).
        self.server_loop: asyncio.AbstractEventLoop | None = None
        self._own_layer: tuple[Any, Any] | None = None  # (shared instance it copies, own copy)

    # Called by publishers (any thread) -------------------------------------------------------

    def put(self, item: _Item) -> None:
        item.at = time.time()  # committed: what the latency figures are measured from
        self._ensure_started()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            self._log_failure(f"event queue full ({self._queue.maxsize}): dropped")
            return
        self.queued += 1

    def stats(self) -> dict[str, int]:
        return {
            "queued": self.queued, "sent": self.sent, "dropped": self.dropped,
            "coalesced": self.coalesced, "failed": self.failed, "pending": self.pending(),
        }  # fmt: skip

    def pending(self) -> int:
        """Events queued or being sent (a price mark held back for its second is not pending)."""
        return self._queue.unfinished_tasks

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was handed to the channel layer (tests, exit)."""
        deadline = time.monotonic() + timeout
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.002)
        return not self.pending()

    def note_failure(self, what: str, exc: BaseException) -> None:
        self.failed += 1
        self._log_failure(f"{what} failed: {exc!r}")

    def _log_failure(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_failure_log >= 10:  # at most one line per 10 s per process
            self._last_failure_log = now
            logger.warning("live events: %s (stats %s)", message, self.stats())

    def _ensure_started(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            # A forked child inherits the parent's queue but not its thread: start afresh.
            self._queue = queue.Queue(maxsize=settings.EVENTS_QUEUE_SIZE)
            self._thread = threading.Thread(target=self._run, name="zerobot-events", daemon=True)
            self._thread.start()
            self._pid = os.getpid()

    # The sender thread -------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        source = self._queue
        marks_sent: dict[tuple[int, str], float] = {}  # when each (user, symbol) last went out
        marks_held: dict[tuple[int, str], _Item] = {}  # the latest mark waiting for its second
        while True:
            timeout = None
            if marks_held:
                due = min(marks_sent[key] for key in marks_held) + PRICE_MARK_INTERVAL
                timeout = max(0.0, due - time.monotonic())
            batch: list[_Item] = []
            try:
                batch.append(source.get(timeout=timeout))
                while len(batch) < _MAX_BATCH:
                    batch.append(source.get_nowait())
            except queue.Empty:
                pass
            now = time.monotonic()
            ready: list[_Item] = []
            for item in batch:
                if item.kind != PRICE_MARK:
                    ready.append(item)
                    continue
                key = (item.owner_id, item.key or "")
                if key in marks_held or now - marks_sent.get(key, -1e9) < PRICE_MARK_INTERVAL:
                    if key in marks_held:
                        self.coalesced += 1
                    marks_held[key] = item  # the latest price wins
                else:
                    marks_sent[key] = now
                    ready.append(item)
            for key in [k for k in marks_held if now - marks_sent[k] >= PRICE_MARK_INTERVAL]:
                marks_sent[key] = now
                ready.append(marks_held.pop(key))
            if len(marks_sent) > 10_000:  # forget symbols not marked for a while
                for key in [k for k, t in marks_sent.items() if now - t > 60]:
                    if key not in marks_held:
                        del marks_sent[key]
            if ready:
                try:
                    loop.run_until_complete(self._deliver(ready))
                except Exception as exc:  # the thread must never die
                    self.note_failure("delivery", exc)
            for _ in batch:
                source.task_done()

    def _layer(self) -> Any:
        """The channel layer this thread sends with. A Redis layer's connection pools and locks
        belong to the event loop that first used them, and the ASGI server's loop uses the shared
        instance: this thread's loop gets its own instance of the same configuration (a shared one
        failed with "Lock ... is bound to a different event loop" when both were busy). The
        in-memory layer must be the shared instance (its queues are the consumers')."""
        from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers, get_channel_layer

        shared = get_channel_layer()
        if shared is None or type(shared).__name__ == "InMemoryChannelLayer":
            return shared
        if self._own_layer is None or self._own_layer[0] is not shared:  # settings changed
            self._own_layer = (shared, channel_layers.make_backend(DEFAULT_CHANNEL_LAYER))
        return self._own_layer[1]

    async def _deliver(self, items: list[_Item]) -> None:
        layer = self._layer()
        if layer is None:
            return
        events = [item for item in items if item.kind in EVENT_TYPES]
        seqs = iter(_next_seqs([item.owner_id for item in events]) if events else [])
        in_memory = type(layer).__name__ == "InMemoryChannelLayer"
        for owner_id, message, sent in _frames(items, seqs):
            group = user_group(owner_id)
            try:
                if in_memory:
                    loop = self.server_loop
                    if loop is None or loop.is_closed():
                        continue  # no socket was ever opened in this process: nobody to tell
                    future = asyncio.run_coroutine_threadsafe(
                        layer.group_send(group, message), loop
                    )
                    await asyncio.wait_for(asyncio.wrap_future(future), _SEND_TIMEOUT)
                else:
                    await asyncio.wait_for(layer.group_send(group, message), _SEND_TIMEOUT)
                self.sent += len(sent)
                now = time.time()
                self.handover.extend(now - item.at for item in sent)
            except Exception as exc:
                self.note_failure("send", exc)


def _render(item: _Item, seq: int | None) -> bytes:
    return b'{"seq":%s,"type":"%s","at":%.6f,"data":%s}' % (
        b"null" if seq is None else str(seq).encode(),
        item.kind.encode(),
        item.at,
        item.data,
    )


def _frames(
    items: list[_Item], seqs: Iterator[int | None]
) -> list[tuple[int, dict[str, Any], list[_Item]]]:
    """The channel-layer messages for one turn of the sender: ``(owner, message, its items)``.

    The events of one user in the turn travel together, as one group message whose text is a
    JSON list of them (one event alone: the event itself), at most ``_MAX_FRAME`` per message.
    The cost of a message on the server is per socket (a queue put, a consumer turn, a websocket
    frame), so a burst of a user's events (the equity snapshots of one batch of their bots, a
    cycle's fills) costs each of their sockets one turn instead of one per event. Each event
    keeps its own ``seq``; the order of one user's events is kept (a session revocation closes
    the user's open message: events after it travel after it)."""
    out: list[tuple[int, dict[str, Any], list[_Item]]] = []
    texts: list[list[bytes]] = []  # out[i]'s rendered events (empty: a control message)
    open_frame: dict[int, int] = {}  # owner -> index in ``out`` of the message still filling
    for item in items:
        if item.kind == SESSION_REVOKED:
            open_frame.pop(item.owner_id, None)
            out.append((item.owner_id, {"type": SESSION_REVOKED, "session": item.data.decode()},
                        [item]))  # fmt: skip
            texts.append([])
            continue
        text = _render(item, next(seqs))
        index = open_frame.get(item.owner_id)
        if index is None or len(texts[index]) >= _MAX_FRAME:
            open_frame[item.owner_id] = len(out)
            out.append((item.owner_id, {"type": PUSH}, []))
            texts.append([])
            index = len(out) - 1
        out[index][2].append(item)
        texts[index].append(text)
    for (_owner, message, _items), rendered in zip(out, texts, strict=True):
        if message["type"] == PUSH:
            body = rendered[0] if len(rendered) == 1 else b"[" + b",".join(rendered) + b"]"
            message["text"] = body.decode()
    return out


outbox = _Outbox()


def stats() -> dict[str, int]:
    """Counters of this process: queued, sent, dropped (queue full), coalesced marks, failed."""
    return outbox.stats()


def bind_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called by the websocket consumer: with the in-memory layer, deliver on this loop."""
    outbox.server_loop = loop


@atexit.register
def _flush_at_exit() -> None:
    if outbox.pending():
        outbox.flush(timeout=2.0)
