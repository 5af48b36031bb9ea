"""The monitoring block of zerobot/settings.py, read under chosen environments (runpy)."""

from __future__ import annotations

import pytest
from django.core.checks import Error
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from django.test.utils import override_settings

from monitoring.checks import check_silk_does_not_explain
from monitoring.toolbar import show_toolbar
from zerobot.tests.test_settings import load as load_settings

VARIABLES = [
    "DEBUG", "SLOW_QUERY_MS", "MAX_QUERIES_PER_REQUEST", "METRICS_ALLOWED_NETWORKS",
    "PROMETHEUS_MULTIPROC_DIR", "POOL_ALERT_PCT", "MONITORING_FLUSH_SECONDS", "POOL_LOG_SECONDS",
    "MONITORING_RETENTION_HOURS", "SILK_ENABLED", "SILKY_INTERCEPT_PERCENT",
    "SILKY_MAX_RECORDED_REQUESTS", "DEBUG_TOOLBAR", "DATABASE_URL", "REDIS_URL",
]  # fmt: skip


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict:
    """zerobot.settings read in a fresh namespace (zerobot/tests/test_settings.py), with none of
    the monitoring variables set but ``env``."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return load_settings(monkeypatch, **env)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SLOW_QUERY_MS": "fast"}, "SLOW_QUERY_MS"),
        ({"SLOW_QUERY_MS": "-1"}, "SLOW_QUERY_MS"),
        ({"MAX_QUERIES_PER_REQUEST": "0"}, "MAX_QUERIES_PER_REQUEST"),
        ({"METRICS_ALLOWED_NETWORKS": "10.0.0.0/33"}, "METRICS_ALLOWED_NETWORKS"),
        ({"METRICS_ALLOWED_NETWORKS": "10.0.0.1/8"}, "METRICS_ALLOWED_NETWORKS"),
        ({"METRICS_ALLOWED_NETWORKS": "intranet"}, "METRICS_ALLOWED_NETWORKS"),
        ({"PROMETHEUS_MULTIPROC_DIR": "/nonexistent/prometheus"}, "PROMETHEUS_MULTIPROC_DIR"),
        ({"POOL_ALERT_PCT": "120"}, "POOL_ALERT_PCT"),
        ({"MONITORING_FLUSH_SECONDS": "-5"}, "MONITORING_FLUSH_SECONDS"),
        ({"POOL_LOG_SECONDS": "0"}, "POOL_LOG_SECONDS"),
        ({"MONITORING_RETENTION_HOURS": "a day"}, "MONITORING_RETENTION_HOURS"),
        ({"SILK_ENABLED": "maybe"}, "SILK_ENABLED"),
        ({"SILKY_INTERCEPT_PERCENT": "101"}, "SILKY_INTERCEPT_PERCENT"),
        ({"SILKY_MAX_RECORDED_REQUESTS": "0"}, "SILKY_MAX_RECORDED_REQUESTS"),
        ({"DEBUG": "1", "DEBUG_TOOLBAR": "sometimes"}, "DEBUG_TOOLBAR"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=variable):
        load(monkeypatch, **env)


def test_production_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load(monkeypatch)
    assert (s["SLOW_QUERY_MS"], s["MAX_QUERIES_PER_REQUEST"], s["POOL_ALERT_PCT"]) == (50, 10, 90)
    assert s["METRICS_ALLOWED_NETWORKS"] == []  # staff only unless a network is configured
    assert s["MIDDLEWARE"][0] == "monitoring.middleware.QueryProfilingMiddleware"
    # Without DEBUG: no Silk, no toolbar.
    assert s["SILK_ENABLED"] is False and "silk" not in s["INSTALLED_APPS"]
    assert not any("silk" in m or "debug_toolbar" in m for m in s["MIDDLEWARE"])
    assert "debug_toolbar" not in s["INSTALLED_APPS"]
    assert s["SILKY_ANALYZE_QUERIES"] is False
    assert s["SILKY_INTERCEPT_PERCENT"] == 10
    assert s["SILKY_AUTHENTICATION"] is True and s["SILKY_AUTHORISATION"] is True
    assert s["LOGGING"]["loggers"]["zerobot.requests"]["handlers"] == ["json"]


def test_debug_turns_on_silk_and_the_toolbar_after_authentication(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = load(monkeypatch, DEBUG="1")
    assert "silk" in s["INSTALLED_APPS"] and "debug_toolbar" in s["INSTALLED_APPS"]
    middleware = s["MIDDLEWARE"]
    assert middleware[:2] == [
        "silk.middleware.SilkyMiddleware",
        "monitoring.middleware.QueryProfilingMiddleware",
    ]
    toolbar = middleware.index("debug_toolbar.middleware.DebugToolbarMiddleware")
    assert (
        toolbar == middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1
    )
    assert s["DEBUG_TOOLBAR_CONFIG"]["SHOW_TOOLBAR_CALLBACK"] == "monitoring.toolbar.show_toolbar"
    assert s["SILKY_INTERCEPT_PERCENT"] == 100
    assert s["SILKY_ANALYZE_QUERIES"] is False


def test_silk_can_be_enabled_without_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load(monkeypatch, SILK_ENABLED="1", SILKY_INTERCEPT_PERCENT="5")
    assert "silk" in s["INSTALLED_APPS"] and s["SILKY_INTERCEPT_PERCENT"] == 5
    assert "debug_toolbar" not in s["INSTALLED_APPS"]


def test_prometheus_multiproc_dir_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    assert load(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))["PROMETHEUS_MULTIPROC_DIR"]


def test_silky_analyze_queries_on_is_a_system_check_error() -> None:
    assert check_silk_does_not_explain() == []
    with override_settings(SILKY_ANALYZE_QUERIES=True):
        (error,) = check_silk_does_not_explain()
    assert isinstance(error, Error) and error.id == "monitoring.E001"


class _User:
    def __init__(self, staff: bool) -> None:
        self.is_active, self.is_staff = True, staff


@pytest.mark.parametrize(
    ("debug", "user", "shown"),
    [(True, _User(True), True), (True, _User(False), False), (False, _User(True), False)],
)
def test_the_toolbar_shows_only_with_debug_and_only_to_staff(debug, user, shown) -> None:
    request = RequestFactory().get("/")
    request.user = user
    with override_settings(DEBUG=debug):
        assert show_toolbar(request) is shown
    anonymous = RequestFactory().get("/")
    with override_settings(DEBUG=True):
        assert show_toolbar(anonymous) is False
