"""A signed-in in-process client for developer commands (bench_api, explain_dashboard)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.test import Client

from accounts.services import token_create


class SecureClient(Client):
    """Requests as over HTTPS: with the production defaults (``SECURE_SSL_REDIRECT``) a plain
    request is a 301 to https://, not the page being measured."""

    def _base_environ(self, **request: Any) -> dict[str, Any]:
        return super()._base_environ(**{**request, "wsgi.url_scheme": "https"})


def token_client(username: str, *, session: bool = True) -> tuple[Any, Client]:
    """(user, client) where the client sends the user's API token and, with ``session``, is also
    logged in (admin pages use the session; the API uses the token)."""
    try:
        user = get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"No user {username!r}: run seed_demo first.") from None
    client = SecureClient(
        HTTP_AUTHORIZATION=f"Token {token_create(user=user).key}", HTTP_HOST="localhost"
    )
    if session:
        client.force_login(user)
    return user, client
