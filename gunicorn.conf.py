"""gunicorn settings (read from the working directory): `gunicorn zerobot.wsgi`.

Monitoring hooks: the Prometheus multiprocess directory is emptied when gunicorn starts (a deploy or
restart begins at zero; counters of the previous run would otherwise be summed in), an exited
worker's live gauges are dropped, and each worker drains on its way out: on SIGTERM gunicorn stops
accepting, finishes the requests in flight (up to graceful_timeout), then the worker writes its
last monitoring figures and closes its connection pool (monitoring.pool.drain).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Each worker must open its own pool after the fork: never preload the app (and with it a pool).
preload_app = False


def on_starting(server: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True, exist_ok=True)


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
