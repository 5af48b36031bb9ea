"""Symbol syntax shared by trading and market data: ccxt's unified market symbols.

``BASE/QUOTE`` (spot), ``BASE/QUOTE:SETTLE`` (perpetual swap), ``BASE/QUOTE:SETTLE-YYMMDD`` (dated
future), ``BASE/QUOTE:SETTLE-YYMMDD-STRIKE-C|P`` (option). Currency codes are letters and digits
with ``.``, ``_`` or ``-`` inside (``1000SHIB``, ``USDC.E``, ``BTC-2``); a settle code has no ``-``
(it would be read as the expiry's). Symbols are stored upper-case; exchanges' markets are looked
up case-insensitively (``marketdata.clients.ccxt_client``).
"""

from __future__ import annotations

import re

MAX_SYMBOL_LENGTH = 32  # the models' CharField(max_length=32)
_CODE = r"[A-Z0-9](?:[A-Z0-9._-]{0,18}[A-Z0-9])?"
_SETTLE = r"[A-Z0-9](?:[A-Z0-9._]{0,8}[A-Z0-9])?"
SYMBOL_RE = re.compile(
    rf"^(?P<base>{_CODE})/(?P<quote>{_CODE})"
    rf"(?::(?P<settle>{_SETTLE})(?:-(?P<expiry>\d{{6}})(?:-(?P<strike>\d+(?:\.\d+)?)-(?P<type>[CP]))?)?)?$"
)


def normalize_symbol(value: object) -> str:
    """Upper-case and validate; raise ValueError with a message a user can act on."""
    if not isinstance(value, str):
        raise ValueError("symbol must be a string such as 'BTC/USDT'.")
    symbol = value.strip().upper()
    if len(symbol) > MAX_SYMBOL_LENGTH or not SYMBOL_RE.match(symbol):
        raise ValueError(
            f"{value!r} is not a symbol: use ccxt's unified form, BASE/QUOTE such as 'BTC/USDT', "
            "'BTC/USDT:USDT' (perpetual), 'BTC/USDT:USDT-260327' (future) or "
            f"'BTC/USD:BTC-260327-60000-C' (option), at most {MAX_SYMBOL_LENGTH} characters."
        )
    return symbol


def perpetual_symbol(symbol: str) -> str:
    """The linear perpetual of a symbol's pair: ``BTC/USDT`` -> ``BTC/USDT:USDT``; a perpetual
    stays as is; a dated future or option maps to its pair's perpetual (funding rates exist only
    for perpetuals)."""
    match = SYMBOL_RE.match(normalize_symbol(symbol))
    assert match is not None
    settle = match["settle"] or match["quote"]
    return f"{match['base']}/{match['quote']}:{settle}"
