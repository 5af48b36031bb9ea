"""Query-parameter parsing for API views: every bad value is a 400 naming the parameter.

Hand-written rather than a DRF Serializer per view: these run on every dashboard request, and a
few typed functions cost microseconds where a serializer costs ~0.1 ms.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from zerobot.lib.symbols import normalize_symbol

PERIODS: dict[str, timedelta | None] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}


_INTEGER = re.compile(r"-?[0-9]{1,19}")


def _error(name: str, message: str) -> ValidationError:
    return ValidationError({name: [message]})


def _raw(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def int_param(
    request: Request, name: str, *, default: int | None = None, minimum: int = 1,
    maximum: int | None = None,
) -> int | None:  # fmt: skip
    value = _raw(request, name)
    if value is None:
        return default
    # ASCII digits only ("²".isdigit() is true but int("²") fails) and bounded in length.
    if not _INTEGER.fullmatch(value):
        raise _error(name, f"{name} must be an integer (got {value[:40]!r}).")
    number = int(value)
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise _error(name, f"{name} must be {bounds} (got {number}).")
    return number


def id_param(request: Request, name: str) -> int | None:
    """A primary key: a positive integer within bigint range."""
    return int_param(request, name, minimum=1, maximum=2**63 - 1)


def choice_param(request: Request, name: str, choices: list[str] | tuple[str, ...], *,
                 default: str | None = None) -> str | None:  # fmt: skip
    value = _raw(request, name)
    if value is None:
        return default
    if value not in choices:
        raise _error(name, f"{name} must be one of {', '.join(choices)} (got {value!r}).")
    return value


def symbol_param(request: Request, name: str = "symbol") -> str | None:
    value = _raw(request, name)
    if value is None:
        return None
    try:
        return normalize_symbol(value)
    except ValueError as exc:
        raise _error(name, str(exc)) from None


def datetime_param(request: Request, name: str) -> datetime | None:
    """ISO 8601 (``2026-11-24T10:00:00Z``, with an offset, or a date); naive values are UTC."""
    value = _raw(request, name)
    if value is None:
        return None
    try:
        parsed = parse_datetime(value)
        if parsed is None and len(value) == 10:
            parsed = datetime.fromisoformat(value)
        if parsed is not None:
            # astimezone can overflow at the ends of the calendar (0001-01-01T00:00+01:00).
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    raise _error(
        name, f"{name} must be an ISO 8601 time such as 2026-11-24T10:00:00Z (got {value[:40]!r})."
    )


def period_param(request: Request, *, default: str = "30d") -> tuple[str, datetime | None]:
    """(period name, start instant or None for all history)."""
    name = choice_param(request, "period", list(PERIODS), default=default)
    assert name is not None
    span = PERIODS[name]
    return name, None if span is None else datetime.now(UTC) - span
