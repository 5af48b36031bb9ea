"""Market data clients: the only code that talks to exchanges. ``get_client()`` picks the one
``MARKET_DATA_PROVIDER`` names (``synthetic``, the offline default, or ``ccxt``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from marketdata.clients.base import MarketDataClient


def get_client() -> MarketDataClient:
    """The configured client; one per process and configuration (ccxt objects are costly)."""
    return _build(
        settings.MARKET_DATA_PROVIDER,
        settings.EXCHANGE_ID,
        settings.EXCHANGE_TIMEOUT_MS,
        settings.EXCHANGE_DEADLINE_MS,
        settings.SYNTHETIC_MARKET_SEED,
        settings.MARKET_SYMBOLS,
    )


_deadline: ContextVar[float | None] = ContextVar("market_exchange_deadline", default=None)


def current_deadline() -> float | None:
    """The ``time.monotonic()`` by which the current computation's exchange calls must end."""
    return _deadline.get()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every exchange call inside shares one deadline (the earlier one if already inside one)."""
    at = time.monotonic() + seconds
    outer = _deadline.get()
    token = _deadline.set(at if outer is None else min(at, outer))
    try:
        yield
    finally:
        _deadline.reset(token)


@lru_cache(maxsize=4)
def _build(
    provider: str,
    exchange_id: str,
    timeout_ms: int,
    deadline_ms: int,
    seed: int,
    symbols: tuple[str, ...] = (),
) -> MarketDataClient:
    if provider == "synthetic":
        from marketdata.clients.synthetic import SyntheticClient

        return SyntheticClient(seed=seed, pairs=frozenset(symbols))
    if provider == "ccxt":
        from marketdata.clients.ccxt_client import CcxtClient  # imports ccxt (~0.4 s) only here

        try:
            return CcxtClient(
                exchange_id=exchange_id, timeout_ms=timeout_ms, deadline_ms=deadline_ms
            )
        except ValueError as exc:
            raise ImproperlyConfigured(f"EXCHANGE_ID={exchange_id!r}: {exc}") from None
    raise ImproperlyConfigured(
        f"MARKET_DATA_PROVIDER={provider!r} is not a provider: use 'synthetic' or 'ccxt'."
    )


def current_exchange_id() -> str:
    """The ``exchange`` the configured client stores data under, without building the client."""
    if settings.MARKET_DATA_PROVIDER == "synthetic":
        return "synthetic"
    return settings.EXCHANGE_ID
