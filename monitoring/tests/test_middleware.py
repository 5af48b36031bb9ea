"""The query-profiling middleware: one JSON line per request, slow-query lines, Server-Timing."""

from __future__ import annotations

import json
import logging
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from monitoring import aggregation
from monitoring.logs import JSONFormatter
from monitoring.tests.urls import CACHED_KEY

pytestmark = [pytest.mark.urls("monitoring.tests.urls"), pytest.mark.django_db]


def _timing(response) -> dict[str, str]:
    """Server-Timing metrics as {name: 'dur=..;desc=..'}."""
    return {
        part.split(";", 1)[0].strip(): part.split(";", 1)[1] if ";" in part else ""
        for part in response.headers["Server-Timing"].split(", ")
    }


def test_one_json_line_per_request_with_operation_route_and_bot(client: Client, log_lines) -> None:
    response = client.get("/t/bots/7/")
    assert response.status_code == 200
    (line,) = log_lines.events("request")
    assert line["operation_name"] == "t_bot"
    assert line["route"] == "t/bots/<int:bot_id>/"
    assert line["path"] == "/t/bots/7/"
    assert (line["method"], line["status"], line["bot_id"]) == ("GET", 200, 7)
    assert line["query_count"] == 0 and line["query_time_ms"] == 0
    assert line["duration_ms"] > 0
    assert line["user_id"] is None  # anonymous, and the view never loaded the user
    assert (line["cache_hits"], line["cache_misses"]) == (0, 0)


@pytest.mark.parametrize(("query", "expected"), [("?bot=12", 12), ("?bot=abc", None), ("", None)])
def test_bot_id_from_query_parameter(client: Client, log_lines, query: str, expected) -> None:
    client.get(f"/t/queries/0/{query}")
    assert log_lines.events("request")[0]["bot_id"] == expected


@pytest.mark.postgres
def test_logged_query_count_matches_django_assert_num_queries(
    client: Client, log_lines, django_assert_num_queries
) -> None:
    # Three "SELECT 1" statements from the view, nothing else (no session, no user loaded).
    with django_assert_num_queries(3):
        response = client.get("/t/queries/3/")
    (line,) = log_lines.events("request")
    assert line["query_count"] == 3
    assert _timing(response)["db"].endswith('desc="3 queries"')


@pytest.mark.postgres
def test_logged_query_count_matches_captured_queries_on_an_admin_page(
    client: Client, admin_user, log_lines
) -> None:
    """A real page whose queries come from middleware and the admin: the session, the user, the
    changelist's count and rows. Whatever they are, the log counts what Django executed."""
    client.force_login(admin_user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/admin/auth/user/")
    assert response.status_code == 200
    (line,) = log_lines.events("request")
    assert line["query_count"] == len(captured) > 2
    assert line["operation_name"] == "admin:auth_user_changelist"
    assert line["user_id"] == admin_user.pk


def test_a_request_that_needs_no_database_runs_no_query(
    client: Client, log_lines, django_assert_num_queries
) -> None:
    """No database write per request: five requests, zero statements (the aggregates stay in
    memory until the flush thread writes them)."""
    with django_assert_num_queries(0):
        for _ in range(5):
            assert client.get("/healthz").status_code == 200
    assert [line["query_count"] for line in log_lines.events("request")] == [0] * 5


@pytest.mark.postgres
def test_a_slow_query_gets_its_own_line_with_sql_and_no_parameters(
    client: Client, log_lines
) -> None:
    response = client.get("/t/slow/")
    assert response.status_code == 200
    (slow,) = log_lines.events("slow_query")  # SELECT 1 is fast: only pg_sleep is logged
    assert slow["_level"] == "WARNING"
    assert slow["operation_name"] == "t_slow"
    assert slow["sql"] == "SELECT pg_sleep(%s)"  # the parameter (0.08) is not logged
    assert slow["duration_ms"] >= 50
    assert slow["threshold_ms"] == 50
    (line,) = log_lines.events("request")
    assert line["query_count"] == 2
    assert line["query_time_ms"] >= slow["duration_ms"]
    kept = aggregation.aggregator.take(final=True).slow_queries
    assert [(op, sql) for _, op, _, sql in kept] == [("t_slow", "SELECT pg_sleep(%s)")]


@pytest.mark.postgres
@override_settings(SLOW_QUERY_MS=10_000)
def test_the_slow_query_threshold_is_a_setting(client: Client, log_lines) -> None:
    client.get("/t/slow/")
    assert log_lines.events("slow_query") == []


@pytest.mark.postgres
def test_more_queries_than_the_limit_is_a_warning(client: Client, log_lines) -> None:
    client.get("/t/queries/10/")
    assert log_lines.events("too_many_queries") == []
    client.get("/t/queries/11/")
    (warning,) = log_lines.events("too_many_queries")
    assert warning["_level"] == "WARNING"
    assert (warning["query_count"], warning["limit"], warning["operation_name"]) == (
        11,
        10,
        "t_queries",
    )


@pytest.mark.postgres
def test_server_timing_header_carries_db_time_query_count_and_total(client: Client) -> None:
    response = client.get("/t/queries/2/")
    timing = _timing(response)
    db = re.fullmatch(r'dur=(\d+\.\d\d);desc="2 queries"', timing["db"])
    total = re.fullmatch(r"dur=(\d+\.\d\d)", timing["total"])
    assert db and total
    assert float(total.group(1)) >= float(db.group(1)) > 0


@pytest.mark.redis
def test_cache_hits_and_misses_of_the_request(client: Client, log_lines) -> None:
    client.get("/t/cached/")
    client.get("/t/cached/")
    first, second = log_lines.events("request")
    assert (first["cache_hits"], first["cache_misses"]) == (0, 1)
    assert (second["cache_hits"], second["cache_misses"]) == (1, 0)
    assert second["cache"] == {"test:hit": 1}
    assert _timing(client.get("/t/cached/"))["cache"] == 'desc="1 hits 0 misses"'
    from django.core.cache import cache

    assert cache.get(CACHED_KEY) is not None


def test_unresolved_paths_and_errors_are_recorded(log_lines) -> None:
    client = Client(raise_request_exception=False)
    assert client.get("/no/such/page/").status_code == 404
    assert client.get("/t/boom/").status_code == 500
    not_found, boom = log_lines.events("request")
    assert (not_found["operation_name"], not_found["status"], not_found["route"]) == (
        "unresolved",
        404,
        "",
    )
    assert (boom["operation_name"], boom["status"]) == ("t_boom", 500)
    totals = aggregation.aggregator.take(final=True).totals
    assert sum(t.errors for t in totals.values()) == 1
    assert sum(t.count for t in totals.values()) == 2


def test_requests_are_aggregated_per_minute_operation_and_method(client: Client) -> None:
    for n in (0, 0, 1):
        client.get(f"/t/bots/{n}/")
    client.post("/t/bots/1/")
    batch = aggregation.aggregator.take(final=True)
    by_key = {(op, method): t for (_, op, method), t in batch.totals.items()}
    assert by_key[("t_bot", "GET")].count == 3
    assert by_key[("t_bot", "POST")].count == 1
    assert sum(by_key[("t_bot", "GET")].latency) == 3
    assert [r.bot_id for r in batch.slow_requests if r.method == "GET"].count(0) == 2


def test_the_json_formatter_writes_one_json_object() -> None:
    record = logging.LogRecord(
        "zerobot.requests", logging.INFO, __file__, 1, {"event": "request", "n": 1}, None, None
    )
    body = json.loads(JSONFormatter().format(record))
    assert body["event"] == "request" and body["n"] == 1
    assert body["level"] == "INFO" and body["logger"] == "zerobot.requests"
    assert body["ts"].endswith("+00:00")
    record.msg, record.args = "plain %s", ("text",)
    assert json.loads(JSONFormatter().format(record))["message"] == "plain text"
