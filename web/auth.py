"""Who is on the other end of a websocket: the page's session cookie, or an API token.

- **Session** (the page): Django's session cookie, read by Channels' cookie and session
  middleware. Browsers send cookies with cross-site websocket handshakes too, so a session is
  accepted only when the handshake's ``Origin`` is this very host (no cross-site socket hijacking).
- **Token** (any other client): ``Authorization: Token <key>``, checked by the same DRF
  authentication classes as the REST API (``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]``
  minus the session one), so a revoked or expired token is refused here exactly as there.
  No ``Origin`` is required: a token is not sent by a browser on its own.

The consumer re-checks the same credentials every ``WS_REAUTH_SECONDS`` (``still_authorized``)
and closes the socket when they are gone (logout, revoked token, password change, user disabled).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.http.request import validate_host
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.settings import api_settings


@dataclass(frozen=True)
class Credentials:
    mode: str  # "session" or "token"
    session_key: str | None = None
    authorization: str | None = None

    @property
    def session_digest(self) -> str | None:
        if self.session_key is None:
            return None
        return hashlib.sha256(self.session_key.encode()).hexdigest()


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def same_origin(scope: dict[str, Any]) -> bool:
    """The handshake's Origin names the host it was sent to, and that host is allowed."""
    origin, host = _header(scope, b"origin"), _header(scope, b"host")
    if not origin or not host:
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower():
        return False
    return validate_host(parts.hostname or "", settings.ALLOWED_HOSTS)


def token_user(authorization: str) -> Any | None:
    """The user a token header authenticates with the REST API's own classes, or None."""
    django_request = HttpRequest()
    django_request.META["HTTP_AUTHORIZATION"] = authorization
    request = Request(django_request)
    for authentication_class in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if issubclass(authentication_class, SessionAuthentication):
            continue
        try:
            result = authentication_class().authenticate(request)
        except APIException:  # AuthenticationFailed: bad, revoked or expired
            return None
        if result is not None:
            user = result[0]
            return user if getattr(user, "is_active", False) else None
    return None


def session_user(session_key: str) -> Any | None:
    """The session's user, loaded afresh (a logged-out or expired session has none).

    ``django.contrib.auth.get_user`` also checks the session's password hash, so a password change
    logs the socket out as it logs the browser out.
    """
    from importlib import import_module

    from django.contrib.auth import get_user as django_get_user

    engine = import_module(settings.SESSION_ENGINE)
    request = HttpRequest()
    request.session = engine.SessionStore(session_key)
    user = django_get_user(request)
    return user if user.is_authenticated else None


@database_sync_to_async
def still_authorized(credentials: Credentials, user_id: int) -> bool:
    if credentials.mode == "token":
        user = token_user(credentials.authorization or "")
    else:
        user = session_user(credentials.session_key or "")
    return user is not None and user.pk == user_id


class WebsocketAuthMiddleware(BaseMiddleware):
    """Sets ``scope["user"]`` (AnonymousUser when neither credential holds) and
    ``scope["credentials"]`` for the consumer's re-checks."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        scope["user"] = AnonymousUser()
        scope["credentials"] = None
        authorization = _header(scope, b"authorization")
        if authorization:
            user = await database_sync_to_async(token_user)(authorization)
            if user is not None:
                scope["user"] = user
                scope["credentials"] = Credentials(mode="token", authorization=authorization)
        elif same_origin(scope):
            user = await get_user(scope)
            session_key = scope["session"].session_key
            if user.is_authenticated and session_key:
                scope["user"] = user
                scope["credentials"] = Credentials(mode="session", session_key=session_key)
        return await super().__call__(scope, receive, send)


def websocket_auth(inner: Any) -> Any:
    """Cookies, then the session, then who it is."""
    return CookieMiddleware(SessionMiddleware(WebsocketAuthMiddleware(inner)))
