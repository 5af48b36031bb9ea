"""The request guard and the one error shape, case by case (the hostile table only proves no 500)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client
from rest_framework.test import APIClient

from trading.models import Bot
from trading.tests.conftest import seed_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def user(db: Any) -> Any:
    return seed_user(bots=1)


@pytest.fixture
def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_every_api_route_answers_with_and_without_its_trailing_slash(
    api: APIClient, user: Any
) -> None:
    bot = Bot.objects.filter(owner=user).first()
    Bot.objects.filter(pk=bot.pk).update(status="inactive")
    assert (
        api.post(f"/api/bots/{bot.pk}/start").json()["bot"]["status"] == "active"
    )  # README's spelling
    assert api.post(f"/api/bots/{bot.pk}/pause/").json()["bot"]["status"] == "paused"
    assert api.get("/api/dashboard/stats/").status_code == 200
    assert api.get("/api/bots").status_code == 200  # no redirect
    missing = api.get("/api/nothing-here/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_refusals_before_any_view(api: APIClient) -> None:
    rot13 = api.generic("POST", "/api/bots/", b'{"name": "x"}', "application/json; charset=rot13")
    assert rot13.status_code == 415 and rot13.json()["code"] == "unsupported_charset"
    big = api.generic("POST", "/api/bots/", b"x" * (1024 * 1024 + 1), "application/json")
    assert big.status_code == 413 and big.json()["code"] == "body_too_large"
    assert api.get("/api/trades/?symbol=a%00b").status_code == 400
    assert Client().get("/admin/login/?next=%00").status_code == 400


@pytest.mark.parametrize(
    "body",
    [b"[" * 5000 + b"]" * 5000, b'{"name": "\\ud800"}', b'{"initial_capital": NaN}'],
    ids=["deep", "lone-surrogate", "nan"],
)
def test_unparseable_json_is_a_400_in_the_error_shape(api: APIClient, body: bytes) -> None:
    response = api.generic("POST", "/api/bots/", body, "application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error" and response.json()["detail"]


def test_an_unavailable_database_is_503_with_retry_after_on_admin_pages(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.contrib.admin import AdminSite

    def down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("couldn't get a connection after 10.00 sec")

    client = Client()
    client.force_login(user)
    monkeypatch.setattr(AdminSite, "each_context", down)  # called by every admin page
    response = client.get("/admin/")
    assert response.status_code == 503 and response["Retry-After"] == "1"


def test_the_deploy_posture_is_on_without_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    from zerobot.tests.test_settings import load  # the real settings module, production env

    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        monkeypatch.delenv(name, raising=False)
    production = load(monkeypatch)
    assert production["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert production["SECURE_SSL_REDIRECT"] and production["SESSION_COOKIE_SECURE"]
    assert (
        production["CSRF_COOKIE_SECURE"]
        and "default-src 'self'" in production["CONTENT_SECURITY_POLICY"]
    )
    response = Client().get("/healthz")
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_api_routes_get_no_message_storage_and_the_admin_keeps_it(user: Any) -> None:
    from django.core.management import call_command

    api = APIClient()
    api.force_authenticate(user)
    response = api.get("/api/dashboard/stats")
    assert response.status_code == 200
    assert not hasattr(response.wsgi_request, "_messages")
    user.is_staff = user.is_superuser = True
    user.save()
    admin = Client()
    admin.force_login(user)
    page = admin.get("/admin/")
    assert page.status_code == 200 and hasattr(page.wsgi_request, "_messages")
    call_command("check", "--fail-level", "ERROR")  # admin.E406 accepts the subclass
