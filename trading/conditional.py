"""Conditional and cached dashboard reads (the five dashboard endpoints and the bot and trade
lists, ``GET /api/bots/`` and ``GET /api/trades/``): an ETag from the user's data version, ``304 Not
Modified`` for a client that already has the body, and a per-user response cache for repeats.

The tag and the cache key hash the user, their data version (``trading/dataversion.py``, moved
by every committed write of theirs), the current ``DASHBOARD_CACHE_SECONDS`` time bucket (the
bodies' sliding windows, "the last 24 hours", move without a write: a body is at most that old
as to its window's edges, never as to a write), the scheme and host (a page's links are
absolute), the path and the sorted query. A write therefore
invalidates every cached body and tag of its user at once, and nobody else's.

One Redis round trip per request (``Prefetch``): before DRF authenticates a token request, one
script reads, at one instant, the cached token (``accounts/tokencache.py``), its user's data
version and the body cached under that version, instead of three GETs one after the other (on a
loaded machine each round trip is a wake-up of Redis and a wait for the worker). The script
builds the version and body keys from the user id it read, so it needs a single Redis, not a
Redis Cluster. A request the prefetch cannot serve (session login, a token not cached yet)
takes the same steps one by one.

Only JSON responses with status 200 are cached (the browsable API and errors go through as
before), and nothing at all while the version is unknown (no Redis, or Redis failing).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags
from rest_framework.request import Request

from accounts import tokencache
from accounts.auth import token_digest
from trading import dataversion
from zerobot.lib.redis_client import shared_redis

logger = logging.getLogger("zerobot.cache")
_OUTAGE = {"cache_outage": True}  # one line per outage and minute (zerobot.lib.logfilters)
CACHE_CONTROL = "private, no-cache"  # the browser keeps it, and revalidates every time
PREFETCHED = "zb_dashboard_prefetched"

# KEYS: the token's entry, its user id. ARGV: version key prefix, body key prefix, body key
# suffix (bucket and path). Returns the entry, user id, version, body (nil where absent).
_PREFETCH = """
local entry = redis.call('GET', KEYS[1])
local uid = redis.call('GET', KEYS[2])
if not entry or not uid then return {entry, false, false, false} end
local version = redis.call('GET', ARGV[1] .. uid) or '0'
return {entry, uid, version, redis.call('GET', ARGV[2] .. uid .. ':' .. version .. ':' .. ARGV[3])}
"""
_scripts: dict[int, Any] = {}


class Prefetched(NamedTuple):
    user_id: int
    version: int
    bucket: int
    body: bytes | None


def _where(request: Request) -> str:
    """Scheme, host, path and sorted query: a list's ``next`` and ``previous`` links are
    absolute, so a body cached through one host name is never served through another."""
    query = urlencode(sorted(request.query_params.lists()), doseq=True)
    return f"{request.scheme}://{request.get_host()}{request.path}?{query}"


def _tag(request: Request, version: int, bucket: int) -> str:
    ident = f"{request.user.pk}:{version}:{bucket}:{_where(request)}"
    return hashlib.blake2b(ident.encode(), digest_size=12).hexdigest()


def _body_prefix() -> str:
    return f"{settings.CACHE_KEY_PREFIX}:dash:"


def _body_suffix(request: Request, bucket: int) -> str:
    where = hashlib.blake2b(_where(request).encode(), digest_size=12)
    return f"{bucket}:{where.hexdigest()}"


def _body_key(request: Request, user_id: int, version: int, bucket: int) -> str:
    """``<prefix>:dash:<user>:<version>:<bucket>:<hash of host, path and sorted query>``."""
    return f"{_body_prefix()}{int(user_id)}:{version}:{_body_suffix(request, bucket)}"


def _cacheable(request: Request) -> int:
    """The bucket length in seconds, 0 when this request is not answered from the cache."""
    seconds = settings.DASHBOARD_CACHE_SECONDS
    renderer = getattr(request, "accepted_renderer", None)
    return seconds if seconds and getattr(renderer, "format", None) == "json" else 0


def prefetch(request: Request) -> None:
    """Token entry, data version and cached body in one script; the token goes to
    ``TokenAuthentication`` (``tokencache.PREFETCHED``), the rest to ``conditional``."""
    seconds = _cacheable(request)
    digest = token_digest(request) if seconds else None
    client = shared_redis() if digest is not None else None
    if client is None:
        return
    bucket = int(time.time() // seconds)
    try:
        script = _scripts.get(id(client))
        if script is None:
            script = _scripts[id(client)] = client.register_script(_PREFETCH)
        entry, user_id, version, body = script(
            keys=[tokencache.entry_key(digest), tokencache.user_id_key(digest)],
            args=[dataversion.key_prefix(), _body_prefix(), _body_suffix(request, bucket)],
        )
    except Exception as exc:  # Redis failing: every step again on its own (each a miss)
        logger.warning("dashboard prefetch unavailable: %s", exc, extra=_OUTAGE)
        return
    setattr(request._request, tokencache.PREFETCHED, (digest, entry))
    if user_id is not None:
        found = Prefetched(int(user_id), int(version), bucket, body)
        setattr(request._request, PREFETCHED, found)


class Prefetch:
    """Mixin for an APIView whose ``get`` is ``@conditional``: ``prefetch`` before DRF
    authenticates (content negotiation has run: the renderer is known). On a viewset, only
    for the ``prefetch_actions`` that are ``@conditional`` (a write gets no body prefetched)."""

    prefetch_actions: tuple[str, ...] | None = None  # None: every request (an APIView's get)

    def perform_authentication(self, request: Request) -> None:
        actions = self.prefetch_actions
        if actions is None or getattr(self, "action", None) in actions:
            prefetch(request)
        super().perform_authentication(request)  # type: ignore[misc]


def _headers(response: HttpResponse, etag: str) -> HttpResponse:
    response["ETag"] = etag
    response["Cache-Control"] = CACHE_CONTROL
    patch_vary_headers(response, ("Authorization", "Cookie"))
    return response


def _cached_body(key: str) -> bytes | None:
    try:
        client = shared_redis()
        return None if client is None else client.get(key)
    except Exception as exc:
        logger.warning("dashboard cache unavailable: %s", exc, extra=_OUTAGE)
        return None


def _store(key: str, body: bytes, seconds: int) -> None:
    try:
        client = shared_redis()
        if client is not None:
            client.set(key, body, ex=2 * seconds)
    except Exception as exc:
        logger.warning("dashboard body not cached: %s", exc, extra=_OUTAGE)


def conditional(view: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an APIView's ``get``: ETag, 304 on a matching If-None-Match, cached body on a
    repeat."""

    @functools.wraps(view)
    def get(self: Any, request: Request, *args: Any, **kwargs: Any) -> Any:
        seconds = _cacheable(request)
        if not seconds:
            return view(self, request, *args, **kwargs)
        found: Prefetched | None = getattr(request._request, PREFETCHED, None)
        prefetched = found is not None and found.user_id == request.user.pk
        if prefetched:
            version, bucket = found.version, found.bucket
        else:
            version = dataversion.current(request.user.pk)
            if version is None:
                return view(self, request, *args, **kwargs)
            bucket = int(time.time() // seconds)
        etag = f'"{_tag(request, version, bucket)}"'
        wanted = parse_etags(request.headers.get("If-None-Match", ""))
        if etag in wanted or "*" in wanted:  # "*": any current body (RFC 9110 13.1.2)
            return _headers(HttpResponseNotModified(), etag)
        renderer = request.accepted_renderer
        key = _body_key(request, request.user.pk, version, bucket)
        body = found.body if prefetched else _cached_body(key)
        if body is None:
            response = view(self, request, *args, **kwargs)
            if response.status_code != 200:
                return response
            body = renderer.render(response.data, renderer.media_type, {})
            _store(key, body, seconds)
        return _headers(HttpResponse(body, content_type=renderer.media_type), etag)

    return get
