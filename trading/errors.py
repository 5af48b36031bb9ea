"""Domain errors raised by trading services; the API maps each to a 4xx with its message."""

from __future__ import annotations

from zerobot.lib.errors import DomainError


class TradingError(DomainError):
    """Base class: a request the trading domain refuses (status, code, message, field)."""


class InvalidInput(TradingError):
    code = "invalid"


class InsufficientCapital(TradingError):
    code = "insufficient_capital"


class InvalidState(TradingError):
    """E.g. closing a closed position or starting a stopped bot."""

    status_code = 409
    code = "invalid_state"


class RiskRefused(TradingError):
    """A risk rule of the bot refuses the order (trading.risk); the message names the rule."""

    status_code = 409
    code = "risk_refused"


class PriceUnavailable(TradingError):
    """No market price could be had for a close at market (exchange down, unknown symbol), or
    the venue could not say which symbols it lists. Passing: the client may retry shortly."""

    status_code = 503
    code = "price_unavailable"
    retry_after = 5
