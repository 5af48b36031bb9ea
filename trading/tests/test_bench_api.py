"""bench_api: refuses DEBUG's misleading figures and keeps request log lines out of its table."""

from __future__ import annotations

import io
import logging

import pytest
from django.core.management import CommandError, call_command

from trading.tests.factories import make_bot, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def request_log():
    handler = Collect()
    logger = logging.getLogger("zerobot.requests")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("bench_api", "--iterations", "2", "--warmup", "0", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_refuses_to_measure_under_debug(settings) -> None:
    make_user("benchuser")
    settings.DEBUG = True
    with pytest.raises(CommandError, match="DEBUG is on"):
        run("--user", "benchuser")


def test_allow_debug_measures_with_a_warning_above_and_below(settings) -> None:
    make_bot(owner=make_user("benchuser"))
    settings.DEBUG = True
    out, err = run("--user", "benchuser", "--allow-debug", "--path", "/api/dashboard/stats")
    assert err.count("WARNING: DEBUG is on") == 2
    assert "/api/dashboard/stats" in out


def test_request_log_lines_stay_out_of_the_table(request_log, client) -> None:
    user = make_user("benchuser")
    make_bot(owner=user)
    out, _ = run("--user", "benchuser")
    rows = [line for line in out.splitlines() if line.startswith("/api/dashboard/")]
    assert len(rows) == 5  # the five dashboard endpoints, one row each
    assert not any(line.lstrip().startswith("{") for line in out.splitlines())
    assert request_log.records == []  # 5 x (2 timed + 1 counted) requests, none logged
    # ... and the logger is back afterwards: the next request writes its line.
    client.force_login(user)
    assert client.get("/api/dashboard/stats").status_code == 200
    assert [r.getMessage() for r in request_log.records] != []
