"""Candle timeframes: their length and the open times of their candles.

``Timeframe`` is the set of choices (bots store one, candles are keyed by one); this module also
gives their durations and alignment. Every timeframe divides a UTC day, so a candle usually
opens at a multiple of its length counted from the Unix epoch (midnight UTC for ``1d``). Some
venues align differently (daily candles opening at 16:00 UTC, midnight in UTC+8): the functions
take that series' ``offset`` in seconds (``offset_of`` reads it off a candle), 0 by default.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import models
from django.utils import timezone


class Timeframe(models.TextChoices):
    M1 = "1m", "1 minute"
    M5 = "5m", "5 minutes"
    M15 = "15m", "15 minutes"
    H1 = "1h", "1 hour"
    H4 = "4h", "4 hours"
    D1 = "1d", "1 day"


TIMEFRAME_SECONDS: dict[str, int] = {
    Timeframe.M1: 60,
    Timeframe.M5: 300,
    Timeframe.M15: 900,
    Timeframe.H1: 3_600,
    Timeframe.H4: 14_400,
    Timeframe.D1: 86_400,
}


def timeframe_seconds(timeframe: str) -> int:
    """Length of ``timeframe`` in seconds; ValueError naming the known ones otherwise."""
    try:
        return TIMEFRAME_SECONDS[timeframe]
    except KeyError:
        raise ValueError(
            f"{timeframe!r} is not a timeframe: use one of {', '.join(Timeframe.values)}."
        ) from None


def timeframe_delta(timeframe: str) -> timedelta:
    return timedelta(seconds=timeframe_seconds(timeframe))


def align(moment: datetime, timeframe: str, offset: int = 0) -> datetime:
    """Open time of the candle that contains ``moment`` (aware UTC)."""
    if timezone.is_naive(moment):
        raise ValueError("market data times must be timezone-aware (UTC).")
    step = timeframe_seconds(timeframe)
    seconds = (int(moment.timestamp()) - offset) // step * step + offset
    return datetime.fromtimestamp(seconds, tz=UTC)


def align_up(moment: datetime, timeframe: str, offset: int = 0) -> datetime:
    """Open time of the first candle that opens at or after ``moment``."""
    start = align(moment, timeframe, offset)
    return start if start == moment else start + timeframe_delta(timeframe)


def offset_of(moment: datetime, timeframe: str) -> int:
    """How far (seconds) a candle opening at ``moment`` is from the UTC-epoch alignment."""
    return int(moment.timestamp()) % timeframe_seconds(timeframe)


def is_aligned(moment: datetime, timeframe: str, offset: int = 0) -> bool:
    return (moment.timestamp() - offset) % timeframe_seconds(timeframe) == 0


def last_closed_open_time(now: datetime, timeframe: str, offset: int = 0) -> datetime:
    """Open time of the newest candle that has closed at ``now``."""
    return align(now, timeframe, offset) - timeframe_delta(timeframe)


def utcnow() -> datetime:
    """The clock market data reads (one place for tests to pin it)."""
    return timezone.now()
