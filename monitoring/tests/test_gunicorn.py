"""/metrics under several gunicorn worker processes, and the workers' draining exit on SIGTERM.

Workers are recycled every few requests (``--max-requests``), so the requests are served by
several processes for certain; the scrape must still count every one of them (prometheus-client's
multiprocess mode, gunicorn.conf.py's hooks).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
REQUESTS = 12
MAX_REQUESTS = 4  # each worker exits after 4 requests: >= 3 processes serve the 12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 30.0) -> tuple[int, bytes]:
    # Generous: a recycled worker's successor boots Django first, seconds on a loaded machine.
    with urllib.request.urlopen(url, timeout=timeout) as response:  # loopback only
        return response.status, response.read()


def _env(port: int, **extra: str) -> dict[str, str]:
    """A gunicorn of the project on 127.0.0.1:port against the test database."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "zerobot.test_settings",
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "DB_POOL_MIN_SIZE": "1",
        "DB_POOL_MAX_SIZE": "4",
        "SILK_ENABLED": "0",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        **extra,
    }


def _wait_until_served(url: str, proc: subprocess.Popen, log_path: Path) -> None:
    """Until ``url`` answers (30 s at most; the server's log if it never does or it exits)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            _get(url, timeout=5)
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(log_path.read_text()) from None
            time.sleep(0.2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_metrics_sum_every_worker_and_workers_drain_on_exit(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(
        port,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"),
        WEB_CONCURRENCY="2",
        METRICS_ALLOWED_NETWORKS="127.0.0.1/32",  # the scraper's address, configured
    )
    (tmp_path / "prom").mkdir()
    (tmp_path / "prom" / "counter_999999.db").write_bytes(b"stale")  # from a previous run
    stderr_path = tmp_path / "gunicorn.log"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                "--max-requests",
                str(MAX_REQUESTS),
                "zerobot.wsgi",
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        # /readyz opens a pool in whichever worker answers.
        _wait_until_served(f"{base}/readyz", proc, stderr_path)
        for _ in range(REQUESTS):
            status, _ = _get(f"{base}/healthz")
            assert status == 200
        status, body = _get(f"{base}/metrics")
        assert status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            proc.kill()
    log = stderr_path.read_text()
    assert proc.returncode == 0, log

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    healthz = ("zerobot_requests_total", (("method", "GET"), ("operation", "healthz"), ("status", "200")))  # fmt: skip
    assert samples[healthz] == REQUESTS  # summed over every worker, dead or alive
    assert ("zerobot_db_pool_max_size", (("alias", "default"),)) in samples

    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    pids = {line["process"] for line in lines if line.get("event") == "pool_drained"}
    # Recycled workers and the two stopped by SIGTERM all drained on their way out.
    assert len(pids) >= 3, log
    assert any(line.get("was_open") for line in lines if line.get("event") == "pool_drained")
    assert not (tmp_path / "prom" / "counter_999999.db").exists()  # reset at start


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_threaded_worker_is_restarted_when_a_request_outlives_the_timeout(
    tmp_path: Path,
) -> None:
    """gunicorn's own timeout does not watch a gthread worker's requests; gunicorn.conf.py's
    watchdog does: a request stuck past GUNICORN_TIMEOUT gets its worker restarted (the client
    sees the connection end), and the next request is served by the new worker."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(
        port,
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="2",
        GUNICORN_TIMEOUT="2",
        GUNICORN_GRACEFUL_TIMEOUT="5",
    )
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "tests.slow_wsgi"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        _wait_until_served(f"{base}/healthz", proc, log_path)
        # Sleeps 12 s unless the watchdog ends it: the connection is cut instead of a 200.
        with pytest.raises(OSError):
            _get(f"{base}/__test/sleep?s=12", timeout=20)
        deadline = time.monotonic() + 20
        while True:  # a new worker answers
            try:
                status, _ = _get(f"{base}/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        assert status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            proc.kill()
    log = log_path.read_text()
    assert "/__test/sleep ran" in log and "restarting worker" in log, log
