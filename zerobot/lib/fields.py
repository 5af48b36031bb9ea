"""Model fields for money, prices and quantities, with the project-wide precision of ``money``.

Both apps store these amounts (trading's ledger, market data's candles), so their definitions
live here rather than in either app.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from zerobot.lib.money import (
    MONEY_DECIMAL_PLACES,
    MONEY_MAX_DIGITS,
    PRICE_DECIMAL_PLACES,
    PRICE_MAX_DIGITS,
    QUANTITY_DECIMAL_PLACES,
    QUANTITY_MAX_DIGITS,
)


def MoneyField(**kwargs: Any) -> models.DecimalField:  # noqa: N802 - reads like a field class
    """Cash, fees and PnL: 18 integer digits and 8 decimals."""
    return models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, **kwargs
    )


def PriceField(**kwargs: Any) -> models.DecimalField:  # noqa: N802
    """Prices: 18 integer digits and 12 decimals."""
    return models.DecimalField(
        max_digits=PRICE_MAX_DIGITS, decimal_places=PRICE_DECIMAL_PLACES, **kwargs
    )


def QuantityField(**kwargs: Any) -> models.DecimalField:  # noqa: N802
    """Quantities and volumes: 18 integer digits and 12 decimals."""
    return models.DecimalField(
        max_digits=QUANTITY_MAX_DIGITS, decimal_places=QUANTITY_DECIMAL_PLACES, **kwargs
    )
