"""DRF plumbing shared by every API: orjson rendering, exact-decimal JSON parsing, error mapping.

Every 4xx/5xx under ``/api/`` has one JSON shape::

    {"detail": "limit must be between 10 and 1000 (got 5000).", "code": "invalid", "field": "limit",
     "errors": [{"detail": ..., "code": ..., "field": ...}, ...]}

``field`` is present when the error is about one parameter or body field (nested fields are
dotted: ``risk_params.stop_loss_pct``, ``symbols.0``); ``errors`` lists every problem of a
validation error, the first of which is repeated at the top. The same shape comes from DRF views
(``exception_handler``), from URLs no view matches (``not_found``), from Django's last-resort
handlers (``server_error``, ``bad_request``, ``permission_denied``) and from the request guard
(``zerobot.lib.middleware``).
"""

from __future__ import annotations

import json
import logging
import sys
from decimal import Decimal
from typing import Any

import orjson
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from zerobot.lib.errors import DomainError

logger = logging.getLogger("zerobot.api")
_ORJSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
API_PREFIX = "/api/"
# Deeper JSON is refused before it reaches a serializer: no payload of ours nests past 4 levels,
# and the stdlib parser would otherwise recurse until RecursionError (a 500) at ~1,000.
JSON_MAX_DEPTH = 32
RETRY_AFTER_SECONDS = 1

try:  # the pool's own timeout; Django wraps it as OperationalError on most paths, not all
    from psycopg_pool import PoolTimeout
except ImportError:  # pragma: no cover - psycopg is in requirements.txt
    PoolTimeout = OperationalError  # type: ignore[misc,assignment]

# Transient database failures: the pool is exhausted, a statement hit statement_timeout, the
# server restarts. The request can be retried; it must not look like a bug (500).
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Exact, positional: Decimal("0E-12") must read "0.000000000000", never "0E-12".
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class ORJSONRenderer(JSONRenderer):
    """orjson (Decimals as exact strings, no per-object Python hooks); times as ISO 8601 with Z."""

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, default=_default, option=_ORJSON_OPTIONS)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def check_json_value(value: Any, max_depth: int = JSON_MAX_DEPTH) -> None:
    """Refuse nesting deeper than ``max_depth`` and strings with lone surrogates (``"\\ud800"``).

    A lone surrogate is valid JSON but not Unicode: it cannot be stored, logged or rendered
    (orjson refuses it), so it would turn the error message that echoes it into a 500.
    Iterative, so a hostile body cannot exhaust the stack here either.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    raise ParseError(
                        "JSON parse error - strings must be valid Unicode (no lone surrogates)."
                    ) from None
            continue
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise ParseError(f"JSON parse error - nested deeper than {max_depth} levels.")
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


class DecimalJSONParser(JSONParser):
    """JSON numbers with a fraction become ``Decimal`` (never ``float``); NaN/Infinity are refused,
    so are bodies nested deeper than ``JSON_MAX_DEPTH`` and lone surrogates."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", "utf-8")
        try:
            value = json.loads(
                stream.read().decode(encoding), parse_float=Decimal, parse_constant=_reject_constant
            )
        except (ValueError, UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:
            raise ParseError(
                f"JSON parse error - nested deeper than {JSON_MAX_DEPTH} levels."
            ) from None
        check_json_value(value)
        return value


# --- Error shape --------------------------------------------------------------------------------


def error_body(
    detail: str, code: str, field: str | None = None, errors: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": detail, "code": code}
    if field:
        body["field"] = field
    if errors is not None:
        body["errors"] = errors
    return body


def _flatten(detail: Any, path: str | None = None) -> list[dict[str, str]]:
    """DRF's nested ``{"field": ["msg"], "nested": {"0": ["msg"]}}`` as a flat list of errors."""
    if isinstance(detail, dict):
        # Already in our shape (raised by a view that builds it, e.g. the market data API).
        if isinstance(detail.get("detail"), str) and set(detail) <= {"detail", "code", "field"}:
            field = detail.get("field") or path
            return [error_body(str(detail["detail"]), str(detail.get("code", "invalid")), field)]
        out: list[dict[str, str]] = []
        for key, value in detail.items():
            name = None if key in ("non_field_errors", "detail") else str(key)
            child = name if path is None else (path if name is None else f"{path}.{name}")
            out += _flatten(value, child)
        return out
    if isinstance(detail, list):
        out = []
        for item in detail:
            out += _flatten(item, path)
        return out
    code = getattr(detail, "code", None) or "invalid"
    return [error_body(str(detail), str(code), path)]


def unavailable_response(exc: BaseException | None = None) -> Response:
    logger.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    return Response(
        error_body("The service is busy or restarting; retry shortly.", "unavailable"),
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Domain errors become 4xx with their message; an unavailable database is a 503 with
    Retry-After, never a 500; every DRF error gets the one shape (module docstring)."""
    if isinstance(exc, DomainError):
        retry = {} if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
        return Response(
            error_body(exc.message, exc.code, exc.field), status=exc.status_code, headers=retry
        )
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return unavailable_response(exc)
    # Imported here: rest_framework.views loads the DRF settings, which import this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's handler500 (server_error below) answers
    if isinstance(exc, ValidationError):
        errors = _flatten(exc.detail) or [error_body("Invalid input.", "invalid")]
        first = errors[0]
        response.data = error_body(first["detail"], first["code"], first.get("field"), errors)
    elif isinstance(exc, APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = error_body(str(exc.detail), code)
    return response


# --- Django's last-resort handlers (urls.py handler400/403/404/500) -----------------------------


def _json_error(status_code: int, detail: str, code: str, **headers: str) -> JsonResponse:
    response = JsonResponse(error_body(detail, code), status=status_code)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def unavailable(request: HttpRequest, exc: BaseException | None = None) -> HttpResponse:
    """503 + Retry-After for a database outage or an exhausted pool, on any page (admin too)."""
    logger.warning("database unavailable on %s: %s: %s", request.path, type(exc).__name__, exc)
    retry = str(RETRY_AFTER_SECONDS)
    if is_api(request):
        return _json_error(503, "The service is busy or restarting; retry shortly.",
                           "unavailable", Retry_After=retry)  # fmt: skip
    response = HttpResponse(
        "The service is busy or restarting; retry shortly.\n", status=503,
        content_type="text/plain; charset=utf-8",
    )  # fmt: skip
    response["Retry-After"] = retry
    return response


def not_found(request: Any, exception: Exception | None = None) -> HttpResponse:
    """404 for URLs that match no route: JSON under /api/ (clients parse it), HTML elsewhere."""
    from django.views.defaults import page_not_found

    if is_api(request):
        return _json_error(404, "Not found.", "not_found")
    return page_not_found(request, exception)


def server_error(request: Any) -> HttpResponse:
    """handler500. Called while the exception is being handled: an unavailable database
    (raised outside a view, e.g. by a middleware saving the session) is still a 503."""
    from django.views.defaults import server_error as django_server_error

    exc = sys.exc_info()[1]
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return unavailable(request, exc)
    if is_api(request):
        return _json_error(500, "Internal server error.", "server_error")
    return django_server_error(request)


def bad_request(request: Any, exception: Exception | None = None) -> HttpResponse:
    from django.views.defaults import bad_request as django_bad_request

    if is_api(request):
        return _json_error(400, "Bad request.", "bad_request")
    return django_bad_request(request, exception)


def permission_denied(request: Any, exception: Exception | None = None) -> HttpResponse:
    from django.views.defaults import permission_denied as django_permission_denied

    if is_api(request):
        return _json_error(403, "You do not have permission to perform this action.",
                           "permission_denied")  # fmt: skip
    return django_permission_denied(request, exception)
