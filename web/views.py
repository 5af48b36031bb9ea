"""The dashboard page and its login/logout. The page itself is static HTML: every figure is read
by the browser from the same REST endpoints as any client (web/static/web/js/), and kept current
by the websocket (web/consumers.py)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from rest_framework.throttling import SimpleRateThrottle


class _LoginThrottle(SimpleRateThrottle):
    """The API login's budget (the ``auth`` rate, per client address) for the page's form, in
    its own bucket."""

    scope = "auth"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": "page_login", "ident": self.get_ident(request)}


class LoginView(auth_views.LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        throttle = _LoginThrottle()
        if not throttle.allow_request(request, self):
            wait = throttle.wait()
            response = render(
                request,
                self.template_name,
                {"form": self.get_form_class()(request), "throttled": True,
                 "retry_after": int(wait or 60)},
                status=429,
            )  # fmt: skip
            response["Retry-After"] = str(int(wait or 60))
            return response
        return super().post(request, *args, **kwargs)


class LogoutView(auth_views.LogoutView):
    """POST only (a link cannot log anyone out). Deletes the session; its sockets are closed
    (web/signals.py)."""


@never_cache
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    config = {
        "user": {"id": user.pk, "username": user.get_username(), "is_staff": user.is_staff},
        "api": "/api/",
        "ws": "/ws/events",
        "login": reverse("web:login"),
    }
    return render(request, "web/dashboard.html", {"config": config})
