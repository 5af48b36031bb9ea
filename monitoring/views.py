"""Health probes, Prometheus /metrics and the admin monitoring dashboard."""

from __future__ import annotations

import ipaddress
import logging
import os
import uuid
from functools import lru_cache
from time import perf_counter
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from monitoring import dashboard, metrics, pool

logger = logging.getLogger("zerobot.monitoring")
# /readyz must answer well inside a probe's timeout, even when the pool is starved.
READY_DB_TIMEOUT_S = 2.0


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving; touches neither the database nor the cache."""
    return JsonResponse({"status": "ok", "pid": os.getpid()})


def _check_pools() -> tuple[dict[str, Any], dict[str, Any]]:
    """(database, pool) checks: SELECT 1 through each pool, unless the pool is exhausted."""
    found = pool.pools()
    if not found:  # SQLite: no pool
        start = perf_counter()
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as exc:
            return {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:300]}, {"ok": True}
        ms = round((perf_counter() - start) * 1000, 2)
        return {"ok": True, "ms": ms}, {"ok": True, "detail": "no connection pool configured"}
    database: dict[str, Any] = {"ok": True}
    pools: dict[str, Any] = {"ok": True}
    for alias, psycopg_pool in found.items():
        if not psycopg_pool.closed:
            stats = pool.monitor.sample(alias, psycopg_pool)
            exhausted = stats.exhausted
            pools[alias] = {"ok": not exhausted, **stats.as_dict()}
            if exhausted:
                pools["ok"] = database["ok"] = False
                database[alias] = {"ok": False, "detail": "not tried: the pool is exhausted"}
                continue
        else:
            pools[alias] = {"ok": True, "detail": "not opened yet"}
        start = perf_counter()
        try:
            psycopg_pool.open()
            with psycopg_pool.connection(timeout=READY_DB_TIMEOUT_S) as raw:
                raw.execute("SELECT 1")
        except Exception as exc:
            database["ok"] = False
            database[alias] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            database[alias] = {"ok": True, "ms": round((perf_counter() - start) * 1000, 2)}
    return database, pools


def _check_cache() -> dict[str, Any]:
    # The cache is fail-open (errors become misses), so a write read back is the only honest test.
    key, token = f"readyz:{os.getpid()}", uuid.uuid4().hex
    start = perf_counter()
    cache.set(key, token, 10)
    ok = cache.get(key) == token
    result: dict[str, Any] = {"ok": ok, "ms": round((perf_counter() - start) * 1000, 2)}
    if not ok:
        result["detail"] = "a value written to the cache could not be read back"
    return result


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Can this instance serve? The database reachable through a pool that is not exhausted;
    else 503. A failed cache check only degrades (200, ``"status": "degraded"``): every request
    still answers without the cache (misses compute), so taking every instance out of service
    during a Redis outage would turn a slowdown into an outage."""
    database, pools = _check_pools()
    cache_check = _check_cache()
    checks = {"database": database, "cache": cache_check, "pool": pools}
    for name, check in checks.items():
        metrics.READY_CHECK.labels(check=name).set(1 if check["ok"] else 0)
    ready = database["ok"] and pools["ok"]
    state = "not_ready" if not ready else "ready" if cache_check["ok"] else "degraded"
    return JsonResponse({"status": state, "checks": checks}, status=200 if ready else 503)


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


def metrics_allowed(request: HttpRequest) -> bool:
    """From METRICS_ALLOWED_NETWORKS (no database query), or a logged-in active staff user."""
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        address = None
    if address is not None and any(
        address in network for network in _networks(tuple(settings.METRICS_ALLOWED_NETWORKS))
    ):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponseForbidden(
            "Metrics are for staff, or for the networks in METRICS_ALLOWED_NETWORKS.",
            content_type="text/plain",
        )
    pool.sample_all()  # this process's figures are current; the other workers' are seconds old
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)


def dashboard_view(request: HttpRequest) -> HttpResponse:
    """/admin/monitoring/ (staff only: wrapped in admin.site.admin_view in urls.py)."""
    from django.contrib import admin

    window = request.GET.get("window", dashboard.DEFAULT_WINDOW)
    if window not in dashboard.WINDOWS:
        window = dashboard.DEFAULT_WINDOW
    context = {
        **admin.site.each_context(request),
        "title": "Monitoring",
        "is_nav_sidebar_enabled": False,  # the charts need the width
        "silk_enabled": settings.SILK_ENABLED,
        **dashboard.build(window),
    }
    return render(request, "monitoring/dashboard.html", context)
