"""`make run` promises a first run with no servers: SQLite + local memory. Exercise that path in
a subprocess (its own settings, its own database file): migrate, seed, every dashboard endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = """
import django, json
django.setup()
from django.test import Client
from django.contrib.auth import get_user_model
client = Client(HTTP_HOST="localhost")
client.force_login(get_user_model().objects.get(username="demo"))
for url in ["/api/dashboard/stats", "/api/dashboard/equity-curve?period=all",
            "/api/dashboard/positions", "/api/dashboard/trades?side=buy",
            "/api/dashboard/performance", "/api/bots/", "/admin/trading/trade/"]:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
curve = client.get("/api/dashboard/equity-curve?period=all").json()["results"]
assert curve and all(isinstance(point["equity"], str) for point in curve), curve[:2]
print("ok")
"""


@pytest.mark.slow
def test_first_run_without_postgres_or_redis(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="zerobot.settings", DEBUG="1", PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite:///{tmp_path / 'first.sqlite3'}",
    )  # fmt: skip

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    run("manage.py", "migrate", "--noinput", "-v", "0")
    assert "Seeded 2 users, 6 bots" in run("manage.py", "seed_demo", "--if-empty", "-v", "0")
    assert run("-c", CHECK).strip().endswith("ok")
