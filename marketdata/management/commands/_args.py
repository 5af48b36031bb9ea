"""Argument parsing shared by the market data commands."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.core.management.base import CommandError

from marketdata.timeframes import Timeframe

_RELATIVE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def split_list(values: list[str] | None) -> list[str]:
    """``--symbols BTC/USDT ETH/USDT`` and ``--symbols BTC/USDT,ETH/USDT`` alike."""
    items: list[str] = []
    for value in values or []:
        items += [part.strip() for part in value.split(",") if part.strip()]
    return list(dict.fromkeys(items))


def timeframes_arg(values: list[str] | None, default: list[str]) -> list[str]:
    frames = split_list(values) or default
    unknown = [tf for tf in frames if tf not in Timeframe.values]
    if unknown:
        raise CommandError(
            f"--timeframes: {', '.join(unknown)} not known; use {', '.join(Timeframe.values)}."
        )
    return frames


def time_arg(value: str, *, now: datetime, option: str) -> datetime:
    """ISO 8601 (UTC when naive) or relative to now: ``90m``, ``12h``, ``30d``, ``2w``."""
    match = _RELATIVE.match(value.strip())
    if match:
        return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"{option} {value!r} is neither an ISO 8601 time nor relative like 30d / 12h."
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
