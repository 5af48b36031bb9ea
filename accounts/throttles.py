"""DRF throttles for login and register on ``zerobot.lib.throttle`` (trusted client address,
atomic Redis counters, in-process fallback when Redis is unavailable)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from zerobot.lib import throttle


class _ScopeThrottle(BaseThrottle):
    scope = ""

    def allow_request(self, request: Any, view: Any) -> bool:
        verdict = throttle.hit(self.scope, throttle.client_ip(request), settings.AUTH_THROTTLE_RATE)
        self._wait = verdict.retry_after
        return verdict.allowed

    def wait(self) -> float | None:
        return self._wait


class LoginThrottle(_ScopeThrottle):
    """Shared with the admin login (accounts.views.admin_login): one budget of guesses."""

    scope = "login"


class RegisterThrottle(_ScopeThrottle):
    scope = "register"
