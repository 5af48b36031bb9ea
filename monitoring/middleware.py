"""Per-request query profiling: one JSON log line, slow-query lines, Server-Timing, metrics.

Every query a request runs goes through ``connection.execute_wrapper`` (whatever code issues it:
ORM, raw cursors, other middleware), so the count is that of the real statements; COMMIT and
ROLLBACK of ``atomic()`` blocks are not statements and are not counted. The request costs no
database write here: figures go to the Prometheus series and the in-process aggregator
(``monitoring.aggregation``), which a background thread writes every few seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from time import perf_counter
from typing import Any

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty

from monitoring import aggregation, metrics, pool
from monitoring.context import begin_request, end_request

request_logger = logging.getLogger("zerobot.requests")
slow_query_logger = logging.getLogger("zerobot.slow_queries")

UNRESOLVED = "unresolved"
_BOT_KWARGS = ("bot_id", "bot_pk", "bot")


class QueryRecorder:
    """An execute wrapper counting statements and their time; keeps the slow ones (SQL only)."""

    __slots__ = ("count", "slow", "slow_ms", "time_ms")

    def __init__(self, slow_ms: float) -> None:
        self.count = 0
        self.time_ms = 0.0
        self.slow_ms = slow_ms
        self.slow: list[tuple[str, float]] = []

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        start = perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = (perf_counter() - start) * 1000
            self.count += 1
            self.time_ms += elapsed
            if elapsed > self.slow_ms:
                self.slow.append((sql, elapsed))


def operation_name(request: HttpRequest) -> str:
    """The URL pattern's name (with its namespace, e.g. ``admin:index``), else the view's path."""
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else UNRESOLVED


MAX_ID = 2**63 - 1  # bigint: an id beyond it names no row, and would fail the batch's INSERT


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID:
        return value
    return None


def bot_id_of(request: HttpRequest) -> int | None:
    """The bot a request names: URL kwargs ``bot_id``/``bot_pk``/``bot``, ``pk`` of a ``bot-*``
    route (DRF's router names), else an integer ``?bot=``."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        for name in _BOT_KWARGS:
            if name in match.kwargs:
                return _int_or_none(match.kwargs[name])
        if "pk" in match.kwargs and (match.url_name or "").startswith(("bot-", "bot_")):
            return _int_or_none(match.kwargs["pk"])
    if "bot=" not in request.META.get("QUERY_STRING", ""):
        return None  # do not parse the query string for nothing
    return _int_or_none(request.GET.get("bot"))


def user_id_of(request: HttpRequest) -> int | None:
    """The authenticated user's id, only if something already loaded the user.

    ``request.user`` is lazy; loading it here would add the session and user queries to requests
    that never needed them (``/healthz``, cached endpoints).
    """
    user = request.__dict__.get("user")
    if user is None:
        return None
    wrapped = getattr(user, "_wrapped", None)
    if wrapped is empty:
        return None
    return getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None


class QueryProfilingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        pool.start_background()
        recorder = QueryRecorder(settings.SLOW_QUERY_MS)
        wrapped = [connections[alias] for alias in connections]
        for conn in wrapped:
            conn.execute_wrappers.append(recorder)
        token = begin_request()
        start = perf_counter()
        try:
            response = self.get_response(request)
        finally:
            duration_ms = (perf_counter() - start) * 1000
            cache_counts = end_request(token)
            for conn in wrapped:
                conn.execute_wrappers.remove(recorder)
        self._report(request, response, recorder, duration_ms, cache_counts)
        return response

    def _report(
        self,
        request: HttpRequest,
        response: HttpResponse,
        recorder: QueryRecorder,
        duration_ms: float,
        cache_counts: dict[tuple[str, str], int],
    ) -> None:
        operation = operation_name(request)
        method = metrics.normalize_method(request.method)
        match = request.resolver_match
        route = match.route if match is not None else ""
        hits = misses = 0
        for (_namespace, result), n in cache_counts.items():
            if result == "hit":
                hits += n
            else:
                misses += n

        timing = (
            f'db;dur={recorder.time_ms:.2f};desc="{recorder.count} queries", '
            f'cache;desc="{hits} hits {misses} misses", total;dur={duration_ms:.2f}'
        )
        existing = response.headers.get("Server-Timing")
        response.headers["Server-Timing"] = f"{existing}, {timing}" if existing else timing

        metrics.observe_request(
            operation=operation,
            method=method,
            status=response.status_code,
            duration_s=duration_ms / 1000,
            query_count=recorder.count,
            query_time_s=recorder.time_ms / 1000,
            slow_queries=len(recorder.slow),
        )
        user_id = user_id_of(request)
        bot_id = bot_id_of(request)
        now = time.time()
        aggregation.aggregator.record_request(
            aggregation.RequestRecord(
                at=now,
                operation=operation,
                method=method,
                route=route,
                path=request.path,
                status=response.status_code,
                duration_ms=duration_ms,
                query_count=recorder.count,
                query_time_ms=recorder.time_ms,
                user_id=user_id,
                bot_id=bot_id,
                cache_hits=hits,
                cache_misses=misses,
            )
        )
        if request_logger.isEnabledFor(logging.INFO):
            line = {
                "event": "request",
                "operation_name": operation,
                "method": method,
                "route": route,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(duration_ms, 3),
                "query_count": recorder.count,
                "query_time_ms": round(recorder.time_ms, 3),
                "user_id": user_id,
                "bot_id": bot_id,
                "cache_hits": hits,
                "cache_misses": misses,
            }
            if cache_counts:
                line["cache"] = {f"{ns}:{result}": n for (ns, result), n in cache_counts.items()}
            request_logger.info(line)
        # A view that serves several API bodies in one response (the dashboard page's first
        # data, web/initial.py) sets request.query_budget: MAX_QUERIES_PER_REQUEST per body.
        limit = getattr(request, "query_budget", None) or settings.MAX_QUERIES_PER_REQUEST
        if recorder.count > limit:
            request_logger.warning(
                {
                    "event": "too_many_queries",
                    "operation_name": operation,
                    "method": method,
                    "route": route,
                    "path": request.path,
                    "query_count": recorder.count,
                    "limit": limit,
                }
            )
        for sql, elapsed in recorder.slow:
            slow_query_logger.warning(
                {
                    "event": "slow_query",
                    "operation_name": operation,
                    "method": method,
                    "route": route,
                    "duration_ms": round(elapsed, 3),
                    "threshold_ms": recorder.slow_ms,
                    "sql": sql,
                }
            )
            aggregation.aggregator.record_slow_query(
                at=now, operation=operation, duration_ms=elapsed, sql=sql
            )
