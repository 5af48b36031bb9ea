"""``Authorization: Token <key>`` against hashed, expiring tokens: one query per request."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from accounts.models import ApiToken
from accounts.services import digest_of, token_ttl

KEYWORD = b"token"
MAX_KEY_LENGTH = 100


class TokenAuthentication(BaseAuthentication):
    """The token row and its user in one query (``digest`` is unique). Sliding expiry writes
    the new expiry at most once per refresh interval (a tenth of the TTL, at most an hour), not
    on every request."""

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD:
            return None
        if len(parts) != 2 or len(parts[1]) > MAX_KEY_LENGTH:
            raise exceptions.AuthenticationFailed("Invalid token header: use 'Token <key>'.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        token = ApiToken.objects.select_related("user").filter(digest=digest_of(key)).first()
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid token.")
        now = timezone.now()
        if token.expires_at <= now:
            token.delete()
            raise exceptions.AuthenticationFailed("Token expired: log in again.")
        if settings.API_TOKEN_SLIDING:
            ttl = token_ttl()
            interval = min(ttl / 10, timedelta(hours=1))
            if token.expires_at < now + ttl - interval:
                token.expires_at = now + ttl
                ApiToken.objects.filter(pk=token.pk).update(expires_at=token.expires_at)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return "Token"
