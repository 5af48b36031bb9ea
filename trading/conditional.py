"""Conditional and cached dashboard reads: an ETag from the user's data version, ``304 Not
Modified`` for a client that already has the body, and a per-user response cache for repeats.

The tag and the cache key hash the user, their data version (``trading/dataversion.py``, moved
by every committed write of theirs), the current ``DASHBOARD_CACHE_SECONDS`` time bucket (the
bodies' sliding windows, "the last 24 hours", move without a write: a body is at most that old
as to its window's edges, never as to a write), the path and the sorted query. A write therefore
invalidates every cached body and tag of its user at once, and nobody else's.

Only JSON responses with status 200 are cached (the browsable API and errors go through as
before), and nothing at all while the version is unknown (no Redis, or Redis failing).
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags
from rest_framework.request import Request

from trading import dataversion

CACHE_CONTROL = "private, no-cache"  # the browser keeps it, and revalidates every time


def _tag(request: Request, version: int, bucket: int) -> str:
    query = urlencode(sorted(request.query_params.lists()), doseq=True)
    ident = f"{request.user.pk}:{version}:{bucket}:{request.path}?{query}"
    return hashlib.blake2b(ident.encode(), digest_size=12).hexdigest()


def _headers(response: HttpResponse, etag: str) -> HttpResponse:
    response["ETag"] = etag
    response["Cache-Control"] = CACHE_CONTROL
    patch_vary_headers(response, ("Authorization", "Cookie"))
    return response


def conditional(view: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an APIView's ``get``: ETag, 304 on a matching If-None-Match, cached body on a
    repeat."""

    @functools.wraps(view)
    def get(self: Any, request: Request, *args: Any, **kwargs: Any) -> Any:
        seconds = settings.DASHBOARD_CACHE_SECONDS
        renderer = getattr(request, "accepted_renderer", None)
        if not seconds or getattr(renderer, "format", None) != "json":
            return view(self, request, *args, **kwargs)
        version = dataversion.current(request.user.pk)
        if version is None:
            return view(self, request, *args, **kwargs)
        digest = _tag(request, version, int(time.time() // seconds))
        etag = f'"{digest}"'
        wanted = parse_etags(request.headers.get("If-None-Match", ""))
        if etag in wanted or "*" in wanted:  # "*": any current body (RFC 9110 13.1.2)
            return _headers(HttpResponseNotModified(), etag)
        key = f"dash:{digest}"
        body = cache.get(key)
        if body is None:
            response = view(self, request, *args, **kwargs)
            if response.status_code != 200:
                return response
            body = renderer.render(response.data, renderer.media_type, {})
            cache.set(key, body, timeout=2 * seconds)
        return _headers(HttpResponse(body, content_type=renderer.media_type), etag)

    return get
