"""Symbol syntax shared by trading and market data: ``BASE/QUOTE`` or perpetual ``BASE/QUOTE:SETTLE``."""

from __future__ import annotations

import re

SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,15}/[A-Z0-9]{1,10}(:[A-Z0-9]{1,10})?$")
MAX_SYMBOL_LENGTH = 32


def normalize_symbol(value: object) -> str:
    """Upper-case and validate; raise ValueError with a message a user can act on."""
    if not isinstance(value, str):
        raise ValueError("symbol must be a string such as 'BTC/USDT'.")
    symbol = value.strip().upper()
    if not SYMBOL_RE.match(symbol):
        raise ValueError(
            f"{value!r} is not a symbol: use BASE/QUOTE such as 'BTC/USDT' "
            "(or 'BTC/USDT:USDT' for a perpetual)."
        )
    return symbol


def perpetual_symbol(symbol: str) -> str:
    """The linear perpetual of a symbol: ``BTC/USDT`` -> ``BTC/USDT:USDT``; a perpetual stays as is."""
    symbol = normalize_symbol(symbol)
    if ":" in symbol:
        return symbol
    return f"{symbol}:{symbol.split('/')[1]}"
