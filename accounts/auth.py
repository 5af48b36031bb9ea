"""``Authorization: Token <key>`` against hashed, expiring tokens: one Redis GET per request
(the token cache), or one query when it misses or Redis is unavailable."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from accounts import services, tokencache
from accounts.models import ApiToken
from accounts.services import digest_of, token_ttl

KEYWORD = b"token"
MAX_KEY_LENGTH = 100


@functools.cache
def _lookup_sql() -> tuple[str, int]:
    """The ORM's own statement for "the token with this digest and its user", compiled once
    (compiling it cost about a fifth of an authenticated request), and the token's column count.
    """
    query = ApiToken.objects.select_related("user").filter(digest="").order_by()[:1]
    sql, params = query.query.sql_with_params()
    assert params == ("",), params  # the digest is the only parameter
    return sql, len(ApiToken._meta.concrete_fields)


@functools.cache
def _fields() -> tuple[list[str], Any, list[str], list[int]]:
    """Token attnames, the user model, its attnames, and the positions of the user's columns
    kept in the token cache (all but the password hash: it never goes to Redis)."""
    token_fields = [f.attname for f in ApiToken._meta.concrete_fields]
    user_model = ApiToken._meta.get_field("user").related_model
    user_fields = [f.attname for f in user_model._meta.concrete_fields]
    cached = [i for i, name in enumerate(user_fields) if name != "password"]
    return token_fields, user_model, user_fields, cached


def _build(token_row: tuple, user_row: tuple, user_fields: list[str]) -> ApiToken:
    token_fields, user_model, _, _ = _fields()
    db = ApiToken.objects.db
    token = ApiToken.from_db(db, token_fields, token_row)
    # A cached user has no password field: it is deferred (loaded if something asks for it).
    token.user = user_model.from_db(db, user_fields, user_row)
    return token


_NOT_PREFETCHED: Any = object()


def token_with_user(digest: str, prefetched: Any = _NOT_PREFETCHED) -> ApiToken | None:
    """``ApiToken.objects.select_related("user").filter(digest=digest).first()``: from the token
    cache (``accounts/tokencache.py``, one Redis GET, or ``prefetched``: the raw entry or None
    that a read ahead of authentication got), else in one precompiled statement (``digest`` is
    unique: at most one row), then cached."""
    _, _, user_fields, cached_columns = _fields()
    if prefetched is _NOT_PREFETCHED:
        cached = tokencache.get(digest)
    else:
        try:
            cached = tokencache.loads(prefetched)
        except Exception:  # not an entry of ours (another version's format): a miss
            cached = None
    if cached is not None:
        token_row, user_row = cached
        return _build(token_row, user_row, [user_fields[i] for i in cached_columns])
    generation = tokencache.generation()  # before the database: a revocation after it wins
    sql, split = _lookup_sql()
    with connections[ApiToken.objects.db].cursor() as cursor:
        cursor.execute(sql, [digest])
        row = cursor.fetchone()
    if row is None:
        return None
    token_row, user_row = tuple(row[:split]), row[split : split + len(user_fields)]
    token = _build(token_row, user_row, user_fields)
    if generation is not None:
        kept = tuple(user_row[i] for i in cached_columns)
        tokencache.fill(digest, token.user_id, generation, token_row, kept)
    return token


def token_digest(request: Any) -> str | None:
    """The digest of a well-formed ``Authorization: Token <key>`` header, else None (what
    ``TokenAuthentication`` would refuse or leave to another authentication)."""
    parts = get_authorization_header(request).split()
    if len(parts) != 2 or parts[0].lower() != KEYWORD or len(parts[1]) > MAX_KEY_LENGTH:
        return None
    try:
        return digest_of(parts[1].decode("ascii"))
    except UnicodeDecodeError:
        return None


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
        digest = digest_of(key)
        prefetched = getattr(request._request, tokencache.PREFETCHED, None)
        if prefetched is not None and prefetched[0] == digest:
            token = token_with_user(digest, prefetched[1])
        else:
            token = token_with_user(digest)
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid token.")
        now = timezone.now()
        if token.expires_at <= now:
            services.token_revoke(token=token)
            raise exceptions.AuthenticationFailed("Token expired: log in again.")
        if settings.API_TOKEN_SLIDING:
            ttl = token_ttl()
            interval = min(ttl / 10, timedelta(hours=1))
            if token.expires_at < now + ttl - interval:
                token.expires_at = now + ttl
                ApiToken.objects.filter(pk=token.pk).update(expires_at=token.expires_at)
                tokencache.forget_token(token.digest)  # the next lookup reads the new expiry
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return "Token"
