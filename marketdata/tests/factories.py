"""Candles for tests, from the synthetic client (deterministic) or built by hand."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from marketdata import services
from marketdata.clients.base import Candle
from marketdata.clients.synthetic import SyntheticClient


def store_candles(
    *,
    symbol: str = "BTC/USDT",
    timeframe: str = "1h",
    limit: int = 500,
    exchange: str = "synthetic",
) -> list[Candle]:
    """The newest ``limit`` closed synthetic candles, ingested (returns them, oldest first)."""
    candles = SyntheticClient().fetch_ohlcv(symbol=symbol, timeframe=timeframe, limit=limit)
    services.candles_ingest(exchange=exchange, symbol=symbol, timeframe=timeframe, candles=candles)
    return candles


def candle(open_time: datetime, price: str = "100", volume: str = "1") -> Candle:
    p = Decimal(price)
    return Candle(open_time, p, p + 1, p - 1, p, Decimal(volume))
