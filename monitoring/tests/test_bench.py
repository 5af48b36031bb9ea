"""manage.py bench: one report from one command (the in-process phases here; the HTTP and page
phases start servers and a browser, which `make bench`-style runs cover)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from trading.tests.factories import make_bot, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db]


def test_writes_report_and_results_with_every_endpoint(tmp_path: Path, settings) -> None:
    settings.DASHBOARD_CACHE_SECONDS = 30
    make_bot(owner=make_user("benchuser"))
    out = io.StringIO()
    call_command(
        "bench", "--out", str(tmp_path), "--user", "benchuser", "--iterations", "3",
        "--warmup", "1", "--skip", "http", "--skip", "page", stdout=out,
    )  # fmt: skip
    results = json.loads((tmp_path / "results.json").read_text())
    paths = {"/api/dashboard/stats", "/api/dashboard/equity-curve", "/api/dashboard/positions",
             "/api/dashboard/trades", "/api/dashboard/performance"}  # fmt: skip
    assert set(results["endpoints"]) == paths
    assert all(row["n"] == 3 and row["queries"] >= 1 for row in results["endpoints"].values())
    assert set(results["conditional"]) == paths
    assert results["skipped"] == {"http": "--skip", "page": "--skip"}
    report = (tmp_path / "report.md").read_text()
    assert "## Dashboard endpoints in process" in report and "## Conditional reads" in report
    assert "- http: skipped (--skip)" in report
    assert "[1/4] endpoints" in out.getvalue()  # progress lines


def test_refuses_debug(settings, tmp_path: Path) -> None:
    make_bot(owner=make_user("benchuser"))
    settings.DEBUG = True
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("bench", "--out", str(tmp_path), "--user", "benchuser")
