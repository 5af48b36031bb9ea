"""Per-user limit on new market data series: what one account can make the server store.

A series (exchange, symbol, timeframe) is created the first time someone reads it: up to
``WINDOW`` candles fetched and stored, then cached. Which symbols exist is bounded by the venue
(the synthetic provider lists ``MARKET_SYMBOLS``); this bounds how fast one user can fill that
space: ``MARKET_NEW_SERIES_PER_USER`` new series per UTC day and user. Reads of stored series are
never counted, and code running without a requesting user (the bot engine, ``manage.py``
commands) is never limited.

The counters live in the default cache (Redis: shared by every process). When it is unreachable
the limit is kept per process instead (a fallback, like the login throttle's), so an outage does
not lift it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import caches

from marketdata.clients.base import MarketDataError

_requester: ContextVar[int | None] = ContextVar("market_series_requester", default=None)
_local: dict[str, int] = {}
_local_lock = threading.Lock()


class SeriesQuotaExceeded(MarketDataError):
    """The requesting user created their daily share of new series (answered 429)."""

    field = "symbol"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def bind(user_id: int | None) -> None:
    """From here to the end of the enclosing ``requested_by`` block, new series count against
    ``user_id`` (a view binds its authenticated user inside the block its dispatch opened)."""
    _requester.set(user_id)


@contextlib.contextmanager
def requested_by(user_id: int | None) -> Iterator[None]:
    """New series created inside count against ``user_id`` (``None``: not limited)."""
    token = _requester.set(user_id)
    try:
        yield
    finally:
        _requester.reset(token)


def _day_ends(now: datetime) -> float:
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (tomorrow - now).total_seconds()


def charge_new_series(exchange: str, symbol: str, timeframe: str) -> None:
    """Count one new series against the requesting user; raise when over the limit."""
    user_id = _requester.get()
    limit = settings.MARKET_NEW_SERIES_PER_USER
    if user_id is None or limit <= 0:
        return
    now = datetime.now(UTC)
    key = f"md:newseries:{user_id}:{now:%Y%m%d}"
    ttl = _day_ends(now)
    try:
        store = caches["default"]
        store.add(key, 0, timeout=int(ttl) + 60)
        used = store.incr(key)
        if not isinstance(used, int):  # a backend that swallows its errors answers None
            raise TypeError(used)
    except Exception:  # any cache failure: keep the limit in this process instead
        with _local_lock:
            for stale in [k for k in _local if not k.endswith(f"{now:%Y%m%d}")]:
                del _local[stale]
            used = _local[key] = _local.get(key, 0) + 1
    if used > limit:
        raise SeriesQuotaExceeded(
            f"You opened {limit} new market data series today (the limit per user): "
            f"{symbol} {timeframe} is not stored yet. Series already stored stay readable; "
            "try again tomorrow (UTC) or ask an operator to raise MARKET_NEW_SERIES_PER_USER.",
            retry_after=ttl,
        )
