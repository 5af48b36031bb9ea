"""/healthz, /readyz, /metrics, /silk/ and /admin/monitoring/: bodies, status codes, access."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.test.utils import override_settings
from prometheus_client.parser import text_string_to_metric_families
from psycopg_pool import ConnectionPool

from monitoring import pool, views

pytestmark = [pytest.mark.urls("monitoring.tests.urls"), pytest.mark.django_db]

OUTSIDE = "203.0.113.9"  # TEST-NET-3: not in METRICS_ALLOWED_NETWORKS


def _samples(body: bytes) -> dict[tuple[str, tuple], float]:
    """Every sample of a Prometheus text exposition, keyed by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_healthz_is_alive_without_database_or_cache(
    client: Client, django_assert_num_queries
) -> None:
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.postgres
@pytest.mark.redis
def test_readyz_checks_database_through_the_pool_cache_and_pool(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["default"]["ok"] is True
    assert body["checks"]["cache"]["ok"] is True
    assert body["checks"]["pool"]["ok"] is True


def _small_pool(max_size: int, **kwargs) -> ConnectionPool:
    from django.db import connection

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return ConnectionPool(
        kwargs=params, min_size=0, max_size=max_size, timeout=1, open=True, **kwargs
    )


@pytest.mark.postgres
@pytest.mark.redis
def test_readyz_is_503_when_the_pool_is_exhausted(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = _small_pool(2)
    held = [small.getconn(), small.getconn()]
    monkeypatch.setattr(pool, "pools", lambda: {"default": small})
    try:
        response = client.get("/readyz")
    finally:
        for conn in held:
            small.putconn(conn)
        small.close()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["pool"]["default"]["exhausted"] is True
    assert body["checks"]["database"]["default"]["detail"].startswith("not tried")


@pytest.mark.postgres
def test_readyz_is_503_when_the_database_is_unreachable(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = ConnectionPool(
        kwargs={"host": "127.0.0.1", "port": 1, "dbname": "x", "connect_timeout": 1},
        min_size=0,
        max_size=1,
        open=False,
    )
    monkeypatch.setattr(pool, "pools", lambda: {"default": down})
    monkeypatch.setattr(views, "READY_DB_TIMEOUT_S", 0.3)
    try:
        response = client.get("/readyz")
    finally:
        down.close()
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["default"]["ok"] is False


@pytest.mark.redis
def test_readyz_degrades_but_stays_ready_when_the_cache_is_unreachable(client: Client) -> None:
    caches = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    with override_settings(CACHES=caches):
        response = client.get("/readyz")
    # Requests still answer without the cache: out of service would make it an outage.
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["cache"]["ok"] is False and body["checks"]["database"]["ok"] is True
    samples = _samples(client.get("/metrics").content)
    assert samples[("zerobot_ready_check", (("check", "cache"),))] == 0
    assert samples[("zerobot_ready_check", (("check", "database"),))] == 1


@pytest.mark.postgres
@pytest.mark.redis
def test_metrics_is_prometheus_text_with_request_pool_and_cache_series(client: Client) -> None:
    client.get("/readyz")  # opens the pool
    client.get("/t/cached/")  # a miss
    client.get("/t/cached/")  # a hit
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = _samples(response.content)
    for name in (
        "zerobot_db_pool_max_size",
        "zerobot_db_pool_size",
        "zerobot_db_pool_available",
        "zerobot_db_pool_waiting",
        "zerobot_db_pool_usage_ratio",
    ):
        assert (name, (("alias", "default"),)) in samples, name
    max_size = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
    assert samples[("zerobot_db_pool_max_size", (("alias", "default"),))] == max_size
    assert (
        samples[("zerobot_cache_requests_total", (("namespace", "test"), ("result", "hit")))] >= 1
    )
    assert (
        samples[("zerobot_cache_requests_total", (("namespace", "test"), ("result", "miss")))] >= 1
    )
    key = (
        "zerobot_request_duration_seconds_count",
        (("method", "GET"), ("operation", "t_cached")),
    )
    before = samples[key]
    client.get("/t/cached/")
    assert _samples(client.get("/metrics").content)[key] == before + 1
    assert (
        "zerobot_request_queries_bucket",
        (("le", "0.0"), ("operation", "t_cached")),
    ) in samples


@pytest.fixture(autouse=True)
def _scraper_network(request: pytest.FixtureRequest) -> None:
    """Tests that scrape anonymously do it from an allowed network, as Prometheus would; the
    default (no network: staff only) is tested on its own."""
    if "default_metrics_access" not in request.keywords:
        request.getfixturevalue("settings").METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8"]


@pytest.mark.default_metrics_access
def test_metrics_default_to_staff_only(client: Client, staff_user: User) -> None:
    assert settings.METRICS_ALLOWED_NETWORKS == []
    # Behind a proxy on the same host every client is 127.0.0.1: not a reason to trust it.
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    client.force_login(staff_user)
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


def test_metrics_access_rules(client: Client, staff_user: User, plain_user: User) -> None:
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE).status_code == 403  # anonymous, outside
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200  # allowed network
    client.force_login(plain_user)
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE).status_code == 403  # not staff
    client.force_login(staff_user)
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE).status_code == 200  # staff, anywhere


@override_settings(METRICS_ALLOWED_NETWORKS=["10.0.0.0/8", "fd00::/8"])
def test_metrics_allowed_networks_is_a_setting(client: Client) -> None:
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="fd00::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="not-an-ip").status_code == 403


def test_silk_is_staff_only(client: Client, staff_user: User, plain_user: User) -> None:
    response = client.get("/silk/")
    assert response.status_code == 302 and "/login" in response["Location"]
    client.force_login(plain_user)
    assert client.get("/silk/").status_code == 403
    client.force_login(staff_user)
    assert client.get("/silk/").status_code == 200


def test_dashboard_is_staff_only(client: Client, staff_user: User, plain_user: User) -> None:
    response = client.get("/admin/monitoring/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(plain_user)
    response = client.get("/admin/monitoring/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(staff_user)
    response = client.get("/admin/monitoring/")
    assert response.status_code == 200
    assert b"Latency, all operations" in response.content


def test_admin_index_links_dashboard_silk_and_metrics(client: Client, staff_user: User) -> None:
    client.force_login(staff_user)
    content = client.get("/admin/").content.decode()
    assert 'href="/admin/monitoring/"' in content
    assert 'href="/silk/"' in content
    assert 'href="/metrics"' in content
