"""gunicorn settings (read from the working directory): `gunicorn zerobot.wsgi`.

Monitoring hooks: the Prometheus multiprocess directory is emptied when gunicorn starts (a deploy or
restart begins at zero; counters of the previous run would otherwise be summed in), an exited
worker's live gauges are dropped, and each worker drains on its way out: on SIGTERM gunicorn stops
accepting, finishes the requests in flight (up to graceful_timeout), then the worker writes its
last monitoring figures and closes its connection pool (monitoring.pool.drain).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads per worker (gthread above 1). gunicorn's `timeout` only watches a threaded worker's
# main loop, not its requests: the request watchdog below gives threads the same bound.
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# Seconds a request may run before its worker is restarted; well above DB_STATEMENT_TIMEOUT_MS
# (5 s) and DB_POOL_TIMEOUT (10 s), which end a stuck request first with a 503.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Each worker must open its own pool after the fork: never preload the app (and with it a pool).
preload_app = False
# gunicorn >= 25 opens a control socket at one path per user ($XDG_RUNTIME_DIR/gunicorn.ctl):
# a second instance on the host takes it over, and stopping either removes the other's. One per
# instance instead, named after its bind address (unique on a host).
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or str(
    Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    / f"zerobot-gunicorn-{re.sub(r'[^A-Za-z0-9.]+', '-', bind).strip('-')}.ctl"
)


def on_starting(server: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True, exist_ok=True)


def post_worker_init(worker: Any) -> None:
    """Threaded workers: a watchdog restarts the worker when a request outlives ``timeout``
    (what gunicorn does to a sync worker), since a Python thread cannot be stopped alone."""
    if threads <= 1:
        return
    worker.zerobot_requests = {}

    def watch() -> None:
        while True:
            time.sleep(1)
            now = time.monotonic()
            for started, path in list(worker.zerobot_requests.values()):
                if now - started > timeout:
                    worker.log.critical(
                        "request %s ran %.1f s (> timeout %d s): restarting worker %s",
                        path, now - started, timeout, os.getpid(),
                    )  # fmt: skip
                    os._exit(1)  # the arbiter starts a new worker

    threading.Thread(target=watch, name="request-watchdog", daemon=True).start()


def pre_request(worker: Any, req: Any) -> None:
    requests = getattr(worker, "zerobot_requests", None)
    if requests is not None:
        requests[threading.get_ident()] = (time.monotonic(), req.path)


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    requests = getattr(worker, "zerobot_requests", None)
    if requests is not None:
        requests.pop(threading.get_ident(), None)


def post_fork(server: Any, worker: Any) -> None:
    from django.apps import apps

    if apps.ready:  # only if someone preloaded Django in the master after all
        from monitoring import pool

        pool.reset()


def worker_exit(server: Any, worker: Any) -> None:
    from django.apps import apps

    if apps.ready:
        from monitoring import pool

        pool.drain(timeout=float(graceful_timeout), reason="worker exit")


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
