"""Input helpers shared by the services modules (not part of the public API)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from trading.errors import InvalidInput
from zerobot.lib.money import InvalidAmount, fits_money, quantize

ZERO = Decimal("0")
HUNDRED = Decimal(100)


def decimal_arg(
    value: Any, *, field: str, places: int, positive: bool = False, non_negative: bool = False
) -> Decimal:
    try:
        number = quantize(value, places)
    except (InvalidAmount, TypeError):
        raise InvalidInput(f"{field} must be a finite decimal number.", field=field) from None
    if positive and number <= 0:
        raise InvalidInput(f"{field} must be greater than 0.", field=field)
    if non_negative and number < 0:
        raise InvalidInput(f"{field} must not be negative.", field=field)
    return number


def optional_decimal(value: Any, *, field: str, places: int, positive: bool = False) -> Any:
    return (
        None if value is None else decimal_arg(value, field=field, places=places, positive=positive)
    )


def aware(value: datetime | None, *, field: str) -> datetime:
    if value is None:
        return timezone.now()
    if not isinstance(value, datetime) or timezone.is_naive(value):
        raise InvalidInput(f"{field} must be a timezone-aware (UTC) datetime.", field=field)
    # In UTC: the services take its .date() as the UTC day (max_trades_per_day, daily totals).
    return value.astimezone(UTC)


def require_fits(amount: Decimal, field: str, message: str) -> None:
    if not fits_money(amount):
        raise InvalidInput(message, field=field)


def client_order_id_arg(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("client_order_id must be a non-empty string.", field="client_order_id")
    value = value.strip()
    if len(value) > 64:
        raise InvalidInput(
            "client_order_id must be at most 64 characters.", field="client_order_id"
        )
    return value
