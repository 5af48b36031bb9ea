"""The admin dashboard in a real headless Chromium (Debian's /usr/bin/chromium via Playwright).

Fails, never skips, when Chromium is missing: `make chromium` (run by .ci/run) installs it.
The screenshot is saved to artifacts/monitoring-dashboard.png (gitignored).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from monitoring import aggregation
from monitoring.aggregation import RequestRecord
from monitoring.context import note_cache

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OPERATIONS = {"dashboard_stats": 35.0, "bot-list": 12.0, "trade-list": 6.0, "healthz": 0.3}


def _seed_an_hour_of_traffic() -> None:
    now = timezone.now().timestamp()
    for minute in range(60):
        at = now - 3600 + minute * 60 + 1
        for i in range(12):
            for op, typical in OPERATIONS.items():
                slow = 1 + (i % 6) * 0.4 + (3 if i == 11 and minute % 10 == 0 else 0)
                aggregation.aggregator.record_request(
                    RequestRecord(
                        at=at + i,
                        operation=op,
                        method="GET",
                        route=f"api/{op}/",
                        path=f"/api/{op}/",
                        status=500 if (i == 5 and minute == 42) else 200,
                        duration_ms=typical * slow,
                        query_count=(i % 4) + (2 if op != "healthz" else 0),
                        query_time_ms=typical * slow * 0.4,
                        user_id=1,
                        bot_id=None,
                        cache_hits=1,
                        cache_misses=0,
                    )
                )
        busy = 40 + 50 * max(0, 1 - abs(minute - 45) / 8)
        aggregation.aggregator.record_pool(
            at=at,
            alias="default",
            max_size=20,
            size=20,
            available=20 - round(busy / 5),
            waiting=0,
            errors=0,
        )
    aggregation.aggregator.record_slow_query(
        at=now - 300,
        operation="dashboard_stats",
        duration_ms=182.0,
        sql='SELECT SUM("trading_trade"."realized_pnl") FROM "trading_trade" WHERE %s',
    )
    for _ in range(90):
        note_cache("market", True)
    for _ in range(10):
        note_cache("market", False)
    for _ in range(6):
        note_cache("indicators", True)
    for _ in range(4):
        note_cache("indicators", False)
    aggregation.write(aggregation.aggregator.take(final=True))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_renders_its_charts_in_chromium(live_server) -> None:
    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: run `make chromium` (Debian's chromium package)."
    )
    from playwright.sync_api import sync_playwright

    User.objects.create_user("ops", password="ops-pass-123", is_staff=True)
    _seed_an_hour_of_traffic()
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "monitoring-dashboard.png"
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{live_server.url}/admin/login/?next=/admin/monitoring/%3Fwindow%3D1h")
            page.fill("#id_username", "ops")
            page.fill("#id_password", "ops-pass-123")
            page.click("input[type=submit]")
            page.wait_for_selector("svg.chart")
            assert page.url.endswith("/admin/monitoring/?window=1h")

            charts = page.locator("svg.chart")
            assert charts.count() == 6
            assert page.locator("svg.chart-empty").count() == 0  # every chart has data
            for i in range(charts.count()):
                box = charts.nth(i).bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 60
            # Lines and bars were laid out by the browser with a real size.
            latency = page.locator("#chart-latency path.series")
            assert latency.count() == 3
            assert all(latency.nth(i).bounding_box()["width"] > 300 for i in range(3))
            assert page.locator("#chart-operations rect.bar").count() == 3 * len(OPERATIONS)
            assert page.locator("#chart-pool line.threshold").count() == 1
            assert page.locator("#chart-cache rect.bar").count() == 2
            assert page.locator("#operations tbody tr").count() == len(OPERATIONS)
            assert "trading_trade" in page.locator("#slow-queries").inner_text()
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
    print(f"\nscreenshot: {screenshot} ({time.monotonic() - started:.1f} s in Chromium)")
