"""settings.py read in a fresh namespace under a chosen environment (runpy: no global side effects)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

SETTINGS = Path(__file__).resolve().parents[1] / "settings.py"
VARIABLES = [
    "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "DB_POOL_MIN_SIZE", "DB_POOL_MAX_SIZE",
    "DB_POOL_TIMEOUT", "WEB_CONCURRENCY", "DB_POOL_OTHER_PROCESSES", "DB_POOL_COMMAND_CONNECTIONS", "DB_POOL_DISABLED", "REDIS_URL", "REDIS_CONNECT_TIMEOUT",
    "REDIS_SOCKET_TIMEOUT", "REDIS_MAX_CONNECTIONS", "DB_SERVER_SIDE_BINDING", "DB_PREPARE_THRESHOLD",
    "DB_STATEMENT_TIMEOUT_MS", "DB_JIT",
]  # fmt: skip


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS))


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"DB_POOL_MIN_SIZE": "abc"}, "DB_POOL_MIN_SIZE"),
        ({"DB_POOL_MAX_SIZE": "0"}, "DB_POOL_MAX_SIZE"),
        ({"DB_POOL_MIN_SIZE": "50", "DB_POOL_MAX_SIZE": "10"}, "DB_POOL_MIN_SIZE"),
        ({"DB_POOL_TIMEOUT": "-1"}, "DB_POOL_TIMEOUT"),
        ({"DB_POOL_TIMEOUT": "nan"}, "DB_POOL_TIMEOUT"),
        ({"WEB_CONCURRENCY": "two"}, "WEB_CONCURRENCY"),
        ({"DATABASE_URL": "mysql://root@localhost/zerobot"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1:port/db"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
        ({"REDIS_CONNECT_TIMEOUT": "0"}, "REDIS_CONNECT_TIMEOUT"),
        ({"REDIS_SOCKET_TIMEOUT": "soon"}, "REDIS_SOCKET_TIMEOUT"),
        ({"ALLOWED_HOSTS": "https://example.com"}, "ALLOWED_HOSTS"),
        ({"ALLOWED_HOSTS": "a.example.com,,b.example.com"}, "ALLOWED_HOSTS"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=variable):
        load(monkeypatch, **env)


def test_missing_secret_key_is_an_error_unless_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        runpy.run_path(str(SETTINGS))
    monkeypatch.setenv("DEBUG", "1")
    assert runpy.run_path(str(SETTINGS))["DEBUG"] is True


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_postgres_url_always_gets_the_pool(monkeypatch: pytest.MonkeyPatch, scheme: str) -> None:
    settings = load(monkeypatch, DATABASE_URL=f"{scheme}://u:p%40ss@db.internal:6432/zb")
    db = settings["DATABASES"]["default"]
    assert db["ENGINE"] == "zerobot.lib.postgresql"  # Django's with the idle check (test_db.py)
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"], db["PASSWORD"]) == (
        "db.internal", "6432", "zb", "u", "p@ss",
    )  # fmt: skip
    assert db["OPTIONS"]["pool"] == {
        "min_size": 2,
        "max_size": 20,
        "timeout": 10.0,
        "name": "zerobot",
    }
    # The pool requires non-persistent Django connections, and health checks survive restarts.
    assert db["CONN_MAX_AGE"] == 0
    assert db["CONN_HEALTH_CHECKS"] is True


def test_pool_sizes_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(
        monkeypatch, DATABASE_URL="postgres://x@h/db", DB_POOL_MIN_SIZE="4", DB_POOL_MAX_SIZE="8",
        DB_POOL_TIMEOUT="2.5",
    )  # fmt: skip
    pool = settings["DATABASES"]["default"]["OPTIONS"]["pool"]
    assert (pool["min_size"], pool["max_size"], pool["timeout"]) == (4, 8, 2.5)


def test_no_database_url_means_embedded_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    db = load(monkeypatch)["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert str(db["NAME"]).endswith("db.sqlite3")


def test_redis_url_configures_fail_open_redis_with_hiredis(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = load(monkeypatch, REDIS_URL="redis://127.0.0.1:6379/3")["CACHES"]["default"]
    assert cache["BACKEND"] == "django_redis.cache.RedisCache"
    options = cache["OPTIONS"]
    assert options["PARSER_CLASS"] == "redis.connection._HiredisParser"
    assert options["IGNORE_EXCEPTIONS"] is True
    assert 0 < options["SOCKET_CONNECT_TIMEOUT"] <= 1
    assert 0 < options["SOCKET_TIMEOUT"] <= 1


def test_no_redis_url_means_local_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = load(monkeypatch)["CACHES"]["default"]
    assert cache["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


def test_hosts_and_booleans_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, ALLOWED_HOSTS="api.example.com, .example.org", DEBUG="off")
    assert settings["ALLOWED_HOSTS"] == ["api.example.com", ".example.org"]
    assert settings["DEBUG"] is False


def test_pool_defaults_fit_a_stock_server(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, DATABASE_URL="postgres://x@h/db")
    pool = settings["DATABASES"]["default"]["OPTIONS"]["pool"]
    assert (pool["min_size"], pool["max_size"]) == (2, 20)
    # The same worker count as gunicorn.conf.py's default, for the budget check.
    assert settings["WEB_CONCURRENCY"] == 2
    assert (settings["DB_POOL_OTHER_PROCESSES"], settings["DB_POOL_COMMAND_CONNECTIONS"]) == (1, 3)


def test_db_pool_disabled_drops_the_pool_for_benchmarks(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, DATABASE_URL="postgres://x@h/db", DB_POOL_DISABLED="1")
    assert "pool" not in settings["DATABASES"]["default"]["OPTIONS"]
    assert (
        "pool"
        in load(monkeypatch, DATABASE_URL="postgres://x@h/db")["DATABASES"]["default"]["OPTIONS"]
    )


def test_server_side_binding_and_prepared_statements_are_opt_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options = load(monkeypatch, DATABASE_URL="postgres://x@h/db")["DATABASES"]["default"]["OPTIONS"]
    assert "server_side_binding" not in options and "prepare_threshold" not in options
    options = load(
        monkeypatch, DATABASE_URL="postgres://x@h/db", DB_SERVER_SIDE_BINDING="1",
        DB_PREPARE_THRESHOLD="1",
    )["DATABASES"]["default"]["OPTIONS"]  # fmt: skip
    assert options["server_side_binding"] is True and options["prepare_threshold"] == 1


def test_jit_is_off_unless_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    options = load(monkeypatch, DATABASE_URL="postgres://x@h/db")["DATABASES"]["default"]["OPTIONS"]
    assert options["options"].split() == ["-c", "statement_timeout=5000", "-c", "jit=off"]
    options = load(monkeypatch, DATABASE_URL="postgres://x@h/db", DB_JIT="1")["DATABASES"][
        "default"
    ]["OPTIONS"]
    assert "jit" not in options["options"]
