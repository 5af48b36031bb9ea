"""The isolation matrix, generated from the URL resolver.

- Every API route with an id, every method, as another user: 404 (never the object, never a
  change), and the owner's rows are unchanged afterwards.
- Every admin, Silk, /metrics and monitoring page: anonymous and non-staff users are refused
  (redirect to the login, 401 or 403), staff get the page.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from tests.api.routes import all_routes
from tests.ledger import assert_ledger_holds
from trading.models import Bot, Position, Trade
from trading.tests.conftest import seed_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
METHODS = ("get", "post", "put", "patch", "delete")


def _snapshot(user: Any) -> tuple:
    return (
        list(Bot.objects.filter(owner=user).order_by("id").values()),
        list(Position.objects.filter(owner=user).order_by("id").values()),
        Trade.objects.filter(owner=user).count(),
    )


def test_no_id_route_reaches_another_users_object() -> None:
    owner = seed_user(bots=2)
    ids = {
        "bot": Bot.objects.filter(owner=owner).order_by("id").first().pk,
        "position": Position.objects.filter(owner=owner, status="open").order_by("id").first().pk,
        "trade": Trade.objects.filter(owner=owner).order_by("id").first().pk,
    }
    before = _snapshot(owner)
    intruder = get_user_model().objects.create_user("intruder", password="intruder-pass-1")
    api = APIClient()
    api.force_authenticate(intruder)
    routes = [r for r in all_routes() if r.template.startswith("/api/") and r.params]
    assert routes, "no API route with an id"
    seen = []
    for route in routes:
        path = route.path({name: str(ids.get(route.kind, ids["bot"])) for name in route.params})
        for method in METHODS:
            body = {"quantity": "0.001", "name": "mine", "client_order_id": "steal-1"}
            response = getattr(api, method)(path, body, format="json")
            seen.append((method, path, response.status_code))
            # 405: the route has no such method, checked before any lookup.
            assert response.status_code in (404, 405), (method, path, response.content[:200])
    assert sum(1 for _, _, code in seen if code == 404) >= len(routes)
    assert _snapshot(owner) == before
    assert_ledger_holds()


def _pages() -> list[str]:
    pages = []
    for route in all_routes():
        if route.template.startswith(("/admin/", "/silk/", "/metrics")) and not route.params:
            if route.template.endswith(("logout/", "login/")) or "autocomplete" in route.template:
                continue
            pages.append(route.template)
    return pages


@pytest.mark.parametrize("who", ["anonymous", "plain", "staff"])
def test_staff_pages_are_staff_only(who: str) -> None:
    client = Client()
    if who != "anonymous":
        user = get_user_model().objects.create_user(who, password="pass-word-123", is_staff=who == "staff",
                                        is_superuser=who == "staff")  # fmt: skip
        client.force_login(user)
    pages = _pages()
    assert "/admin/monitoring/" in pages and "/metrics" in pages and "/silk/" in pages
    for page in pages:
        response = client.get(page, REMOTE_ADDR="203.0.113.9")  # outside any metrics network
        if who == "staff":
            # Add pages of the read-only ledger admins are refused by design (no add permission).
            allowed = (200, 403) if page.endswith("/add/") else (200,)
            assert response.status_code in allowed, (page, response.status_code)
        else:
            refused = response.status_code in (401, 403) or (
                response.status_code == 302 and "login" in response["Location"]
            )
            assert refused, (who, page, response.status_code)
