"""Test-only endpoints around the project's URLs: known query counts, a cache read, a slow query."""

from __future__ import annotations

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from monitoring.context import note_cache
from zerobot.urls import urlpatterns as project_urlpatterns

CACHED_KEY = "monitoring-test:cached"


def cached(request: HttpRequest) -> HttpResponse:
    """A response served from the cache: no database query once warm (the benchmark's case)."""
    body = cache.get(CACHED_KEY)
    note_cache("test", body is not None)
    if body is None:
        body = b'{"price": "101.25"}' * 50
        cache.set(CACHED_KEY, body, 300)
    return HttpResponse(body, content_type="application/json")


def queries(request: HttpRequest, n: int) -> JsonResponse:
    for _ in range(n):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    return JsonResponse({"queries": n})


def bot(request: HttpRequest, bot_id: int) -> JsonResponse:
    return JsonResponse({"bot": bot_id})


def slow(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.execute("SELECT pg_sleep(%s)", [0.08])
    return JsonResponse({"slept": True})


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


urlpatterns = [
    path("t/cached/", cached, name="t_cached"),
    path("t/queries/<int:n>/", queries, name="t_queries"),
    path("t/bots/<int:bot_id>/", bot, name="t_bot"),
    path("t/slow/", slow, name="t_slow"),
    path("t/boom/", boom, name="t_boom"),
    *project_urlpatterns,
]
