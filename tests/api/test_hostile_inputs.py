"""Hostile input over every route (generated from the URL resolver): 0 responses >= 500.

Each route is requested as a staff user (so the admin and Silk reach their views) with its ids
filled with the user's own objects, an out-of-range id and, under /api/, the other trailing-slash
spelling; then with every hostile query string (GET) and every hostile body (POST, and PATCH
under /api/). Under /api/ an error must also have the one JSON shape.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import Client

from tests.api.routes import all_routes
from tests.ledger import assert_ledger_holds
from trading.models import Bot, Position, Trade
from trading.tests.conftest import seed_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

HUGE_ID = "99999999999999999999"


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


QUERIES = [
    "page=0&limit=9", "page=99999999999999999999&limit=99999999999999999999", "limit=-1&page=1.5",
    "cursor=" + _cursor("2026-01-01T00:00:00+20:00|1"),  # offset beyond PostgreSQL's +-15:59
    "cursor=" + _cursor("0001-01-01T00:00:00+01:00|1"), "cursor=%00", "cursor=" + "A" * 10_000,
    "bot=%00&symbol=a%00b&q=a%00b", "symbol=" + "B" * 10_000 + "/USDT",
    "executed_after=2026-01-01T00:00:00%2B23:59&executed_at__gte=2026-01-01T00:00:00%2B23:59",
    "executed_at__gte=2026-01-01%2000:00:00%2B23:59&id__exact=" + HUGE_ID,  # admin filters
    "points=NaN&period=Infinity&bot=1e400", "period=%ED%A0%80&side=%F0%9F%92%A9", "o=99&e=1&p=-1",
]  # fmt: skip
JSON_BODIES: list[tuple[bytes, str]] = [
    (b"[" * 100_000 + b"]" * 100_000, "application/json"),  # deep
    (b'{"name": "' + b"x" * 900_000 + b'"}', "application/json"),  # huge, under the body limit
    (b'{"name": "\\ud800", "strategy": "\\udfff", "x\\ud800": 1}', "application/json"),
    (b'{"initial_capital": NaN, "quantity": Infinity, "price": -Infinity}', "application/json"),
    (b'{"name": "a\\u0000b", "symbols": ["BTC/USDT\\u0000"]}', "application/json"),
    (json.dumps({"name": "n" * 10_000, "symbols": ["S" * 10_000]}).encode(), "application/json"),
    (b'{"quantity": 1e999999, "price": 1e-999999, "initial_capital": 123456789e99}',
     "application/json"),
    (b'{"name": "x"}', "application/json; charset=rot13"),
    (b'{"name": "x"}', "application/json; charset=utf-32"),
    (b"\xff\xfe\x00garbage", "application/json"),
    (b"<xml/>", "application/xml"),
    (b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\x00\r\n--b--", "multipart/form-data"),
    (b"name=%00&password=%ED%A0%80", "application/x-www-form-urlencoded"),
    (b"x" * (1024 * 1024 + 1), "application/json"),  # over REQUEST_MAX_BODY_BYTES
]  # fmt: skip


@pytest.fixture
def staff_client(db: Any) -> tuple[Client, dict[str, str]]:
    user = seed_user(bots=2)  # staff: the demo generator's demo user
    bot = Bot.objects.filter(owner=user).order_by("id").first()
    ids = {
        "bot": str(bot.pk),
        "position": str(Position.objects.filter(owner=user).order_by("id").first().pk),
        "trade": str(Trade.objects.filter(owner=user).order_by("id").first().pk),
    }
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client, ids


def _values(route: Any, ids: dict[str, str], id_value: str | None = None) -> dict[str, str]:
    own = ids.get(route.kind, ids["bot"])
    return {name: id_value or own for name in route.params}


def _check(response: Any, where: str, failures: list[str]) -> None:
    if response.status_code >= 500:
        failures.append(f"{response.status_code} {where}: {response.content[:200]!r}")
    elif (
        response.status_code >= 400
        and where.split(" ", 1)[1].startswith("/api/")
        and response.get("Content-Type", "").startswith("application/json")
    ):
        body = response.json()
        if not isinstance(body, dict) or not {"detail", "code"} <= set(body):
            failures.append(f"{response.status_code} {where}: not the error shape: {body!r:.200}")


def test_no_route_answers_5xx_to_hostile_input(staff_client: tuple[Client, dict]) -> None:
    client, ids = staff_client
    routes = all_routes()
    assert len(routes) > 50 and any(r.template == "/api/bots/<int:pk>/start/" for r in routes)
    failures: list[str] = []
    tried = 0
    for route in routes:
        base = route.path(_values(route, ids))
        paths = [base]
        if route.params:
            paths.append(route.path(_values(route, ids, HUGE_ID)))
        if base.startswith("/api/"):
            paths.append(base[:-1] if base.endswith("/") else base + "/")
        for path in paths:
            for method in ("get", "post"):
                response = getattr(client, method)(path)
                tried += 1
                _check(response, f"{method.upper()} {path}", failures)
        for query in QUERIES:
            response = client.get(f"{base}?{query}")
            tried += 1
            _check(response, f"GET {base}?{query[:60]}", failures)
        methods = ("POST", "PATCH") if base.startswith("/api/") else ("POST",)
        for body, content_type in JSON_BODIES:
            for method in methods:
                # generic(): the body goes as these bytes, whatever the content type claims.
                response = client.generic(method, base, data=body, content_type=content_type)
                tried += 1
                _check(response, f"{method} {base} [{content_type}]", failures)
    print(f"\nhostile inputs: {tried} requests over {len(routes)} routes, {len(failures)} >= 500")
    assert not failures, "\n".join(failures[:40])
    assert_ledger_holds()
