"""The dashboard page and its login/logout. The page carries its first data (web/initial.py: the
bodies of the API requests its JavaScript makes at start, from the API views themselves); after
that every figure is read by the browser from the same REST endpoints as any client
(web/static/web/js/), and kept current by the websocket (web/consumers.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from accounts.backends import account_retry_after
from web.initial import initial_data, wants_initial
from zerobot.lib import throttle


class LoginView(auth_views.LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # The same budget as the API and admin logins (per client, fail-closed without Redis).
        verdict = throttle.hit("login", throttle.client_ip(request), settings.AUTH_THROTTLE_RATE)
        if not verdict.allowed:
            response = render(
                request,
                self.template_name,
                {"form": self.get_form_class()(request), "throttled": True,
                 "retry_after": verdict.retry_after},
                status=429,
            )  # fmt: skip
            response["Retry-After"] = str(verdict.retry_after)
            return response
        response = super().post(request, *args, **kwargs)
        wait = account_retry_after(request)
        if wait is not None:  # refused for the account (accounts.backends), whatever the password
            response = render(
                request,
                self.template_name,
                {"form": self.get_form_class()(request), "throttled": True, "retry_after": wait},
                status=429,
            )
            response["Retry-After"] = str(wait)
        return response


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
    initial = initial_data(request) if wants_initial(request) else None
    return render(request, "web/dashboard.html", {"config": config, "initial": initial})
