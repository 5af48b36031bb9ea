from __future__ import annotations

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from monitoring import checks  # noqa: F401 - registers the system checks
        from monitoring.engine import on_cycle_finished
        from trading.engine.signals import cycle_finished

        cycle_finished.connect(on_cycle_finished, dispatch_uid="monitoring.bot_cycle")
