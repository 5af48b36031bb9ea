"""The request guard: input no view can handle is answered before routing, never with a 500.

- a ``charset`` that is not a text encoding (``application/json; charset=rot13``: Python knows
  the codec, so Django would accept it and fail decoding the body later) is a 415;
- a body larger than ``REQUEST_MAX_BODY_BYTES`` is a 413 (under WSGI the body is read only up to
  ``Content-Length``, so checking that header bounds what any parser reads);
- a NUL byte in the path or query string is a 400: PostgreSQL cannot compare or store it, so it
  would fail the query (admin list filters, search boxes, API filters alike);
- under ``/api/`` every route answers with and without its trailing slash (no redirect, which
  would drop a POST body, and no APPEND_SLASH RuntimeError), and an unknown URL is a JSON 404;
- an unavailable database (exhausted pool, statement timeout, restart) raised by a view is a
  503 with ``Retry-After`` on every page, the admin included.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

from zerobot.lib.api import UNAVAILABLE_ERRORS, error_body, is_api, unavailable


def _text_encoding(name: str) -> bool:
    try:
        return codecs.lookup(name)._is_text_encoding  # type: ignore[attr-defined]
    except LookupError:
        return False


class RequestGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.max_body = settings.REQUEST_MAX_BODY_BYTES

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        return self.get_response(request)

    def _error(self, request: HttpRequest, status: int, detail: str, code: str) -> HttpResponse:
        if is_api(request):
            return JsonResponse(error_body(detail, code), status=status)
        return HttpResponse(detail + "\n", status=status, content_type="text/plain; charset=utf-8")

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        meta = request.META
        content_type = meta.get("CONTENT_TYPE", "")
        if "charset" in content_type.lower():
            charset = request.content_params.get("charset", "")
            if not _text_encoding(charset):
                return self._error(
                    request, 415, f"Unsupported charset {charset[:40]!r}: send UTF-8.",
                    "unsupported_charset",
                )  # fmt: skip
        try:
            length = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django reads no body then
        if length > self.max_body:
            return self._error(
                request, 413, f"The request body is larger than {self.max_body} bytes.",
                "body_too_large",
            )  # fmt: skip
        query = meta.get("QUERY_STRING", "")
        if "\x00" in request.path_info or "%00" in query or "\x00" in query:
            return self._error(request, 400, "NUL bytes are not allowed in URLs.", "invalid")
        if is_api(request):
            return self._route_api(request)
        return None

    def _route_api(self, request: HttpRequest) -> HttpResponse | None:
        path = request.path_info
        urlconf = getattr(request, "urlconf", None)
        try:
            resolve(path, urlconf)
            return None
        except Resolver404:
            pass
        other = path[:-1] if path.endswith("/") else path + "/"
        try:
            resolve(other, urlconf)
        except Resolver404:
            return self._error(request, 404, "Not found.", "not_found")
        # Serve the other spelling in place (no redirect: a 301 loses a POST's body).
        request.path = request.path[: len(request.path) - len(path)] + other
        request.path_info = other
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        if isinstance(exception, UNAVAILABLE_ERRORS):
            return unavailable(request, exception)
        return None


class ContentSecurityPolicyMiddleware:
    """One static ``Content-Security-Policy`` header (settings.CONTENT_SECURITY_POLICY) on every
    HTML page but the exempt prefixes; a header is all this needs, so no library."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY
        self.exempt = tuple(settings.CONTENT_SECURITY_POLICY_EXEMPT)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            self.policy
            and "Content-Security-Policy" not in response.headers
            and not request.path_info.startswith(self.exempt)
        ):
            response.headers["Content-Security-Policy"] = self.policy
        return response


class MessageMiddleware(DjangoMessageMiddleware):
    """Django's message storage, but not under ``/api/``: no API view reads or writes messages
    (the admin does), and building the storage (a cookie signer per request) showed in a profile
    of a worker under the dashboard mix. The admin's check (admin.E406) accepts a subclass."""

    def process_request(self, request: HttpRequest) -> None:
        if not is_api(request):
            super().process_request(request)
