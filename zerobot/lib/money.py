"""Project-wide decimal precision, and the one helper that rounds to it.

Prices and quantities carry 12 decimal places (sub-cent coins such as SHIB trade at 1e-5 with
quantities in the millions); cash, fees and PnL carry 8 (a satoshi). ``float`` never touches money.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any

PRICE_MAX_DIGITS = 30  # 18 integer digits + 12 decimals
PRICE_DECIMAL_PLACES = 12
QUANTITY_MAX_DIGITS = 30
QUANTITY_DECIMAL_PLACES = 12
MONEY_MAX_DIGITS = 26  # 18 integer digits + 8 decimals
MONEY_DECIMAL_PLACES = 8
LEVERAGE_MAX_DIGITS = 6
LEVERAGE_DECIMAL_PLACES = 2

_EXPONENTS = {places: Decimal(1).scaleb(-places) for places in range(0, 19)}
# Enough digits that no product of a price and a quantity (30 + 30 digits) is ever rounded
# before we round it ourselves: use with decimal.localcontext(MONEY_CONTEXT) around arithmetic.
MONEY_CONTEXT = Context(prec=80, rounding=ROUND_HALF_EVEN)
MONEY_LIMIT = Decimal(10) ** (MONEY_MAX_DIGITS - MONEY_DECIMAL_PLACES)  # largest amount + 1e-8


class InvalidAmount(ValueError):
    """A value that cannot be money: NaN, infinity, or not a number at all."""


def to_decimal(value: Any) -> Decimal:
    """Convert without going through ``float`` binary rounding (floats are taken via ``str``)."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise InvalidAmount(f"{value!r} is not a number")
    elif isinstance(value, int | str):
        try:
            result = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise InvalidAmount(f"{value!r} is not a number") from None
    elif isinstance(value, float):
        result = Decimal(repr(value))
    else:
        raise InvalidAmount(f"{value!r} is not a number")
    if not result.is_finite():
        raise InvalidAmount(f"{value!r} is not a finite number")
    return result


def quantize(value: Any, places: int = MONEY_DECIMAL_PLACES) -> Decimal:
    """Round to ``places`` decimals, banker's rounding (no drift when summing many rounded values)."""
    try:
        return to_decimal(value).quantize(_EXPONENTS[places], context=MONEY_CONTEXT)
    except InvalidOperation:
        raise InvalidAmount(f"{value!r} has too many digits") from None


def fits_money(value: Decimal) -> bool:
    """Whether ``value`` fits a money column (18 integer digits)."""
    return -MONEY_LIMIT < value < MONEY_LIMIT


def money(value: Any) -> Decimal:
    return quantize(value, MONEY_DECIMAL_PLACES)


def price(value: Any) -> Decimal:
    return quantize(value, PRICE_DECIMAL_PLACES)
