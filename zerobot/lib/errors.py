"""The base of the errors a domain refuses a request with; ``zerobot.lib.api`` renders them.

Apps subclass ``DomainError`` (``trading.errors``); this module knows none of them.
"""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses. ``status_code`` is the HTTP status it maps to, ``code`` the
    error's machine-readable name, ``field`` the request field at fault (if one is),
    ``retry_after`` the seconds a client should wait before trying again (a ``Retry-After``
    header; for refusals that pass, such as an unavailable venue)."""

    status_code = 400
    code = "invalid"
    retry_after: int | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
