"""Auth API: register, login, logout, password change, me; and the throttled admin login.

Messages are neutral: a wrong password and an unknown user get the same answer, a taken username
and a taken e-mail too. Every login issues its own token (logging out on one device leaves the
others), and every attempt counts against the client's ``AUTH_THROTTLE_RATE``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth import logout as session_logout
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import serializers as s
from accounts import services
from accounts.backends import account_retry_after
from accounts.models import ApiToken
from accounts.throttles import LoginThrottle, RegisterThrottle
from zerobot.lib import throttle
from zerobot.lib.api import error_body
from zerobot.lib.schema import ERROR

WRONG_CREDENTIALS = "Wrong username or password."
ACCOUNT_THROTTLED = (
    "Too many failed logins for this account: logins of it wait for the window to end."
)


def _user(user: Any) -> dict[str, Any]:
    return {"id": user.pk, "username": user.username, "email": user.email,
            "is_staff": user.is_staff}  # fmt: skip


def _token_response(user: Any, issued: services.Issued, code: int = status.HTTP_200_OK) -> Response:
    body = {"token": issued.key, "expires_at": issued.expires_at, "user": _user(user)}
    return Response(body, status=code)


class RegisterView(APIView):
    """Create an account and return an API token."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [RegisterThrottle]

    @extend_schema(
        request=s.RegisterIn, responses={201: s.TokenOut, 400: ERROR, 429: ERROR}, tags=["auth"]
    )
    def post(self, request: Request) -> Response:
        data = s.RegisterIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user = services.user_register(
                username=data.validated_data["username"],
                email=data.validated_data.get("email", ""),
                password=data.validated_data["password"],
            )
        except services.IdentityUnavailable as exc:
            return Response(error_body(str(exc), "unavailable_identity"), status=400)
        return _token_response(user, services.token_create(user=user), status.HTTP_201_CREATED)


class LoginView(APIView):
    """Exchange a username (or e-mail) and password for a new API token."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [LoginThrottle]

    @extend_schema(
        request=s.LoginIn, responses={200: s.TokenOut, 400: ERROR, 429: ERROR}, tags=["auth"]
    )
    def post(self, request: Request) -> Response:
        data = s.LoginIn(data=request.data)
        data.is_valid(raise_exception=True)
        login = data.validated_data["username"]
        username = login
        if "@" in login:
            # uses accounts_user_email_ci_uniq: e-mails are unique case-insensitively
            match = (
                get_user_model()
                .objects.exclude(email="")
                .annotate(email_lower=Lower("email"))
                .filter(email_lower=login.lower())
                .values_list("username", flat=True)
                .first()
            )
            username = match or login
        # Django's backend runs the hasher for unknown users too: the same time either way.
        user = authenticate(request, username=username, password=data.validated_data["password"])
        if user is None and (wait := account_retry_after(request)) is not None:
            raise exceptions.Throttled(wait=wait, detail=ACCOUNT_THROTTLED)
        if user is None:
            return Response(error_body(WRONG_CREDENTIALS, "invalid_credentials"), status=400)
        return _token_response(user, services.token_create(user=user))


class LogoutView(APIView):
    """Revoke the token this request carries (a session is logged out)."""

    @extend_schema(request=None, responses={204: None, 401: ERROR}, tags=["auth"])
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, ApiToken):
            services.token_revoke(token=request.auth)
        else:
            session_logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    """Revoke every token of the account (every device)."""

    @extend_schema(request=None, responses={204: None, 401: ERROR}, tags=["auth"])
    def post(self, request: Request) -> Response:
        services.tokens_revoke_all(user_id=request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(APIView):
    """Change the password: every token of the account is revoked; the response has a new one."""

    throttle_classes = [LoginThrottle]  # old_password is a guess too

    @extend_schema(
        request=s.PasswordChangeIn,
        responses={200: s.TokenOut, 400: ERROR, 401: ERROR, 429: ERROR},
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        data = s.PasswordChangeIn(data=request.data, context={"user": request.user})
        data.is_valid(raise_exception=True)
        issued = services.user_password_change(
            user=request.user, new_password=data.validated_data["new_password"]
        )
        return _token_response(request.user, issued)


class MeView(APIView):
    @extend_schema(responses={200: s.UserOut, 401: ERROR}, tags=["auth"])
    def get(self, request: Request) -> Response:
        return Response(_user(request.user))


@never_cache
def admin_login(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    """The admin's login page, with every POST counted against the same budget as the API
    login (``AUTH_THROTTLE_RATE`` per client, failing closed without Redis)."""
    if request.method == "POST":
        verdict = throttle.hit("login", throttle.client_ip(request), settings.AUTH_THROTTLE_RATE)
        if not verdict.allowed:
            response = HttpResponse(
                f"Too many login attempts; retry in {verdict.retry_after} s.\n", status=429,
                content_type="text/plain; charset=utf-8",
            )  # fmt: skip
            response["Retry-After"] = str(verdict.retry_after)
            return response
    response = admin.site.login(request, **kwargs)
    wait = account_retry_after(request)
    if wait is not None:
        response = HttpResponse(
            f"{ACCOUNT_THROTTLED} Retry in {wait} s.\n", status=429,
            content_type="text/plain; charset=utf-8",
        )  # fmt: skip
        response["Retry-After"] = str(wait)
    return response
