"""The symbol validator: every ccxt unified symbol, nothing else."""

from __future__ import annotations

import pytest

from zerobot.lib.symbols import normalize_symbol, perpetual_symbol


@pytest.mark.parametrize(
    ("given", "symbol", "perpetual"),
    [
        ("btc/usdt", "BTC/USDT", "BTC/USDT:USDT"),
        ("BTC/USDT:USDT", "BTC/USDT:USDT", "BTC/USDT:USDT"),
        ("BTC/USD:BTC", "BTC/USD:BTC", "BTC/USD:BTC"),  # inverse perpetual
        ("BTC/USDT:USDT-260327", "BTC/USDT:USDT-260327", "BTC/USDT:USDT"),  # dated future
        ("BTC/USD:BTC-260327-60000-C", "BTC/USD:BTC-260327-60000-C", "BTC/USD:BTC"),  # option
        ("ETH/USDC:USDC-250627-3000.5-P", "ETH/USDC:USDC-250627-3000.5-P", "ETH/USDC:USDC"),
        ("1000SHIB/USDT", "1000SHIB/USDT", "1000SHIB/USDT:USDT"),
        ("USDC.E/USDT", "USDC.E/USDT", "USDC.E/USDT:USDT"),  # dots
        (" sol/usdc ", "SOL/USDC", "SOL/USDC:USDC"),
    ],
)
def test_ccxt_unified_symbols_are_accepted(given: str, symbol: str, perpetual: str) -> None:
    assert normalize_symbol(given) == symbol
    assert perpetual_symbol(given) == perpetual


@pytest.mark.parametrize(
    "bad",
    ["BTCUSDT", "BTC/", "/USDT", "BTC/USDT:", "BTC/USDT:USDT-2603", "BTC/USDT:USDT-260327-C",
     "BTC//USDT", "BTC/USDT/ETH", "A" * 20 + "/" + "B" * 20, "", 42, None],
)  # fmt: skip
def test_anything_else_is_refused_with_a_usable_message(bad: object) -> None:
    with pytest.raises(ValueError, match="symbol"):
        normalize_symbol(bad)
