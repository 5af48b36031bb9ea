"""The project's own app: process-wide wiring that belongs to no domain app."""

from __future__ import annotations

from django.apps import AppConfig


class ZerobotConfig(AppConfig):
    name = "zerobot"
    verbose_name = "zerobot"

    def ready(self) -> None:
        from zerobot import checks  # noqa: F401 - registers the deploy checks
        from zerobot.lib.db import install_utc_datetime_dumper

        install_utc_datetime_dumper()
