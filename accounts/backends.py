"""The authentication backend: Django's ``ModelBackend`` plus a limit on failed logins per
account, whatever address they come from.

The per-address throttle (``AUTH_THROTTLE_RATE``) stops one client; many clients (a botnet, or
rotating addresses) could still guess one account's password without end. So failures are also
counted per login name (case-folded, known account or not, so the limit tells nothing about who
is registered): past ``AUTH_ACCOUNT_FAILURE_RATE`` failures in a window, every login of that name
is refused until the window ends, the right password included, from every address. The price is
that someone can keep an account's logins refused by failing on purpose; existing tokens and
sessions keep working, and the window is short. Every login path (API, admin, page) goes through
``authenticate()``, so through this backend. Counted like the other throttles (Redis, in-process
fallback when it is down).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from zerobot.lib import throttle

SCOPE = "login-account"


def _ident(username: str) -> str:
    # Hashed: a login name in a Redis key would be data about users.
    return hashlib.sha256(username.casefold().encode()).hexdigest()[:32]


def account_retry_after(request: Any) -> int | None:
    """Seconds to wait when ``authenticate()`` refused this request's login for the account."""
    return getattr(request, "zerobot_account_throttled", None) if request is not None else None


class ThrottledModelBackend(ModelBackend):
    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if username is None:
            username = kwargs.get(self._username_field())
        if not username or password is None:
            return None
        ident, rate = _ident(str(username)), settings.AUTH_ACCOUNT_FAILURE_RATE
        # Counted before the password is checked and given back when it was right: checking
        # first and counting failures after let a concurrent burst from many addresses all pass
        # the check before any failure was counted.
        verdict = throttle.hit(SCOPE, ident, rate)
        if not verdict.allowed:
            if request is not None:
                request.zerobot_account_throttled = verdict.retry_after
            raise PermissionDenied("too many failed logins for this account")  # stops every backend
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            throttle.undo(SCOPE, ident, rate, verdict)
        return user

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD
