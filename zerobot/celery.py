"""The Celery app: ``celery -A zerobot.celery worker`` runs bot cycles, ``celery -A zerobot.celery
beat`` runs the lease dispatcher every ``ENGINE_DISPATCH_SECONDS`` (README, "Running bots on many
machines"). Settings are the Django ones prefixed ``CELERY_`` (``CELERY_BROKER_URL``)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zerobot.settings")

app = Celery("zerobot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["trading.engine"])  # trading/engine/tasks.py


@app.on_after_finalize.connect
def _beat_schedule(sender: Celery, **kwargs: Any) -> None:
    from django.conf import settings

    sender.conf.beat_schedule = {
        "engine-dispatch": {
            "task": "trading.engine.tasks.dispatch",
            "schedule": settings.ENGINE_DISPATCH_SECONDS,
        }
    }


@worker_process_init.connect
def _start_monitoring(**kwargs: Any) -> None:
    """Each worker process flushes its monitoring aggregates (cycles, pool) like a web worker,
    and never uses a pool inherited from the parent over fork."""
    from monitoring import pool

    pool.reset()
    pool.start_background()


@worker_process_shutdown.connect
def _drain(**kwargs: Any) -> None:
    from monitoring import pool

    pool.drain(reason="celery worker shutdown")
